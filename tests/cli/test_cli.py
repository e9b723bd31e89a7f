"""The ``agentwallet`` CLI end to end, each command a separate process against anvil.

The tests in this module build on each other in file order (one chain, one vault): keys →
deploy/fund → agent added by co-signed requests → payments inside and over the limits →
approvals, signatures, rejection → bad inputs → limits, pause, revoke → demo → key leak.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from eth_account import Account
from web3 import Web3

from agentwallet.chain import Chain, connect
from agentwallet.chain.devchain import dev_accounts_from_mnemonic as _dev_accounts_from_mnemonic
from agentwallet.cli import main
from agentwallet.deployments import Deployments
from agentwallet.keys import KeyStore, Signer
from agentwallet.units import ETH
from agentwallet.vault import Vault
from tests.cli.conftest import OUTPUTS, PASSWORD, Cli

DEV = _dev_accounts_from_mnemonic()
ALICE, BOB, CAROL = DEV[1], DEV[2], DEV[3]
SHOP = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e1")


class World:
    """State shared along the flow (one per module)."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.home = Path(cli.env["AGENTWALLET_HOME"])
        self.deployments_dir = Path(cli.env["AGENTWALLET_DEPLOYMENTS"])
        self.store = KeyStore(self.home, scrypt_n=1024)
        self.chain: Chain = connect(cli.node.url)
        self.addr: dict[str, str] = {}
        self.vault = ""

    def nonce(self, name: str) -> int:
        return int(self.chain.w3.eth.get_transaction_count(self.addr[name]))  # type: ignore[arg-type]

    def nonces(self) -> dict[str, int]:
        return {name: self.nonce(name) for name in self.addr}

    def signer(self, name: str) -> Signer:
        return self.store.load(name, PASSWORD)

    def sdk_vault(self, name: str = "main") -> Vault:
        return Vault.at(self.chain, name, Deployments(self.chain, self.deployments_dir))


@pytest.fixture(scope="module")
def world(cli: Cli) -> World:
    return World(cli)


def _json(run: Any) -> Any:
    run.ok()
    return json.loads(run.out)


# ------------------------------------------------------------------------------------ help


def test_help_on_every_command_and_subcommand() -> None:
    runner = CliRunner()

    def walk(command: click.Command, path: list[str]) -> list[list[str]]:
        paths = [path]
        if isinstance(command, click.Group):  # commands load lazily: ask, not .commands
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                paths += walk(sub, [*path, name])
        return paths

    paths = walk(main, [])
    expected = {"key", "faucet", "deploy", "fund", "agent", "pay", "requests", "approve",
                "reject", "sign", "execute", "sign-payment", "pay-signed", "demo"}  # fmt: skip
    assert expected <= {p[0] for p in paths if p}
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


# ------------------------------------------------------------------------------------ keys


def test_keys_import_new_list_show(world: World) -> None:
    cli = world.cli
    imported = _json(cli("--json", "key", "import", "alice", input=ALICE.key.hex() + "\n"))
    assert imported["address"] == ALICE.address
    created = _json(cli("--json", "key", "new", "travel"))
    assert Web3.is_checksum_address(created["address"])
    # the other keys directly through the SDK (saves processes)
    world.store.import_key("bob", BOB.key.hex(), PASSWORD)
    world.store.import_key("carol", "0x" + CAROL.key.hex(), PASSWORD)
    world.store.create("cloud", PASSWORD)
    listed = _json(cli("--json", "key", "list"))
    assert {k["name"] for k in listed} == {"alice", "bob", "carol", "cloud", "travel"}
    world.addr = {k["name"]: k["address"] for k in listed}
    shown = cli("key", "show", "alice").ok()
    assert ALICE.address in shown.out and "alice.json" in shown.out
    cli("key", "import", "mallory", input="not-a-key\n").fails("not a valid private key")
    cli("key", "new", "alice").fails("already exists")
    cli("key", "show", "nobody").fails("no key named 'nobody'")


