"""Property-based test: random sequences of payments, time jumps, limit changes (raises and cuts,
new periods), approvals, rejections, cancels and expiries, pausing and unpausing the vault and
the agent, removing and re-adding tokens with other limits, revoking and re-adding the agent,
the recipient allowlist and re-configuring the agent (validity window), against an exact integer
model of the vault's rules.

Budgets never come back (issue 9): around every change of an agent's limits or standing (new
limits through governance, a one-owner reduction, a token's removal, the agent's revocation and
re-adding) the budget of each of its words is read at the change's own block time, just before
(an eth_call at that timestamp) and right after; what the agent can spend may not grow, and it
must be exactly what the model of PolicyWord.rewrite predicts. (A governance grant that puts a
token back in scope makes the kept budget spendable again, never more than it was.)

The pauses, the token's scope, the allowlist and the validity window are what the FAST and
ALLOWLIST bits cached in each policy word stand for (see PolicyWord.sol). Every pay attempt is
checked against the model's verdict: reverts with which custom error (read back from a call
trace), pays, or escalates with which reasons; and after every step payments are simulated
(eth_call with the block time overridden) now and after any validity window, in tUSDC and in ETH.
So a cached bit left stale by any action shows up right after that action as a payment,
escalation or revert the model does not predict.

Runs on anvil only (the embedded chain's ~25 tx/s would take minutes for the transactions this
makes); every transaction's block timestamp is pinned with ``evm_setNextBlockTimestamp`` so the
model knows the exact ``block.timestamp`` each rule sees.

This machine models the env's one agent; test_properties_delegation.py models a tree of agents
(intents, unordered nonces, key rotation, sub-agents and their shared budget) with the same
helpers (:class:`ChainChecks`) and :class:`PolicyModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
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

from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_REVOKED,
    AGENT_REVOKED_REQUEST,
    CANCELLED,
    CLOSED,
    DAY,
    ETH,
    ETH_ALLOWANCE,
    ETH_MAX,
    EXECUTED,
    EXPIRED,
    FIXED_GAS,
    MAX_OPEN,
    MAX_PERIOD,
    PENDING,
    PERIOD,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_RECIPIENT_NOT_ALLOWED,
    REASON_TOKEN_NOT_IN_SCOPE,
    REJECTED,
    REQUEST_EXPIRY,
    USDC_ALLOWANCE,
    USDC_MAX,
    VAULT_ETH,
    Env,
    decode_error,
    fresh_address,
    ref,
)

THRESHOLD = 2
HOUR = 3_600
#: Steps per sequence (the shared profile has 25): the rules for pauses, token removal,
#: revocation, the allowlist and validity windows need room to combine within one sequence.
#: With every check batched (see _rpc_batch) the file stays within about a minute on anvil.
STEPS = 40
#: Word layout (PolicyWord.sol): | max (88) | allowance (88) | period (29) | RESERVED (2) | SCOPE
#: | ALLOWLIST | FAST | tat (46) |
SCOPE = 1 << 48
TAT_MASK = (1 << 46) - 1
MASK_29 = (1 << 29) - 1
MASK_88 = (1 << 88) - 1
USDC_INDEX, ETH_INDEX = 0, 1
#: what one "100 %" of each token's limits is in the rules' strategies
BASE = {USDC_INDEX: (USDC_MAX, USDC_ALLOWANCE), ETH_INDEX: (ETH_MAX, ETH_ALLOWANCE)}
PERIODS = st.one_of(
    st.sampled_from([1, 60, HOUR, PERIOD, 7 * DAY, MAX_PERIOD]), st.integers(1, 30 * DAY)
)

Call = tuple[Contract, str, tuple[Any, ...]]  # (contract, function name, arguments)


def _abi_type(item: Any) -> str:
    """The eth_abi type string of an ABI input/output entry (tuples spelled out)."""
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _layout_slot() -> int:
    """The ERC-7201 slot of the vault's storage namespace ``agentwallet.vault``."""
    inner = int.from_bytes(Web3.keccak(text="agentwallet.vault"), "big") - 1
    return int.from_bytes(Web3.keccak(inner.to_bytes(32, "big")), "big") & ~0xFF


def _policy_key(agent: str, token: str, slot: int) -> int:
    inner = Web3.keccak(bytes.fromhex(agent[2:]).rjust(32, b"\0") + slot.to_bytes(32, "big"))
    return int.from_bytes(Web3.keccak(bytes.fromhex(token[2:]).rjust(32, b"\0") + inner), "big")


