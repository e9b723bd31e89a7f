"""Property-based test of delegation (issues 11 and 13): random sequences of direct payments,
relayed intents (``payWithIntent``), nonce invalidations, key rotations (signed by both keys,
sent by the old key itself, or by the owners' threshold), sub-agents up to three levels deep,
limit cuts and token removals by owners and by agents above, the owners' new limits, pauses and
revocations of any agent in the tree, the vault's pause, and the owners deciding escalated
requests; with attacks mixed in (replayed, expired or over-fee intents, reused or burnt nonces,
rotations without proof, onto known keys or by dead keys, sub-agents granting themselves more or
exceeding their parent, agents below or rotated-away keys revoking); against an exact model.

The model (per agent, not per key: a rotation renames the agent, the model keeps its place):
- each agent's policy words (`PolicyModel`, exact tat arithmetic), its status and its parent;
- the shared budget as docs/contracts.md states it: a sub-agent's payment of ``x`` (amount plus
  the relayer's fee) runs only if its own word and the word of every agent above it accept ``x``
  and then spends all of them; otherwise it escalates with the union of their reasons. An agent
  above that is paused makes it revert (AgentNotActive), but only once the sub-agent's own word
  accepted the payment: one its own word refuses escalates to the owners without a look above
  (the vault's order of checks; the owners still decide it);
- the unordered nonces as bitmaps per key (a space): a nonce runs at most once, an intent spends
  it whether it pays or escalates, an invalidated one never runs;
- the pending requests (escalations) per agent lineage, and every holder's balance.

After every step: balances, every key's agent record and policy views, request statuses, every
nonce bitmap word the model knows, payments of every live and dead key simulated at the next
block time (each must pay, escalate or revert exactly as the model says), and, independently of
the model's budget words, that no agent plus its descendants ever spent more in any window than
the largest allowance it had plus the window at the fastest refill rate it had.

Runs on anvil only, every transaction's block time pinned (see test_properties.py). No validity
windows, allowlists or per-recipient budgets here: test_properties.py and the example-based tests
cover those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from eth_abi import abi as eth_abi
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_REVOKED,
    AGENT_REVOKED_REQUEST,
    AGENT_ROTATED,
    DAY,
    ETH,
    ETHER,
    EXPIRED,
    FIXED_GAS,
    MAX_OPEN,
    MAX_PERIOD,
    PENDING,
    REASON_TOKEN_NOT_IN_SCOPE,
    REQUEST_EXPIRY,
    VAULT_ETH,
    Env,
    decode_error,
    fresh_address,
    ref,
)
from tests.contracts.test_intents import INTENT_TYPE
from tests.contracts.test_properties import BASE, PERIODS, ChainChecks, PolicyModel

HOUR = 3_600
ZERO = "0x0000000000000000000000000000000000000000"
#: Steps per sequence and agents in the model (the vault allows 64; a handful makes trees three
#: levels deep likely within one sequence).
STEPS = 40
MAX_AGENTS = 6  # live ones (and at most twice as many ever)
MAX_DEPTH = 3
GAS_MONEY = ETHER // 10
#: nonces: a bit of a word position; a few positions so that reuse and invalidation meet
NONCES = st.builds(
    lambda word, bit: word * 256 + bit,
    st.sampled_from([0, 0, 1, 3, 2**40, 2**248 - 1]),
    st.integers(0, 255),
)
SHARES = st.one_of(st.integers(1, 100), st.sampled_from([100, 100, 101, 150, 400]))
#: a sub-agent's limits: max % and allowance % of the parent's, its pace, and an attempt to exceed
LIMITS = st.tuples(
    st.integers(0, 100),
    st.one_of(st.integers(0, 100), st.just(100)),
    st.sampled_from(["same", "same", "slower", "faster"]),
    st.sampled_from([None] * 6 + ["max", "allowance"]),
)
GOVERNANCE_NONCE = 10**9


@dataclass
class AgentModel:
    key: LocalAccount
    lineage: int
    parent: int | None  # the model's index of the agent above (None: an owners' agent)
    status: int = AGENT_ACTIVE
    sub: bool = False  # a sub-agent: its words carry SUB
    policies: dict[str, PolicyModel] = field(default_factory=dict)
    old_keys: list[LocalAccount] = field(default_factory=list)
    # per token: the largest allowance and refill rate it ever had (the spending bound)
    max_allowance: dict[str, int] = field(default_factory=dict)
    max_rate: dict[str, Fraction] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.key.address)

    @property
    def alive(self) -> bool:
        return self.status in (AGENT_ACTIVE, AGENT_PAUSED)

    def grant(self, token: str, policy: PolicyModel) -> None:
        self.policies[token] = policy
        self.max_allowance[token] = max(self.max_allowance.get(token, 0), policy.allowance)
        if policy.allowance:
            rate = Fraction(policy.allowance, policy.period)
            self.max_rate[token] = max(self.max_rate.get(token, Fraction(0)), rate)


@dataclass(frozen=True)
class Verdict:
    """What a payment must do: revert with ``error``, run (each listed agent's word in the token
    moving to its new tat), or escalate with ``reasons``."""

    error: tuple[Any, ...] | None = None
    writes: dict[int, int] | None = None
    reasons: int = 0

    def __str__(self) -> str:
        if self.error is not None:
            return str(self.error)
        return "pays" if self.writes is not None else f"escalates {self.reasons}"


@dataclass
class PendingRequest:
    agent: int
    lineage: int
    token: str
    to: str
    amount: int
    expires_at: int


class DelegationMachine(ChainChecks, RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.snapshot = env.chain.snapshot()
        self.now = env.now()
        self.block_time = self.now
        self.tokens = [env.usdc.address, ETH]
        root = env.agent
        info = env.vault.functions.getAgent(root.address).call()
        self.lineage_count = info[5]  # the env's agent is the vault's only one
        agent = AgentModel(root, info[5], None)
        for token in self.tokens:
            maximum, allowance, period, available = env.vault.functions.getPolicy(
                root.address, token
            ).call()
            assert available == allowance, "the env's agent starts with a full budget"
            agent.grant(token, PolicyModel(maximum, allowance, period))
        self.agents = [agent]
        self.key_count = 0
        self.gov_nonce = GOVERNANCE_NONCE
        self.paused = False
        self.relayer = env.outsider
        self.recipients = [fresh_address(f"delegation-{i}") for i in range(2)]
        self.holders = [env.vault.address, *self.recipients]
        self.balances = {(t, h): self._balance(t, h) for t in self.tokens for h in self.holders}
        self.relayer_usdc = env.usdc_of(self.relayer.address)
        self.next_id = env.vault.functions.requestCount().call() + 1
        self.requests: dict[int, PendingRequest] = {}
        self.nonces: dict[str, dict[int, int]] = {}  # key -> word position -> bitmap
        self.payments: list[tuple[int, str, int, int]] = []  # (payer, token, time, charge)

    def teardown(self) -> None:
        self.env.chain.revert(self.snapshot)

    # ---------------------------------------------------------------- helpers

    @property
    def usdc(self) -> str:
        return self.tokens[0]

    def _balance(self, token: str, holder: str) -> int:
        return self.env.eth_of(holder) if token == ETH else self.env.usdc_of(holder)

    def _live(self) -> list[int]:
        return [i for i, a in enumerate(self.agents) if a.alive]

    def _active(self) -> list[int]:
        return [i for i, a in enumerate(self.agents) if a.status == AGENT_ACTIVE]

    def _depth(self, i: int) -> int:
        depth, parent = 0, self.agents[i].parent
        while parent is not None:
            depth, parent = depth + 1, self.agents[parent].parent
        return depth

    def _ancestors(self, i: int) -> list[int]:
        out, parent = [], self.agents[i].parent
        while parent is not None:
            out.append(parent)
            parent = self.agents[parent].parent
        return out

    def _subtree(self, i: int) -> list[int]:
        return [j for j in range(len(self.agents)) if j == i or i in self._ancestors(j)]

    def _open(self, i: int) -> int:
        a = self.agents[i]
        if not a.alive:
            return 0
        return sum(1 for r in self.requests.values() if r.lineage == a.lineage)

    def _fresh_key(self) -> LocalAccount:
        """A key never seen by the vault in this sequence, funded for gas."""
        self.key_count += 1
        key: LocalAccount = Account.from_key(Web3.keccak(text=f"delegation-{self.key_count}"))
        self.now += 1
        self.env.set_next_timestamp(self.now)
        self.env.chain.send_transaction(self.env.deployer, {"to": key.address, "value": GAS_MONEY})
        self.block_time = self.now
        return key

    def _tx(self, fn: ContractFunction, sender: LocalAccount) -> TxReceipt:
        """Send at exactly self.now + 1 (and advance the model clock)."""
        env = self.env
        self.now += 1
        env.set_next_timestamp(self.now)
        receipt = env.send(fn, sender, gas=FIXED_GAS, check=False)
        assert env.block_time(receipt) == self.now
        self.block_time = self.now
        return receipt

    def _govern(self, *calls: tuple[str, tuple[Any, ...]]) -> TxReceipt:
        """A signed governance batch (owners 0 and 1 of 2-of-3), sent by owner 2: no request id."""
        env = self.env
        data = [env.calldata(name, *args) for name, args in calls]
        self.gov_nonce += 1
        deadline = self.now + DAY
        typed = env.typed_governance(data, self.gov_nonce, deadline)
        packed = env.pack([(o.address, env.sign_typed(typed, o)) for o in env.owners[:2]])
        fn = env.vault.functions.executeGovernance(data, self.gov_nonce, deadline, packed)
        receipt = self._tx(fn, env.owners[2])
        assert receipt["status"] == 1, f"governance {calls} failed"
        return receipt

    def _fast(self, i: int, token: str) -> bool:
        """Whether the agent's word in ``token`` carries FAST (what the flag must cache)."""
        a = self.agents[i]
        p = a.policies.get(token)
        return p is not None and p.in_scope and not self.paused and a.status == AGENT_ACTIVE

    def _holder_of(self, key: str) -> tuple[int, bool] | None:
        """(agent, whether ``key`` is its current key) of a key the vault knows."""
        for i, a in enumerate(self.agents):
            if a.address == key:
                return i, True
            if any(k.address == key for k in a.old_keys):
                return i, False
        return None

    def _predict(self, key: str, token: str, charge: int, now: int, fee: int = 0) -> Verdict:
        """What a payment charging ``charge`` (the amount plus ``fee`` for the relayer) to
        ``key``'s budget in ``token`` must do: exactly the core's _evaluatePay, _payChecked and
        _spendMore, in their order of checks, then the transfers (the vault's ETH may run
        out; its tUSDC cannot, within these budgets)."""
        holder = self._holder_of(key)
        assert holder is not None
        i, current = holder
        if not current:  # a rotated-away key: its words are out of scope, never FAST
            if self.paused:
                return Verdict(error=("VaultIsPaused",))
            return Verdict(error=("AgentNotActive", key, AGENT_ROTATED))
        a = self.agents[i]
        if not self._fast(i, token):
            if self.paused:
                return Verdict(error=("VaultIsPaused",))
            if a.status != AGENT_ACTIVE:
                return Verdict(error=("AgentNotActive", key, a.status))
        p = a.policies.get(token)
        reasons, tat = p.evaluate(charge, now) if p else (REASON_TOKEN_NOT_IN_SCOPE, None)
        writes: dict[int, int] = {}
        if reasons == 0:
            assert tat is not None
            writes[i] = tat
            j, sub = i, a.sub
            for _ in range(MAX_DEPTH):  # every agent above, while the words carry SUB
                if not sub:
                    break
                parent = self.agents[j].parent
                assert parent is not None
                j = parent
                above = self.agents[j]
                if not self._fast(j, token) and above.status != AGENT_ACTIVE:
                    return Verdict(error=("AgentNotActive", above.address, above.status))
                q = above.policies.get(token)
                r, t = q.evaluate(charge, now) if q else (REASON_TOKEN_NOT_IN_SCOPE, None)
                reasons |= r
                if t is not None:
                    writes[j] = t
                sub = above.sub and q is not None
        if reasons == 0:
            balance = self.balances[(token, self.env.vault.address)]
            if token == ETH and balance < charge - fee:
                return Verdict(error=("InsufficientBalance", ETH, balance, charge - fee))
            if token == ETH and balance - (charge - fee) < fee:
                return Verdict(error=("InsufficientBalance", ETH, balance - charge + fee, fee))
            return Verdict(writes=writes)
        if self._open(i) >= MAX_OPEN:
            return Verdict(error=("TooManyOpenRequests", key, self._open(i), MAX_OPEN))
        return Verdict(reasons=reasons)

    def _room(self, i: int, token: str) -> int:
        """What one payment of the agent may move at the next block by its own word."""
        p = self.agents[i].policies.get(token)
        if p is None or not p.in_scope:
            return 1
        return max(min(p.maximum, p.budget(self.now + 1)), 1)

    def _settle(
        self,
        receipt: TxReceipt,
        verdict: Verdict,
        key: str,
        token: str,
        to: str,
        amount: int,
        fee: int = 0,
    ) -> bool:
        """Checks a payment's receipt against the verdict and applies it; True if it ran."""
        env = self.env
        if verdict.error is not None:
            self._assert_reverted(receipt, *verdict.error)
            return False
        assert receipt["status"] == 1, f"expected {verdict}, the transaction reverted"
        holder = self._holder_of(key)
        assert holder is not None
        i = holder[0]
        if verdict.writes is not None:
            for j, tat in verdict.writes.items():
                self.agents[j].policies[token].tat = tat
            self.balances[(token, env.vault.address)] -= amount + fee
            self.balances[(token, to)] += amount
            if token != ETH:
                self.relayer_usdc += fee
            self.payments.append((i, token, self.now, amount + fee))
            executed = env.event(receipt, "PaymentExecuted")
            assert (executed["agent"], executed["to"], executed["amount"]) == (key, to, amount)
            assert not env.events(receipt, "PaymentRequested")
            paid_fee = env.events(receipt, "RelayFeePaid")
            assert [e["fee"] for e in paid_fee] == ([fee] if fee else [])
        else:
            assert not env.events(receipt, "PaymentExecuted"), f"expected {verdict}"
            assert not env.events(receipt, "RelayFeePaid")
            created = env.event(receipt, "PaymentRequested")
            a = self.agents[i]
            assert created["requestId"] == self.next_id
            assert (created["agent"], created["lineage"]) == (key, a.lineage)
            assert (created["amount"], created["reasons"]) == (amount, verdict.reasons)
            self.requests[self.next_id] = PendingRequest(
                i, a.lineage, token, to, amount, self.now + REQUEST_EXPIRY
            )
            self.next_id += 1
        return True

    def _pay(self, key: LocalAccount, token: str, amount: int, recipient: int) -> None:
        to = self.recipients[recipient]
        fn = self.env.vault.functions.pay(token, to, amount, ref("delegation"))
        receipt = self._tx(fn, key)
        verdict = self._predict(key.address, token, amount, self.now)
        self._settle(receipt, verdict, key.address, token, to, amount)

    def _use_nonce(self, key: str, nonce: int) -> None:
        words = self.nonces.setdefault(key, {})
        words[nonce >> 8] = words.get(nonce >> 8, 0) | (1 << (nonce & 0xFF))

    def _nonce_used(self, key: str, nonce: int) -> bool:
        return bool(self.nonces.get(key, {}).get(nonce >> 8, 0) >> (nonce & 0xFF) & 1)

    # ---------------------------------------------------------------- rules: payments

    @rule(
        data=st.data(), token=st.sampled_from([0, 0, 1]), share=SHARES, recipient=st.integers(0, 1)
    )
    def pay(self, data: st.DataObject, token: int, share: int, recipient: int) -> None:
        """An agent (a live one while there is one) pays a share of what its own word allows."""
        i = data.draw(st.sampled_from(self._live() or range(len(self.agents))))
        address = self.tokens[token]
        amount = max(self._room(i, address) * share // 100, 1)
        self._pay(self.agents[i].key, address, amount, recipient)

    @rule(
        data=st.data(),
        token=st.sampled_from([0, 0, 1]),
        share=SHARES,
        fee_share=st.sampled_from([0, 0, 1, 10, 50]),
        nonce=NONCES,
        mode=st.sampled_from(
            ["fresh"] * 5
            + ["reuse", "invalidated", "expired", "fee_too_high", "old_key", "mismatch"]
        ),
        replay=st.booleans(),
        redeem=st.sampled_from([False, False, True]),
    )
    def pay_with_intent(
        self,
        data: st.DataObject,
        token: int,
        share: int,
        fee_share: int,
        nonce: int,
        mode: str,
        replay: bool,
        redeem: bool,
    ) -> None:
        """A relayer submits an agent's signed intent: fresh nonce, a reused one, one the agent
        or an owner invalidated, an expired deadline, a fee above the signed maximum, or an
        intent signed by a key rotated away. The fee is counted with the amount against every
        limit (the agent's and those above it). Replaying a submitted intent must fail."""
        i = data.draw(st.sampled_from(self._live() or range(len(self.agents))))
        total = max(self._room(i, self.tokens[token]) * share // 100, 1)
        self._intent(i, self.tokens[token], total, fee_share, nonce, mode, replay, data, redeem)

    def _intent(
        self,
        i: int,
        address: str,
        total: int,
        fee_share: int,
        nonce: int,
        mode: str,
        replay: bool,
        data: st.DataObject,
        redeem: bool = False,
    ) -> None:
        """Signs and submits one intent (see pay_with_intent); with ``redeem`` through ERC-7710
        ``redeemDelegations``, which takes no fee and reverts PaymentOutsidePolicy where
        payWithIntent would escalate (its nonce is then not spent)."""
        env = self.env
        a = self.agents[i]
        signer = a.key
        if mode == "old_key" and a.old_keys:
            signer = data.draw(st.sampled_from(a.old_keys))
        fee = total * fee_share // 100
        amount = max(total - fee, 1)
        max_fee = fee
        if redeem:
            fee = 0  # the intent may allow a fee; a redeemer takes none
        elif mode == "fee_too_high":
            fee = max_fee + 1
        deadline = self.now if mode == "expired" else self.now + 1 + HOUR
        used = {pos: bits for pos, bits in self.nonces.get(signer.address, {}).items() if bits}
        if mode == "reuse" and used:
            position = data.draw(st.sampled_from(sorted(used)))
            bits = [b for b in range(256) if used[position] >> b & 1]
            nonce = position * 256 + data.draw(st.sampled_from(bits))
        elif mode == "invalidated":
            by = env.owners[nonce % 3] if nonce % 2 else signer
            mask = 1 << (nonce & 0xFF) | data.draw(st.integers(0, 2**256 - 1))
            fn = env.vault.functions.invalidateNonces(signer.address, nonce >> 8, mask)
            assert self._tx(fn, by)["status"] == 1
            words = self.nonces.setdefault(signer.address, {})
            words[nonce >> 8] = words.get(nonce >> 8, 0) | mask
        to = self.recipients[nonce % 2]
        intent = (address, to, amount, ref("intent"), nonce, deadline, max_fee)
        signature = env.sign_intent(intent, signer)
        if redeem:
            context = eth_abi.encode([INTENT_TYPE, "bytes"], [intent, signature])
            paid = amount + 1 if mode == "mismatch" else amount  # more than the intent names
            if address == ETH:
                target, value, call = to, paid, b""
            else:
                target, value, call = address, 0, env.calldata("transfer", to, paid, vault=env.usdc)
            execution = bytes.fromhex(target[2:]) + value.to_bytes(32, "big") + call
            fn = env.vault.functions.redeemDelegations([context], [bytes(32)], [execution])
        else:
            fn = env.vault.functions.payWithIntent(intent, fee, *env.compact(signature))
        relayer_eth = env.eth_of(self.relayer.address)
        receipt = self._tx(fn, self.relayer)
        if redeem and mode == "mismatch":
            verdict = Verdict(error=("ExecutionMismatch", 0))
        elif fee > max_fee:
            verdict = Verdict(error=("FeeTooHigh", fee, max_fee))
        elif self.now > deadline:
            verdict = Verdict(error=("SignatureExpired", deadline))
        elif self._nonce_used(signer.address, nonce):
            verdict = Verdict(error=("NonceAlreadyUsed", signer.address, nonce))
        else:
            verdict = self._predict(signer.address, address, amount + fee, self.now, fee)
            if redeem and verdict.error is None and verdict.writes is None:
                verdict = Verdict(error=("PaymentOutsidePolicy", signer.address, verdict.reasons))
        ran = self._settle(receipt, verdict, signer.address, address, to, amount, fee)
        gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        earned = fee if ran and verdict.writes is not None and address == ETH else 0
        assert env.eth_of(self.relayer.address) == relayer_eth - gas + earned
        if not ran:
            return
        self._use_nonce(signer.address, nonce)
        if replay:
            receipt = self._tx(fn, self.relayer)
            self._assert_reverted(receipt, "NonceAlreadyUsed", signer.address, nonce)

    @rule(
        data=st.data(),
        by=st.sampled_from(["self", "self", "owner", "stranger"]),
        position=st.sampled_from([0, 1, 3]),
        mask=st.integers(0, 2**256 - 1),
    )
    def invalidate_nonces(self, data: st.DataObject, by: str, position: int, mask: int) -> None:
        """The key itself or any owner burns nonces of an agent key's space (live, dead or
        rotated away); anyone else is refused."""
        env = self.env
        a = self.agents[data.draw(st.sampled_from(range(len(self.agents))))]
        space = data.draw(st.sampled_from([a.key, *a.old_keys]))
        if by == "self":
            sender = space
        elif by == "owner":
            sender = env.owners[mask % 3]
        else:
            others = [b.key for b in self.agents if b.key.address != space.address]
            sender = data.draw(st.sampled_from([self.relayer, *others]))
        fn = env.vault.functions.invalidateNonces(space.address, position, mask)
        receipt = self._tx(fn, sender)
        if by == "stranger":
            self._assert_reverted(receipt, "NotNonceAuthority", space.address, sender.address)
            return
        assert receipt["status"] == 1
        words = self.nonces.setdefault(space.address, {})
        words[position] = words.get(position, 0) | mask

    @rule(
        seconds=st.one_of(
            st.integers(0, 2 * DAY), st.sampled_from([1, HOUR, DAY // 2, DAY, DAY + 1])
        )
    )
    def advance_time(self, seconds: int) -> None:
        self.now += seconds

    # ---------------------------------------------------------------- rules: requests

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), owner=st.integers(0, 2))
    def reject(self, data: st.DataObject, owner: int) -> None:
        """One owner closes an open request (a dead lineage's too)."""
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        receipt = self._tx(self.env.rq.reject(rid), self.env.owners[owner])
        assert receipt["status"] == 1
        del self.requests[rid]

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), old=st.booleans())
    def cancel(self, data: st.DataObject, old: bool) -> None:
        """The lineage's current key withdraws its request (one made under an older key
        included); a key rotated away cannot."""
        rid = data.draw(st.sampled_from(sorted(self.requests)))
        a = self.agents[self.requests[rid].agent]
        key = data.draw(st.sampled_from(a.old_keys)) if old and a.old_keys else a.key
        receipt = self._tx(self.env.rq.cancel(rid), key)
        if key is not a.key or not a.alive:
            self._assert_reverted(receipt, "NotRequestAgent", rid, key.address)
            return
        assert receipt["status"] == 1
        del self.requests[rid]

    def _approvable(self) -> list[int]:
        vault = self.env.vault.address
        return sorted(
            rid for rid, r in self.requests.items() if r.amount <= self.balances[(r.token, vault)]
        )

    @precondition(lambda self: not self.paused and bool(self._approvable()))
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        """Two owners approve an open request of a live agent: it pays without touching any
        budget (the owners authorised it). An expired one or a dead lineage's is refused."""
        env = self.env
        rid = data.draw(st.sampled_from(self._approvable()))
        r = self.requests[rid]
        receipt = self._tx(env.rq.approve(rid), env.owners[0])
        if self.now > r.expires_at:
            self._assert_reverted(receipt, "RequestHasExpired", rid, r.expires_at)
            return
        if not self.agents[r.agent].alive:
            self._assert_reverted(receipt, "RequestNotPending", rid, AGENT_REVOKED_REQUEST)
            return
        assert receipt["status"] == 1
        receipt = self._tx(env.rq.approve(rid), env.owners[1])
        if self.now > r.expires_at:  # expired between the two approvals
            self._assert_reverted(receipt, "RequestHasExpired", rid, r.expires_at)
            return
        assert receipt["status"] == 1
        assert env.event(receipt, "RequestExecuted")["requestId"] == rid
        assert not env.events(receipt, "LimitsChanged")
        self.balances[(r.token, env.vault.address)] -= r.amount
        self.balances[(r.token, r.to)] += r.amount
        del self.requests[rid]

    # ---------------------------------------------------------------- rules: rotation

    def _rename(self, i: int, new: LocalAccount) -> None:
        """The agent goes on under its new key: same place in the model, words, budget state,
        open requests, parent and sub-agents; a new, empty nonce space."""
        a = self.agents[i]
        a.old_keys.append(a.key)
        a.key = new

    def _rotatable(self) -> list[int]:
        """Live agents, removed tokens included: a rotation moves every word of the old key, so
        a removed token's spent budget follows the key (the bug this machine found, fixed in
        AgentVaultConfig._rotate; replayed in test_rotation.py)."""
        return self._live()

    @precondition(lambda self: bool(self._rotatable()))
    @rule(
        data=st.data(),
        sender=st.sampled_from(["relayer", "relayer", "old_key"]),
        nonce=NONCES,
        attack=st.sampled_from(
            [None] * 7
            + ["expired", "no_proof", "not_the_agent", "onto_owner", "onto_agent", "dead_key"]
        ),
        replay=st.booleans(),
    )
    def rotate_key(
        self, data: st.DataObject, sender: str, nonce: int, attack: str | None, replay: bool
    ) -> None:
        """An agent moves its rights to a new key (both keys sign; the old key may send it
        itself instead of signing). Attacks: an expired signature, no proof the new key is
        held, a signature not by the agent, rotating onto an owner or a key the vault knows, a
        key already rotated away trying again, replaying a rotation."""
        env = self.env
        i = data.draw(st.sampled_from(self._rotatable()))
        a = self.agents[i]
        old = a.key
        if attack == "dead_key" and a.old_keys:
            old = data.draw(st.sampled_from(a.old_keys))
        if attack == "onto_owner":
            new = env.owners[nonce % 3]
        elif attack == "onto_agent":
            known = [b.key for b in self.agents if b is not a]
            known += [k for b in self.agents for k in b.old_keys]
            new = data.draw(st.sampled_from(known)) if known else a.key
        else:
            new = self._fresh_key()
        deadline = self.now if attack == "expired" else self.now + 1 + HOUR
        typed = env.typed_rotation(old.address, new.address, nonce, deadline)
        if attack == "not_the_agent":
            sender = "relayer"
        old_sig = b"" if sender == "old_key" else env.sign_typed(typed, old)
        if attack == "not_the_agent":
            old_sig = env.sign_typed(typed, new)
        new_sig = env.sign_typed(typed, old if attack == "no_proof" else new)
        fn = env.vault.functions.rotateAgentKey(
            old.address, new.address, nonce, deadline, old_sig, new_sig
        )
        receipt = self._tx(fn, old if sender == "old_key" else self.relayer)
        holder = self._holder_of(old.address)
        assert holder is not None
        status = self.agents[holder[0]].status if holder[1] else AGENT_ROTATED
        owners = [o.address for o in env.owners]
        error: tuple[Any, ...] | None = None
        if self.now > deadline:
            error = ("SignatureExpired", deadline)
        elif attack == "not_the_agent":
            error = ("InvalidSignature", old.address)
        elif attack == "no_proof" and new.address != old.address:
            error = ("InvalidSignature", new.address)
        elif self._nonce_used(old.address, nonce):
            error = ("NonceAlreadyUsed", old.address, nonce)
        elif status not in (AGENT_ACTIVE, AGENT_PAUSED):
            error = ("AgentNotActive", old.address, status)
        elif new.address in owners or self._holder_of(new.address) is not None:
            error = ("InvalidNewKey", new.address)
        if error is not None:
            self._assert_reverted(receipt, *error)
            return
        assert receipt["status"] == 1
        rotated = env.event(receipt, "AgentRotated")
        assert (rotated["oldKey"], rotated["newKey"]) == (old.address, new.address)
        assert (rotated["lineage"], rotated["by"]) == (a.lineage, old.address)
        self._use_nonce(old.address, nonce)
        self._rename(i, new)
        if replay:
            receipt = self._tx(fn, self.relayer if sender == "relayer" else old)
            self._assert_reverted(receipt, "NonceAlreadyUsed", old.address, nonce)

    @precondition(lambda self: bool(self._rotatable()))
    @rule(data=st.data())
    def replace_lost_key_through_governance(self, data: st.DataObject) -> None:
        """The owners move an agent whose key was lost to a new key, by threshold."""
        i = data.draw(st.sampled_from(self._rotatable()))
        a = self.agents[i]
        old, new = a.key, self._fresh_key()
        receipt = self._govern(("replaceAgentKey", (old.address, new.address)))
        rotated = self.env.event(receipt, "AgentRotated")
        assert (rotated["oldKey"], rotated["newKey"]) == (old.address, new.address)
        assert rotated["by"] == self.env.vault.address
        self._rename(i, new)

    # ---------------------------------------------------------------- rules: sub-agents

    def _attenuated(
        self, parent: int, token: str, maximum: int, allowance: int, period: int
    ) -> bool:
        """AgentVaultConfig._checkAttenuated: within the parent's limits in the token."""
        p = self.agents[parent].policies.get(token)
        return (
            p is not None
            and p.in_scope
            and maximum <= p.maximum
            and allowance <= p.allowance
            and allowance * p.period <= p.allowance * period
        )

    def _sub_limits(
        self, parent: int, token: str, limits: tuple[int, int, str, str | None]
    ) -> tuple[int, int, int]:
        """(max, allowance, period) as a share of the parent's limits in the token: the same,
        slower or faster period, or (``exceed``) one step above the parent's max/allowance."""
        max_pct, allowance_pct, pace, exceed = limits
        p = self.agents[parent].policies.get(token)
        pmax, pallow, pperiod = (p.maximum, p.allowance, p.period) if p else (10**6, 10**6, DAY)
        maximum, allowance = pmax * max_pct // 100, pallow * allowance_pct // 100
        period = {"same": pperiod, "slower": min(2 * pperiod, MAX_PERIOD)}.get(
            pace, max(pperiod // 2, 1)
        )
        if exceed == "max":
            maximum = pmax + 1
        elif exceed == "allowance":
            allowance = pallow + 1
        return maximum, allowance, period

    def _set_sub_limits(
        self,
        i: int,
        token: str,
        limits: tuple[int, int, str, str | None],
        by: str,
        retry: bool = False,
    ) -> None:
        """The parent (or governance; or, as an attack, the sub-agent itself) sets a live
        sub-agent's limits in a token: never beyond the parent's (ExceedsParent). With
        ``retry``, a refused grant is followed by one within the parent's limits."""
        env = self.env
        a = self.agents[i]
        assert a.parent is not None and a.alive
        pa = self.agents[a.parent]
        maximum, allowance, period = self._sub_limits(a.parent, token, limits)
        args = (a.address, token, maximum, allowance, period)
        ok = self._attenuated(a.parent, token, maximum, allowance, period)
        if by == "governance" and ok:
            receipt = self._govern(("setSubAgentLimits", args))
        else:
            sender = a.key if by == "self" else pa.key
            receipt = self._tx(env.vault.functions.setSubAgentLimits(*args), sender)
            if by == "self" or pa.status != AGENT_ACTIVE:
                self._assert_reverted(receipt, "NotOwner", sender.address)
                return
            if not ok:
                self._assert_reverted(receipt, "ExceedsParent", pa.address, token)
                if retry and self._attenuated(a.parent, token, 0, 0, 1):
                    self._set_sub_limits(i, token, (*limits[:2], "same", None), by)
                return
            assert receipt["status"] == 1
        old = a.policies.get(token, PolicyModel(0, 0, 0))
        new = old.rewrite(maximum, allowance, period, self.now)
        a.grant(token, new)
        changed = env.event(receipt, "LimitsChanged")
        assert (changed["allowance"], changed["available"]) == (allowance, new.available(self.now))

    def _delegate(
        self,
        parent: int,
        by: str,
        usdc: tuple[int, int, str, str | None],
        eth: tuple[int, int, str, str | None] | None,
    ) -> None:
        """``parent`` (or the owners for it) delegates to a new key, at most three levels below
        an owners' agent; the parent then grants it limits within its own."""
        env = self.env
        pa = self.agents[parent]
        child = self._fresh_key()
        args = (pa.address, child.address, 0, 0, False)
        too_deep = self._depth(parent) + 1 > MAX_DEPTH
        if by == "governance" and not too_deep:
            receipt = self._govern(("addSubAgent", args))
        else:
            by = "parent"
            receipt = self._tx(env.vault.functions.addSubAgent(*args), pa.key)
            if pa.status != AGENT_ACTIVE:
                self._assert_reverted(receipt, "NotOwner", pa.address)
                return
            if too_deep:
                self._assert_reverted(receipt, "TooDeep", MAX_DEPTH)
                return
            assert receipt["status"] == 1
        self.lineage_count += 1
        added = env.event(receipt, "SubAgentAdded")
        assert (added["parent"], added["child"]) == (pa.address, child.address)
        assert added["lineage"] == self.lineage_count
        self.agents.append(AgentModel(child, self.lineage_count, parent, sub=True))
        self._set_sub_limits(len(self.agents) - 1, self.usdc, usdc, by, retry=True)
        if eth is not None:
            self._set_sub_limits(len(self.agents) - 1, ETH, eth, by, retry=True)

    @initialize(usdc=LIMITS, eth=st.one_of(st.none(), LIMITS))
    def first_sub_agent(
        self,
        usdc: tuple[int, int, str, str | None],
        eth: tuple[int, int, str, str | None] | None,
    ) -> None:
        """Every sequence starts with one sub-agent under the owners' agent."""
        self._delegate(0, "parent", usdc, eth)

    @precondition(lambda self: self._room_for_agents() and bool(self._live()))
    @rule(
        data=st.data(),
        by=st.sampled_from(["parent", "parent", "parent", "governance"]),
        usdc=LIMITS,
        eth=st.one_of(st.none(), LIMITS),
    )
    def add_sub_agent(
        self,
        data: st.DataObject,
        by: str,
        usdc: tuple[int, int, str, str | None],
        eth: tuple[int, int, str, str | None] | None,
    ) -> None:
        """Any live agent (paused ones are refused unless the owners act for them)."""
        self._delegate(data.draw(st.sampled_from(self._live())), by, usdc, eth)

    def _room_for_agents(self) -> bool:
        return len(self._live()) < MAX_AGENTS and len(self.agents) < 2 * MAX_AGENTS

    @precondition(lambda self: self._room_for_agents() and bool(self._live_subs()))
    @rule(usdc=LIMITS, eth=st.one_of(st.none(), LIMITS), too_deep=st.booleans())
    def delegate_deeper(
        self,
        usdc: tuple[int, int, str, str | None],
        eth: tuple[int, int, str, str | None] | None,
        too_deep: bool,
    ) -> None:
        """The deepest live agent that may still delegate does (or, with ``too_deep``, the
        deepest of all: three levels are the most, a fourth is refused)."""
        may = [i for i in self._live() if self._depth(i) < MAX_DEPTH]
        deepest = max(self._live() if too_deep or not may else may, key=self._depth)
        self._delegate(deepest, "parent", usdc, eth)

    def _live_subs(self) -> list[int]:
        return [i for i in self._live() if self.agents[i].parent is not None]

    @precondition(lambda self: bool(self._live_subs()))
    @rule(
        data=st.data(),
        by=st.sampled_from(["parent", "parent", "governance", "self"]),
        token=st.sampled_from([0, 0, 1]),
        limits=LIMITS,
    )
    def set_sub_agent_limits(
        self, data: st.DataObject, by: str, token: int, limits: tuple[int, int, str, str | None]
    ) -> None:
        """New limits for a sub-agent (raises within the parent, cuts); the sub-agent cannot
        set its own."""
        i = data.draw(st.sampled_from(self._live_subs()))
        self._set_sub_limits(i, self.tokens[token], limits, by)

    @precondition(lambda self: self.agents[0].alive)
    @rule(
        token=st.sampled_from([0, 0, 1]),
        max_pct=st.integers(0, 200),
        allowance_pct=st.one_of(st.integers(0, 300), st.sampled_from([0, 100, 300])),
        period=PERIODS,
    )
    def set_limits_through_governance(
        self, token: int, max_pct: int, allowance_pct: int, period: int
    ) -> None:
        """The owners set the owners' agent's limits (raises and cuts, any period; a removed
        token comes back in scope with the budget its word kept). Its sub-agents keep theirs:
        the shared budget caps them whatever they are."""
        address = self.tokens[token]
        base_max, base_allowance = BASE[token]
        maximum, allowance = base_max * max_pct // 100, base_allowance * allowance_pct // 100
        a = self.agents[0]
        receipt = self._govern(("setLimits", (a.address, address, maximum, allowance, period)))
        old = a.policies.get(address, PolicyModel(0, 0, 0))
        new = old.rewrite(maximum, allowance, period, self.now)
        a.grant(address, new)
        assert self.env.event(receipt, "LimitsChanged")["available"] == new.available(self.now)

    @precondition(lambda self: bool(self._live()))
    @rule(
        data=st.data(),
        token=st.sampled_from([0, 0, 1]),
        by=st.sampled_from(["owner", "ancestor"]),
        share=SHARES,
    )
    def remove_token(self, data: st.DataObject, token: int, by: str, share: int) -> None:
        """One owner or an agent above takes a token out of an agent's scope: its own and its
        descendants' payments in it escalate (the word keeps its budget state)."""
        env = self.env
        i = data.draw(st.sampled_from(self._live()))
        a = self.agents[i]
        address = self.tokens[token]
        in_scope = [t for t in self.tokens if t in a.policies and a.policies[t].in_scope]
        if in_scope and share % 4:  # mostly a token in scope (else: TokenNotInScope)
            address = in_scope[token % len(in_scope)]
        above = self._ancestors(i)
        if by == "ancestor" and above:
            sender = self.agents[data.draw(st.sampled_from(above))].key
        else:
            sender = env.owners[share % 3]
        receipt = self._tx(env.vault.functions.removeToken(a.address, address), sender)
        p = a.policies.get(address)
        if p is None or not p.in_scope:
            self._assert_reverted(receipt, "TokenNotInScope", a.address, address)
            return
        assert receipt["status"] == 1
        p.in_scope = False
        self._descendant_pays(i, data, share, address)

    @precondition(lambda self: bool(self._live()))
    @rule(
        data=st.data(),
        token=st.sampled_from([0, 0, 1]),
        max_share=st.integers(0, 100),
        allowance_share=st.sampled_from([0, 10, 50, 90, 100]),
        by=st.sampled_from(["owner", "owner", "ancestor", "ancestor", "self"]),
        then=st.sampled_from([None, "descendant_pays", "descendant_pays"]),
        share=SHARES,
    )
    def reduce_limits(
        self,
        data: st.DataObject,
        token: int,
        max_share: int,
        allowance_share: int,
        by: str,
        then: str | None,
        share: int,
    ) -> None:
        """One owner, or any live agent above, cuts an agent's limits (the agent itself
        cannot); often one of its descendants pays right after: the cut holds at once."""
        env = self.env
        i = data.draw(st.sampled_from(self._live()))
        a = self.agents[i]
        address = self.tokens[token]
        above = self._ancestors(i)
        if by == "self":
            sender = a.key
        elif by == "ancestor" and above:
            sender = self.agents[data.draw(st.sampled_from(above))].key
        else:
            by, sender = "owner", env.owners[max_share % 3]
        p = a.policies.get(address)
        maximum = p.maximum * max_share // 100 if p else 0
        allowance = p.allowance * allowance_share // 100 if p else 0
        fn = env.vault.functions.reduceLimits(a.address, address, maximum, allowance)
        receipt = self._tx(fn, sender)
        if by == "self":
            self._assert_reverted(receipt, "NotOwner", a.address)
            return
        if p is None or not p.in_scope:
            self._assert_reverted(receipt, "TokenNotInScope", a.address, address)
            return
        assert receipt["status"] == 1
        new = p.rewrite(maximum, allowance, p.period, self.now)
        assert new.budget(self.now) <= p.budget(self.now)
        a.policies[address] = new
        changed = env.event(receipt, "LimitsChanged")
        assert changed["available"] == new.available(self.now)
        if then == "descendant_pays":
            self._descendant_pays(i, data, share, address)

    @precondition(lambda self: bool(self._live_subs()))
    @rule(data=st.data(), token=st.sampled_from([0, 0, 1]), share=SHARES)
    def split_across_siblings(self, data: st.DataObject, token: int, share: int) -> None:
        """Every live sub-agent under one agent pays a share of its own room, one after the
        other: together they stay within the parent's (and every ancestor's) budget."""
        parents = sorted({self.agents[i].parent for i in self._live_subs()} - {None})
        parent = data.draw(st.sampled_from(parents))
        address = self.tokens[token]
        for j in self._live_subs():
            if self.agents[j].parent == parent:
                amount = max(self._room(j, address) * share // 100, 1)
                self._pay(self.agents[j].key, address, amount, j % 2)

    def _chain_room(self, i: int, token: str) -> int:
        """What one payment of the agent may move at the next block by its word and every
        word above it."""
        return min(self._room(j, token) for j in [i, *self._ancestors(i)])

    @precondition(lambda self: bool(self._live_subs()))
    @rule(
        data=st.data(),
        token=st.sampled_from([0, 0, 1]),
        share=SHARES,
        deepest=st.booleans(),
        chain=st.sampled_from([True, True, False]),
        intent=st.booleans(),
        nonce=NONCES,
    )
    def sub_agent_pays(
        self,
        data: st.DataObject,
        token: int,
        share: int,
        deepest: bool,
        chain: bool,
        intent: bool,
        nonce: int,
    ) -> None:
        """A sub-agent (often the deepest) pays a share of what its word and those above it
        allow (or of its own room only), directly or by a relayed intent."""
        subs = self._live_subs()
        i = max(subs, key=self._depth) if deepest else data.draw(st.sampled_from(subs))
        address = self.tokens[token]
        room = self._chain_room(i, address) if chain else self._room(i, address)
        total = max(room * share // 100, 1)
        if intent:
            self._intent(i, address, total, 10, nonce, "fresh", False, data)
        else:
            self._pay(self.agents[i].key, address, total, share % 2)

    def _may_pay(self, i: int) -> bool:
        """Whether the agent and every agent above it are active (and the vault is not paused)."""
        chain = [i, *self._ancestors(i)]
        return not self.paused and all(self.agents[j].status == AGENT_ACTIVE for j in chain)

    @precondition(lambda self: any(self._may_pay(i) for i in range(len(self.agents))))
    @rule(
        data=st.data(),
        token=st.sampled_from([0, 0, 1]),
        share=st.integers(1, 100),
        intent=st.booleans(),
        nonce=NONCES,
    )
    def spend_within_the_limits(
        self, data: st.DataObject, token: int, share: int, intent: bool, nonce: int
    ) -> None:
        """An agent whose whole chain may pay spends a share of what every word above it
        allows: it pays (so budgets are often partly spent when limits change or siblings
        pay)."""
        i = data.draw(st.sampled_from([j for j in range(len(self.agents)) if self._may_pay(j)]))
        address = self.tokens[token]
        total = max(self._chain_room(i, address) * share // 100, 1)
        if intent:
            self._intent(i, address, total, share % 20, nonce, "fresh", False, data)
        else:
            self._pay(self.agents[i].key, address, total, share % 2)

    def _descendant_pays(
        self, i: int, data: st.DataObject, share: int, address: str | None = None
    ) -> None:
        """Right after a brake or cut on agent ``i``: one of its descendants tries to pay."""
        below = [j for j in self._subtree(i) if j != i]
        if below:
            j = data.draw(st.sampled_from(below))
            address = address or self.tokens[share % 2]
            amount = max(self._chain_room(j, address) * share // 100, 1)
            self._pay(self.agents[j].key, address, amount, share % 2)

    # ---------------------------------------------------------------- rules: brakes

    @precondition(lambda self: bool(self._active()))
    @rule(data=st.data(), owner=st.integers(0, 2), share=SHARES)
    def pause_agent(self, data: st.DataObject, owner: int, share: int) -> None:
        """One owner pauses any agent: its subtree cannot pay either, at once."""
        i = data.draw(st.sampled_from(self._active()))
        fn = self.env.vault.functions.pauseAgent(self.agents[i].address)
        assert self._tx(fn, self.env.owners[owner])["status"] == 1
        self.agents[i].status = AGENT_PAUSED
        self._descendant_pays(i, data, share)

    @precondition(lambda self: any(a.status == AGENT_PAUSED for a in self.agents))
    @rule(data=st.data())
    def unpause_agent_through_governance(self, data: st.DataObject) -> None:
        paused = [i for i, a in enumerate(self.agents) if a.status == AGENT_PAUSED]
        i = data.draw(st.sampled_from(paused))
        self._govern(("unpauseAgent", (self.agents[i].address,)))
        self.agents[i].status = AGENT_ACTIVE

    @precondition(lambda self: not self.paused)
    @rule(owner=st.integers(0, 2), release=st.sampled_from([True, True, False]))
    def pause_vault(self, owner: int, release: bool) -> None:
        """One owner pauses the vault; usually the owners lift it again at once (after the
        probes saw every key stopped), so that sequences do not spend most steps paused."""
        assert self._tx(self.env.vault.functions.pause(), self.env.owners[owner])["status"] == 1
        self.paused = True
        if release:
            self.simulated_payments_follow_the_model()
            self.unpause_vault_through_governance()

    @precondition(lambda self: self.paused)
    @rule()
    def unpause_vault_through_governance(self) -> None:
        self._govern(("unpause", ()))
        self.paused = False

    @precondition(lambda self: bool(self._live_subs()))
    @rule(
        data=st.data(),
        by=st.sampled_from(["owner", "owner", "ancestor", "descendant", "old_ancestor_key"]),
        share=SHARES,
    )
    def revoke(self, data: st.DataObject, by: str, share: int) -> None:
        """One owner, or any live agent above, revokes a sub-agent and with it its whole
        subtree; an agent below (or the agent itself), or a key an agent above rotated away
        from, cannot. (The owners' agent stays: its revocation is test_properties.py's.)"""
        env = self.env
        i = data.draw(st.sampled_from(self._live_subs()))
        a = self.agents[i]
        above = self._ancestors(i)
        below = [j for j in self._subtree(i) if self.agents[j].alive]
        if by == "ancestor" and above:
            sender = self.agents[data.draw(st.sampled_from(above))].key
        elif by == "descendant":
            sender = self.agents[data.draw(st.sampled_from(below))].key
        elif by == "old_ancestor_key" and any(self.agents[j].old_keys for j in above):
            old_keys = [k for j in above for k in self.agents[j].old_keys]
            sender = data.draw(st.sampled_from(old_keys))
        else:
            by, sender = "owner", env.owners[i % 3]
        receipt = self._tx(env.vault.functions.revokeAgent(a.address), sender)
        if by in ("descendant", "old_ancestor_key"):
            self._assert_reverted(receipt, "NotOwner", sender.address)
            return
        assert receipt["status"] == 1
        changed = env.events(receipt, "AgentStatusChanged")
        assert sorted(e["agent"] for e in changed) == sorted(self.agents[j].address for j in below)
        assert all(e["status"] == AGENT_REVOKED for e in changed)
        for j in below:
            b = self.agents[j]
            b.status, b.sub = AGENT_REVOKED, False
            for policy in b.policies.values():
                policy.in_scope = False
        self._descendant_pays(i, data, share)

    @precondition(lambda self: any(a.old_keys for a in self.agents))
    @rule(data=st.data(), action=st.sampled_from(["pauseAgent", "revokeAgent"]))
    def owner_acts_on_a_rotated_away_key(self, data: st.DataObject, action: str) -> None:
        """A key rotated away is no agent any more: pausing or revoking it is refused (and
        leaves the agent under its new key untouched)."""
        old = data.draw(st.sampled_from([k for a in self.agents for k in a.old_keys]))
        fn = self.env.vault.functions[action](old.address)
        receipt = self._tx(fn, self.env.owners[0])
        self._assert_reverted(receipt, "AgentNotActive", old.address, AGENT_ROTATED)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def balances_match(self) -> None:
        usdc = self.env.usdc
        holders = [*self.holders, self.relayer.address]
        requests: list[tuple[str, list[Any]]] = [
            self._call_request(*self._encode((usdc, "balanceOf", (h,)))[:2], None, None)
            for h in holders
        ]
        requests += [("eth_getBalance", [h, "latest"]) for h in self.holders]
        actual = [int(str(r["result"]), 16) for r in self._rpc_batch(requests)]
        expected = [self.balances[(self.usdc, h)] for h in self.holders] + [self.relayer_usdc]
        expected += [self.balances[(ETH, h)] for h in self.holders]
        assert actual == expected
        assert self.balances[(ETH, self.env.vault.address)] <= VAULT_ETH

    @invariant()
    def agents_match(self) -> None:
        """Every key's record and policies: live and revoked agents under their current key,
        rotated-away keys dead with nothing in scope and pointing at the current key; the
        agent list and each agent's sub-agents."""
        vault = self.env.vault
        calls: list[Any] = [(vault, "getAgents", ())]
        expected: list[Any] = [sorted(a.address.lower() for a in self.agents if a.alive)]
        for i, a in enumerate(self.agents):
            parent = ZERO
            if a.alive and a.parent is not None:
                parent = self.agents[a.parent].address
            calls.append((vault, "getAgent", (a.address,)))
            expected.append((a.status, False, 0, 0, self._open(i), a.lineage, parent.lower()))
            calls.append((vault, "getSubAgents", (a.address,)))
            kids = [b.address for b in self.agents if b.alive and b.parent == i]
            expected.append(sorted(k.lower() for k in kids) if a.alive else [])
            calls.append((vault, "getAgentTokens", (a.address,)))
            in_scope = [t for t, p in a.policies.items() if p.in_scope]
            expected.append(sorted(t.lower() for t in in_scope))
            for token in self.tokens:
                p = a.policies.get(token)
                calls.append((vault, "getPolicy", (a.address, token)))
                if p is not None and p.in_scope:
                    expected.append((p.maximum, p.allowance, p.period, p.budget(self.block_time)))
                else:
                    expected.append((0, 0, 0, 0))
            for old in a.old_keys:
                calls.append((vault, "getAgent", (old.address,)))
                expected.append((AGENT_ROTATED, a.lineage))
                calls.append((vault, "currentKey", (old.address,)))
                expected.append(a.address.lower())
                calls += [(vault, "getPolicy", (old.address, t)) for t in self.tokens]
                expected += [(0, 0, 0, 0)] * len(self.tokens)
        for call, value, want in zip(calls, self._views(*calls), expected, strict=True):
            if call[1] == "getAgent" and len(want) == 2:
                value = (value[0], value[5])
            elif call[1] in ("getAgents", "getSubAgents", "getAgentTokens"):
                value = sorted(str(v).lower() for v in value)
            elif isinstance(value, str):
                value = value.lower()
            elif call[1] == "getAgent":
                value = (*value[:6], str(value[6]).lower())
            assert value == want, f"{call[1]}{call[2]}: {value} != {want}"

    @invariant()
    def requests_match(self) -> None:
        vault = self.env.vault
        *statuses, count = self._views(
            *((vault, "paymentStatus", (self.env.rq.req(rid),)) for rid in self.requests),
            (vault, "requestCount", ()),
        )
        for (rid, r), status in zip(self.requests.items(), statuses, strict=True):
            if not self.agents[r.agent].alive:
                assert status == AGENT_REVOKED_REQUEST, f"request {rid}"
            else:
                assert status == (EXPIRED if self.block_time > r.expires_at else PENDING), rid
        assert count == self.next_id - 1

    @invariant()
    def nonces_match(self) -> None:
        """Every bitmap word the model knows, exactly (a used nonce stays used, nothing else
        gets used)."""
        vault = self.env.vault
        words = [(key, pos, bits) for key, ws in self.nonces.items() for pos, bits in ws.items()]
        if not words:
            return
        actual = self._views(*((vault, "nonceBitmap", (key, pos)) for key, pos, _ in words))
        assert actual == [bits for _, _, bits in words]

    @invariant()
    def simulated_payments_follow_the_model(self) -> None:
        """Every key pays, simulated at the next block time: 1 unit, what its own word allows,
        and what the tightest word above it allows, in tUSDC and ETH; rotated-away keys 1 unit.
        Each must pay, escalate or revert exactly as the model says (a stale FAST flag, a
        missed ancestor, a cut that does not hold show up here)."""
        env = self.env
        at = self.now + 1
        probes: list[tuple[str, str, int]] = []
        for i, a in enumerate(self.agents):
            for token in self.tokens:
                chain = [self._room(j, token) for j in [i, *self._ancestors(i)]]
                for amount in sorted({1, chain[0], min(chain), min(chain) + 1}):
                    probes.append((a.address, token, amount))
            probes += [(k.address, self.usdc, 1) for k in a.old_keys]
        to = self.recipients[0]
        responses = self._eth_calls(
            [
                ((env.vault, "pay", (token, to, amount, ref("probe"))), key, at)
                for key, token, amount in probes
            ]
        )
        for (key, token, amount), response in zip(probes, responses, strict=True):
            verdict = self._predict(key, token, amount, at)
            where = f"simulated pay of {amount} of {token} by {key} at {at}"
            if verdict.error is not None:
                error = response.get("error")
                assert error is not None, f"{where}: expected {verdict}, it did not revert"
                name, args = decode_error(bytes.fromhex(str(error.get("data", "0x"))[2:]))
                assert (name, *args) == verdict.error, f"{where}: {name}{args} != {verdict}"
            else:
                assert "error" not in response, f"{where}: expected {verdict}, {response}"
                request_id = int(response["result"], 16)
                expected = 0 if verdict.writes is not None else self.next_id
                assert request_id == expected, f"{where}: expected {verdict}, got {request_id}"

    @invariant()
    def subtree_spending_stays_within_the_budget(self) -> None:
        """Independently of the model's words: over any window [t_i, t_j] what an agent and all
        its descendants paid (amount plus relay fee) stays within the largest allowance it ever
        had plus the window at the fastest refill rate it ever had."""
        for i, a in enumerate(self.agents):
            for token in self.tokens:
                paid = [
                    (t, charge)
                    for payer, tok, t, charge in self.payments
                    if tok == token and (payer == i or i in self._ancestors(payer))
                ]
                if not paid:
                    continue
                cap, rate = a.max_allowance[token], a.max_rate.get(token, Fraction(0))
                for k, (start, _) in enumerate(paid):
                    total = 0
                    for end, charge in paid[k:]:
                        total += charge
                        assert total <= cap + rate * (end - start), (
                            f"agent {i} and its subtree paid {total} of {token} in [{start}, {end}]"
                        )


def test_delegation_sequences_follow_the_model(anvil_env: Env) -> None:
    DelegationMachine.env = anvil_env
    profile = settings.get_profile("contracts")
    run_state_machine_as_test(
        DelegationMachine, settings=settings(profile, stateful_step_count=STEPS)
    )