# ------------------------------------------------------------------------------------ deploy


def test_deploy_faucet_and_fund_record_the_vault(world: World) -> None:
    cli = world.cli
    owners = ("--owner", "alice", "--owner", "bob", "--owner", CAROL.address.lower())
    deployed = _json(cli("--as", "alice", "--json", "deploy", *owners, "--threshold", "2",
                         "--test-token"))  # fmt: skip
    world.vault = deployed["vault"]
    assert deployed["owners"] == [ALICE.address, BOB.address, CAROL.address]
    record = json.loads((world.deployments_dir / "anvil.json").read_text())
    assert record["chain_id"] == 31337
    assert record["vaults"]["main"]["address"] == world.vault
    assert record["tokens"]["tUSDC"]["decimals"] == 6
    faucet = _json(cli("--json", "faucet", "travel", "--amount", "1"))
    assert faucet["balance"] == "1" and faucet["token"] == "ETH"
    cli("faucet", "alice", "--token", "tUSDC", "--amount", "1000").ok()
    funded = cli("--as", "alice", "fund", "5").ok()
    assert "funded vault main with 5 ETH" in funded.out
    token = _json(cli("--as", "alice", "--json", "fund", "250.5", "--token", "tUSDC"))
    assert token["balance"] == "250.5" and token["token"] == "tUSDC"
    assert world.sdk_vault().balance(None) == Web3.to_wei(5, "ether")


# ------------------------------------------------------------------------------------ agents


def test_agent_add_creates_requests_that_other_owners_cosign(world: World, tmp_path: Path) -> None:
    cli = world.cli
    added = _json(cli("--as", "alice", "--json", "agent", "add", "travel", "--eth-limit", "0.5",
                      "--eth-allowance", "1", "--period", "1d", "--token", "tUSDC",
                      "--token-limit", "100", "--token-allowance", "200"))  # fmt: skip
    ids = [r["request_id"] for r in added["requests"]]
    assert ids == [1, 2, 3]
    assert all(not r["executed"] and r["approvals"] == 1 for r in added["requests"])
    # request 1 (addAgent): an on-chain approval by bob reaches 2 of 3 and executes
    approved = cli("--as", "bob", "approve", "1", "--yes").ok()
    assert "addAgent" in approved.out and "reached the threshold and executed" in approved.out
    # request 2 (ETH limits): two off-chain signatures, relayed by alice
    sig_file = tmp_path / "bob.sig.json"
    cli("--as", "bob", "sign", "2", "--out", str(sig_file), "--yes").ok()
    carol_sig = cli("--as", "carol", "sign", "2", "--yes").ok()
    assert json.loads(carol_sig.out)["signer"] == CAROL.address
    assert "setLimits" in carol_sig.err  # the table of what is signed (stderr: stdout is the sig)
    executed = cli("--as", "alice", "execute", "2", "--sig", str(sig_file),
                   "--sig", carol_sig.out.strip()).ok()  # fmt: skip
    assert "request 2 executed with 2 signatures" in executed.out
    # request 3 (tUSDC limits): carol approves on-chain
    assert _json(cli("--as", "carol", "--json", "approve", "3", "--yes"))["executed"] is True
    shown = _json(cli("--json", "agent", "show", "travel"))
    limits = {p["token"]: p for p in shown["policies"]}
    assert shown["status"] == "active"
    assert limits["ETH"]["max_per_payment"] == "0.5" and limits["ETH"]["available"] == "1"
    assert limits["tUSDC"]["allowance"] == "200" and limits["tUSDC"]["period"] == 86400
    listed = cli("agent", "list").ok()
    assert "travel" in listed.out and "active" in listed.out
    # a second agent, with no gas, through the SDK (requests 4 and 5)
    vault, alice, bob = world.sdk_vault(), world.signer("alice"), world.signer("bob")
    vault.approve(bob, vault.propose_add_agent(alice, world.addr["cloud"]).request_id)
    ref = vault.propose_set_limits(alice, world.addr["cloud"], ETH, 10**17, 10**18, 86400)
    vault.approve(bob, ref.request_id)


