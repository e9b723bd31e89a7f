"""The agent's payment hot path: the policy checked locally from cached vault state.

A within-limit payment needs the node twice (send, receipt) plus one ``eth_getLogs`` that keeps
the cache fresh. :class:`PolicyCache` holds, per token, what the full check read from the vault
(``getPolicy``, ``checkPayment`` per recipient, the vault's balance, the gas the dry run
measured) and the agent's record (status, validity window). It is updated locally after each of
this wallet's own payments, and before each payment from the vault's events since the last
look (with a caller's ref, the ref index's lookup reads them once for both: ``take``):

- another agent's ``PaymentExecuted`` lowers the cached vault balance; one of this agent's
  payments that this cache did not send (another process with the key, a relayed intent)
  lowers the cached budget;
- ``Deposited`` only adds money: ignored (the cache stays conservative);
- any other event of the vault (a limit lowered, a pause, an agent revoked, a token removed, a
  request executed...) throws the cache away: the next payment takes the full path.

The full path (``AgentWallet._prepare``: four ``eth_call``, the balances and the dry run
``eth_estimateGas``) runs for the first payment of each (token, recipient), when the cache is
older than ``max_age`` seconds or its chain was reverted or moved in time, when the payment
would escalate (over the per-payment limit, over the cached budget or the recipient's tested
room: the dry run measures the escalation's larger gas), near the end of the agent's validity
window, and when the vault may not cover it. The contract stays the authority: a payment the
cache approves that the chain escalates ends :class:`Escalated`; one that reverts (state changed
between the last look and the block) raises the typed error and clears the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from agentwallet.bindings.vault import event_topic
from agentwallet.chain.nonces import NONCES
from agentwallet.protocol.addresses import as_checksum

if TYPE_CHECKING:
    from agentwallet.audit.logs import RawLog
    from agentwallet.bindings.vault import AgentRecord
    from agentwallet.chain import Chain
    from agentwallet.protocol.models import PolicyView, TokenInfo
    from agentwallet.vault import Vault

__all__ = ["DEFAULT_MAX_AGE", "WINDOW_MARGIN", "PolicyCache"]

#: Seconds a cached policy is trusted without a full read (events keep it fresh meanwhile).
DEFAULT_MAX_AGE = 60.0
#: Seconds before the end of the agent's validity window from which every payment is checked in
#: full (a transaction may wait that long for its block).
WINDOW_MARGIN = 120


@dataclass
class _TokenState:
    max_per_payment: int
    available: int  #: the budget when read, minus payments since
    vault_balance: int  #: the vault's balance of the token when read, minus payments since
    room: dict[str, int] = field(default_factory=dict)  #: recipient -> amount checkPayment passed
    gas: dict[str, int] = field(default_factory=dict)  #: recipient -> the dry run's gas limit


class PolicyCache:
    """What the vault says about one agent, kept fresh from the vault's events; thread-safe."""

    def __init__(self, chain: Chain, vault: Vault, agent: str, max_age: float) -> None:
        self.chain, self.vault, self.agent, self.max_age = chain, vault, agent, max_age
        self._lock = threading.RLock()
        self._agent_topic = HexBytes(bytes(12) + bytes.fromhex(agent[2:]))
        self._executed = event_topic("PaymentExecuted")
        self._deposited = event_topic("Deposited")
        self._unsettled: dict[str, int] = {}  # token -> amounts sent, receipt not yet seen
        self.clear()

    def clear(self) -> None:
        """Forget everything: the next payment takes the full path."""
        with self._lock:
            self._tokens: dict[str, _TokenState] = {}
            self._read_at = 0.0
            self._epoch = -1
            self._scanned = 0  # the last block whose vault events are accounted for
            self._valid: tuple[int, int] = (0, 0)
            self._clock = 0.0  # chain time - wall time when read
            self._gas_balance = 0
            self._ours: set[bytes] = set()  # hashes this cache sent, not yet seen in the logs

    # ------------------------------------------------------------------ reading

    def fresh(self) -> bool:
        """The cache holds state younger than ``max_age`` from this chain epoch."""
        return (
            self.max_age > 0
            and self._epoch == NONCES.epoch(self.chain)
            and time.monotonic() - self._read_at < self.max_age
        )

    def learn(
        self,
        block: int,
        info: TokenInfo,
        to: str,
        amount: int,
        policy: PolicyView,
        vault_balance: int,
        tx: Mapping[str, Any],
        agent_state: tuple[AgentRecord, int],
    ) -> None:
        """Take what a full check of a direct payment read at or after ``block``: the agent's
        ``policy`` for ``info``, the vault's balance, the payment's transaction ``tx`` (the
        dry run's gas limit and the fees) and ``agent_state`` = (the agent's record, the block
        timestamp); then reserve ``amount`` for the payment about to be sent (:meth:`sent` or
        :meth:`release` follows). Reads the agent's gas balance and probes ``checkPayment``
        with the largest amount the budget allows (how much ``to`` may still receive)."""
        if self.max_age <= 0:
            return
        max_pp, available = policy.max_per_payment, policy.available
        probe = min(max_pp, available)
        bindings = self.vault.bindings
        passed = probe <= amount or not bindings.check_payment(self.agent, info.address, to, probe)
        gas_balance = self.chain.balance(self.agent)
        record, timestamp = agent_state
        with self._lock:
            if not self.fresh():
                self.clear()
                self._scanned = block
                self._read_at = time.monotonic()
                self._epoch = NONCES.epoch(self.chain)
            self._valid = (record.valid_after, record.valid_until)
            self._clock = timestamp - time.time()
            self._gas_balance = gas_balance - int(tx["gas"]) * int(tx["maxFeePerGas"])
            # payments sent and not yet settled may be missing from what was read: count them
            unsettled = self._unsettled.get(info.address, 0)
            available, vault_balance = available - unsettled, vault_balance - unsettled
            state = self._tokens.get(info.address)
            if state is None:
                state = self._tokens[info.address] = _TokenState(max_pp, available, vault_balance)
            state.max_per_payment = max_pp
            state.available = min(state.available, available) - amount
            state.vault_balance = min(state.vault_balance, vault_balance) - amount
            state.room[to] = (probe if passed else amount) - amount
            state.gas[to] = max(int(tx["gas"]), state.gas.get(to, 0))

    def _poll(self) -> bool:
        """Account for the vault's events since the last look; False if one of them makes the
        cache unusable (it is cleared)."""
        try:
            logs = self.chain.w3.eth.get_logs(
                {
                    "address": as_checksum(self.vault.address),
                    "fromBlock": self._scanned + 1,
                    "toBlock": "latest",
                }
            )
        except Exception:  # noqa: BLE001 - a node refusing the range: read everything again
            self.clear()
            return False
        for log in logs:
            topics = [bytes(HexBytes(t)) for t in log["topics"]]
            data, tx_hash = bytes(HexBytes(log["data"])), bytes(HexBytes(log["transactionHash"]))
            if not self._account(topics, data, int(log["blockNumber"]), tx_hash):
                return False
        return True

    def _account(self, topics: Sequence[bytes], data: bytes, block: int, tx_hash: bytes) -> bool:
        """Account for one of the vault's logs (the module text); False if it made the cache
        unusable (it is cleared)."""
        if topics and topics[0] == self._deposited:
            self._scanned = max(self._scanned, block)
            return True
        if not topics or topics[0] != self._executed or len(topics) < 4:
            self.clear()
            return False
        token = as_checksum("0x" + topics[2][12:].hex())
        amount = int.from_bytes(data[:32], "big")
        state = self._tokens.get(token)
        if topics[1] == bytes(self._agent_topic):
            if tx_hash in self._ours:
                self._ours.discard(tx_hash)  # counted when sent
            elif state is not None:  # this agent paid from elsewhere
                state.available -= amount
                state.vault_balance -= amount
        elif state is not None:
            state.vault_balance -= amount
        self._scanned = max(self._scanned, block)
        return True

    # ------------------------------------------------------------------ fed by a ref lookup

    def wants_from(self) -> int | None:
        """The first block whose vault logs this cache has not accounted for; None when it
        holds nothing to keep fresh (``agentwallet.ref_index`` reads from there for both)."""
        with self._lock:
            return self._scanned + 1 if self.fresh() and self._tokens else None

    def take(self, logs: Sequence[RawLog], first: int, head: int) -> bool:
        """Account for ``logs``, every log of the vault in blocks ``first`` to ``head`` (read
        by a ref lookup): then :meth:`approve` with ``polled_to=head`` asks the node nothing.
        False (nothing taken) when the cache holds nothing, the range leaves a gap after what
        it has seen, or a log made it unusable."""
        with self._lock:
            if not self.fresh() or not self._tokens or first > self._scanned + 1:
                return False
            seen = self._scanned
            for log in logs:
                if log.block_number > seen and not self._account(
                    log.topics, log.data, log.block_number, bytes.fromhex(log.tx_hash[2:])
                ):
                    return False
            self._scanned = max(self._scanned, head)
            return True

    # ------------------------------------------------------------------ the hot path

    def approve(
        self, info: TokenInfo, to: str, amount: int, polled_to: int | None = None
    ) -> dict[str, int] | None:
        """If the cached state says the contract pays ``amount`` of ``info`` to ``to`` directly,
        reserve it and return {gas, gas_cost}; else None (take the full path). Asks the node
        for the vault's new events (one ``eth_getLogs``; none when :meth:`take` just brought
        the cache up to ``polled_to``) and, when the agent's gas may be short, its balance."""
        with self._lock:
            if not self.fresh() or not self._tokens:
                return None
            if (polled_to is None or self._scanned < polled_to) and not self._poll():
                return None
            state = self._tokens.get(info.address)
            if state is None or to not in state.room:
                return None
            if (
                amount > state.max_per_payment
                or amount > state.available
                or amount > state.room[to]
                or amount > state.vault_balance
            ):
                return None
            now = int(time.time() + self._clock)
            valid_after, valid_until = self._valid
            if now + 1 < valid_after or (valid_until and now + WINDOW_MARGIN >= valid_until):
                return None
            gas = state.gas[to]
            fees = self.chain.fee_params()
            cost = gas * int(fees["maxFeePerGas"])
            if self._gas_balance < cost:
                self._gas_balance = self.chain.balance(self.agent)
                if self._gas_balance < cost:
                    return None  # the full path raises InsufficientGasError
            self._gas_balance -= cost
            state.available -= amount
            state.vault_balance -= amount
            state.room[to] -= amount
            return {"gas": gas, **fees}

    def sent(self, tx_hash: bytes, info: TokenInfo, amount: int) -> None:
        """Remember a payment this cache reserved as ours (its event is already counted) and
        unsettled until :meth:`settled`."""
        with self._lock:
            self._ours.add(tx_hash)
            self._unsettled[info.address] = self._unsettled.get(info.address, 0) + amount

    def own(self, tx_hash: bytes) -> None:
        """A replacement of one of this cache's payments: its event is already counted."""
        with self._lock:
            self._ours.add(tx_hash)

    def settled(self, info: TokenInfo, amount: int, paid: bool) -> None:
        """A sent payment's receipt came: anything but a direct payment (an escalation, a
        revert) means the cache was wrong about the vault: read it again."""
        with self._lock:
            self._unsettled[info.address] = self._unsettled.get(info.address, 0) - amount
            if not paid:
                self.clear()

    def release(self, info: TokenInfo, to: str, amount: int) -> None:
        """Undo :meth:`approve`'s reservation: the payment was never sent."""
        with self._lock:
            state = self._tokens.get(info.address)
            if state is not None:
                state.available += amount
                state.vault_balance += amount
                if to in state.room:
                    state.room[to] += amount

    def stats(self) -> dict[str, Any]:
        """What is cached (for tests and debugging): tokens, scanned block, age in seconds."""
        with self._lock:
            return {
                "tokens": sorted(self._tokens),
                "scanned": self._scanned,
                "age": time.monotonic() - self._read_at if self._read_at else None,
                "fresh": self.fresh(),
            }
