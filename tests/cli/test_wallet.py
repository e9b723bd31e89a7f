"""Agent-side CLI commands (``pay``, ``cancel``, ``invalidate-nonces``, ``agent rotate-key``),
each a separate process against this module's anvil. The vault is built through the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from agentwallet.chain import Chain, connect
from agentwallet.chain.devchain import dev_accounts_from_mnemonic
from agentwallet.deployments import Deployments
from agentwallet.keys import KeyStore
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