# ------------------------------------------------------------------------------------ payments


def test_pay_inside_the_limits_pays_at_once_and_shows_the_budget(world: World) -> None:
    cli = world.cli
    paid = _json(cli("--as", "travel", "--json", "pay", SHOP, "0.2", "--ref", "inv-1"))
    assert paid["status"] == "paid" and paid["request_id"] is None
    assert paid["tx_hash"].startswith("0x") and paid["gas_used"] > 21000
    assert paid["remaining"] == "0.8"
    text = cli("--as", "travel", "pay", SHOP, "50", "--token", "tUSDC").ok()
    assert "paid" in text.out and "150 tUSDC" in text.out
    assert world.chain.w3.eth.get_balance(SHOP) == Web3.to_wei("0.2", "ether")


def test_pay_over_the_limit_escalates_and_two_approvals_execute_it(world: World) -> None:
    cli = world.cli
    over = _json(cli("--as", "travel", "--json", "pay", SHOP, "0.8", "--ref", "upgrade"))
    assert over["status"] == "escalated" and over["request_id"] == 6
    assert over["reasons"] == ["over per-payment limit"]
    listed = cli("requests").ok()
    row = next(line for line in listed.out.splitlines() if line.startswith("6 "))
    for cell in ("travel", "0.8 ETH", "over per-payment limit", "0/2", "3d"):
        assert cell in row, (cell, row)
    first = cli("--as", "bob", "approve", "6", "--yes").ok()
    for shown in (world.vault, "31337", "#6", world.addr["travel"], SHOP, "0.8 ETH",
                  "over per-payment limit", "upgrade"):  # fmt: skip
        assert shown in first.out, shown
    assert "1/2 approvals" in first.out
    second = _json(cli("--as", "carol", "--json", "approve", "6", "--yes"))
    assert second["executed"] is True and second["status"] == "executed"
    assert world.chain.w3.eth.get_balance(SHOP) == Web3.to_wei("1", "ether")
    everything = _json(cli("--json", "requests", "--all"))
    assert [r["status"] for r in everything["requests"]] == ["executed"] * 6


def test_one_owner_rejects_and_the_request_can_never_be_approved(world: World) -> None:
    cli = world.cli
    over = _json(cli("--as", "travel", "--json", "pay", SHOP, "0.9"))
    assert over["request_id"] == 7
    rejected = cli("--as", "carol", "reject", "7").ok()
    assert "rejected request 7" in rejected.out
    before = world.nonces()
    cli("--as", "bob", "approve", "7", "--yes").fails("request 7 is rejected")
    cli("--as", "carol", "reject", "7").fails("rejected")
    assert world.nonces() == before


def test_approve_and_sign_without_a_terminal_or_yes_sign_nothing(world: World) -> None:
    cli = world.cli
    over = _json(cli("--as", "travel", "--json", "pay", SHOP, "0.7"))
    request_id = str(over["request_id"])
    before = world.nonces()
    refused = cli("--as", "bob", "approve", request_id)
    refused.fails("--yes")
    assert "0.7 ETH" in refused.out  # the table was shown before refusing
    sign = cli("--as", "bob", "sign", request_id)
    assert sign.code == 1 and sign.out == ""  # no signature printed
    # stdout is reserved for the signature, so the table went to stderr, then one error line
    assert "0.7 ETH" in sign.err and sign.err.count("error:") == 1
    assert sign.err.strip().splitlines()[-1].startswith("error: refusing to sign")
    cli("--as", "alice", "execute", request_id).fails("approvals")
    assert world.nonces() == before
    assert world.sdk_vault().request(int(request_id)).approvals == ()


