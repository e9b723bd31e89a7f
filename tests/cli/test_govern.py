"""Governance from the command line, each command a separate process against anvil: signed
batches (`govern sign|cosign|show|submit`), `owner swap`, `agent replace-key`, typed data for
any wallet signed by anvil's own `eth_signTypedData_v4`, and the recovery from a compromised
owner. The tests build on each other in file order (one chain, one vault)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from agentwallet.agent import AgentWallet, Paid
from agentwallet.chain import Chain, connect
from agentwallet.chain.devchain import dev_accounts_from_mnemonic
from agentwallet.deployments import Deployments
from agentwallet.keys import KeyStore
from agentwallet.vault import Vault
from tests.cli.conftest import PASSWORD, Cli

DEV = dev_accounts_from_mnemonic()
ALICE, BOB, RELAYER, MALLORY, TRAVEL, NEWKEY = DEV[1], DEV[2], DEV[3], DEV[4], DEV[5], DEV[6]
SHOP = Web3.to_checksum_address("0x5e110000000000000000000000000000000005e3")
ETHER = 10**18


class Gov:
    """One 2-of-3 vault (alice, bob, mallory) with the travel agent, funded with 5 ETH."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        self.chain: Chain = connect(cli.node.url)
        home = Path(cli.env["AGENTWALLET_HOME"])
        store = KeyStore(home, scrypt_n=1024)
        for name, account in (
            ("alice", ALICE),
            ("bob", BOB),
            ("relayer", RELAYER),
            ("mallory", MALLORY),
            ("travel", TRAVEL),
            ("newkey", NEWKEY),
        ):
            store.import_key(name, account.key.hex(), PASSWORD)  # fmt: skip
        self.deployments = Deployments(self.chain, Path(cli.env["AGENTWALLET_DEPLOYMENTS"]))
        owners = [ALICE.address, BOB.address, MALLORY.address]
        self.vault = Vault.create(self.chain, ALICE, owners, 2, deployments=self.deployments)
        self.vault.fund(ALICE, 5 * ETHER)
        self.vault.approve(BOB, self.vault.propose_add_agent(ALICE, TRAVEL.address).request_id)
        ref = self.vault.propose_set_limits(ALICE, TRAVEL.address, None, ETHER // 10, ETHER, 86400)
        self.vault.approve(BOB, ref.request_id)

    def sent(self) -> dict[str, int]:
        w3 = self.chain.w3
        return {a.address: int(w3.eth.get_transaction_count(a.address)) for a in DEV[1:7]}

    def wallet_sign(self, account: str, typed: dict[str, Any]) -> str:
        """A signature by anvil's own eth_signTypedData_v4 (an implementation we did not
        write) for one of its unlocked dev accounts."""
        response = self.chain.w3.provider.make_request(
            "eth_signTypedData_v4",  # type: ignore[arg-type]
            [account, json.dumps(typed)],
        )
        assert "error" not in response, response
        return str(response["result"])


@pytest.fixture(scope="module")
def gov(cli: Cli) -> Gov:
    return Gov(cli)


def _json(run: Any) -> Any:
    run.ok()
    return json.loads(run.out)


def test_a_signed_batch_is_shown_cosigned_and_submitted_once(gov: Gov, tmp_path: Path) -> None:
    cli = gov.cli
    words = ("request-expiry", "2d", "--and", "max-open-requests", "7")
    before = gov.sent()
    refused = cli("--as", "alice", "govern", "sign", *words)
    assert refused.code == 1 and refused.out == ""  # no terminal and no --yes: nothing signed
    assert "call 1" in refused.err and "call 2" in refused.err  # the table was shown
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    signed = cli("--as", "alice", "govern", "sign", *words, "--out", str(a), "--yes").ok()
    for shown in (gov.vault.address, "31337", "call 1", "call 2", "nonce", "valid until"):
        assert shown in signed.out, shown
    independent = _json(cli("--as", "bob", "govern", "sign", *words, "--yes"))
    first = json.loads(a.read_text())
    assert (independent["nonce"], independent["deadline"], independent["calls"]) == (
        first["nonce"], first["deadline"], first["calls"])  # fmt: skip
    cli("--as", "bob", "govern", "cosign", str(a), "--out", str(b), "--yes").ok()
    shown = cli("govern", "show", str(a), str(b)).ok()
    assert shown.out.count("signature   yes") == 2 and "alice" in shown.out and "bob" in shown.out
    assert gov.sent() == before  # signing and showing send nothing
    cli("--as", "relayer", "govern", "submit", "--sig", str(a)).fails("needs 2 owner signatures")
    done = _json(cli("--as", "relayer", "--json", "govern", "submit", "--sig", str(a),
                     "--sig", str(b)))  # fmt: skip
    assert done["status"] == "executed" and done["signers"] == sorted([ALICE.address, BOB.address])
    assert gov.vault.contract.functions.maxOpenRequests().call() == 7
    again = cli("--as", "relayer", "govern", "submit", "--sig", str(a), "--sig", str(b))
    again.fails(f"nonce {first['nonce']} is already used")


def test_bad_governance_inputs_fail_with_one_line_before_any_table(
    gov: Gov, tmp_path: Path
) -> None:
    cli = gov.cli
    mine = tmp_path / "mine.json"
    cli("--as", "alice", "govern", "sign", "unpause", "--out", str(mine), "--yes").ok()
    broken = tmp_path / "broken.json"
    broken.write_text('{"vault": "0x1"}')
    before = gov.sent()
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("--as", "relayer", "govern", "sign", "unpause", "--yes"), ("relayer", "not an owner")),
        (("--as", "alice", "govern", "sign", "explode", "--yes"), ("unknown action 'explode'",)),
        (("--as", "alice", "govern", "sign", "swap-owner", "mallory", "--yes"),
         ("swap-owner takes OLD NEW, got 1 argument",)),
        (("--as", "alice", "govern", "sign", "unpause", "--and", "--yes"), ("empty action",)),
        (("--as", "alice", "govern", "sign", "threshold", "two", "--yes"), ("whole number",)),
        (("--as", "alice", "govern", "sign", "add-owner", "nobody", "--yes"),
         ("no key named 'nobody'",)),
        (("--as", "relayer", "govern", "submit", "--sig", str(broken)),
         ("not a signed governance batch",)),
        (("--as", "relayer", "govern", "submit", "--sig", str(mine), "--sig", "0x1234"),
         ("1 raw 0x signature", "0 --signer")),
        (("--as", "relayer", "govern", "submit", "--sig", "0xab", "--signer", "bob"),
         ("--data FILE",)),
        (("--as", "relayer", "govern", "submit", "--sig", str(tmp_path / "none.json")),
         ("no such file",)),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:  # nothing here may send: run them at once
        runs = list(pool.map(lambda case: cli(*case[0]), cases))
    for (_, needles), run in zip(cases, runs, strict=True):
        run.fails(*needles)
        assert "call 1" not in run.out + run.err  # refused before the table
    assert gov.sent() == before


