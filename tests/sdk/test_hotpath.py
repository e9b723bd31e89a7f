"""The agent's hot path (issue 16): a within-limit payment asks the node for the vault's new
events, sends and reads its receipt, nothing more; and the cache it checks from cannot be used
to pay what the vault would refuse (owners pausing or lowering limits, the same key paying
from elsewhere, a nonce taken behind its back)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from web3.middleware import Web3Middleware

from agentwallet.agent import AgentWallet
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain
from agentwallet.errors import ContractRevertError
from agentwallet.protocol.models import Escalated, Paid

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


def test_a_nonce_taken_behind_the_clients_back_is_resynced_and_the_payment_sent_once(
    world: World, tmp_path: Path
) -> None:
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
    result = wallet.pay(world.payee, 3 * USDC, "tUSDC", ref="after-foreign-nonce")
    assert isinstance(result, Paid)
    assert world.chain.w3.eth.get_transaction(result.tx_hash)["nonce"] == nonce + 1
    assert world.vault.balance("tUSDC") == before - 3 * USDC
    assert wallet.payment_state("after-foreign-nonce").state == "paid"