@dataclass
class PolicyModel:
    """One policy word, in the contract's own units (tat in 1/256 s). Out of scope (a removed
    token, a revoked agent) the word keeps its limits and tat: every payment escalates, and new
    limits later start from the budget the word still holds."""

    maximum: int
    allowance: int
    period: int
    tat: int = 0
    in_scope: bool = True

    def evaluate(self, amount: int, now: int) -> tuple[int, int | None]:
        """(reasons, new tat) exactly as PolicyWord.evaluate computes them."""
        if not self.in_scope:
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

    def budget(self, now: int) -> int:
        """What the word's budget holds at ``now``, in scope or not (PolicyWord.budget)."""
        if self.period == 0:
            return 0
        scaled_period, now_scaled = self.period << 8, now << 8
        start = max(self.tat, now_scaled)
        if start >= now_scaled + scaled_period:
            return 0
        return (now_scaled + scaled_period - start) * self.allowance // scaled_period

    def available(self, now: int) -> int:
        return self.budget(now) if self.in_scope else 0

    def rule(self, allowance: int, now: int) -> int:
        """The budget rule as stated: right after new limits the budget is
        min(b0, max(0, A1 - (A0 - b0))) (what was spent stays spent); full for a word that
        never had limits."""
        if self.period == 0:
            return allowance
        b0 = self.budget(now)
        return min(b0, max(0, allowance - (self.allowance - b0)))

    def rewrite(self, maximum: int, allowance: int, period: int, now: int) -> PolicyModel:
        """New limits, in scope: the rule's budget, held as the tat that represents it at the
        new rate (rounded down to a 1/256 s step)."""
        target = self.rule(allowance, now)
        tat = 0
        if self.period != 0 and target < allowance:
            scaled_period = period << 8
            tat = (now << 8) + scaled_period - target * scaled_period // allowance
        return PolicyModel(maximum, allowance, period, tat)

    def word_fields(self) -> tuple[int, int, int, int, bool]:
        return (self.maximum, self.allowance, self.period, self.tat, self.in_scope)


def _word_fields(word: int) -> tuple[int, int, int, int, bool]:
    """(max, allowance, period, tat, in scope) of a raw policy word."""
    return (
        word >> 168,
        (word >> 80) & MASK_88,
        (word >> 51) & MASK_29,
        word & TAT_MASK,
        bool(word & SCOPE),
    )


def _word_budget(word: int, now: int) -> int:
    maximum, allowance, period, tat, _scope = _word_fields(word)
    return PolicyModel(maximum, allowance, period, tat).budget(now)


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
    token: str
    amount: int
    to: str
    lineage: int
    slot: int  # where its record lives (reused by the lineage's later requests once it closes)
    expires_at: int
    status: int = PENDING  # as stored, while its slot still holds it
    approvals: set[int] = field(default_factory=set)


