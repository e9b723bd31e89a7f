"""Agent-side CLI commands (``pay``, ``cancel``, ``invalidate-nonces``, ``agent rotate-key``),
each a separate process against this module's anvil. The vault is built through the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from agentwallet import intents
from agentwallet.agent import AgentWallet
from agentwallet.chain import Chain, connect
from agentwallet.chain.devchain import dev_accounts_from_mnemonic
from agentwallet.chain.node import free_port
from agentwallet.deployments import Deployments
from agentwallet.keys import KeyStore
from agentwallet.protocol.refs import to_ref
from agentwallet.vault import Vault
from tests.cli.conftest import PASSWORD, Cli

DEV = dev_accounts_from_mnemonic()
ALICE, BOB, AGENT = DEV[1], DEV[2], DEV[4]
SHOP = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e2")
OTHER_SHOP = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e3")
DAY = 86400


class World:
    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.chain: Chain = connect(cli.node.url)
        self.store = KeyStore(Path(cli.env["AGENTWALLET_HOME"]), scrypt_n=1024)
        self.vault = Vault.create(
            self.chain,
            ALICE,
            [ALICE.address, BOB.address],
            2,
            name="main",
            deployments=Deployments(self.chain, Path(cli.env["AGENTWALLET_DEPLOYMENTS"])),
        )
        self.vault.fund(ALICE, 5 * 10**18)
        for name, account in (("alice", ALICE), ("bob", BOB), ("agent", AGENT)):
            self.store.import_key(name, account.key.hex(), PASSWORD)
        self.vault.approve(BOB, self.vault.propose_add_agent(ALICE, AGENT.address).request_id)
        limits = self.vault.propose_set_limits(ALICE, AGENT.address, None, 10**17, 10**18, DAY)
        self.vault.approve(BOB, limits.request_id)

    def nonce(self, address: str) -> int:
        return int(self.chain.w3.eth.get_transaction_count(address))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(cli: Cli) -> World:
    return World(cli)


def _json(run: Any) -> Any:
    run.ok()
    return json.loads(run.out)


def test_pay_with_a_reused_ref_for_another_payment_exits_1_and_sends_nothing(
    world: World,
) -> None:
    cli = world.cli
    paid = _json(cli("--as", "agent", "--json", "pay", SHOP, "0.01", "--ref", "inv-7"))
    assert paid["status"] == "paid"
    nonce, balance = world.nonce(AGENT.address), world.vault.balance(None)
    line = cli("--as", "agent", "pay", SHOP, "0.02", "--ref", "inv-7").fails(
        "'inv-7' was already used", paid["tx_hash"], "nothing was sent"
    )
    assert "0.01 ETH" in line
    cli("--as", "agent", "pay", OTHER_SHOP, "0.01", "--ref", "inv-7").fails("already used")
    assert (world.nonce(AGENT.address), world.vault.balance(None)) == (nonce, balance)
    again = _json(cli("--as", "agent", "--json", "pay", SHOP, "0.01", "--ref", "inv-7"))
    assert again["tx_hash"] == paid["tx_hash"]


def test_pay_a_negative_or_zero_amount_says_it_must_be_positive(world: World) -> None:
    cli = world.cli
    nonce = world.nonce(AGENT.address)
    cli("--as", "agent", "pay", SHOP, "-1").fails("amount '-1' is negative")
    cli("--as", "agent", "pay", SHOP, "0").fails("must be greater than 0")
    assert world.nonce(AGENT.address) == nonce


@pytest.fixture(scope="module")
def relay_url(world: World) -> Iterator[str]:
    """``agentwallet relay`` as its own process, paying gas from bob's key."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwallet", "--as", "bob", "relay", "--port", str(port)],
        env=world.cli.env,
        cwd=world.cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    yield url
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert AGENT.key.hex()[2:] not in err and BOB.key.hex()[2:] not in err