def test_typed_data_signed_by_anvil_runs_a_request_a_payment_and_a_batch(
    gov: Gov, tmp_path: Path
) -> None:
    """Owners sign the wallet JSON the CLI writes with anvil's eth_signTypedData_v4 and
    submit the raw 0x signatures with --signer."""
    cli, vault = gov.cli, gov.vault
    # a payment request (the agent escalates), approved by two wallets
    over = AgentWallet(gov.chain, vault, TRAVEL).pay(SHOP, ETHER // 2, ref="big")
    request_id = str(over.request_id)  # type: ignore[union-attr]
    req = tmp_path / "request.json"
    cli("typed-data", "request", request_id, "--out", str(req)).ok()
    typed = json.loads(req.read_text())
    assert typed["primaryType"] == "PaymentRequest" and "EIP712Domain" in typed["types"]
    assert typed["message"]["amount"] == str(ETHER // 2)  # decimal strings
    sigs = [gov.wallet_sign(a.address, typed) for a in (ALICE, BOB)]
    cli("--as", "relayer", "execute", request_id, "--sig", sigs[0], "--signer", "alice",
        "--sig", sigs[1], "--signer", "bob").ok()  # fmt: skip
    assert gov.chain.w3.eth.get_balance(SHOP) == ETHER // 2
    # an owners' signed payment: one wallet signature beside one CLI signature file
    pay = tmp_path / "payment.json"
    cli("typed-data", "payment", SHOP, "0.25", "--ref", "inv-42", "--out", str(pay)).ok()
    typed = json.loads(pay.read_text())
    assert typed["primaryType"] == "SignedPayment"
    sig = gov.wallet_sign(ALICE.address, typed)
    forged = gov.wallet_sign(RELAYER.address, typed)
    before = gov.sent()
    cli("--as", "relayer", "pay-signed", "--data", str(pay), "--sig", forged, "--signer", "bob",
        "--sig", sig, "--signer", "alice").fails("but over this digest it is by")  # fmt: skip
    assert gov.sent() == before
    cli("--as", "relayer", "pay-signed", "--data", str(pay), "--sig", sig, "--signer", "alice",
        "--sig", gov.wallet_sign(BOB.address, typed), "--signer", "bob").ok()  # fmt: skip
    assert gov.chain.w3.eth.get_balance(SHOP) == ETHER // 2 + ETHER // 4
    # a governance batch
    batch = tmp_path / "governance.json"
    cli("typed-data", "governance", "max-open-requests", "9", "--out", str(batch)).ok()
    typed = json.loads(batch.read_text())
    assert typed["primaryType"] == "Governance" and typed["message"]["calls"][0].startswith("0x")
    cli("--as", "relayer", "govern", "submit", "--data", str(batch),
        "--sig", gov.wallet_sign(BOB.address, typed), "--signer", "bob",
        "--sig", gov.wallet_sign(ALICE.address, typed), "--signer", ALICE.address).ok()  # fmt: skip
    assert vault.contract.functions.maxOpenRequests().call() == 9


def test_owner_swap_and_agent_replace_key_by_proposal_or_signed_batch(
    gov: Gov, tmp_path: Path
) -> None:
    cli, vault = gov.cli, gov.vault
    proposed = _json(cli("--as", "alice", "--json", "owner", "swap", "mallory", "relayer"))
    assert proposed["status"] == "proposed" and "swapOwner" in vault.request(
        proposed["request_id"]).action  # fmt: skip
    cli("--as", "relayer", "owner", "swap", "mallory", "relayer").fails("not an owner")
    # the travel key is lost: alice and bob move its rights to newkey in one signed batch
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    cli("--as", "alice", "agent", "replace-key", "travel", "newkey", "--sign", "--out", str(a),
        "--yes").ok()  # fmt: skip
    cli("--as", "bob", "govern", "cosign", str(a), "--out", str(b), "--yes").ok()
    cli("--as", "relayer", "govern", "submit", "--sig", str(a), "--sig", str(b)).ok()
    assert vault.agent(NEWKEY.address).status == "active"
    assert vault.agent(TRAVEL.address).status != "active"
    paid = AgentWallet(gov.chain, vault, NEWKEY).pay(SHOP, ETHER // 100)
    assert isinstance(paid, Paid)


def test_compromised_owner_is_removed_and_the_vault_unpaused_in_one_transaction(
    gov: Gov, tmp_path: Path
) -> None:
    """Mallory's key is stolen: the attacker pauses the vault and the agent, spams proposals
    and rejects the honest unpause proposal. Alice and bob recover with `govern sign` and
    `govern submit`, in one transaction, funds intact."""
    cli, vault = gov.cli, gov.vault
    balance = vault.balance()
    vault.pause(MALLORY)
    vault.pause_agent(MALLORY, NEWKEY.address)
    for _ in range(3):
        vault.propose_change_threshold(MALLORY, 3)
    honest = vault.propose_unpause(ALICE).request_id
    vault.reject(MALLORY, honest)
    assert vault.request(honest).status == "pending"  # one no does not kill a proposal
    a, b = tmp_path / "alice.json", tmp_path / "bob.json"
    words = ("remove-owner", "mallory", "--and", "unpause", "--and", "unpause-agent", "newkey")
    cli("--as", "alice", "govern", "sign", *words, "--out", str(a), "--yes").ok()
    cli("--as", "bob", "govern", "sign", *words, "--out", str(b), "--yes").ok()
    shown = cli("govern", "show", str(b)).ok()
    assert "mallory" in shown.out and "unpause" in shown.out
    cli("--as", "relayer", "govern", "submit", "--sig", str(a), "--sig", str(b)).ok()
    assert vault.owners() == [ALICE.address, BOB.address] and not vault.paused()
    assert vault.threshold() == 2 and vault.balance() == balance
    cli("--as", "mallory", "govern", "sign", "unpause", "--yes").fails("not an owner")
    paid = AgentWallet(gov.chain, vault, NEWKEY).pay(SHOP, ETHER // 100)
    assert isinstance(paid, Paid)
