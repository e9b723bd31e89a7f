"""Event decoding, the range-adaptive reader, reports, reconcile and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from web3.logs import DISCARD

from agentwallet.audit.errors import LogReadError
from agentwallet.audit.events import EventCodec, EventFilter, read_events
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.logs import LogReader, RpcLogSource, log_source
from agentwallet.audit.reconcile import reconcile
from agentwallet.audit.reports import (
    owners_report,
    requests_report,
    spend_report,
    summary_report,
    trail,
)
from agentwallet.chain import Chain
from agentwallet.cli import audit as audit_cli
from agentwallet.cli import main
from agentwallet.protocol.signatures import pack_signatures
from tests.audit._helpers import ETH, World


def busy_history(world: World) -> dict[str, int]:
    """Direct payment, approved escalation, rejected escalation, cancelled one, a reduction,
    an allowlist change, a pause. Returns the request ids."""
    v, o, agent = world.vault, world.owners, world.agent
    world.pay(agent, ETH, world.payees[0], 10**17, b"direct")
    world.pay(agent, ETH, world.payees[1], 2 * 10**18, b"big")
    approved = world.last_request
    world.approve(o[1], approved)
    world.approve(o[2], approved)
    world.pay(agent, world.usdc.address, world.payees[2], 500 * 10**6, b"usdc-big")
    rejected = world.last_request
    world.reject(o[2], rejected)
    world.pay(agent, ETH, world.payees[0], 3 * 10**18, b"cancel-me")
    cancelled = world.last_request
    world.cancel(agent, cancelled)
    world.pay(agent, ETH, world.payees[0], 4 * 10**18, b"left-open")
    open_id = world.last_request
    world.send(o[0], v.functions.reduceLimits(agent.address, ETH, 5 * 10**17, 4 * 10**18))
    world.govern("allowRecipient", agent.address, world.payees[0])
    world.send(o[2], v.functions.pauseAgent(agent.address))
    return {"approved": approved, "rejected": rejected, "cancelled": cancelled, "open": open_id}


def test_every_log_decodes_like_web3(anvil_world: World) -> None:
    chain, world = anvil_world.chain, anvil_world
    busy_history(world)
    events = read_events(chain, EventFilter(vaults=(world.vault.address,)))
    names = {e.name for e in events}
    assert {
        "PaymentExecuted",
        "PaymentRequested",
        "GovernanceProposed",
        "RequestApproved",
        "RequestExecuted",
        "RequestRejected",
        "RequestCancelled",
        "LimitsChanged",
        "RecipientChanged",
        "AgentStatusChanged",
        "AgentConfigured",
        "Deposited",
        "OwnerAdded",
    } <= names
    contract = world.vault
    for e in events:
        receipt = chain.w3.eth.get_transaction_receipt(e.tx_hash)
        decoded = [
            d
            for d in getattr(contract.events, e.name)().process_receipt(receipt, errors=DISCARD)
            if d["logIndex"] == e.log_index
        ]
        assert len(decoded) == 1, e
        expected = {
            k: ("0x" + v.hex() if isinstance(v, bytes) else v)
            for k, v in decoded[0]["args"].items()
        }
        assert dict(e.args) == expected
        assert e.block_time == chain.w3.eth.get_block(e.block_number)["timestamp"]


class LimitedSource(RpcLogSource):
    """A node that refuses log queries over ``limit`` blocks, with various providers' errors."""

    STYLES = [
        {"code": -32005, "message": "query returned more than 10000 results"},
        {"code": -32602, "message": "block range too large"},
        {"code": -32000, "message": "eth_getLogs: range is too large, max is 1k blocks"},
        {"code": -32000, "message": "Limit exceeded"},
    ]

    def __init__(self, chain: Chain, limit: int) -> None:
        real = lambda m, p: chain.w3.provider.make_request(m, p)  # type: ignore[arg-type]  # noqa: E731
        self.limit = limit
        self.refusals = 0

        def rpc(method: str, params: list[Any]) -> Any:
            if method == "eth_getLogs":
                span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
                if span > self.limit:
                    style = self.STYLES[self.refusals % len(self.STYLES)]
                    self.refusals += 1
                    if self.refusals % 5 == 0:
                        raise ValueError(style)  # some clients raise instead of returning
                    return {"jsonrpc": "2.0", "id": 1, "error": style}
            return real(method, params)

        super().__init__(rpc, chain.url)


