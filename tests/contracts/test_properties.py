"""Property-based test: random sequences of payments, time jumps, limit changes, approvals,
rejections, cancels and expiries against an exact integer model of the vault's rules.

Runs on anvil only (the embedded chain's ~25 tx/s would take minutes for the ~600 transactions
this makes); every transaction's block timestamp is pinned with ``evm_setNextBlockTimestamp``
so the model knows the exact ``block.timestamp`` each rule sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from agentwallet.audit.whatif import rewrite_tat_raw
from tests.contracts.conftest import (
    CANCELLED,
    DAY,
    EXECUTED,
    EXPIRED,
    FIXED_GAS,
    MAX_OPEN,
    PENDING,
    PERIOD,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_TOKEN_NOT_IN_SCOPE,
    REJECTED,
    REQUEST_EXPIRY,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    fresh_address,
    ref,
)

THRESHOLD = 2


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class PolicyModel:
    """The packed policy word, in the contract's own units (tat in 1/256 s)."""

    maximum: int
    allowance: int
    period: int
    tat: int = 0

    def evaluate(self, amount: int, now: int) -> tuple[int, int | None]:
        """(reasons, new tat) exactly as AgentVault._evaluate computes them."""
        if self.period == 0:
            return REASON_TOKEN_NOT_IN_SCOPE, None
        reasons = REASON_OVER_PER_PAYMENT if amount > self.maximum else 0
        if amount > self.allowance:
            return reasons | REASON_OVER_ALLOWANCE, None
        scaled_period = self.period << 8
        now_scaled = now << 8
        start = max(self.tat, now_scaled)
        new_tat = start + _ceil_div(amount * scaled_period, self.allowance)
        if new_tat > now_scaled + scaled_period:
            return reasons | REASON_OVER_ALLOWANCE, None
        return reasons, new_tat

    def rewrite(self, maximum: int, allowance: int, period: int, now: int) -> PolicyModel:
        """New limits that never add to what is available now, as AgentVault._rewritePolicy."""
        tat = rewrite_tat_raw(self.period, self.allowance, self.tat, period, allowance, now)
        return PolicyModel(maximum, allowance, period, tat)


@dataclass
class RequestModel:
    amount: int
    to: str
    expires_at: int
    status: int = PENDING
    approvals: set[int] = field(default_factory=set)