def test_pay_through_the_relay_costs_the_agent_no_gas(world: World, relay_url: str) -> None:
    cli = world.cli
    nonce = world.nonce(AGENT.address)
    paid = _json(cli("--as", "agent", "--json", "pay", SHOP, "0.01", "--ref", "relayed-7",
                     "--relay", relay_url))  # fmt: skip
    assert paid["status"] == "paid" and world.nonce(AGENT.address) == nonce
    again = _json(cli("--as", "agent", "--json", "pay", SHOP, "0.01", "--ref", "relayed-7",
                      "--relay", relay_url))  # fmt: skip
    assert again["tx_hash"] == paid["tx_hash"]
    cli("--as", "agent", "pay", SHOP, "0.02", "--ref", "relayed-7", "--relay", relay_url).fails(
        "already used"
    )
    cli("--as", "agent", "pay", SHOP, "0.01", "--fee", "0.001").fails("need --relay")
    cli("--as", "agent", "pay", SHOP, "0.01", "--relay", "http://127.0.0.1:9").fails(
        "cannot be reached"
    )


def test_an_escalated_payment_is_cancelled_by_its_agent(world: World, relay_url: str) -> None:
    cli = world.cli
    escalated = _json(cli("--as", "agent", "--json", "pay", SHOP, "0.5", "--relay", relay_url))
    assert escalated["status"] == "escalated"
    request_id = str(escalated["request_id"])
    cli("--as", "alice", "cancel", request_id).fails("NotRequestAgent")
    done = _json(cli("--as", "agent", "--json", "cancel", request_id))
    assert done["status"] == "cancelled"
    assert world.vault.request(int(request_id)).status == "cancelled"


def test_invalidate_nonces_cancels_signed_intents(world: World) -> None:
    cli = world.cli
    wallet = AgentWallet(world.chain, world.vault, AGENT)
    strict = wallet.sign_intent(SHOP, 10**15, ref="to-cancel", exactly_once=True)
    loose = wallet.sign_intent(SHOP, 10**15, ref="other")
    cli("--as", "agent", "invalidate-nonces", str(loose.nonce)).fails("confirmation")
    cli("--as", "agent", "invalidate-nonces").fails("at least one NONCE")
    out = _json(cli("--as", "agent", "--json", "invalidate-nonces", "--ref", "to-cancel",
                    str(loose.nonce), "--yes"))  # fmt: skip
    assert len(out["txs"]) == 2  # two bitmap words: the ref-derived one and word 0
    for signed in (strict, loose):
        assert world.vault.bindings.is_nonce_used(AGENT.address, signed.nonce)
    # an owner cancels an agent's nonce; a stranger key cannot
    owner = _json(cli("--as", "alice", "--json", "invalidate-nonces", "--agent", "agent",
                      "77", "--yes"))  # fmt: skip
    assert owner["agent"] == AGENT.address
    assert intents.ref_nonce(to_ref("to-cancel")) == strict.nonce


def test_rotate_key_moves_the_agent_and_the_old_key_is_dead(world: World, relay_url: str) -> None:
    cli = world.cli
    cli("--as", "agent", "agent", "rotate-key", "nobody", "--yes").fails("no key named 'nobody'")
    new = _json(cli("--json", "key", "new", "agent2"))
    rotated = _json(cli("--as", "agent", "--json", "agent", "rotate-key", "agent2", "--yes",
                        "--relay", relay_url))  # fmt: skip
    assert (rotated["old_key"], rotated["new_key"]) == (AGENT.address, new["address"])
    cli("--as", "agent", "pay", SHOP, "0.01").fails("AgentNotActive")
    paid = _json(cli("--as", "agent2", "--json", "pay", SHOP, "0.01", "--relay", relay_url))
    assert paid["status"] == "paid" and world.nonce(new["address"]) == 0
    cli("--as", "agent2", "agent", "rotate-key", "alice", "--yes").fails("InvalidNewKey")