def test_range_limited_provider_halves_and_reads_everything(anvil_world: World) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    for i in range(4):
        anvil_world.pay(anvil_world.agent, ETH, anvil_world.payees[0], 10**15 + i)
    expected = read_events(chain, EventFilter(vaults=(vault,)))
    source = LimitedSource(chain, limit=3)
    reader = LogReader(source, max_range=1 << 16)
    got = read_events(chain, EventFilter(vaults=(vault,)), reader=reader)
    assert got == expected
    assert source.refusals >= 10 and reader.halvings == source.refusals
    stubborn = LogReader(LimitedSource(chain, limit=0), max_range=4)
    with pytest.raises(LogReadError, match="refuses even a 1-block log query"):
        read_events(chain, EventFilter(vaults=(vault,)), reader=stubborn)


def test_filters_use_topics_and_match_post_filtering(anvil_world: World) -> None:
    chain, world = anvil_world.chain, anvil_world
    ids = busy_history(world)
    everything = read_events(chain, EventFilter(vaults=(world.vault.address,)))
    for flt in (
        EventFilter(agent=world.agent.address),
        EventFilter(recipient=world.payees[0]),
        EventFilter(token=world.usdc.address),
        EventFilter(request_id=2),
        EventFilter(kind="payment"),
        EventFilter(names=("PaymentExecuted",), agent=world.agent.address, token=ETH),
    ):
        # other tests' vaults may share the agent and payees: compare within this vault
        flt = dataclasses.replace(flt, vaults=(world.vault.address,))
        got = read_events(chain, flt)
        assert got == [e for e in everything if flt.matches(e)], flt
        assert got
    agent_events = read_events(chain, EventFilter(agent=world.agent.address))
    # a governance proposal that configures the agent carries it though no topic does
    assert any(e.name == "GovernanceProposed" for e in agent_events)
    # a request's payment carries the request's id, linked from the RequestExecuted after it
    paid = read_events(chain, EventFilter(names=("PaymentExecuted",), request_id=ids["approved"]))
    assert [(e.amount, e.request_id) for e in paid] == [(2 * 10**18, ids["approved"])]


def test_reports_tell_who_authorised_what(anvil_world: World, index: AuditIndex) -> None:
    chain, world = anvil_world.chain, anvil_world
    ids = busy_history(world)
    vault, cid = world.vault.address, chain.chain_id
    index.sync(chain, [vault])
    o = [a.address for a in world.owners]
    entries = trail(index, cid, vault, world.agent.address)
    by_text = "\n".join(f"{e.what} | {', '.join(e.approvals)}" for e in entries)
    added = "agent added/configured (validAfter=0, validUntil=none, allowlist=False)"
    assert f"{added} by request #1 | {o[0]}, {o[1]}" in by_text
    assert "limits set by request #2 (ETH: max 1 ETH per payment, 5 ETH per 86400s)" in by_text
    assert f"paid 2 ETH to {world.payees[1]} via request #{ids['approved']}" in by_text
    assert f"escalated 500 tUSDC to {world.payees[2]} (over per-payment limit) as" in by_text
    assert f"owner {o[2]} rejected request #{ids['rejected']}" in by_text
    assert f"agent cancelled request #{ids['cancelled']}" in by_text
    assert f"limits reduced by owner {o[0]}" in by_text
    assert f"agent paused by owner {o[2]}" in by_text
    assert f"recipient {world.payees[0]} allowed by request" in by_text

    open_rows = requests_report(index, cid, vault, "open")
    assert [r.request_id for r in open_rows] == [ids["open"]]
    assert open_rows[0].amount == "4 ETH" and open_rows[0].status == "pending"
    expired = requests_report(index, cid, vault, "expired", now=open_rows[0] and 2**40)
    assert [r.request_id for r in expired] == [ids["open"]]
    statuses = {r.request_id: r.status for r in requests_report(index, cid, vault, "all")}
    assert statuses[ids["approved"]] == "executed"
    assert statuses[ids["rejected"]] == "rejected"
    assert statuses[ids["cancelled"]] == "cancelled"

    owners = {r.owner: r for r in owners_report(index, cid, vault)}
    assert owners[o[0]].proposals == 4 and owners[o[1]].approvals == 5
    assert owners[o[2]].rejections == 1 and owners[o[2]].approvals == 1
    assert owners[o[2]].executions == 1

    s = summary_report(index, cid, vault)
    assert s["threshold"] == 2 and s["owners"] == sorted(o)
    assert s["agents"][world.agent.address]["status"] == "paused"
    assert s["agents"][world.agent.address]["limits"]["ETH"]["max_per_payment"] == "0.5 ETH"
    assert s["payments"]["ETH"] == "2.1 ETH" and s["deposits"]["tUSDC"] == "1000000 tUSDC"
    assert s["requests"] == {"cancelled": 1, "executed": 5, "pending": 1, "rejected": 1}