class ChainChecks:
    """Reading a chain fast and asserting reverts exactly: the helpers every state machine of the
    property tests shares (see also test_properties_delegation.py)."""

    env: Env
    _encoded: ClassVar[dict[Call, tuple[str, str, list[str]]]] = {}

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

    def _expect(self, receipt: TxReceipt, error: tuple[Any, ...] | None) -> bool:
        """Assert the receipt reverted with ``error`` (if any) or succeeded; True if it ran."""
        if error is not None:
            self._assert_reverted(receipt, *error)
            return False
        assert receipt["status"] == 1, "the transaction should have succeeded"
        return True

    def _encode(self, call: Call) -> tuple[str, str, list[str]]:
        """(to, calldata, output types) of ``call``, cached: web3 takes longer to build and
        encode a call than anvil takes to run it."""
        if call not in self._encoded:
            contract, name, args = call
            fn = contract.functions[name](*args)
            types = [_abi_type(output) for output in fn.abi["outputs"]]
            self._encoded[call] = (fn.address, fn._encode_transaction_data(), types)
        return self._encoded[call]

    def _rpc_batch(self, requests: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Raw JSON-RPC responses of ``requests`` sent in one batch (a tenth of the cost of as
        many web3 calls, which the checks after every step would otherwise spend most of this
        test's time in)."""
        provider: Any = self.env.w3.provider  # an HTTPProvider (anvil)
        responses = provider.make_batch_request(requests)
        assert isinstance(responses, list), responses
        return [dict(r) for r in responses]

    @staticmethod
    def _call_request(
        to: str, data: str, sender: str | None, at: int | None
    ) -> tuple[str, list[Any]]:
        """An eth_call on the latest block, its timestamp overridden when ``at`` is given."""
        tx = {"to": to, "data": data, "gas": hex(FIXED_GAS)}
        if sender is not None:
            tx["from"] = sender
        params: list[Any] = [tx, "latest"]
        if at is not None:
            params += [None, {"time": hex(at)}]
        return ("eth_call", params)

    def _eth_calls(self, calls: list[tuple[Call, str | None, int | None]]) -> list[dict[str, Any]]:
        """Raw eth_call responses (``result`` or ``error``) of (call, sender, timestamp)."""
        return self._rpc_batch(
            [self._call_request(*self._encode(call)[:2], sender, at) for call, sender, at in calls]
        )

    def _decode(self, call: Call, response: dict[str, Any]) -> Any:
        assert "error" not in response, f"{call[1]} reverted: {response['error']}"
        decoded = eth_abi.decode(self._encode(call)[2], bytes.fromhex(str(response["result"])[2:]))
        return decoded[0] if len(decoded) == 1 else decoded

    def _views(self, *calls: Call) -> list[Any]:
        """What each view call returns (one batch): its one return value or a tuple of them
        (structs are tuples; addresses come back lower-case)."""
        responses = self._eth_calls([(call, None, None) for call in calls])
        return [self._decode(c, r) for c, r in zip(calls, responses, strict=True)]


class VaultMachine(ChainChecks, RuleBasedStateMachine):
    _policies_slot: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.snapshot = env.chain.snapshot()
        self.now = env.now()
        self.block_time = self.now  # timestamp of the latest block (what view calls see)
        self.tokens = [env.usdc.address, ETH]
        self.policies = {
            env.usdc.address: PolicyModel(USDC_MAX, USDC_ALLOWANCE, PERIOD),
            ETH: PolicyModel(ETH_MAX, ETH_ALLOWANCE, PERIOD),
        }
        self.removed_limits = {t: p.word_fields()[:3] for t, p in self.policies.items()}
        # per token: the largest allowance and refill rate ever in force (spending bound)
        self.max_allowance = {t: p.allowance for t, p in self.policies.items()}
        self.max_rate = {t: Fraction(p.allowance, p.period) for t, p in self.policies.items()}
        self.recipients = [fresh_address(f"prop-{i}") for i in range(2)]
        self.holders = [env.vault.address, *self.recipients]
        self.balances = {(t, h): self._balance(t, h) for t in self.tokens for h in self.holders}
        self.next_id = env.vault.functions.requestCount().call() + 1
        self.requests: dict[int, RequestModel] = {}
        self.free_slots: list[int] = []  # the live lineage's reusable slots, last freed on top
        self.slot_holder: dict[int, int] = {}  # slot -> the request whose record is there now
        owners = [o.address for o in env.owners]
        assert list(env.vault.functions.getOwners().call()) == owners  # the approvers' order
        self.direct: list[tuple[str, int, int]] = []  # (token, timestamp, amount) paid directly
        # vault and agent state the FAST bit caches
        self.paused = False
        self.agent_status = AGENT_ACTIVE
        self.lineage = env.vault.functions.getAgent(env.agent.address).call()[5]
        self.lineage_count = self.lineage  # the env's agent is the vault's only one
        self.valid_after = 0
        self.valid_until = 0
        self.use_allowlist = False
        self.allowed: set[int] = set()  # indices into self.recipients, for the current lineage
        if not self._policies_slot:
            self._locate_policies_slot()

    def teardown(self) -> None:
        self.env.chain.revert(self.snapshot)

    # ---------------------------------------------------------------- helpers

    @property
    def usdc(self) -> str:
        return self.tokens[USDC_INDEX]

    def _balance(self, token: str, holder: str) -> int:
        return self.env.eth_of(holder) if token == ETH else self.env.usdc_of(holder)

    def _alive(self) -> bool:
        return self.agent_status in (AGENT_ACTIVE, AGENT_PAUSED)

    def _locate_policies_slot(self) -> None:
        """The slot of the `policies` mapping among the first of the vault's namespace, found by
        matching getPolicy (so the test does not hard-code the layout)."""
        env = self.env
        agent, token = env.agent.address, env.usdc.address
        policy = tuple(env.vault.functions.getPolicy(agent, token).call()[:3])
        base = _layout_slot()
        found = []
        for i in range(16):
            raw = env.w3.eth.get_storage_at(env.vault.address, _policy_key(agent, token, base + i))
            if _word_fields(int.from_bytes(raw, "big"))[:3] == policy:
                found.append(base + i)
        assert len(found) == 1, "policy word not found in storage: did the layout change?"
        self._policies_slot.append(found[0])

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

    def _open(self) -> int:
        """The agent's open requests as the vault counts them (0 once revoked)."""
        if not self._alive():
            return 0
        return sum(
            1 for r in self.requests.values() if r.status == PENDING and r.lineage == self.lineage
        )

    def _lives(self, r: RequestModel) -> bool:
        """Whether the request's agent lineage is still alive (active or paused)."""
        return r.lineage == self.lineage and self._alive()

    def _effective(self, rid: int, t: int) -> int:
        """paymentStatus at block time ``t``: Closed once its slot holds a later request."""
        r = self.requests[rid]
        if self.slot_holder[r.slot] != rid:
            return CLOSED
        if r.status != PENDING:
            return r.status
        if not self._lives(r):
            return AGENT_REVOKED_REQUEST
        return EXPIRED if t > r.expires_at else PENDING

    def _record_error(self, rid: int) -> tuple[Any, ...] | None:
        """How a call acting on request ``rid`` fails on its record: its slot holds a later
        request (RequestMismatch while that one is pending), or it is closed."""
        r = self.requests[rid]
        holder = self.slot_holder[r.slot]
        if holder != rid:
            if self.requests[holder].status == PENDING:
                return ("RequestMismatch", rid)
            return ("RequestNotPending", rid, CLOSED)
        if r.status != PENDING:
            return ("RequestNotPending", rid, r.status)
        return None

    def _close(self, rid: int, status: int) -> None:
        """Closes a request; while its lineage lives its slot goes on the free list."""
        r = self.requests[rid]
        if self._lives(r):
            self.free_slots.append(r.slot)
        r.status = status

    def _pay_balance(self, token: str, to: str, amount: int) -> None:
        self.balances[(token, self.env.vault.address)] -= amount
        self.balances[(token, to)] += amount

    # ------------------------------------------------- budgets never come back (issue 9)

    def _word_states(self, at: int | None) -> dict[str, tuple[int, int]]:
        """(getPolicy().available, raw word) of each token, on the latest state, the view run
        at block time ``at`` when given."""
        env = self.env
        agent = env.agent.address
        requests = []
        for token in self.tokens:
            to, data, _types = self._encode((env.vault, "getPolicy", (agent, token)))
            requests.append(self._call_request(to, data, None, at))
            key = _policy_key(agent, token, self._policies_slot[0])
            requests.append(("eth_getStorageAt", [env.vault.address, hex(key), "latest"]))
        responses = self._rpc_batch(requests)
        states = {}
        for i, token in enumerate(self.tokens):
            call = (env.vault, "getPolicy", (agent, token))
            view = self._decode(call, responses[2 * i])
            word = int(str(responses[2 * i + 1]["result"]), 16)
            states[token] = (int(view[3]), word)
        return states

    def _change(
        self, send: Callable[[], TxReceipt], update: Callable[[TxReceipt], None]
    ) -> TxReceipt:
        """Sends a change at the model's next timestamp and checks that no word's budget grew
        and that what the agent can spend did not either, both read on-chain at that very block
        time: just before (an eth_call at the timestamp the change will have) and right after.
        ``update`` then applies the change to the model, which must match each word exactly."""
        at = self.now + 1
        before = self._word_states(at)
        was_in_scope = {t: p.in_scope for t, p in self.policies.items()}
        receipt = send()
        assert self.block_time == at
        after = self._word_states(None)
        update(receipt)
        for token in self.tokens:
            (view_b, word_b), (view_a, word_a) = before[token], after[token]
            budget_b, budget_a = _word_budget(word_b, at), _word_budget(word_a, at)
            # the Python reading of a raw word is what the vault itself reports
            assert view_b == (budget_b if word_b & SCOPE else 0)
            assert view_a == (budget_a if word_a & SCOPE else 0)
            assert budget_a <= budget_b, f"{token}: the change added {budget_a - budget_b}"
            if was_in_scope[token]:
                assert view_a <= view_b, f"{token}: {view_a} available after, {view_b} before"
            else:  # only a grant through governance puts it back in scope: the kept budget
                assert view_a <= budget_b
            policy = self.policies[token]
            assert _word_fields(word_a) == policy.word_fields(), f"{token}: word != model"
            assert view_a == policy.available(at)
        return receipt

    def _check_rule(self, old: PolicyModel, new: PolicyModel, at: int) -> None:
        """The exact model against the rule as stated: never above it, below it by less than
        one 1/256 s step of refill at the new rate."""
        ideal = old.rule(new.allowance, at)
        assert new.budget(at) <= ideal
        if new.allowance:
            assert ideal - new.budget(at) <= new.allowance // (new.period << 8) + 1

    def _govern(self, function: str, *args: Any, update: Callable[[TxReceipt], None]) -> None:
        """Owner 0 proposes the governance call, owner 1's approval executes it (2-of-3); the
        approval is the change, checked by :meth:`_change`."""
        env = self.env
        data = env.calldata(function, *args)
        proposed = self._tx(env.vault.functions.propose(data, ref(function)), 0)
        assert proposed["status"] == 1
        gid = self.next_id
        self.next_id += 1

        def approve() -> TxReceipt:
            receipt = self._tx(env.rq.approve(gid), 1)
            assert receipt["status"] == 1, f"governance {function}{args} failed"
            assert env.event(receipt, "RequestExecuted")["requestId"] == gid
            return receipt

        self._change(approve, update)

    def _set_limits(self, token: str, maximum: int, allowance: int, period: int) -> None:
        agent = self.env.agent.address

        def update(receipt: TxReceipt) -> None:
            old = self.policies[token]
            new = old.rewrite(maximum, allowance, period, self.now)
            self._check_rule(old, new, self.now)
            self.policies[token] = new
            self.max_allowance[token] = max(self.max_allowance[token], allowance)
            if allowance:
                self.max_rate[token] = max(self.max_rate[token], Fraction(allowance, period))
            event = self.env.event(receipt, "LimitsChanged")
            assert (event["allowance"], event["period"]) == (allowance, period)
            assert event["available"] == new.available(self.now)

        self._govern("setLimits", agent, token, maximum, allowance, period, update=update)

    def _predict(self, token: str, amount: int, recipient: int, now: int) -> Outcome:
        """What pay(amount) of ``token`` to ``recipient`` at block time ``now`` must do."""
        agent = self.env.agent.address
        if self.paused:
            return Outcome(error=("VaultIsPaused",))
        if self.agent_status != AGENT_ACTIVE:
            return Outcome(error=("AgentNotActive", agent, self.agent_status))
        if now < self.valid_after:
            return Outcome(error=("AgentNotYetValid", agent, self.valid_after))
        if self.valid_until != 0 and now > self.valid_until:
            return Outcome(error=("AgentExpired", agent, self.valid_until))
        reasons, new_tat = self.policies[token].evaluate(amount, now)
        if self.use_allowlist and recipient not in self.allowed:
            reasons |= REASON_RECIPIENT_NOT_ALLOWED
        if reasons == 0:
            return Outcome(new_tat=new_tat)
        if self._open() >= MAX_OPEN:
            return Outcome(error=("TooManyOpenRequests", agent, self._open(), MAX_OPEN))
        return Outcome(reasons=reasons)

    # ---------------------------------------------------------------- rules: payments

    def _pay(self, token: str, amount: int, recipient: int) -> None:
        env = self.env
        to = self.recipients[recipient]
        receipt = self._tx(env.vault.functions.pay(token, to, amount, ref("prop")))
        outcome = self._predict(token, amount, recipient, self.now)
        if outcome.error is not None:
            # moves nothing and creates no request: the invariants check balances and ids
            self._assert_reverted(receipt, *outcome.error)
        elif outcome.new_tat is not None:
            assert receipt["status"] == 1, "the payment should have run"
            self.policies[token].tat = outcome.new_tat
            self._pay_balance(token, to, amount)
            self.direct.append((token, self.now, amount))
            executed = env.event(receipt, "PaymentExecuted")
            assert (executed["amount"], executed["to"]) == (amount, to)
            assert not env.events(receipt, "PaymentRequested")
        else:
            assert receipt["status"] == 1, f"the payment should have escalated ({outcome})"
            assert not env.events(receipt, "PaymentExecuted")
            created = env.event(receipt, "PaymentRequested")
            rid = self.next_id
            slot = self.free_slots.pop() if self.free_slots else rid
            assert created["requestId"] == rid
            assert (created["reasons"], created["lineage"]) == (outcome.reasons, self.lineage)
            assert created["slot"] == slot
            self.requests[rid] = RequestModel(
                token, amount, to, self.lineage, slot, self.now + REQUEST_EXPIRY
            )
            self.slot_holder[slot] = rid
            self.next_id += 1

    @rule(
        amount=st.one_of(
            st.integers(1, USDC_MAX),
            st.integers(1, 2 * USDC_ALLOWANCE),
            st.sampled_from([1, USDC_MAX, USDC_MAX + 1, USDC_ALLOWANCE, USDC_ALLOWANCE + 1]),
        ),
        recipient=st.integers(0, 1),
    )
    def pay(self, amount: int, recipient: int) -> None:
        self._pay(self.usdc, amount, recipient)

    @rule(extra=st.integers(1, 2 * USDC_ALLOWANCE), recipient=st.integers(0, 1))
    def pay_over_the_per_payment_limit(self, extra: int, recipient: int) -> None:
        self._pay(self.usdc, self.policies[self.usdc].maximum + extra, recipient)

    @rule(token=st.sampled_from([USDC_INDEX, ETH_INDEX]), share=st.integers(1, 100))
    def pay_within_the_limits(self, token: int, share: int) -> None:
        """A payment the limits allow (a share of what one payment may move now) to a recipient
        the allowlist allows, if any: it runs unless a pause, the token's scope, the agent's
        standing or the validity window stops it."""
        policy = self.policies[self.tokens[token]]
        room = min(policy.maximum, policy.budget(self.now + 1))
        recipient = min(self.allowed) if self.use_allowlist and self.allowed else share % 2
        self._pay(self.tokens[token], max(room * share // 100, 1), recipient)

    @rule(share=st.integers(1, 100), recipient=st.integers(0, 1))
    def spend_usdc_within_the_limits(self, share: int, recipient: int) -> None:
        """The same in tUSDC (a second rule, so direct payments make up more of a sequence and
        the budget changes meet partly spent budgets)."""
        self._spend(USDC_INDEX, share, recipient)

    def _spend(self, token: int, share: int, recipient: int) -> None:
        """Pays a share of what one payment may move now (to an allowed recipient, if any)."""
        policy = self.policies[self.tokens[token]]
        room = min(policy.maximum, policy.budget(self.now + 1))
        if self.use_allowlist and self.allowed:
            recipient = min(self.allowed)
        self._pay(self.tokens[token], max(room * share // 100, 1), recipient)

    @rule(
        seconds=st.one_of(
            st.integers(0, 2 * DAY),
            st.sampled_from([1, PERIOD // 2, PERIOD - 1, PERIOD, PERIOD + 1]),
        )
    )
    def advance_time(self, seconds: int) -> None:
        self.now += seconds

    # ---------------------------------------------------------------- rules: requests

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), owner=st.integers(0, 2))
    def approve(self, data: st.DataObject, owner: int) -> None:
        env = self.env
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(env.rq.approve(rid), owner)
        error = self._record_error(rid)
        vault_balance = self.balances[(r.token, env.vault.address)]
        if error is not None:
            pass
        elif self.now > r.expires_at:
            error = ("RequestHasExpired", rid, r.expires_at)
        elif not self._lives(r):
            error = ("RequestNotPending", rid, AGENT_REVOKED_REQUEST)
        elif owner in r.approvals:
            error = ("AlreadyApproved", rid, env.owners[owner].address)
        elif len(r.approvals) + 1 >= THRESHOLD and self.paused:
            # the payment cannot run while paused, and the approval is rolled back with it
            error = ("VaultIsPaused",)
        elif len(r.approvals) + 1 >= THRESHOLD and r.amount > vault_balance:
            error = ("InsufficientBalance", r.token, vault_balance, r.amount)
        if not self._expect(receipt, error):
            return
        r.approvals.add(owner)
        assert env.event(receipt, "RequestApproved")["approvals"] == len(r.approvals)
        if len(r.approvals) >= THRESHOLD:
            self._close(rid, EXECUTED)
            self._pay_balance(r.token, r.to, r.amount)
            executed = env.event(receipt, "RequestExecuted")
            assert executed["requestId"] == rid
            signers = [env.owners[i].address for i in sorted(r.approvals)]
            assert list(executed["signers"]) == signers

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), owner=st.integers(0, 2))
    def reject(self, data: st.DataObject, owner: int) -> None:
        """One owner's no closes a payment request (a revoked agent's too)."""
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        receipt = self._tx(self.env.rq.reject(rid), owner)
        if self._expect(receipt, self._record_error(rid)):
            self._close(rid, REJECTED)
            event = self.env.event(receipt, "RequestRejected")
            assert (event["rejections"], event["closed"]) == (1, True)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.rq.cancel(rid))
        error = self._record_error(rid)
        if error is None and not self._lives(r):
            error = ("NotRequestAgent", rid, self.env.agent.address)
        if self._expect(receipt, error):
            self._close(rid, CANCELLED)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        r = self.requests[rid]
        receipt = self._tx(self.env.rq.expire(rid), 2)
        error = self._record_error(rid)
        if error is None and self.now <= r.expires_at:
            error = ("RequestNotExpired", rid, r.expires_at)
        if self._expect(receipt, error):
            self._close(rid, EXPIRED)

    # ------------------------------------------------------------ rules: limits and standing

    @precondition(lambda self: self._alive())
    @rule(
        token=st.sampled_from([USDC_INDEX, ETH_INDEX]),
        allowance_pct=st.one_of(st.integers(0, 300), st.sampled_from([0, 1, 100, 300])),
        max_pct=st.integers(0, 200),
        period=PERIODS,
        spend_first=st.sampled_from([0, 0, 50, 100]),
    )
    def set_limits_through_governance(
        self, token: int, allowance_pct: int, max_pct: int, period: int, spend_first: int
    ) -> None:
        """New limits: raises and cuts of the allowance, any period (puts the token back in
        scope when it was out); often right after a payment, so they meet a spent budget."""
        if spend_first:
            self._spend(token, spend_first, 0)
        maximum, allowance = (
            base * pct // 100
            for base, pct in zip(BASE[token], (max_pct, allowance_pct), strict=True)
        )
        self._set_limits(self.tokens[token], maximum, allowance, period)

    @rule(
        token=st.sampled_from([USDC_INDEX, ETH_INDEX]),
        max_share=st.integers(0, 100),
        allowance_share=st.sampled_from([0, 50, 90, 100]),
        owner=st.integers(0, 2),
        spend_first=st.sampled_from([0, 50, 100]),
    )
    def reduce_limits(
        self, token: int, max_share: int, allowance_share: int, owner: int, spend_first: int
    ) -> None:
        env = self.env
        if spend_first:
            self._spend(token, spend_first, 0)
        address = self.tokens[token]
        old = self.policies[address]
        maximum = old.maximum * max_share // 100
        allowance = old.allowance * allowance_share // 100
        fn = env.vault.functions.reduceLimits(env.agent.address, address, maximum, allowance)

        def update(receipt: TxReceipt) -> None:
            if not old.in_scope:  # a removed token or a revoked agent: nothing to reduce
                self._assert_reverted(receipt, "TokenNotInScope", env.agent.address, address)
                return
            assert receipt["status"] == 1
            new = old.rewrite(maximum, allowance, old.period, self.now)
            self._check_rule(old, new, self.now)
            self.policies[address] = new
            assert env.event(receipt, "LimitsChanged")["available"] == new.available(self.now)

        self._change(lambda: self._tx(fn, owner), update)

    # -- what the FAST bit caches: each risk-reducing action is one owner's transaction, each way
    # back a governance call. The simulated payments after every step check the cache, so these
    # rules (rather than real payments) make up a good part of each sequence.

    def _blocked(self) -> int:
        usdc_out = not self.policies[self.usdc].in_scope
        return self.paused + (self.agent_status != AGENT_ACTIVE) + usdc_out

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
        def update(_receipt: TxReceipt) -> None:
            self.paused = False

        self._govern("unpause", update=update)

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
        def update(_receipt: TxReceipt) -> None:
            self.agent_status = AGENT_ACTIVE

        self._govern("unpauseAgent", self.env.agent.address, update=update)

    @precondition(lambda self: self._blocked() < 2)
    @rule(
        token=st.sampled_from([USDC_INDEX, USDC_INDEX, ETH_INDEX]),
        owner=st.integers(0, 2),
        restore=st.sampled_from([None, "same", "other"]),
        other=st.tuples(st.integers(0, 200), st.integers(0, 300), PERIODS),
    )
    def remove_token(
        self, token: int, owner: int, restore: str | None, other: tuple[int, int, int]
    ) -> None:
        """Takes a token out of scope; the word keeps its limits and tat (its spent budget).
        Restoring it at once (before time moves on and the budget refills anyway), with the
        same or other limits, checks that re-adding the token does not refill what was spent."""
        env = self.env
        address = self.tokens[token]
        fn = env.vault.functions.removeToken(env.agent.address, address)

        def update(receipt: TxReceipt) -> None:
            policy = self.policies[address]
            if not policy.in_scope:
                self._assert_reverted(receipt, "TokenNotInScope", env.agent.address, address)
                return
            assert receipt["status"] == 1
            self.removed_limits[address] = policy.word_fields()[:3]
            self.policies[address] = replace(policy, in_scope=False)

        self._change(lambda: self._tx(fn, owner), update)
        if restore is not None and self._alive():
            self.simulated_payments_follow_the_model()
            if restore == "same":
                self._set_limits(address, *self.removed_limits[address])
            else:
                max_pct, allowance_pct, period = other
                base_max, base_allowance = BASE[token]
                maximum, allowance = (
                    base_max * max_pct // 100,
                    base_allowance * allowance_pct // 100,
                )
                self._set_limits(address, maximum, allowance, period)

    @precondition(lambda self: self._alive() and not self.policies[self.usdc].in_scope)
    @rule()
    def restore_token_through_governance(self) -> None:
        """setLimits puts back the limits tUSDC had: its spent budget stays spent.
        (set_limits_through_governance re-adds it with other limits.)"""
        self._set_limits(self.usdc, *self.removed_limits[self.usdc])

    @precondition(lambda self: self._alive() and self._blocked() < 2)
    @rule(owner=st.integers(0, 2))
    def revoke_agent(self, owner: int) -> None:
        """One owner ends the agent: every token goes out of scope (budget state kept), its
        token list empties and its open requests die with it."""
        env = self.env
        open_before = self._open()

        def update(receipt: TxReceipt) -> None:
            assert receipt["status"] == 1
            closed = env.events(receipt, "OpenRequestsClosed")
            expected = {"agent": env.agent.address, "lineage": self.lineage, "count": open_before}
            assert closed == ([expected] if open_before else [])
            self.agent_status = AGENT_REVOKED
            self.free_slots = []  # the dead lineage's slots are never reused
            for token, policy in self.policies.items():
                if policy.in_scope:
                    self.removed_limits[token] = policy.word_fields()[:3]
                self.policies[token] = replace(policy, in_scope=False)

        self._change(
            lambda: self._tx(env.vault.functions.revokeAgent(env.agent.address), owner), update
        )

    @precondition(lambda self: self.agent_status == AGENT_REVOKED)
    @rule(
        use_allowlist=st.booleans(),
        grant=st.sampled_from(["none", "old", "other"]),
        other=st.tuples(st.integers(0, 200), st.integers(0, 300), PERIODS),
    )
    def re_add_agent_through_governance(
        self, use_allowlist: bool, grant: str, other: tuple[int, int, int]
    ) -> None:
        """The address comes back as a new lineage with nothing: no tokens in scope, no
        allowlist entries, no open requests. Granting its tokens again (old or other limits)
        starts from the budget each word kept."""
        self.configure_agent_through_governance(use_allowlist, None, None)
        if grant == "none":
            return
        self.simulated_payments_follow_the_model()
        for index, token in enumerate(self.tokens):
            if grant == "old":
                self._set_limits(token, *self.removed_limits[token])
            else:
                max_pct, allowance_pct, period = other
                base_max, base_allowance = BASE[index]
                maximum, allowance = (
                    base_max * max_pct // 100,
                    base_allowance * allowance_pct // 100,
                )
                self._set_limits(token, maximum, allowance, period)

    @precondition(lambda self: self._blocked() > 0)
    @rule(order=st.permutations(["unpause", "unpauseAgent", "restoreToken", "reAdd"]))
    def recover_through_governance(self, order: list[str]) -> None:
        """Governance lifts whichever of the pauses, the token's removal and the revocation are
        in force, one governance call each, in ``order``, checking simulated payments after
        each (so direct payments come back about as often as they stop)."""
        for action in order:
            if action == "unpause" and self.paused:
                self.unpause_through_governance()
            elif action == "unpauseAgent" and self.agent_status == AGENT_PAUSED:
                self.unpause_agent_through_governance()
            elif action == "reAdd" and self.agent_status == AGENT_REVOKED:
                self.configure_agent_through_governance(self.use_allowlist, None, None)
            elif action == "restoreToken" and self._alive():
                if self.policies[self.usdc].in_scope:
                    continue
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

    @precondition(lambda self: self._alive() and self.use_allowlist and not self.allowed)
    @rule(recipient=st.integers(0, 1))
    def allow_recipient_through_governance(self, recipient: int) -> None:
        """Allowlist on, one recipient allowed and the other not."""

        def update(_receipt: TxReceipt) -> None:
            self.allowed.add(recipient)

        self._govern(
            "allowRecipient", self.env.agent.address, self.recipients[recipient], update=update
        )

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
        """addAgent on the agent's address: active again, allowlist on or off, a validity window
        from ``starts_in`` seconds after the proposal, lasting ``lasts`` (None: no bound). On a
        revoked agent that is a new lineage."""
        valid_after = 0 if starts_in is None else self.now + 1 + starts_in
        valid_until = 0 if lasts is None else max(valid_after, self.now + 1) + lasts

        def update(receipt: TxReceipt) -> None:
            if not self._alive():
                self.lineage_count += 1
                self.lineage = self.lineage_count
                self.allowed = set()
                self.free_slots = []
            assert self.env.event(receipt, "AgentConfigured")["lineage"] == self.lineage
            self.agent_status = AGENT_ACTIVE
            self.valid_after = valid_after
            self.valid_until = valid_until
            self.use_allowlist = use_allowlist

        self._govern(
            "addAgent",
            self.env.agent.address,
            valid_after,
            valid_until,
            use_allowlist,
            update=update,
        )

    # ---------------------------------------------------------------- invariants

    @invariant()
    def simulated_payments_follow_the_model(self) -> None:
        """Payments of 1 unit and of the per-payment limit in tUSDC and of 1 wei to each
        recipient, simulated (eth_call) at the next transaction's timestamp and at least two
        days later, past the end of the agent's validity window if it has one: a cached flag
        the last step left stale, or one that would go stale as time passes, shows up here even
        if no pay attempt follows."""
        env = self.env
        usdc_amounts = sorted({1, max(self.policies[self.usdc].maximum, 1)})
        probes = [
            (token, amount, recipient, at)
            for at in (self.now + 1, max(self.now + 2 * DAY, self.valid_until + 1))
            for recipient in range(len(self.recipients))
            for token, amount in [*((self.usdc, a) for a in usdc_amounts), (ETH, 1)]
        ]
        responses = self._eth_calls(
            [
                (
                    (env.vault, "pay", (token, self.recipients[recipient], amount, ref("probe"))),
                    env.agent.address,
                    at,
                )
                for token, amount, recipient, at in probes
            ]
        )
        for (token, amount, recipient, at), response in zip(probes, responses, strict=True):
            expected = self._predict(token, amount, recipient, at)
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
        holders = self.holders
        requests: list[tuple[str, list[Any]]] = [
            self._call_request(*self._encode((usdc, "balanceOf", (h,)))[:2], None, None)
            for h in holders
        ]
        requests += [("eth_getBalance", [h, "latest"]) for h in holders]
        responses = self._rpc_batch(requests)
        actual = [int(str(r["result"]), 16) for r in responses]
        expected = [self.balances[(self.usdc, h)] for h in holders]
        expected += [self.balances[(ETH, h)] for h in holders]
        assert actual == expected
        assert self.balances[(ETH, self.env.vault.address)] <= VAULT_ETH

    @invariant()
    def requests_match(self) -> None:
        vault = self.env.vault
        *statuses, count = self._views(
            *((vault, "paymentStatus", (self.env.rq.req(rid),)) for rid in self.requests),
            (vault, "requestCount", ()),
        )
        for rid, status in zip(self.requests, statuses, strict=True):
            assert status == self._effective(rid, self.block_time), f"request {rid}"
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
            self.use_allowlist,
            self.valid_after,
            self.valid_until,
            self._open(),
            self.lineage,
            "0x0000000000000000000000000000000000000000",  # parent: an owners' agent
        )
        expected = [self._alive() and i in self.allowed for i in range(len(self.recipients))]
        assert allowed == expected

    @invariant()
    def limits_match(self) -> None:
        env = self.env
        vault, agent = env.vault, env.agent.address
        *policies, tokens = self._views(
            *((vault, "getPolicy", (agent, t)) for t in self.tokens),
            (vault, "getAgentTokens", (agent,)),
        )
        for token, policy in zip(self.tokens, policies, strict=True):
            model = self.policies[token]
            shown = model.word_fields()[:3] if model.in_scope else (0, 0, 0)
            assert policy == (*shown, model.available(self.block_time)), token
        in_scope = {t.lower() for t in self.tokens if self.policies[t].in_scope}
        assert sorted(t.lower() for t in tokens) == sorted(in_scope)

    @invariant()
    def direct_spending_stays_within_the_refilling_budget(self) -> None:
        """Over any window [t_i, t_j] the direct payments in a token stay within the largest
        allowance it ever had plus the window at the fastest refill rate it ever had: since no
        change adds to a budget, only time refills it."""
        for token in self.tokens:
            a, rate = self.max_allowance[token], self.max_rate[token]
            payments = [(t, amount) for paid, t, amount in self.direct if paid == token]
            for i, (start, _) in enumerate(payments):
                total = 0
                for end, amount in payments[i:]:
                    total += amount
                    assert total <= a + rate * (end - start)


def test_random_operation_sequences_follow_the_model(anvil_env: Env) -> None:
    VaultMachine.env = anvil_env
    profile = settings.get_profile("contracts")
    run_state_machine_as_test(VaultMachine, settings=settings(profile, stateful_step_count=STEPS))
