"""The agent's hot path (issue 16): a within-limit payment asks the node for the vault's new
events, sends and reads its receipt, nothing more; and the cache it checks from cannot be used
to pay what the vault would refuse (owners pausing or lowering limits, the same key paying
from elsewhere, a nonce taken behind its back)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound
from web3.middleware import Web3Middleware

from agentwallet.agent import AgentWallet
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain
from agentwallet.chain.receipts import StuckPolicy
from agentwallet.errors import ContractRevertError
from agentwallet.protocol.models import Escalated, Paid
from agentwallet.protocol.refs import to_ref

from .conftest import ETHER, USDC, World

#: What the hot path may never ask per payment (each is a round trip the cache replaces).
NEVER_HOT = ("eth_chainId", "eth_call", "eth_estimateGas", "eth_getTransactionCount")


@contextmanager
def counting(chain: Chain) -> Iterator[Counter[str]]:
    """Count the JSON-RPC methods ``chain`` asks (outermost middleware, removed afterwards)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class Counting(Web3Middleware):
        def wrap_make_request(self, make_request: Any) -> Any:
            def middleware(method: Any, params: Any) -> Any:
                with lock:
                    counts[str(method)] += 1
                return make_request(method, params)

            return middleware

    chain.w3.middleware_onion.add(Counting, name="test-rpc-counter")
    try:
        yield counts
    finally:
        chain.w3.middleware_onion.remove("test-rpc-counter")


