"""The agent's side: policy checks, idempotent payments, concurrency, bad input."""

import random
import threading
from pathlib import Path

import pytest
from eth_account import Account
from eth_typing import HexStr

from agentwallet.agent import AgentWallet, Escalated, Paid
from agentwallet.chain import Broadcaster
from agentwallet.errors import (
    AmountError,
    InsufficientFundsError,
    InsufficientGasError,
    InvalidAddressError,
    PaymentPendingError,
    RefReusedError,
    RequestNotPendingError,
)
from agentwallet.protocol.constants import REASON_TEXT
from agentwallet.protocol.refs import to_ref
from agentwallet.units import parse_amount
from agentwallet.vault import Vault

from .conftest import DAY, USDC, World


def _bits(reasons: tuple[str, ...]) -> int:
    return sum(bit for bit, text in REASON_TEXT.items() if text in reasons)


def _payments_with_ref(world: World, ref: str) -> list[dict[str, object]]:
    logs = world.vault.contract.events.PaymentExecuted().get_logs(
        from_block=0, argument_filters={"agent": world.agent.address}
    )
    return [log["args"] for log in logs if bytes(log["args"]["ref"]) == to_ref(ref)]


def test_check_agrees_with_the_contract(world: World) -> None:
    rng = random.Random(7)
    agent = AgentWallet(world.chain, world.vault, world.agent)
    contract = world.vault.contract.functions
    cases = 0
    for step in range(12):
        token = rng.choice([None, "tUSDC"])
        info = world.vault.token(token)
        scale = 10**6 if token else 10**15
        amount = rng.choice([1, 50, 99, 100, 101, 250, 499, 500, 501, 2000]) * scale
        check = agent.check(world.payee, amount, token)
        onchain = contract.checkPayment(
            world.agent.address, info.address, world.payee, amount
        ).call()
        assert _bits(check.reasons) == onchain, (step, token, amount, check)
        assert check.will_pay == (onchain == 0)
        cases += 1
        if check.will_pay and rng.random() < 0.6:
            assert isinstance(agent.pay(world.payee, amount, token), Paid)
        if rng.random() < 0.3:
            world.chain.increase_time(rng.choice([60, 3600, DAY // 3]))
    assert cases == 12


def test_remaining_reports_the_budget(world: World) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent)
    agent.pay(world.payee, 80 * USDC, "tUSDC")
    left = agent.remaining()
    assert set(left) == {"ETH", "tUSDC"}
    usdc = left["tUSDC"]
    assert usdc.token == world.usdc and usdc.max_per_payment == 100 * USDC
    assert usdc.allowance == 500 * USDC and usdc.period == DAY
    # 420 left, plus whatever refilled in the seconds since the payment (500 per day)
    assert 420 * USDC <= usdc.available < 421 * USDC
    assert left["ETH"].available == 10**18 // 2


class CrashingBroadcaster:
    """The process dies (or the node times out) around broadcasting: before the transaction
    reaches the node, or after."""

    def __init__(self, node: Broadcaster, reaches_node: bool) -> None:
        self.node, self.reaches_node = node, reaches_node

    def broadcast(self, raw_transaction: bytes) -> bytes:
        if self.reaches_node:
            self.node.broadcast(raw_transaction)
        raise TimeoutError("the node did not answer")


@pytest.mark.parametrize("crash", ["before-broadcast", "after-broadcast"])
def test_retry_after_a_crash_pays_exactly_once(world: World, crash: str, tmp_path: Path) -> None:
    node = world.chain.transactor.broadcaster
    crashing = world.chain.with_broadcaster(CrashingBroadcaster(node, crash == "after-broadcast"))

    balance = world.vault.balance("tUSDC")
    first = AgentWallet(crashing, world.vault, world.agent, journal_dir=tmp_path)
    with pytest.raises(PaymentPendingError, match="retry pay with the same ref"):
        first.pay(world.payee, 30 * USDC, "tUSDC", ref="invoice-42")

    # a new process: fresh objects, same journal
    vault = Vault.at(world.chain, world.vault.address, world.deployments)
    retry = AgentWallet(world.chain, vault, world.agent, journal_dir=tmp_path)
    result = retry.pay(world.payee, 30 * USDC, "tUSDC", ref="invoice-42")
    again = retry.pay(world.payee, 30 * USDC, "tUSDC", ref="invoice-42")
    assert isinstance(result, Paid) and again == result
    assert world.vault.balance("tUSDC") == balance - 30 * USDC
    assert len(_payments_with_ref(world, "invoice-42")) == 1


def test_ref_seen_on_chain_returns_the_earlier_result_without_a_journal(
    world: World, tmp_path: Path
) -> None:
    first = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    paid = first.pay(world.payee, 5 * USDC, "tUSDC", ref="once")
    escalated = first.pay(world.payee, 900 * USDC, "tUSDC", ref="big-once")
    nonce = world.chain.w3.eth.get_transaction_count(world.agent.address)
    other = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "b")
    assert other.pay(world.payee, 5 * USDC, "tUSDC", ref="once") == paid
    assert other.pay(world.payee, 900 * USDC, "tUSDC", ref="big-once") == escalated
    assert world.chain.w3.eth.get_transaction_count(world.agent.address) == nonce


def _concurrent_payments(world: World, tmp_path: Path) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    balance = world.vault.balance("tUSDC")
    results: list[object] = [None] * 8
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = agent.pay(world.payee, 1 * USDC, "tUSDC", ref=f"thread-{i}")
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(r, Paid) for r in results), results
    paid = [r for r in results if isinstance(r, Paid)]
    nonces = {world.chain.w3.eth.get_transaction(HexStr(p.tx_hash))["nonce"] for p in paid}
    assert len(nonces) == 8
    assert world.vault.balance("tUSDC") == balance - 8 * USDC