def test_owners_sign_a_payment_off_chain_and_anyone_submits_it(
    world: World, tmp_path: Path
) -> None:
    cli = world.cli
    payee = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e2")
    args = ("sign-payment", payee, "0.3", "--agent", "travel", "--ref", "big-invoice")
    before = world.nonces()
    refused = cli("--as", "bob", *args)
    assert refused.code == 1 and refused.out == ""  # nothing signed without --yes
    bob_file = tmp_path / "bob-payment.json"
    shown = cli("--as", "bob", *args, "--out", str(bob_file), "--yes").ok()
    for needle in (world.vault, "31337", payee, "0.3 ETH", "travel", "big-invoice"):
        assert needle in shown.out, needle
    carol = cli("--as", "carol", *args, "--yes").ok()
    assert json.loads(carol.out)["signer"] == world.addr["carol"]
    cli("--as", "alice", "pay-signed", "--sig", str(bob_file)).fails("needs 2 owner signatures")
    assert world.nonces() == before  # signing sends nothing, nor does a short set
    paid = _json(
        cli("--as", "alice", "--json", "pay-signed", "--sig", str(bob_file),
            "--sig", carol.out.strip())
    )  # fmt: skip
    assert paid["status"] == "paid" and paid["amount"] == "0.3"
    assert paid["signers"] == sorted([world.addr["bob"], world.addr["carol"]])
    assert world.chain.w3.eth.get_balance(payee) == Web3.to_wei("0.3", "ether")
    again = cli("--as", "alice", "pay-signed", "--sig", str(bob_file), "--sig", carol.out.strip())
    again.fails(f"nonce {paid['nonce']} is already used")
    assert world.chain.w3.eth.get_balance(payee) == Web3.to_wei("0.3", "ether")


# ------------------------------------------------------------------------------------ bad input