class VaultMachine(RuleBasedStateMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.snapshot = env.chain.snapshot()
        self.now = env.now()
        self.policy = PolicyModel(USDC_MAX, USDC_ALLOWANCE, PERIOD)
        self.max_allowance = USDC_ALLOWANCE
        self.recipients = [fresh_address(f"prop-{i}") for i in range(2)]
        self.balances = {a: env.usdc_of(a) for a in self.recipients}
        self.vault_balance = env.usdc_of(env.vault.address)
        self.next_id = env.vault.functions.requestCount().call() + 1
        self.requests: dict[int, RequestModel] = {}
        self.direct: list[tuple[int, int]] = []  # (timestamp, amount) of direct payments

    def teardown(self) -> None:
        self.env.chain.revert(self.snapshot)

    # ---------------------------------------------------------------- helpers

    def _tx(self, fn: ContractFunction, sender_index: int | None = None) -> TxReceipt:
        """Send at exactly self.now + 1 (and advance the model clock)."""
        env = self.env
        self.now += 1
        env.set_next_timestamp(self.now)
        sender = env.agent if sender_index is None else env.owners[sender_index]
        receipt = env.send(fn, sender, gas=FIXED_GAS, check=False)
        assert env.block_time(receipt) == self.now
        return receipt

    def _open(self) -> int:
        return sum(1 for r in self.requests.values() if r.status == PENDING)

    def _execute_payment(self, rid: int) -> None:
        r = self.requests[rid]
        r.status = EXECUTED
        self.vault_balance -= r.amount
        self.balances[r.to] += r.amount

    # ---------------------------------------------------------------- rules

    @rule(
        amount=st.one_of(
            st.integers(1, USDC_MAX),
            st.integers(1, 2 * USDC_ALLOWANCE),
            st.sampled_from([1, USDC_MAX, USDC_MAX + 1, USDC_ALLOWANCE, USDC_ALLOWANCE + 1]),
        ),
        recipient=st.integers(0, 1),
    )
    def pay(self, amount: int, recipient: int) -> None:
        env = self.env
        to = self.recipients[recipient]
        fn = env.vault.functions.pay(env.usdc.address, to, amount, ref("prop"))
        receipt = self._tx(fn)
        reasons, new_tat = self.policy.evaluate(amount, self.now)
        if reasons == 0:
            assert receipt["status"] == 1
            assert new_tat is not None
            self.policy.tat = new_tat
            self.vault_balance -= amount
            self.balances[to] += amount
            self.direct.append((self.now, amount))
            event = env.event(receipt, "PaymentExecuted")
            assert (event["amount"], event["requestId"]) == (amount, 0)
        elif self._open() >= MAX_OPEN:
            assert receipt["status"] == 0, "TooManyOpenRequests expected"
        else:
            assert receipt["status"] == 1
            created = env.event(receipt, "RequestCreated")
            assert created["requestId"] == self.next_id
            assert created["reasons"] == reasons
            self.requests[self.next_id] = RequestModel(amount, to, self.now + REQUEST_EXPIRY)
            self.next_id += 1

    @rule(extra=st.integers(1, 2 * USDC_ALLOWANCE), recipient=st.integers(0, 1))
    def pay_over_the_per_payment_limit(self, extra: int, recipient: int) -> None:
        self.pay(self.policy.maximum + extra, recipient)

    @rule(
        seconds=st.one_of(
            st.integers(0, 2 * DAY),
            st.sampled_from([1, PERIOD // 2, PERIOD - 1, PERIOD, PERIOD + 1]),
        )
    )
    def advance_time(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), owner=st.integers(0, 2))
    def approve(self, data: st.DataObject, owner: int) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.vault.functions.approve(rid), owner)
        if r.status != PENDING or self.now > r.expires_at or owner in r.approvals:
            assert receipt["status"] == 0
            return
        assert receipt["status"] == 1
        r.approvals.add(owner)
        if len(r.approvals) >= THRESHOLD:
            self._execute_payment(rid)
            assert self.env.event(receipt, "RequestExecuted")["requestId"] == rid

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), owner=st.integers(0, 2))
    def reject(self, data: st.DataObject, owner: int) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.vault.functions.reject(rid), owner)
        if r.status != PENDING:
            assert receipt["status"] == 0
            return
        assert receipt["status"] == 1
        r.status = REJECTED

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.vault.functions.cancel(rid))
        if r.status != PENDING:
            assert receipt["status"] == 0
            return
        assert receipt["status"] == 1
        r.status = CANCELLED

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.vault.functions.expire(rid), 2)
        if r.status != PENDING or self.now <= r.expires_at:
            assert receipt["status"] == 0
            return
        assert receipt["status"] == 1
        r.status = EXPIRED

    @rule(
        allowance=st.integers(100 * USDC, 3_000 * USDC),
        max_share=st.integers(1, 100),
    )
    def set_limits_through_governance(self, allowance: int, max_share: int) -> None:
        env = self.env
        maximum = allowance * max_share // 100
        data = env.calldata(
            "setLimits", env.agent.address, env.usdc.address, maximum, allowance, PERIOD
        )
        proposed = self._tx(env.vault.functions.propose(data, ref("limits")), 0)
        assert proposed["status"] == 1
        gid = self.next_id
        self.next_id += 1
        approved = self._tx(env.vault.functions.approve(gid), 1)
        assert approved["status"] == 1
        self.policy = self.policy.rewrite(maximum, allowance, PERIOD, self.now)
        self.max_allowance = max(self.max_allowance, allowance)

    @rule(max_share=st.integers(0, 100), allowance_share=st.integers(50, 100))
    def reduce_limits(self, max_share: int, allowance_share: int) -> None:
        env = self.env
        maximum = self.policy.maximum * max_share // 100
        allowance = self.policy.allowance * allowance_share // 100
        fn = env.vault.functions.reduceLimits(
            env.agent.address, env.usdc.address, maximum, allowance
        )
        receipt = self._tx(fn, 2)
        assert receipt["status"] == 1
        self.policy = self.policy.rewrite(maximum, allowance, self.policy.period, self.now)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def balances_match(self) -> None:
        env = self.env
        assert env.usdc_of(env.vault.address) == self.vault_balance
        for address, expected in self.balances.items():
            assert env.usdc_of(address) == expected

    @invariant()
    def requests_match(self) -> None:
        for rid, r in self.requests.items():
            assert self.env.status(rid) == r.status, f"request {rid}"
        open_on_chain = self.env.vault.functions.getAgent(self.env.agent.address).call()[4]
        assert open_on_chain == self._open()

    @invariant()
    def limits_match(self) -> None:
        env = self.env
        policy: Any = env.vault.functions.getPolicy(env.agent.address, env.usdc.address).call()
        assert (policy[0], policy[1], policy[2]) == (
            self.policy.maximum,
            self.policy.allowance,
            self.policy.period,
        )

    @invariant()
    def direct_spending_stays_within_the_refilling_budget(self) -> None:
        """Over any window [t_i, t_j] the direct payments stay within
        allowance * (1 + window / period) + allowance (largest allowance in force)."""
        a, p = self.max_allowance, PERIOD
        for i, (start, _) in enumerate(self.direct):
            total = 0
            for end, amount in self.direct[i:]:
                total += amount
                assert total * p <= a * (p + (end - start)) + a * p


def test_random_operation_sequences_follow_the_model(anvil_env: Env) -> None:
    VaultMachine.env = anvil_env
    run_state_machine_as_test(VaultMachine, settings=settings.get_profile("contracts"))