def test_eight_threads_pay_at_once_on_anvil(aworld: World, tmp_path: Path) -> None:
    _concurrent_payments(aworld, tmp_path)


def test_eight_threads_pay_at_once_on_the_embedded_chain(eworld: World, tmp_path: Path) -> None:
    _concurrent_payments(eworld, tmp_path)


# --------------------------------------------------------------------------- bad input


def test_bad_recipient_and_amounts_are_refused_before_sending(world: World) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent)
    nonce = world.chain.w3.eth.get_transaction_count(world.agent.address)
    with pytest.raises(InvalidAddressError):
        agent.pay("0x1234", 1 * USDC, "tUSDC")
    i = next(i for i, ch in enumerate(world.payee) if i > 1 and ch.isalpha())
    bad_checksum = world.payee[:i] + world.payee[i].swapcase() + world.payee[i + 1 :]
    for text in (bad_checksum, "vitalik.eth", "", world.payee + "00"):
        with pytest.raises(InvalidAddressError):
            agent.pay(text, 1 * USDC, "tUSDC")
    for amount in (-1, 0, 1.5, "1"):
        with pytest.raises(AmountError):
            agent.pay(world.payee, amount, "tUSDC")  # type: ignore[arg-type]
    with pytest.raises(AmountError, match="only 6"):
        parse_amount("0.0000001", world.usdc.decimals)
    assert world.chain.w3.eth.get_transaction_count(world.agent.address) == nonce


def test_agent_without_gas_gets_a_typed_error_and_sends_nothing(world: World) -> None:
    v, (o0, o1, _) = world.vault, world.owners
    broke = Account.create()
    v.approve(o1, v.propose_add_agent(o0, broke.address).request_id)
    agent = AgentWallet(world.chain, v, broke)
    with pytest.raises(InsufficientGasError, match="agentwallet faucet"):
        agent.pay(world.payee, 1 * USDC, "tUSDC")
    assert world.chain.w3.eth.get_transaction_count(broke.address) == 0


def test_empty_vault_refuses_to_pay_and_loses_nothing(world: World) -> None:
    o0 = world.owners[0]
    empty = Vault.create(
        world.chain, o0, [o0.address], 1, name="empty", deployments=world.deployments
    )
    empty.propose_add_agent(o0, world.agent.address)
    empty.propose_set_limits(o0, world.agent.address, "tUSDC", 100 * USDC, 500 * USDC, DAY)
    agent = AgentWallet(world.chain, empty, world.agent)
    nonce = world.chain.w3.eth.get_transaction_count(world.agent.address)
    with pytest.raises(InsufficientFundsError, match="ask an owner to fund it"):
        agent.pay(world.payee, 10 * USDC, "tUSDC")
    assert world.chain.w3.eth.get_transaction_count(world.agent.address) == nonce
    assert world.vault.balance("tUSDC") == 10_000 * USDC


def test_deciding_a_decided_request_is_refused(world: World) -> None:
    v = world.vault
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 200 * USDC, "tUSDC")
    assert isinstance(over, Escalated)
    agent.cancel(over.request_id)
    assert v.request(over.request_id).status == "cancelled"
    for action in (v.approve, v.reject):
        with pytest.raises(RequestNotPendingError, match="status=cancelled"):
            action(world.owners[0], over.request_id)
    receipt_events = v.contract.events.RequestCancelled().get_logs(from_block=0)
    assert [int(e["args"]["requestId"]) for e in receipt_events] == [over.request_id]


def test_ref_reused_for_another_payment_is_refused_and_sends_nothing(
    world: World, tmp_path: Path
) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent)
    paid = agent.pay(world.payee, 7 * USDC, "tUSDC", ref="inv-7")
    escalated = agent.pay(world.payee, 700 * USDC, "tUSDC", ref="inv-8")
    other = world.outsider.address
    before = world.vault.balance("tUSDC"), world.chain.nonce(world.agent.address)
    # another amount, another recipient, another token: each a different payment
    for to, amount, token in (
        (world.payee, 8 * USDC, "tUSDC"),
        (other, 7 * USDC, "tUSDC"),
        (world.payee, 7 * USDC, None),
    ):
        with pytest.raises(RefReusedError, match=r"'inv-7'.*7 tUSDC.*paid in tx") as info:
            agent.pay(to, amount, token, ref="inv-7")
        assert info.value.earlier == paid
    with pytest.raises(RefReusedError, match=r"request \d+") as info:
        agent.pay(world.payee, 701 * USDC, "tUSDC", ref="inv-8")
    assert info.value.earlier == escalated
    # a process without this journal sees the same refusal from the chain's logs
    fresh = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    with pytest.raises(RefReusedError):
        fresh.pay(other, 7 * USDC, "tUSDC", ref="inv-7")
    assert (world.vault.balance("tUSDC"), world.chain.nonce(world.agent.address)) == before
    # the same payment under the same ref is still answered with the earlier result
    assert agent.pay(world.payee, 7 * USDC, "tUSDC", ref="inv-7") == paid
    assert fresh.pay(world.payee, 700 * USDC, "tUSDC", ref="inv-8") == escalated
    assert len(_payments_with_ref(world, "inv-7")) == 1