def test_bad_inputs_fail_with_one_error_line_and_send_nothing(world: World) -> None:
    cli = world.cli
    # an empty vault the travel agent may spend from (threshold 1: proposals execute at once)
    deployments = Deployments(world.chain, world.deployments_dir)
    alice = world.signer("alice")
    empty = Vault.create(world.chain, alice, [ALICE.address], 1, name="empty",
                         deployments=deployments)  # fmt: skip
    empty.propose_add_agent(alice, world.addr["travel"])
    empty.propose_set_limits(alice, world.addr["travel"], ETH, 10**18, 10**18, 86400)
    # a deployments record that claims another chain id
    foreign = world.deployments_dir.parent / "foreign"
    foreign.mkdir()
    record = json.loads((world.deployments_dir / "anvil.json").read_text())
    (foreign / "anvil.json").write_text(json.dumps({**record, "chain_id": 1}))

    before = world.nonces()
    pay = ("--as", "travel", "pay", SHOP)
    wrong_checksum = "0x" + ALICE.address[2:].swapcase()
    foreign_env = {"AGENTWALLET_DEPLOYMENTS": str(foreign)}
    cases: list[tuple[tuple[str, ...], dict[str, str] | None, tuple[str, ...]]] = [
        (("--as", "nobody", "pay", SHOP, "0.1"), None, ("no key named 'nobody'", "known: alice")),
        ((*pay, "0.1", "--vault", "nope"), None, ("no vault named 'nope'", "known: empty, main")),
        ((*pay, "0.1"), {"AGENTWALLET_PASSWORD": "wrong"}, ("wrong password",)),
        ((*pay, "0.1"), {"AGENTWALLET_PASSWORD": ""}, ("password", "AGENTWALLET_PASSWORD")),
        (("--as", "travel", "pay", "0x1234", "0.1"), None, ("'0x1234' is not a valid address",)),
        (("--as", "travel", "pay", wrong_checksum, "0.1"), None, ("checksum",)),
        ((*pay, "--", "-1"), None, ("negative",)),
        ((*pay, "1,5"), None, ("is not an amount",)),
        ((*pay, "0"), None, ("greater than 0",)),
        ((*pay, "1.1234567", "--token", "tUSDC"), None, ("7 decimal places", "only 6")),
        ((*pay, "1", "--token", "DOGE"), None, ("unknown token 'DOGE'",)),
        (("--as", "alice", "fund", "abc"), None, ("is not an amount",)),
        (("--as", "cloud", "pay", SHOP, "0.01"), None, ("gas", "faucet")),
        ((*pay, "0.1", "--vault", "empty"), None, ("0.1 ETH",)),
        (("--json", "requests"), foreign_env, ("chain id 1", "31337", str(foreign))),
        (("--as", "alice", "execute", "6"), None, ("request 6 is executed",)),
        (("--as", "bob", "approve", "99", "--yes"), None, ("no request 99",)),
        (("--as", "alice", "deploy", "--owner", "bob", "--owner", "mallory", "--threshold", "1"),
         None, ("no key named 'mallory'",)),
        (("--rpc", "http://127.0.0.1:9", "requests"), None, ("no JSON-RPC node answered",)),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:  # nothing here may send: run them at once
        runs = list(pool.map(lambda case: cli(*case[0], env=case[1]), cases))
    for (_, _, needles), run in zip(cases, runs, strict=True):
        run.fails(*needles)
    assert world.nonces() == before


def test_owner_refusals_come_before_the_table_and_name_the_key(world: World) -> None:
    cli = world.cli
    vault = world.sdk_vault()
    pid = str(vault.propose(world.signer("alice"), "setMaxOpenRequests", 10).request_id)
    before = world.nonces()
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("--as", "alice", "approve", pid, "--yes"),
         ("alice", "already approved", f"request {pid}")),
        (("--as", "cloud", "approve", pid, "--yes"), ("cloud", "not an owner", vault.address)),
        (("--as", "cloud", "sign", pid, "--yes"), ("cloud", "not an owner")),
        (("--as", "cloud", "reject", pid), ("cloud", "not an owner")),
        (("--as", "cloud", "sign-payment", SHOP, "0.1", "--yes"), ("cloud", "not an owner")),
        (("--as", "cloud", "fund", "1000"),
         ("key 'cloud'", "holds 0 ETH", "less than the 1000 ETH", "vault 'main'")),
        (("--as", "alice", "fund", "999999", "--token", "tUSDC"),
         ("key 'alice'", "less than the 999999 tUSDC")),
        (("--as", "alice", "execute", pid, "--sig", "0x12"), ("1 raw 0x signature", "0 --signer")),
        (("--as", "alice", "pay-signed", "--sig", "0x12", "--signer", "bob"), ("--data FILE",)),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:  # nothing here may send: run them at once
        runs = list(pool.map(lambda case: cli(*case[0]), cases))
    for (_, needles), run in zip(cases, runs, strict=True):
        run.fails(*needles)
        assert "you are about to" not in run.out + run.err  # refused before the table
    assert world.nonces() == before
    assert world.sdk_vault().request(int(pid)).approvals == (world.addr["alice"],)


def test_an_agents_call_request_is_listed_signed_executed_or_rejected(
    world: World, tmp_path: Path
) -> None:
    """A scoped call outside the agent's grants is a call request: owners see what it calls
    and spends, and decide it with the same commands as a payment request."""
    cli, chain, vault = world.cli, world.chain, world.sdk_vault()
    shop = chain.deploy("Marketplace", SHOP, sender=world.signer("alice"))
    usdc = vault.token("tUSDC").address

    def request_call(price: int) -> str:
        data = shop.encode_abi("buy", args=[usdc, price])
        scoped = vault.contract.functions.scopedCall(shop.address, 0, data, usdc, price, b"\0" * 32)
        (created,) = vault.bindings.created_requests(chain.transact(scoped, world.signer("travel")))
        return str(created.id)

    first, second = request_call(5 * 10**6), request_call(6 * 10**6)
    listed = {str(r["id"]): r for r in _json(cli("--json", "requests"))["requests"]}
    assert listed[first]["kind"] == "call" and listed[first]["amount"] == "5 tUSDC"
    row = next(line for line in cli("requests").ok().out.splitlines() if line.startswith(first))
    assert "travel" in row and "call spending 5 tUSDC" in row
    bob_sig = tmp_path / "bob-call.json"
    signed = cli("--as", "bob", "sign", first, "--out", str(bob_sig), "--yes").ok()
    for needle in (shop.address, "call data", "5 tUSDC", "travel", "may spend"):
        assert needle in signed.out, needle
    carol = cli("--as", "carol", "sign", first, "--yes").ok()
    before = vault.balance("tUSDC")
    done = cli("--as", "alice", "execute", first, "--sig", str(bob_sig), "--sig", carol.out.strip())
    assert f"request {first} executed with 2 signatures" in done.ok().out
    assert vault.balance("tUSDC") == before - 5 * 10**6
    assert shop.functions.bought(vault.address).call() == 1
    shown = cli("--as", "bob", "approve", second, "--yes").ok()
    assert "1/2 approvals" in shown.out and "6 tUSDC" in shown.out
    assert "rejected request" in cli("--as", "carol", "reject", second).ok().out
    cli("--as", "alice", "approve", second, "--yes").fails(f"request {second} is rejected")
    statuses = {
        str(r["id"]): r["status"] for r in _json(cli("--json", "requests", "--all"))["requests"]
    }
    assert (statuses[first], statuses[second]) == ("executed", "rejected")
    assert vault.balance("tUSDC") == before - 5 * 10**6


