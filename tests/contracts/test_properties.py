"""Property-based test: random sequences of payments, time jumps, limit changes, approvals,
rejections, cancels and expiries, pausing and unpausing the vault and the agent, removing and
re-adding the token, the recipient allowlist and re-configuring the agent (validity window),
against an exact integer model of the vault's rules.

The pauses, the token's removal, the allowlist and the validity window are what the FAST and
ALLOWLIST bits cached in each policy word stand for (see "Policy word layout" in AgentVault.sol).
Every pay attempt is checked against the model's verdict: reverts with which custom error (read
back from a call trace), pays, or escalates with which reasons; and after every step payments
are simulated (eth_call with the block time overridden) now and after any validity window, in
tUSDC and in ETH. So a cached bit left stale by any action shows up right after that action as
a payment, escalation or revert the model does not predict.

Runs on anvil only (the embedded chain's ~25 tx/s would take minutes for the ~800 transactions
this makes); every transaction's block timestamp is pinned with ``evm_setNextBlockTimestamp``
so the model knows the exact ``block.timestamp`` each rule sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_abi import abi as eth_abi
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from agentwallet.audit.whatif import Limits, available, rewrite_tat_raw
from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    CANCELLED,
    DAY,
    ETH,
    ETH_ALLOWANCE,
    ETH_MAX,
    EXECUTED,
    EXPIRED,
    FIXED_GAS,
    MAX_OPEN,
    PENDING,
    PERIOD,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_RECIPIENT_NOT_ALLOWED,
    REASON_TOKEN_NOT_IN_SCOPE,
    REJECTED,
    REQUEST_EXPIRY,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    decode_error,
    fresh_address,
    ref,
)

THRESHOLD = 2
HOUR = 3_600
#: Steps per sequence (the shared profile has 25): the rules for pauses, token removal, the
#: allowlist and validity windows need room to combine (pause the vault, pause the agent, unpause
#: one of them; spend, remove the token, restore it; ...) within one sequence. With the checks
#: batched (see _eth_calls) the whole test still takes less time than 25 steps used to.
STEPS = 50
#: The agent's ETH limits, which no rule changes or spends: simulated ETH payments check that
#: every action rewrites the flags of all of the agent's policy words, not only the one in play.
ETH_POLICY = (ETH_MAX, ETH_ALLOWANCE, PERIOD)

Call = tuple[Contract, str, tuple[Any, ...]]  # (contract, function name, arguments)


def _abi_type(item: Any) -> str:
    """The eth_abi type string of an ABI input/output entry (tuples spelled out)."""
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class PolicyModel:
    """The packed policy word, in the contract's own units (tat in 1/256 s). ``period`` 0: the
    token is not in scope (removed), and ``tat`` is kept so re-adding it cannot refill a spent
    budget."""

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

    def removed(self) -> PolicyModel:
        """As AgentVault.removeToken leaves the word: no limits, period 0, tat kept."""
        return PolicyModel(0, 0, 0, self.tat)

    def available(self, now: int) -> int:
        return available(Limits(self.maximum, self.allowance, self.period), self.tat, now)


@dataclass(frozen=True)
class Outcome:
    """A pay attempt's verdict: reverts with ``error`` (name, *args), runs (moving the budget
    to ``new_tat``) or escalates with ``reasons``."""

    error: tuple[Any, ...] | None = None
    new_tat: int | None = None
    reasons: int = 0

    def __str__(self) -> str:
        if self.error is not None:
            return str(self.error[0])
        return "pays" if self.new_tat is not None else f"escalates {self.reasons}"


@dataclass
class RequestModel:
    amount: int
    to: str
    expires_at: int
    status: int = PENDING
    approvals: set[int] = field(default_factory=set)


class VaultMachine(RuleBasedStateMachine):
    env: Env
    _encoded: ClassVar[dict[Call, tuple[str, str, list[str]]]] = {}

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.snapshot = env.chain.snapshot()
        self.now = env.now()
        self.block_time = self.now  # timestamp of the latest block (what view calls see)
        self.policy = PolicyModel(USDC_MAX, USDC_ALLOWANCE, PERIOD)
        self.removed_limits = (USDC_MAX, USDC_ALLOWANCE)  # what restore_token puts back
        self.max_allowance = USDC_ALLOWANCE
        self.recipients = [fresh_address(f"prop-{i}") for i in range(2)]
        self.balances = {a: env.usdc_of(a) for a in self.recipients}
        self.vault_balance = env.usdc_of(env.vault.address)
        self.next_id = env.vault.functions.requestCount().call() + 1
        self.requests: dict[int, RequestModel] = {}
        self.direct: list[tuple[int, int]] = []  # (timestamp, amount) of direct payments
        # vault and agent state the FAST bit caches
        self.paused = False
        self.agent_status = AGENT_ACTIVE
        self.valid_after = 0
        self.valid_until = 0
        self.use_allowlist = False
        self.allowed: set[int] = set()  # indices into self.recipients

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
        self.block_time = self.now
        return receipt

    def _assert_reverted(self, receipt: TxReceipt, error: str, *args: Any) -> None:
        """The transaction was mined, reverted, and with the custom error ``error`` (and
        ``args``, if given): its revert data is read back from a call trace."""
        assert receipt["status"] == 0, f"expected {error}, but the transaction succeeded"
        trace = self.env.chain._rpc(
            "debug_traceTransaction",
            [Web3.to_hex(receipt["transactionHash"]), {"tracer": "callTracer"}],
        )
        name, values = decode_error(bytes.fromhex(str(trace.get("output", "0x"))[2:]))
        assert name == error, f"expected {error}, reverted with {name}{values}"
        if args:
            assert values == args, f"{error} args {values} != {args}"

    def _encode(self, call: Call) -> tuple[str, str, list[str]]:
        """(to, calldata, output types) of ``call``, cached: web3 takes longer to build and
        encode a call than anvil takes to run it."""
        if call not in self._encoded:
            contract, name, args = call
            fn = contract.functions[name](*args)
            types = [_abi_type(output) for output in fn.abi["outputs"]]
            self._encoded[call] = (fn.address, fn._encode_transaction_data(), types)
        return self._encoded[call]

    def _eth_calls(self, calls: list[tuple[Call, str | None, int | None]]) -> list[dict[str, Any]]:
        """Raw eth_call responses (``result`` or ``error``) of (call, sender, timestamp) on the
        latest block, its timestamp overridden when one is given, in one JSON-RPC batch (a
        tenth of the cost of as many web3 ``.call()``s, which the checks after every step
        would otherwise spend most of this test's time in)."""
        requests = []
        for call, sender, at in calls:
            to, data, _types = self._encode(call)
            tx = {"to": to, "data": data, "gas": hex(FIXED_GAS)}
            if sender is not None:
                tx["from"] = sender
            params: list[Any] = [tx, "latest"]
            if at is not None:
                params += [None, {"time": hex(at)}]
            requests.append(("eth_call", params))
        provider: Any = self.env.w3.provider  # an HTTPProvider (anvil)
        responses = provider.make_batch_request(requests)
        assert isinstance(responses, list), responses
        return [dict(r) for r in responses]

    def _views(self, *calls: Call) -> list[Any]:
        """What each view call returns (one batch): its one return value or a tuple of them
        (structs are tuples; addresses come back lower-case)."""
        values = []
        responses = self._eth_calls([(call, None, None) for call in calls])
        for call, response in zip(calls, responses, strict=True):
            assert "error" not in response, f"{call[1]} reverted: {response['error']}"
            types = self._encode(call)[2]
            decoded = eth_abi.decode(types, bytes.fromhex(str(response["result"])[2:]))
            values.append(decoded[0] if len(decoded) == 1 else decoded)
        return values

    def _govern(self, function: str, *args: Any) -> None:
        """Owner 0 proposes the governance call, owner 1's approval executes it (2-of-3)."""
        env = self.env
        data = env.calldata(function, *args)
        proposed = self._tx(env.vault.functions.propose(data, ref(function)), 0)
        assert proposed["status"] == 1
        gid = self.next_id
        self.next_id += 1
        approved = self._tx(env.vault.functions.approve(gid), 1)
        assert approved["status"] == 1, f"governance {function}{args} failed"
        assert env.event(approved, "RequestExecuted")["requestId"] == gid

    def _open(self) -> int:
        return sum(1 for r in self.requests.values() if r.status == PENDING)

    def _execute_payment(self, rid: int) -> None:
        r = self.requests[rid]
        r.status = EXECUTED
        self.vault_balance -= r.amount
        self.balances[r.to] += r.amount

    def _predict(self, policy: PolicyModel, amount: int, recipient: int, now: int) -> Outcome:
        """What pay(amount) to ``recipient`` at block time ``now`` must do, by the rules, for a
        token with ``policy``."""
        agent = self.env.agent.address
        if self.paused:
            return Outcome(error=("VaultIsPaused",))
        if self.agent_status != AGENT_ACTIVE:
            return Outcome(error=("AgentNotActive", agent, self.agent_status))
        if now < self.valid_after:
            return Outcome(error=("AgentNotYetValid", agent, self.valid_after))
        if self.valid_until != 0 and now > self.valid_until:
            return Outcome(error=("AgentExpired", agent, self.valid_until))
        reasons, new_tat = policy.evaluate(amount, now)
        if self.use_allowlist and recipient not in self.allowed:
            reasons |= REASON_RECIPIENT_NOT_ALLOWED
        if reasons == 0:
            return Outcome(new_tat=new_tat)
        if self._open() >= MAX_OPEN:
            return Outcome(error=("TooManyOpenRequests", agent, self._open(), MAX_OPEN))
        return Outcome(reasons=reasons)

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
        outcome = self._predict(self.policy, amount, recipient, self.now)
        if outcome.error is not None:
            # moves nothing and creates no request: the invariants check balances and ids
            self._assert_reverted(receipt, *outcome.error)
        elif outcome.new_tat is not None:
            assert receipt["status"] == 1, "the payment should have run"
            self.policy.tat = outcome.new_tat
            self.vault_balance -= amount
            self.balances[to] += amount
            self.direct.append((self.now, amount))
            executed = env.event(receipt, "PaymentExecuted")
            assert (executed["amount"], executed["requestId"]) == (amount, 0)
        else:
            assert receipt["status"] == 1, f"the payment should have escalated ({outcome})"
            assert not env.events(receipt, "PaymentExecuted")
            created = env.event(receipt, "RequestCreated")
            assert created["requestId"] == self.next_id
            assert created["reasons"] == outcome.reasons
            self.requests[self.next_id] = RequestModel(amount, to, self.now + REQUEST_EXPIRY)
            self.next_id += 1

    @rule(extra=st.integers(1, 2 * USDC_ALLOWANCE), recipient=st.integers(0, 1))
    def pay_over_the_per_payment_limit(self, extra: int, recipient: int) -> None:
        self.pay(self.policy.maximum + extra, recipient)

    @rule(share=st.integers(1, 100), recipient=st.integers(0, 1))
    def pay_within_the_limits(self, share: int, recipient: int) -> None:
        """A payment the limits allow (a share of what one payment may move now) to a recipient
        the allowlist allows, if any: it runs unless a pause, the token's removal or the
        validity window stops it."""
        room = min(self.policy.maximum, self.policy.available(self.now + 1))
        if self.use_allowlist and self.allowed:
            recipient = min(self.allowed)
        self.pay(max(room * share // 100, 1), recipient)

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
        if r.status != PENDING:
            self._assert_reverted(receipt, "RequestNotPending")
            return
        if self.now > r.expires_at:
            self._assert_reverted(receipt, "RequestHasExpired")
            return
        if owner in r.approvals:
            self._assert_reverted(receipt, "AlreadyApproved")
            return
        if len(r.approvals) + 1 >= THRESHOLD and self.paused:
            # the payment cannot run while paused, and the approval is rolled back with it
            self._assert_reverted(receipt, "VaultIsPaused")
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
            self._assert_reverted(receipt, "RequestNotPending")
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
            self._assert_reverted(receipt, "RequestNotPending")
            return
        assert receipt["status"] == 1
        r.status = CANCELLED

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.vault.functions.expire(rid), 2)
        if r.status != PENDING:
            self._assert_reverted(receipt, "RequestNotPending")
            return
        if self.now <= r.expires_at:
            self._assert_reverted(receipt, "RequestNotExpired")
            return
        assert receipt["status"] == 1
        r.status = EXPIRED

    def _set_limits(self, maximum: int, allowance: int) -> None:
        env = self.env
        self._govern("setLimits", env.agent.address, env.usdc.address, maximum, allowance, PERIOD)
        self.policy = self.policy.rewrite(maximum, allowance, PERIOD, self.now)
        self.max_allowance = max(self.max_allowance, allowance)

    @rule(
        allowance=st.integers(100 * USDC, 3_000 * USDC),
        max_share=st.integers(1, 100),
    )
    def set_limits_through_governance(self, allowance: int, max_share: int) -> None:
        """New limits (re-adds the token when it was removed)."""
        self._set_limits(allowance * max_share // 100, allowance)

    @rule(max_share=st.integers(0, 100), allowance_share=st.integers(50, 100))
    def reduce_limits(self, max_share: int, allowance_share: int) -> None:
        env = self.env
        maximum = self.policy.maximum * max_share // 100
        allowance = self.policy.allowance * allowance_share // 100
        fn = env.vault.functions.reduceLimits(
            env.agent.address, env.usdc.address, maximum, allowance
        )
        receipt = self._tx(fn, 2)
        if self.policy.period == 0:
            self._assert_reverted(receipt, "InvalidPeriod", 0)
            return
        assert receipt["status"] == 1
        self.policy = self.policy.rewrite(maximum, allowance, self.policy.period, self.now)

    # -- what the FAST bit caches: each risk-reducing action is one owner's transaction, each way
    # back a governance call. The simulated payments after every step check the cache, so these
    # rules (rather than real payments) make up a good part of each sequence.

    def _blocked(self) -> int:
        return self.paused + (self.agent_status != AGENT_ACTIVE) + (self.policy.period == 0)

    # at most two of the three that stop direct payments at once: sequences keep moving in and
    # out of them (and through both pauses at once) rather than piling them all up
    @precondition(lambda self: not self.paused and self._blocked() < 2)
    @rule(owner=st.integers(0, 2))
    def pause_vault(self, owner: int) -> None:
        receipt = self._tx(self.env.vault.functions.pause(), owner)
        assert receipt["status"] == 1
        self.paused = True

    @precondition(lambda self: self.paused)
    @rule()
    def unpause_through_governance(self) -> None:
        self._govern("unpause")
        self.paused = False

    @precondition(lambda self: self.agent_status == AGENT_ACTIVE and self._blocked() < 2)
    @rule(owner=st.integers(0, 2))
    def pause_agent(self, owner: int) -> None:
        env = self.env
        receipt = self._tx(env.vault.functions.pauseAgent(env.agent.address), owner)
        assert receipt["status"] == 1
        self.agent_status = AGENT_PAUSED

    @precondition(lambda self: self.agent_status == AGENT_PAUSED)
    @rule()
    def unpause_agent_through_governance(self) -> None:
        self._govern("unpauseAgent", self.env.agent.address)
        self.agent_status = AGENT_ACTIVE

    @precondition(lambda self: self.policy.period != 0 and self._blocked() < 2)
    @rule(owner=st.integers(0, 2), restore_at_once=st.booleans())
    def remove_token(self, owner: int, restore_at_once: bool) -> None:
        """Takes the token out of scope; the word keeps its tat (its spent budget). Restoring
        it at once (before time moves on and the budget refills anyway) checks that re-adding
        the token does not refill what was spent."""
        env = self.env
        fn = env.vault.functions.removeToken(env.agent.address, env.usdc.address)
        receipt = self._tx(fn, owner)
        assert receipt["status"] == 1
        self.removed_limits = (self.policy.maximum, self.policy.allowance)
        self.policy = self.policy.removed()
        if restore_at_once:
            self.simulated_payments_follow_the_model()
            self.restore_token_through_governance()

    @precondition(lambda self: self.policy.period == 0)
    @rule()
    def restore_token_through_governance(self) -> None:
        """setLimits puts back the limits the token had: its spent budget stays spent.
        (set_limits_through_governance re-adds it with other limits.)"""
        self._set_limits(*self.removed_limits)

    @precondition(lambda self: self._blocked() > 0)
    @rule(order=st.permutations(["unpause", "unpauseAgent", "restoreToken"]))
    def recover_through_governance(self, order: list[str]) -> None:
        """Governance lifts whichever of the pauses and the token's removal are in force, one
        governance call each, in ``order``, checking simulated payments after each (so direct
        payments come back about as often as they stop)."""
        for action in order:
            if action == "unpause" and self.paused:
                self.unpause_through_governance()
            elif action == "unpauseAgent" and self.agent_status == AGENT_PAUSED:
                self.unpause_agent_through_governance()
            elif action == "restoreToken" and self.policy.period == 0:
                self.restore_token_through_governance()
            else:
                continue
            self.simulated_payments_follow_the_model()

    @precondition(lambda self: not self.use_allowlist)
    @rule(owner=st.integers(0, 2))
    def enforce_allowlist(self, owner: int) -> None:
        env = self.env
        receipt = self._tx(env.vault.functions.enforceAllowlist(env.agent.address), owner)
        assert receipt["status"] == 1
        self.use_allowlist = True

    @precondition(lambda self: self.use_allowlist and not self.allowed)
    @rule(recipient=st.integers(0, 1))
    def allow_recipient_through_governance(self, recipient: int) -> None:
        """Allowlist on, one recipient allowed and the other not."""
        self._govern("allowRecipient", self.env.agent.address, self.recipients[recipient])
        self.allowed.add(recipient)

    @precondition(lambda self: bool(self.allowed))
    @rule(owner=st.integers(0, 2))
    def remove_recipient(self, owner: int) -> None:
        env = self.env
        recipient = min(self.allowed)
        fn = env.vault.functions.removeRecipient(env.agent.address, self.recipients[recipient])
        receipt = self._tx(fn, owner)
        assert receipt["status"] == 1
        self.allowed.discard(recipient)

    @rule(
        use_allowlist=st.booleans(),
        starts_in=st.sampled_from([None, None, None, 1, HOUR]),
        lasts=st.sampled_from([None, None, None, HOUR, 30 * DAY]),
    )
    def configure_agent_through_governance(
        self, use_allowlist: bool, starts_in: int | None, lasts: int | None
    ) -> None:
        """addAgent on the existing agent: active again, allowlist on or off, a validity window
        from ``starts_in`` seconds after the proposal, lasting ``lasts`` (None: no bound)."""
        valid_after = 0 if starts_in is None else self.now + 1 + starts_in
        valid_until = 0 if lasts is None else max(valid_after, self.now + 1) + lasts
        self._govern("addAgent", self.env.agent.address, valid_after, valid_until, use_allowlist)
        self.agent_status = AGENT_ACTIVE
        self.valid_after = valid_after
        self.valid_until = valid_until
        self.use_allowlist = use_allowlist

    # ---------------------------------------------------------------- invariants

    @invariant()
    def simulated_payments_follow_the_model(self) -> None:
        """Payments of 1 unit and of the per-payment limit in tUSDC and of 1 wei to each
        recipient, simulated (eth_call) at the next transaction's timestamp and at least two
        days later, past the end of the agent's validity window if it has one: a cached flag
        the last step left stale, or one that would go stale as time passes, shows up here even
        if no pay attempt follows."""
        env = self.env
        usdc, eth = (env.usdc.address, self.policy), (ETH, PolicyModel(*ETH_POLICY))
        probes = [
            (token, policy, amount, recipient, at)
            for at in (self.now + 1, max(self.now + 2 * DAY, self.valid_until + 1))
            for recipient in range(len(self.recipients))
            for (token, policy), amount in [
                *((usdc, amount) for amount in sorted({1, max(self.policy.maximum, 1)})),
                (eth, 1),
            ]
        ]
        responses = self._eth_calls(
            [
                (
                    (env.vault, "pay", (token, self.recipients[recipient], amount, ref("probe"))),
                    env.agent.address,
                    at,
                )
                for token, _policy, amount, recipient, at in probes
            ]
        )
        for (token, policy, amount, recipient, at), response in zip(probes, responses, strict=True):
            expected = self._predict(policy, amount, recipient, at)
            unit = "wei" if token == ETH else "tUSDC units"
            where = f"simulated pay of {amount} {unit} to recipient {recipient} at {at}"
            if expected.error is not None:
                error = response.get("error")
                assert error is not None, f"{where}: expected {expected}, it did not revert"
                name, args = decode_error(bytes.fromhex(str(error.get("data", "0x"))[2:]))
                assert (name, *args) == expected.error, f"{where}: {name}{args} != {expected}"
            else:
                assert "error" not in response, f"{where}: expected {expected}, {response}"
                request_id = int(response["result"], 16)
                actual = "pays" if request_id == 0 else "escalates"
                assert request_id == (0 if expected.new_tat is not None else self.next_id), (
                    f"{where}: expected {expected}, it {actual}"
                )

    @invariant()
    def balances_match(self) -> None:
        usdc = self.env.usdc
        holders = [self.env.vault.address, *self.balances]
        expected = [self.vault_balance, *self.balances.values()]
        assert self._views(*((usdc, "balanceOf", (a,)) for a in holders)) == expected

    @invariant()
    def requests_match(self) -> None:
        vault = self.env.vault
        *requests, count = self._views(
            *((vault, "getRequest", (rid,)) for rid in self.requests), (vault, "requestCount", ())
        )
        for (rid, r), request in zip(self.requests.items(), requests, strict=True):
            assert request[1] == r.status, f"request {rid}"
        assert count == self.next_id - 1

    @invariant()
    def vault_and_agent_match(self) -> None:
        vault = self.env.vault
        agent = self.env.agent.address
        paused, info, *allowed = self._views(
            (vault, "paused", ()),
            (vault, "getAgent", (agent,)),
            *((vault, "isRecipientAllowed", (agent, to)) for to in self.recipients),
        )
        assert paused == self.paused
        assert info == (
            self.agent_status,
            self.valid_after,
            self.valid_until,
            self.use_allowlist,
            self._open(),
        )
        assert allowed == [i in self.allowed for i in range(len(self.recipients))]

    @invariant()
    def limits_match(self) -> None:
        env = self.env
        vault, agent, usdc = env.vault, env.agent.address, env.usdc.address
        policy, tokens = self._views(
            (vault, "getPolicy", (agent, usdc)), (vault, "getAgentTokens", (agent,))
        )
        assert policy == (
            self.policy.maximum,
            self.policy.allowance,
            self.policy.period,
            self.policy.available(self.block_time),
        )
        in_scope = self.policy.period != 0
        assert [t.lower() for t in tokens].count(usdc.lower()) == in_scope
        assert len(tokens) == 1 + in_scope  # and its ETH limits

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
    profile = settings.get_profile("contracts")
    run_state_machine_as_test(VaultMachine, settings=settings(profile, stateful_step_count=STEPS))