def test_reconcile_finds_funds_sent_without_an_event(anvil_world: World, index: AuditIndex) -> None:
    chain, world = anvil_world.chain, anvil_world
    world.pay(world.agent, world.usdc.address, world.payees[0], 5 * 10**6)
    index.sync(chain, [world.vault.address])
    rows = {r.symbol: r for r in reconcile(index, chain, world.vault.address)}
    assert rows["tUSDC"].difference_base_units == 0 and rows["ETH"].note == "ok"
    assert rows["tUSDC"].actual == "999995"
    # a plain ERC-20 transfer to the vault: no Deposited event
    dev = chain.dev_accounts[3]
    chain.transact(world.usdc.functions.mint(dev.address, 7 * 10**6), world.owners[0])
    chain.transact(world.usdc.functions.transfer(world.vault.address, 7 * 10**6), dev)
    index.sync(chain, [world.vault.address])
    rows = {r.symbol: r for r in reconcile(index, chain, world.vault.address)}
    assert rows["tUSDC"].difference_base_units == 7 * 10**6
    assert rows["tUSDC"].difference == "7" and "without a Deposited event" in rows["tUSDC"].note


def test_owners_signed_payments_are_reported_and_reconciled(
    anvil_world: World, index: AuditIndex
) -> None:
    """payWithSignatures moves funds without a PaymentExecuted: the audit must still see it,
    name the signers, count it in spend and summary, and reconcile the vault to zero."""
    chain, world = anvil_world.chain, anvil_world
    vault, cid = world.vault, chain.chain_id
    signers = sorted(world.owners[:2], key=lambda a: int(a.address, 16))
    for nonce, (agent, amount) in enumerate(((world.agent.address, 3 * 10**6), (ETH, 4 * 10**6))):
        deadline = chain.timestamp() + 3600
        ref = b"signed".ljust(32, b"\0")
        payment = (agent, world.usdc.address, world.payees[2], amount, ref, nonce, deadline)
        digest = vault.functions.signedPaymentDigest(payment).call()
        packed = pack_signatures((s.address, s.unsafe_sign_hash(digest).signature) for s in signers)
        call = vault.functions.payWithSignatures(payment, packed)
        world.send(world.owners[2], call)  # any sender: here the third owner relays
    index.sync(chain, [vault.address])
    entries = trail(index, cid, vault.address, world.agent.address)
    names = ", ".join(s.address for s in signers)
    assert any(
        e.what == f"paid 3 tUSDC to {world.payees[2]} on the signatures of owners {names}"
        for e in entries
    ), [e.what for e in entries]
    spend = {(r.agent, r.day): r for r in spend_report(index, cid, vault.address, token=None)}
    mine = [r for (agent, _), r in spend.items() if agent == world.agent.address]
    assert sum(int(r.via_request) for r in mine if r.symbol == "tUSDC") >= 3
    nobody = [r for (agent, _), r in spend.items() if agent == ""]
    assert [(r.symbol, r.via_request, r.direct) for r in nobody] == [("tUSDC", "4", "0")]
    rows = {r.symbol: r for r in reconcile(index, chain, vault.address)}
    assert rows["tUSDC"].difference_base_units == 0, rows["tUSDC"]
    assert summary_report(index, cid, vault.address)["payments"]["tUSDC"].startswith("7")