# ------------------------------------------------------------------------------------ limits


def test_lowering_limits_is_instant_and_raising_them_is_a_proposal(world: World) -> None:
    cli = world.cli
    lowered = cli("--as", "bob", "agent", "limits", "travel", "--max", "0.4",
                  "--allowance", "1").ok()  # fmt: skip
    assert "lowered at once" in lowered.out
    assert world.sdk_vault().policy(world.addr["travel"]).max_per_payment == Web3.to_wei(
        0.4, "ether"
    )
    raised = _json(cli("--as", "bob", "--json", "agent", "limits", "travel", "--max", "0.6",
                       "--allowance", "1"))  # fmt: skip
    assert raised["mode"] == "proposed"
    assert raised["requests"][0]["executed"] is False and raised["requests"][0]["approvals"] == 1


def test_pause_and_revoke_are_one_owner_calls_and_a_revoked_agent_cannot_pay(
    world: World,
) -> None:
    cli = world.cli
    assert "paused" in cli("--as", "carol", "agent", "pause", "cloud").ok().out
    revoked = _json(cli("--as", "alice", "--json", "agent", "revoke", "travel"))
    assert revoked["status"] == "revoked"
    before = world.nonces()
    cli("--as", "travel", "pay", SHOP, "0.1").fails("revoked")
    assert world.nonces() == before
    listed = _json(cli("--json", "agent", "list"))
    assert {a["status"] for a in listed["agents"]} == {"paused", "revoked"}


# ------------------------------------------------------------------------------------ demo


def test_demo_tells_the_whole_story_in_one_process(world: World) -> None:
    started = time.monotonic()
    run = world.cli("demo", env={"AGENTWALLET_RPC": ""}).ok()
    assert time.monotonic() - started < 60
    for line in (
        "2-of-3 vault",
        "co-signed governance requests",
        "budget left",
        "over per-payment limit",
        "is executed",
        "rejected",
        "AgentNotActive",
        "Audit trail",
        "PaymentExecuted",
        "RequestRejected",
        "AgentStatusChanged",
        "demo finished in",
    ):
        assert line in run.out, line
    assert run.err == ""


# ------------------------------------------------------------------------------------ keys leak


def test_no_private_key_ever_appears_in_any_output(world: World) -> None:
    assert len(OUTPUTS) > 40
    secrets = [a.key.hex().removeprefix("0x").lower() for a in DEV]
    for info in world.store.list():
        keystore = json.loads(info.path.read_text())
        keystore.pop("name", None)
        secrets.append(bytes(Account.decrypt(keystore, PASSWORD)).hex())
    assert len(secrets) == len(DEV) + 5
    everything = "\n".join(OUTPUTS).lower()
    for secret in secrets:
        assert secret not in everything