def test_within_limit_payments_take_three_round_trips_and_no_dry_run(
    world: World, tmp_path: Path
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    vault_before, payee_before = (
        world.vault.balance("tUSDC"),
        Erc20Binding(world.chain, world.usdc.address).balance_of(world.payee),
    )
    first = wallet.pay(world.payee, 1 * USDC, "tUSDC")  # the full path fills the cache
    assert isinstance(first, Paid)
    with counting(world.chain) as counts:
        results = [wallet.pay(world.payee, 2 * USDC, "tUSDC") for _ in range(5)]
    assert all(isinstance(r, Paid) for r in results)
    assert len({r.tx_hash for r in results}) == 5
    assert not {m: counts[m] for m in NEVER_HOT if counts[m]}
    assert counts["eth_sendRawTransaction"] == 5
    polls = counts.pop("eth_getTransactionReceipt")  # more than one if the block is late
    assert 5 <= polls <= 10
    assert sum(counts.values()) == 2 * 5  # eth_getLogs and the send
    assert world.vault.balance("tUSDC") == vault_before - 11 * USDC
    assert (
        Erc20Binding(world.chain, world.usdc.address).balance_of(world.payee)
        == payee_before + 11 * USDC
    )


def test_policy_max_age_zero_checks_every_payment_in_full(world: World, tmp_path: Path) -> None:
    wallet = AgentWallet(
        world.chain, world.vault, world.agent, journal_dir=tmp_path, policy_max_age=0
    )
    wallet.pay(world.payee, 1 * USDC, "tUSDC")
    with counting(world.chain) as counts:
        for _ in range(3):
            assert isinstance(wallet.pay(world.payee, 1 * USDC, "tUSDC"), Paid)
    assert counts["eth_estimateGas"] == 3 and counts["eth_call"] >= 3 * 4


def test_owner_pausing_the_agent_stops_the_next_payment_before_it_is_sent(
    world: World, tmp_path: Path
) -> None:
    """The agent gains if a warm cache lets it pay after an owner paused it."""
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(wallet.pay(world.payee, 1 * USDC, "tUSDC"), Paid)
    world.vault.pause_agent(world.owners[2], world.agent.address)
    nonce = world.chain.nonce(world.agent.address)
    before = world.vault.balance("tUSDC")
    with pytest.raises(ContractRevertError, match="AgentNotActive|not active"):
        wallet.pay(world.payee, 1 * USDC, "tUSDC")
    assert world.chain.nonce(world.agent.address) == nonce  # nothing sent, no fee lost
    assert world.vault.balance("tUSDC") == before


def test_owner_pausing_the_vault_stops_the_next_payment_before_it_is_sent(
    world: World, tmp_path: Path
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(wallet.pay(world.payee, 1 * USDC, "tUSDC"), Paid)
    world.vault.pause(world.owners[1])
    nonce = world.chain.nonce(world.agent.address)
    with pytest.raises(ContractRevertError, match="VaultIsPaused|paused"):
        wallet.pay(world.payee, 1 * USDC, "tUSDC")
    assert world.chain.nonce(world.agent.address) == nonce


def test_a_lowered_limit_escalates_instead_of_paying_from_the_stale_cache(
    world: World, tmp_path: Path
) -> None:
    """One owner lowers the per-payment limit; the warm cache still says 100 tUSDC."""
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(wallet.pay(world.payee, 1 * USDC, "tUSDC"), Paid)
    world.vault.reduce_limits(world.owners[2], world.agent.address, "tUSDC", 5 * USDC, 500 * USDC)
    before = world.vault.balance("tUSDC")
    result = wallet.pay(world.payee, 10 * USDC, "tUSDC")
    assert isinstance(result, Escalated)
    assert "over per-payment limit" in result.reasons
    assert world.vault.balance("tUSDC") == before


def test_the_budget_edge_takes_the_dry_run_and_escalates_cleanly(
    world: World, tmp_path: Path
) -> None:
    """0.5 ETH a day, 0.1 per payment: five payments drain it from the cache; the sixth is
    checked in full (its escalation needs more gas than a payment) and escalates."""
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    for _ in range(5):
        assert isinstance(wallet.pay(world.payee, ETHER // 10), Paid)
    with counting(world.chain) as counts:
        result = wallet.pay(world.payee, ETHER // 10)
    assert isinstance(result, Escalated)
    assert "over period allowance" in result.reasons
    assert counts["eth_estimateGas"] == 1  # the dry run ran


def test_the_same_key_paying_from_elsewhere_cannot_overspend_through_a_stale_cache(
    world: World, tmp_path: Path
) -> None:
    """Two wallets (two processes) share one agent key and one 0.5 ETH budget: each sees the
    other's payments in the vault's events, so neither pays past the budget."""
    a = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    b = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "b")
    assert isinstance(a.pay(world.payee, ETHER // 10), Paid)  # a's cache: 0.4 left
    for _ in range(4):
        assert isinstance(b.pay(world.payee, ETHER // 10), Paid)  # b spends the 0.4
    vault_before = world.vault.balance()
    late = a.pay(world.payee, ETHER // 10)
    assert isinstance(late, Escalated)
    assert world.vault.balance() == vault_before


@pytest.mark.parametrize("strict", [False, True], ids=["direct", "exactly-once"])
def test_a_nonce_taken_behind_the_clients_back_is_resynced_and_the_payment_sent_once(
    world: World, tmp_path: Path, strict: bool
) -> None:
    """Both paths ask the node again after a "nonce too low" and send once (the exactly-once
    path used to raise NonceConflictError on every retry: its counter was never resynced)."""
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(wallet.pay(world.payee, 1 * USDC, "tUSDC"), Paid)
    # another process with the key sends a transaction the local counter does not know of
    chain, agent = world.chain, world.agent
    nonce = chain.nonce(agent.address, "pending")
    raw = agent.sign_transaction(
        {
            "chainId": chain.chain_id,
            "nonce": nonce,
            "to": world.payee,
            "value": 1,
            "gas": 21_000,
            **chain.fee_params(),
        }
    ).raw_transaction
    chain.transactor.wait(bytes(chain.w3.eth.send_raw_transaction(raw)))
    before = world.vault.balance("tUSDC")
    result = wallet.pay(world.payee, 3 * USDC, "tUSDC", ref="after-foreign-nonce",
                        exactly_once=strict)  # fmt: skip
    assert isinstance(result, Paid)
    assert world.chain.w3.eth.get_transaction(result.tx_hash)["nonce"] == nonce + 1
    assert world.vault.balance("tUSDC") == before - 3 * USDC
    assert wallet.payment_state("after-foreign-nonce").state == "paid"


def test_a_plain_send_after_a_foreign_nonce_resyncs_and_retries_once(world: World) -> None:
    """``Chain.send_transaction`` (the same pipeline without the journal) recovers too."""
    chain, sender = world.chain, world.outsider
    chain.send_transaction(sender, {"to": world.payee, "value": 1})  # the counter is warm now
    foreign = sender.sign_transaction(
        {
            "chainId": chain.chain_id,
            "nonce": chain.nonce(sender.address, "pending"),
            "to": world.payee,
            "value": 2,
            "gas": 21_000,
            **chain.fee_params(),
        }
    ).raw_transaction
    chain.transactor.wait(bytes(chain.w3.eth.send_raw_transaction(foreign)))
    nonce = chain.nonce(sender.address)
    receipt = chain.send_transaction(sender, {"to": world.payee, "value": 3})
    assert receipt["status"] == 1
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce


# ------------------------------------------------------------------ stuck payments (anvil)


def _rpc(chain: Chain, method: str, *params: Any) -> Any:
    response = chain.raw_request(method, list(params))
    assert "error" not in response, response
    return response.get("result")


def _pay_in_thread(wallet: AgentWallet, payee: str, ref: str) -> tuple[threading.Thread, dict]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = wallet.pay(payee, 4 * USDC, "tUSDC", ref=ref)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _journal_entry(wallet: AgentWallet, ref: str, until: Any, timeout: float = 20) -> Any:
    key = (wallet.chain.chain_id, wallet.vault.address, wallet.address, to_ref(ref))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = wallet.journal.get(*key)
        if entry is not None and until(entry):
            return entry
        time.sleep(0.05)
    raise AssertionError(f"the journal of {ref} never reached the expected state")


def _until_in_pool(chain: Chain, tx_hash: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chain.raw_request("eth_getTransactionByHash", [tx_hash]).get("result"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{tx_hash} never reached the pool")


@contextmanager
def _mining_stopped(chain: Chain) -> Iterator[None]:
    _rpc(chain, "evm_setAutomine", False)
    try:
        yield
    finally:
        _rpc(chain, "evm_setAutomine", True)


def _stuck_wallet(aworld: World, tmp_path: Path, stuck: StuckPolicy) -> AgentWallet:
    chain = aworld.chain.with_broadcaster(aworld.chain.transactor.broadcaster)
    chain.transactor.stuck = stuck
    wallet = AgentWallet(chain, aworld.vault, aworld.agent, journal_dir=tmp_path)
    assert isinstance(wallet.pay(aworld.payee, 1 * USDC, "tUSDC"), Paid)  # warm cache
    return wallet


def test_a_payment_stuck_in_the_pool_is_replaced_with_a_higher_fee_and_journaled(
    aworld: World, tmp_path: Path
) -> None:
    wallet = _stuck_wallet(aworld, tmp_path, StuckPolicy(rebroadcast_after=0.2, replace_after=0.6))
    chain, before = aworld.chain, aworld.vault.balance("tUSDC")
    with _mining_stopped(chain):
        thread, box = _pay_in_thread(wallet, aworld.payee, "stuck-replace")
        first = _journal_entry(wallet, "stuck-replace", lambda e: True)
        entry = _journal_entry(wallet, "stuck-replace", lambda e: e.get("replaced"))
        _until_in_pool(chain, entry["tx_hash"])  # journaled first, then broadcast
        _rpc(chain, "evm_mine")
        thread.join(30)
    result = box.get("result")
    assert isinstance(result, Paid), box
    original, replacement = entry["replaced"][0], entry["tx_hash"]
    assert result.tx_hash == replacement != original
    assert first["tx_hash"] == original
    old = TypedTransaction.from_bytes(HexBytes(first["raw_tx"])).as_dict()
    new = chain.w3.eth.get_transaction(replacement)
    assert (new["nonce"], bytes(new["input"])) == (old["nonce"], bytes(old["data"]))
    assert bytes(HexBytes(new["to"])) == bytes(old["to"]) == bytes(HexBytes(aworld.vault.address))
    assert new["maxFeePerGas"] > old["maxFeePerGas"]
    assert new["maxPriorityFeePerGas"] > old["maxPriorityFeePerGas"]
    with pytest.raises(TransactionNotFound):
        chain.w3.eth.get_transaction_receipt(original)
    assert aworld.vault.balance("tUSDC") == before - 4 * USDC  # paid once
    state = wallet.payment_state("stuck-replace")
    assert (state.state, state.tx_hash) == ("paid", replacement)
    # a retry with the same ref finds the replacement, sends nothing
    nonce = chain.nonce(aworld.agent.address)
    assert wallet.pay(aworld.payee, 4 * USDC, "tUSDC", ref="stuck-replace") == result
    assert chain.nonce(aworld.agent.address) == nonce


def test_a_payment_dropped_from_the_pool_is_sent_again_with_the_same_bytes(
    aworld: World, tmp_path: Path
) -> None:
    wallet = _stuck_wallet(aworld, tmp_path, StuckPolicy(rebroadcast_after=0.5, replace_after=60))
    chain, before = aworld.chain, aworld.vault.balance("tUSDC")
    with _mining_stopped(chain):
        thread, box = _pay_in_thread(wallet, aworld.payee, "stuck-drop")
        entry = _journal_entry(wallet, "stuck-drop", lambda e: True)
        _rpc(chain, "anvil_dropTransaction", entry["tx_hash"])
        _until_in_pool(chain, entry["tx_hash"])  # the client sends it again
        _rpc(chain, "evm_mine")
        thread.join(30)
    result = box.get("result")
    assert isinstance(result, Paid), box
    assert result.tx_hash == entry["tx_hash"]
    assert "replaced" not in wallet.journal.get(
        chain.chain_id, wallet.vault.address, wallet.address, to_ref("stuck-drop")
    )
    assert aworld.vault.balance("tUSDC") == before - 4 * USDC
