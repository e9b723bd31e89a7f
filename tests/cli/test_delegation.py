"""Delegation through the CLI end to end, each command a separate process against anvil.

The tests build on each other in file order (one chain, one vault): a 2-of-2 vault and an agent
``travel`` with tUSDC limits → the marketplace purchase (``agent allow-call``, ``agent call``
within the allowance, one over the limit that the owners approve) → ``agent delegate`` and the
sub-agent's escalation seen with its chain (``agent tree --request``) → per-recipient budgets →
revoking a call grant → what is refused before anything is signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain, connect
from agentwallet.chain.devchain import dev_accounts_from_mnemonic
from agentwallet.deployments import Deployments
from agentwallet.keys import KeyStore
from agentwallet.vault import Vault
from tests.cli.conftest import PASSWORD, Cli

DEV = dev_accounts_from_mnemonic()
ALICE, BOB = DEV[1], DEV[2]
SHOP = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e1")
SELLER = Web3.to_checksum_address("0x5e11e70000000000000000000000000000000001")
BUY = "buy(address,uint256)"
USDC = 10**6


@dataclass
class State:
    cli: Cli
    chain: Chain
    deployments: Deployments
    addr: dict[str, str] = field(default_factory=dict)
    market: str = ""
    usdc: str = ""

    def vault(self) -> Vault:
        return Vault.at(self.chain, "main", self.deployments)

    def nonce(self, name: str) -> int:
        return self.chain.nonce(self.addr[name])


@pytest.fixture(scope="module")
def state(cli: Cli) -> State:
    chain = connect(cli.node.url)
    return State(cli, chain, Deployments(chain, Path(cli.env["AGENTWALLET_DEPLOYMENTS"])))


def _json(run: Any) -> Any:
    run.ok()
    return json.loads(run.out)


def _approve_all(state: State, actions: list[dict[str, Any]]) -> None:
    for action in actions:
        if action["status"] == "proposed":
            run = state.cli("--as", "bob", "--json", "approve", str(action["request_id"]), "--yes")
            assert _json(run)["executed"] is True


def test_setup_a_vault_an_agent_and_a_marketplace(state: State) -> None:
    cli = state.cli
    store = KeyStore(Path(cli.env["AGENTWALLET_HOME"]), scrypt_n=1024)
    store.import_key("alice", ALICE.key.hex(), PASSWORD)
    store.import_key("bob", BOB.key.hex(), PASSWORD)
    for name in ("travel", "helper"):
        store.create(name, PASSWORD)
    state.addr = {k.name: k.address for k in store.list()}
    cli(
        "--as",
        "alice",
        "deploy",
        "--owner",
        "alice",
        "--owner",
        "bob",
        "--threshold",
        "2",
        "--test-token",
    ).ok()
    for name in ("travel", "helper"):
        cli("faucet", name, "--amount", "1").ok()
    cli("faucet", "alice", "--token", "tUSDC", "--amount", "1000").ok()
    cli("--as", "alice", "fund", "500", "--token", "tUSDC").ok()
    added = _json(
        cli(
            "--as",
            "alice",
            "--json",
            "agent",
            "add",
            "travel",
            "--token",
            "tUSDC",
            "--token-limit",
            "100",
            "--token-allowance",
            "200",
            "--period",
            "1d",
        )
    )
    for request in added["requests"]:
        cli("--as", "bob", "approve", str(request["request_id"]), "--yes").ok()
    state.usdc = state.deployments.token("tUSDC").address
    state.market = state.chain.deploy("Marketplace", SELLER, sender=DEV[0]).address


def test_the_agent_buys_from_the_marketplace_and_owners_approve_the_big_order(
    state: State,
) -> None:
    cli = state.cli
    granted = _json(
        cli("--as", "alice", "--json", "agent", "allow-call", "travel", state.market, BUY, "--yes")
    )
    assert granted["selector"] == "0xcce7ec13"
    assert [a["status"] for a in granted["actions"]] == ["proposed"]
    _approve_all(state, granted["actions"])
    # within the token allowance: the vault approves the price, the market pulls it, reset to 0
    bought = _json(
        cli(
            "--as",
            "travel",
            "--json",
            "agent",
            "call",
            state.market,
            BUY,
            state.usdc,
            str(30 * USDC),
            "--spend",
            "tUSDC:30",
            "--ref",
            "order-1",
            "--yes",
        )
    )
    assert bought["status"] == "called" and bought["spent"] == "30" and bought["ref"] == "order-1"
    token = Erc20Binding(state.chain, state.usdc)
    assert token.balance_of(SELLER) == 30 * USDC
    assert token.allowance(state.vault().address, state.market) == 0
    # the human table of what is signed, on a dry run that says it will escalate
    over = cli(
        "--as",
        "travel",
        "agent",
        "call",
        state.market,
        BUY,
        state.usdc,
        str(150 * USDC),
        "--spend",
        "tUSDC:150",
        "--ref",
        "order-2",
        "--yes",
    ).ok()
    for shown in (
        "you are about to sign a scoped call",
        state.market,
        "150 tUSDC",
        "escalates: over per-payment limit",
        "escalated",
        "approve",
    ):
        assert shown in over.out, shown
    listed = _json(cli("--json", "requests"))["requests"]
    request = next(r for r in listed if r["ref"] == "order-2")
    assert request["kind"] == "call" and request["agent"] == state.addr["travel"]
    cli("--as", "alice", "approve", str(request["id"]), "--yes").ok()
    cli("--as", "bob", "approve", str(request["id"]), "--yes").ok()
    assert token.balance_of(SELLER) == 180 * USDC
    shown = _json(cli("--json", "agent", "tree", "travel"))
    (grant,) = shown["call_grants"]
    assert grant["target"] == state.market and grant["selector"] == "0xcce7ec13"


def test_an_agent_delegates_and_a_sub_agents_request_shows_its_chain(state: State) -> None:
    cli = state.cli
    delegated = _json(
        cli(
            "--json",
            "agent",
            "delegate",
            "helper",
            "--as",
            "travel",
            "--token",
            "tUSDC",
            "--token-limit",
            "10",
            "--token-allowance",
            "20",
            "--period",
            "1d",
            "--yes",
        )
    )
    assert [a["status"] for a in delegated["actions"]] == ["done", "done"]
    tree = _json(cli("--json", "agent", "tree", "travel"))
    (child,) = tree["tree"]["sub_agents"]
    assert child["agent"] == state.addr["helper"] and child["depth"] == 1
    assert child["policies"][0]["max"] == "10" and child["policies"][0]["allowance"] == "20"
    paid = _json(cli("--as", "helper", "--json", "pay", SHOP, "10", "--token", "tUSDC"))
    assert paid["status"] == "paid"
    over = _json(cli("--as", "helper", "--json", "pay", SHOP, "11", "--token", "tUSDC"))
    assert over["status"] == "escalated"
    chain = _json(cli("--json", "agent", "tree", "--request", str(over["request_id"])))
    assert chain["chain"] == [state.addr["helper"], state.addr["travel"]]
    text = cli("agent", "tree", "--request", str(over["request_id"])).ok().out
    assert "helper" in text and "travel" in text and "chain of delegation" in text
    # wider than the parent: refused before anything is signed
    before = state.nonce("travel")
    cli(
        "--as",
        "travel",
        "agent",
        "sub-limits",
        "helper",
        "--token",
        "tUSDC",
        "--max",
        "101",
        "--allowance",
        "20",
        "--period",
        "1d",
        "--yes",
    ).fails("ExceedsParent", "per-payment")
    assert state.nonce("travel") == before


def test_one_owner_tightens_a_recipient_budget_and_raising_it_is_a_proposal(
    state: State,
) -> None:
    cli = state.cli
    tightened = _json(
        cli(
            "--as",
            "alice",
            "--json",
            "agent",
            "recipient-budget",
            "travel",
            SHOP,
            "--token",
            "tUSDC",
            "--max",
            "5",
            "--allowance",
            "5",
            "--yes",
        )
    )
    assert [a["status"] for a in tightened["actions"]] == ["done"]
    paid = _json(cli("--as", "travel", "--json", "pay", SHOP, "5", "--token", "tUSDC"))
    assert paid["status"] == "paid"
    over = _json(cli("--as", "travel", "--json", "pay", SHOP, "1", "--token", "tUSDC"))
    assert over["reasons"] == ["over per-recipient budget"]
    before = state.nonce("alice")
    cli(
        "--as",
        "alice",
        "agent",
        "recipient-budget",
        "travel",
        SHOP,
        "--token",
        "tUSDC",
        "--max",
        "50",
        "--allowance",
        "50",
        "--yes",
    ).fails("LimitNotReduced", "governance")
    assert state.nonce("alice") == before
    raised = _json(
        cli(
            "--as",
            "alice",
            "--json",
            "agent",
            "recipient-budget",
            "travel",
            SHOP,
            "--token",
            "tUSDC",
            "--max",
            "50",
            "--allowance",
            "50",
            "--raise",
            "--yes",
        )
    )
    assert [a["status"] for a in raised["actions"]] == ["proposed"]
    _approve_all(state, raised["actions"])
    (budget,) = _json(cli("--json", "agent", "tree", "travel"))["recipient_budgets"]
    assert budget["recipient"] == SHOP and budget["allowance"] == "50"


def test_revoking_a_call_grant_makes_the_next_call_escalate(state: State) -> None:
    cli = state.cli
    revoked = _json(
        cli("--as", "bob", "--json", "agent", "revoke-call", "travel", state.market, BUY, "--yes")
    )
    assert [a["status"] for a in revoked["actions"]] == ["done"]
    again = _json(
        cli(
            "--as",
            "travel",
            "--json",
            "agent",
            "call",
            state.market,
            BUY,
            state.usdc,
            str(USDC),
            "--spend",
            "tUSDC:1",
            "--yes",
        )
    )
    assert again["status"] == "escalated" and again["reasons"] == ["call not granted"]


def test_bad_input_and_missing_confirmation_sign_nothing(state: State) -> None:
    cli = state.cli
    before = {name: state.nonce(name) for name in ("alice", "travel")}
    call = ("--as", "travel", "agent", "call", state.market)
    cli(*call, "buy(address", "0x01").fails("not a function signature")
    cli(*call, BUY, "nope", "1", "--yes").fails("not a valid address")
    cli(*call, BUY, state.usdc, "1", "--spend", "tUSDC", "--yes").fails("TOKEN:AMOUNT")
    cli(*call, "transfer(address,uint256)", SHOP, "1", "--yes").fails("ForbiddenCall")
    cli("--as", "travel", "agent", "call", state.usdc, BUY, state.usdc, "1", "--yes").fails(
        "ForbiddenCall"
    )
    cli(*call, BUY, state.usdc, "1").fails("refusing to sign without confirmation")
    cli("--as", "alice", "agent", "allow-call", "travel", state.usdc, BUY, "--yes").fails(
        "ForbiddenCall"
    )
    cli("--as", "alice", "agent", "delegate", "helper", "--yes").fails("--parent")
    cli(
        "--as",
        "alice",
        "agent",
        "recipient-budget",
        "travel",
        "--token",
        "tUSDC",
        "--max",
        "1",
        "--allowance",
        "1",
        "--yes",
    ).fails("RECIPIENT or pass --default")
    assert {name: state.nonce(name) for name in before} == before
