"""Watch alerts (+ webhook, auto-pause) and what-if replays (contract-exact GCRA)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from web3.logs import DISCARD

from agentwallet.audit.errors import WhatIfError
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.watch import WatchConfig, Watcher
from agentwallet.audit.whatif import Limits, available, evaluate, rewrite_tat, whatif
from agentwallet.cli import audit as audit_cli
from tests.audit._helpers import DAY, ETH, World


def test_watch_raises_each_alert_once_and_auto_pauses(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, world = anvil_world.chain, anvil_world
    config = WatchConfig(expiry_window=2 * DAY, spike_min=Decimal("0.05"), burst_count=3)
    watcher = Watcher(index, chain, [world.vault.address], config, pauser=world.owners[2])
    assert watcher.poll() == []  # set-up history only: nothing to say
    world.pay(world.agent, ETH, world.payees[0], 10**17)
    kinds = sorted(a.kind for a in watcher.poll())
    assert kinds == ["new_recipient", "spend_spike"]
    # the spike paused the agent: unpause through governance to continue
    assert world.vault.functions.getAgent(world.agent.address).call()[0] == 2
    world.govern("unpauseAgent", world.agent.address)
    assert watcher.poll() == []  # same payee, same hour: no repeats
    for i in range(3):
        world.pay(world.agent, ETH, world.payees[1], 2 * 10**18 + i)
    alerts = watcher.poll()
    by_kind: dict[str, list[Any]] = {}
    for a in alerts:
        by_kind.setdefault(a.kind, []).append(a)
    assert len(by_kind["request_waiting"]) == 3
    assert len(by_kind["request_expiring"]) == 3
    burst = by_kind["escalation_burst"][0]
    assert burst.agent == world.agent.address
    assert burst.action and burst.action.startswith(f"paused agent {world.agent.address}")
    assert world.vault.functions.getAgent(world.agent.address).call()[0] == 2
    assert "new_recipient" not in by_kind  # escalations pay nobody
    assert watcher.poll() == []


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


def test_watch_cli_posts_alerts_to_a_webhook(
    anvil_world: World, tmp_path: Path, webhook: str
) -> None:
    chain, world = anvil_world.chain, anvil_world
    world.pay(world.agent, ETH, world.payees[2], 3 * 10**18, b"needs-cosigners")
    group = click.Group("t", commands={"watch": audit_cli.watch})
    args = [
        "watch",
        "--vault",
        world.vault.address,
        "--db",
        str(tmp_path / "w.sqlite"),
        "--once",
        "--webhook",
        webhook,
    ]
    from agentwallet.cli import CliContext

    result = CliRunner().invoke(group, args, obj=CliContext(rpc=chain.url, json=False, signer=None))
    assert result.exit_code == 0, result.output
    kinds = [a["kind"] for a in _Hook.received]
    assert kinds == ["request_waiting"]
    assert (
        _Hook.received[0]["request_id"] == 4
        and "waits for co-signers" in (_Hook.received[0]["message"])
    )
    bad = CliRunner().invoke(
        group,
        [*args[:-1], "http://127.0.0.1:9/none", "--db", str(tmp_path / "w2.sqlite")],
        obj=CliContext(rpc=chain.url, json=False, signer=None),
    )
    assert bad.exit_code == 1 and "webhook" in bad.output


def test_python_gcra_matches_the_contract_on_random_cases(anvil_world: World) -> None:
    """Random limits and payment sequences: checkPayment and pay() agree with evaluate()."""
    chain, world = anvil_world.chain, anvil_world
    agent = world.agent2
    world.govern("addAgent", agent.address, 0, 0, False)
    rng = random.Random(20240611)
    vault = world.vault
    checked = 0
    limits: Limits | None = None
    tat = 0
    for _ in range(3):
        new = Limits(rng.randint(1, 10**6), rng.randint(1, 10**6), rng.randint(1, 5000))
        world.govern(
            "setLimits", agent.address, ETH, new.max_per_payment, new.allowance, new.period
        )
        # new limits carry the old budget's debt (checked against the contract's `available`)
        tat = rewrite_tat(limits, tat, new, chain.timestamp())
        limits = new
        policy = vault.functions.getPolicy(agent.address, ETH).call(
            block_identifier=chain.block_number()
        )
        assert policy[3] == available(limits, tat, chain.timestamp())
        last = chain.timestamp()
        for _ in range(25):
            now = last + rng.choice([1, 2, rng.randint(1, limits.period), limits.period])
            amount = rng.randint(1, max(1, limits.allowance * 6 // 5))
            chain._rpc("evm_setNextBlockTimestamp", [now])
            chain._rpc("evm_mine", [])
            view = vault.functions.checkPayment(agent.address, ETH, world.payees[0], amount).call(
                block_identifier=chain.block_number()
            )
            assert view == evaluate(limits, tat, amount, now)[0]
            chain._rpc("evm_setNextBlockTimestamp", [now + 1])
            receipt = world.pay(agent, ETH, world.payees[0], amount)
            block_time = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
            assert block_time == now + 1
            reasons, new_tat = evaluate(limits, tat, amount, now + 1)
            created = vault.events.PaymentRequested().process_receipt(receipt, errors=DISCARD)
            if reasons == 0:
                assert not created
                tat = new_tat
            else:
                assert created[0]["args"]["reasons"] == reasons
                world.cancel(agent, created[0]["args"]["requestId"])
            last = chain.timestamp()
            checked += 1
    assert checked == 75


def test_whatif_replays_history_against_proposed_limits(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, world = anvil_world.chain, anvil_world
    amounts = [4 * 10**17, 9 * 10**17, 10**18, 12 * 10**17, 2 * 10**18, 10**17]
    for i, amount in enumerate(amounts):
        world.pay(world.agent, ETH, world.payees[i % 2], amount)
    index.sync(chain, [world.vault.address])
    cid, vault, agent = chain.chain_id, world.vault.address, world.agent.address
    # the limits in force replay to exactly what happened
    actual = whatif(index, cid, vault, agent, {ETH: Limits(10**18, 5 * 10**18, DAY)})
    assert [r.proposed for r in actual] == [
        "pays",
        "pays",
        "pays",
        "escalates",
        "escalates",
        "pays",
    ]
    assert not any(r.changed for r in actual)
    # stricter: 0.5 ETH max, 1 ETH per day, allowlist = payee 0
    strict = whatif(
        index,
        cid,
        vault,
        agent,
        {ETH: Limits(5 * 10**17, 10**18, DAY)},
        allowlist={world.payees[0]},
    )
    assert [(r.proposed, r.reasons) for r in strict] == [
        ("pays", ""),
        ("escalates", "over per-payment limit, over period allowance, recipient not allowed"),
        ("escalates", "over per-payment limit, over period allowance"),
        ("escalates", "over per-payment limit, over period allowance, recipient not allowed"),
        ("escalates", "over per-payment limit, over period allowance"),
        ("escalates", "recipient not allowed"),
    ]
    # token out of scope, and a validity window that ended before the history
    none = whatif(index, cid, vault, agent, {}, valid_until=1)
    assert {r.proposed for r in none} == {"refused"}
    scope = whatif(index, cid, vault, agent, {})
    assert {r.reasons for r in scope} == {"token not in scope"}
    with pytest.raises(WhatIfError):
        Limits(1, 2**88, 1)