def _cli() -> click.Group:
    return main


def test_cli_sync_and_reports(anvil_world: World, tmp_path: Path) -> None:
    chain, world = anvil_world.chain, anvil_world
    busy_history(world)
    db = str(tmp_path / "a.sqlite")
    vault = world.vault.address
    runner = CliRunner()
    group = click.Group("t", commands={"audit": audit_cli.audit, "watch": audit_cli.watch})
    main_like = main if "audit" in main.commands else None
    if main_like is None:
        main.add_command(group.commands["audit"])  # local registration for the test session
    rpc = ["--rpc", str(chain.url)]
    r = runner.invoke(main, [*rpc, "audit", "sync", "--vault", vault, "--db", db])
    assert r.exit_code == 0, r.output
    assert "new events" in r.output
    r = runner.invoke(
        main, [*rpc, "audit", "trail", "--vault", vault, "--db", db, "--agent", world.agent.address]
    )
    assert r.exit_code == 0, r.output
    assert "paid 0.1 ETH" in r.output and "approvals" in r.output
    r = runner.invoke(
        main, [*rpc, "audit", "spend", "--vault", vault, "--db", db, "--by", "day", "--csv"]
    )
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("agent,token,symbol,day")
    r = runner.invoke(main, [*rpc, "--json", "audit", "requests", "--vault", vault, "--db", db])
    assert r.exit_code == 0 and json.loads(r.output)[0]["amount"] == "4 ETH"
    r = runner.invoke(main, [*rpc, "audit", "owners", "--vault", vault, "--db", db, "--json"])
    assert r.exit_code == 0 and len(json.loads(r.output)) == 3
    r = runner.invoke(main, [*rpc, "audit", "summary", "--vault", vault, "--db", db])
    assert r.exit_code == 0 and "threshold: 2" in r.output
    r = runner.invoke(main, [*rpc, "audit", "reconcile", "--vault", vault, "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main,
        [
            *rpc,
            "audit",
            "what-if",
            "--vault",
            vault,
            "--db",
            db,
            "--agent",
            world.agent.address,
            "--limit",
            "ETH:5:10:1d",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "with a different outcome" in r.output
    # bad input: clear one-line errors, exit 1
    r = runner.invoke(main, [*rpc, "audit", "sync", "--vault", world.payees[0], "--db", db])
    assert r.exit_code == 1 and "has no code" in r.output
    r = runner.invoke(
        main,
        [
            *rpc,
            "audit",
            "sync",
            "--vault",
            vault,
            "--db",
            db,
            "--from-block",
            "9",
            "--to-block",
            "2",
        ],
    )
    assert r.exit_code == 1 and "reversed" in r.output
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 1000)
    r = runner.invoke(
        main,
        [
            *rpc,
            "audit",
            "trail",
            "--vault",
            vault,
            "--db",
            str(bad),
            "--agent",
            world.agent.address,
        ],
    )
    assert r.exit_code == 1 and "not a readable SQLite audit index" in r.output


def test_embedded_reader_matches_eth_get_logs(embedded_world: World) -> None:
    chain = embedded_world.chain
    embedded_world.pay(embedded_world.agent, ETH, embedded_world.payees[0], 10**15)
    fast = read_events(chain, EventFilter(vaults=(embedded_world.vault.address,)))
    codec = EventCodec()
    slow_logs = chain.w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": embedded_world.vault.address}
    )
    assert [(e.block_number, e.log_index, e.tx_hash) for e in fast] == [
        (lg["blockNumber"], lg["logIndex"], lg["transactionHash"].to_0x_hex()) for lg in slow_logs
    ]
    assert {e.name for e in fast} <= set(codec.by_name)
    assert log_source(chain).head() == chain.block_number()
