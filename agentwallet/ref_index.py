"""Which refs an agent's payments used on-chain, without re-reading its whole history.

``pay`` with a caller's ref must know whether that ref already paid (from another process or
machine, or before the journal was pruned). Reading every ``PaymentExecuted`` and
``PaymentRequested`` of the agent since the vault was created grows with the agent's history
(seconds at a thousand payments). :class:`RefIndex` keeps what it has read in a small SQLite file
under ``$AGENTWALLET_HOME`` and reads only the blocks since its last look, per (chain, vault,
agent):

- each lookup asks the head and reads the agent's two events from ``min(cursor + 1,
  head - reorg_depth)`` to the head (two filtered ``eth_getLogs`` of a few blocks);
- the last ``reorg_depth`` blocks (default 64) are read again every time, and rows in them are
  replaced, so a payment moved or dropped by a reorg of that depth is seen where it is now;
- a hit is a *candidate*: the caller checks its transaction's receipt before trusting it (the
  agent does), so a row left by a deeper reorg answers nothing.

A look after the first reads the vault's logs once, unfiltered by event (one ``eth_getLogs``
plus the head), and hands them to ``also`` (the agent's :class:`~agentwallet.hotpath.PolicyCache`,
which would otherwise read the vault's new logs again right after): one log read per payment
with a caller's ref. The range is the reorg window as above, extended down to the first block
``also`` has not seen; it holds every agent's logs of those blocks (on a vault many agents pay
from at once, more bytes than the agent's own events, in one round trip instead of three). A
look that has more than :data:`SHARED_READ_MAX` blocks to read (the first, or after a long
pause) reads the agent's own events only, as the first look does.

The file is a cache: a damaged one is moved aside (``refs.sqlite.damaged-<time>``) and rebuilt
from the chain. Several processes
may share it (SQLite locking; rows are keyed by transaction and log index)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agentwallet import request_log
from agentwallet.audit.logs import LogReader, RawLog, log_source
from agentwallet.bindings.artifacts import abi_of
from agentwallet.bindings.vault import ARTIFACT, event_topic
from agentwallet.errors import AgentWalletError
from agentwallet.protocol.addresses import checksum

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet
    from agentwallet.chain.connection import Chain
    from agentwallet.protocol.models import PaymentOutcome

__all__ = [
    "REORG_DEPTH",
    "SHARED_READ_MAX",
    "LogConsumer",
    "RefHit",
    "RefIndex",
    "RefIndexError",
    "earlier_payment",
    "lookup",
]

logger = logging.getLogger(__name__)

#: Blocks read again on every lookup (a reorg at most this deep is followed exactly).
REORG_DEPTH = 64
#: The most blocks (the reorg window included) a look reads with every log of the vault
#: (shared with the policy cache); a longer range is read filtered to the agent's own events.
SHARED_READ_MAX = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (
    chain_id INTEGER NOT NULL, vault TEXT NOT NULL, agent TEXT NOT NULL, block INTEGER NOT NULL,
    PRIMARY KEY (chain_id, vault, agent)
);
CREATE TABLE IF NOT EXISTS refs (
    chain_id INTEGER NOT NULL, vault TEXT NOT NULL, agent TEXT NOT NULL, ref BLOB NOT NULL,
    event TEXT NOT NULL, block INTEGER NOT NULL, tx BLOB NOT NULL, log_index INTEGER NOT NULL,
    token TEXT NOT NULL, recipient TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (chain_id, vault, tx, log_index)
);
CREATE INDEX IF NOT EXISTS refs_by_ref ON refs (chain_id, vault, agent, ref);
CREATE INDEX IF NOT EXISTS refs_by_block ON refs (chain_id, vault, agent, block);
"""


class RefIndexError(AgentWalletError):
    """The ref index file cannot be read or written (the message names it and what to do)."""


class LogConsumer(Protocol):
    """Another reader of the vault's logs that a ref lookup feeds (module text)."""

    def wants_from(self) -> int | None:
        """The first block whose vault logs it has not seen; None if it wants none."""

    def take(self, logs: Sequence[RawLog], first: int, head: int) -> None:
        """Every log of the vault in blocks ``first`` to ``head`` (oldest first)."""


@dataclass(frozen=True)
class RefHit:
    """One of the agent's logs that carries the ref: ``event`` is ``PaymentExecuted`` or
    ``PaymentRequested``; check ``tx_hash``'s receipt before trusting it."""

    event: str
    block_number: int
    tx_hash: bytes
    log_index: int
    token: str
    to: str
    amount: int


@dataclass(frozen=True)
class _Layout:
    """Where an event's fields sit: topic index for indexed ones, 32-byte word of the data
    for the others (all the fields read here are static)."""

    agent_topic: int
    token_topic: int
    to: tuple[str, int]
    amount: int
    ref: int


@cache
def _layout(event: str) -> _Layout:
    entry = next(e for e in abi_of(ARTIFACT) if e.get("type") == "event" and e["name"] == event)
    topic, word, where = 1, 0, {}
    for field in entry["inputs"]:
        if field["indexed"]:
            where[field["name"]] = ("topic", topic)
            topic += 1
        else:
            if field["type"] in ("bytes", "string") or field["type"].endswith("]"):
                raise AssertionError(f"{event}.{field['name']} is not a static field")
            where[field["name"]] = ("data", word)
            word += 1

    def position(name: str, kind: str) -> int:
        found_kind, index = where[name]
        if found_kind != kind:
            raise AssertionError(f"{event}.{name} is not in the {kind}")
        return index

    return _Layout(
        agent_topic=position("agent", "topic"),
        token_topic=position("token", "topic"),
        to=where["to"],
        amount=position("amount", "data"),
        ref=position("ref", "data"),
    )


def _word(data: bytes, index: int) -> bytes:
    return data[32 * index : 32 * index + 32]


def _address(word: bytes) -> str:
    """Lowercase: checksummed only for the hits a lookup returns (checksums cost CPU)."""
    return "0x" + word[12:].hex()


_EVENTS = ("PaymentExecuted", "PaymentRequested")


class RefIndex:
    """The refs of agents' payments and escalations, by (chain, vault, agent), read from the
    vault's logs incrementally (see the module text)."""

    def __init__(self, path: Path, *, reorg_depth: int = REORG_DEPTH) -> None:
        self.path = path
        self.reorg_depth = reorg_depth
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            # a cache rebuilt from the chain: no fsync per lookup, readers never block
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _open_or_replace(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            if not self.path.is_file():
                raise self._error(exc) from None
            # a damaged cache: keep it aside for a look, start a new one from the chain
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            logger.warning("ref index %s unreadable (%s): moved to %s", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
                return self._open()
            except (OSError, sqlite3.DatabaseError) as again:
                raise self._error(again) from None
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> RefIndexError:
        return RefIndexError(
            f"the ref index {self.path} cannot be used ({exc}): it is a cache, delete it (or "
            "make its folder writable) and retry; it is rebuilt from the chain"
        )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self._db = self._open_or_replace()
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                self.close()
                raise self._error(exc) from None

    def close(self) -> None:
        """Close the file (it reopens on the next lookup)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def find(  # noqa: PLR0913
        self,
        chain: Chain,
        vault: str,
        agent: str,
        ref: bytes,
        start: int,
        also: LogConsumer | None = None,
    ) -> list[RefHit]:
        """The agent's logs with ``ref`` (oldest first), after bringing the index up to the
        head (:meth:`sync`); ``start`` is the vault's deployment block (where a first look
        begins)."""
        vault, agent = checksum(vault), checksum(agent)
        self.sync(chain, vault, agent, start, also)
        with self._connection() as db:
            rows = db.execute(
                "SELECT event, block, tx, log_index, token, recipient, amount FROM refs "
                "WHERE chain_id = ? AND vault = ? AND agent = ? AND ref = ? "
                "ORDER BY block, log_index",
                (chain.chain_id, vault, agent, ref),
            ).fetchall()
        return [
            RefHit(e, b, bytes(t), i, checksum(tok), checksum(to), int(a))
            for e, b, t, i, tok, to, a in rows
        ]

    def sync(
        self, chain: Chain, vault: str, agent: str, start: int, also: LogConsumer | None = None
    ) -> int:
        """Read the agent's payment logs the index has not seen (plus the last ``reorg_depth``
        blocks again); the head block read to. After the first look the vault's logs are read
        once, for this index and ``also`` (the module text)."""
        key = (chain.chain_id, vault, agent)
        with self._connection() as db:
            row = db.execute(
                "SELECT block FROM cursor WHERE chain_id = ? AND vault = ? AND agent = ?", key
            ).fetchone()
        head = log_source(chain).head()
        begin = start if row is None else max(start, min(row[0] + 1, head - self.reorg_depth))
        if row is not None and row[0] > head:  # the chain is shorter than what was read
            begin = max(start, head - self.reorg_depth)
        wanted = also.wants_from() if also is not None else None
        first = begin if wanted is None else max(start, min(begin, wanted))
        hits: list[tuple[bytes, RefHit]] = []
        if row is None or head - first >= SHARED_READ_MAX:  # the agent's two events only
            hits = self._read(chain, vault, agent, begin, head) if begin <= head else []
        else:
            logs = _vault_logs(chain, vault, first, head) if first <= head else []
            if also is not None:
                also.take(logs, first, head)
            hits = _agent_hits(logs, agent, begin)
        with self._connection() as db, db:
            db.execute(
                "DELETE FROM refs WHERE chain_id = ? AND vault = ? AND agent = ? AND block >= ?",
                (*key, begin),
            )
            db.executemany(
                "INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *key,
                        ref,
                        h.event,
                        h.block_number,
                        h.tx_hash,
                        h.log_index,
                        h.token,
                        h.to,
                        str(h.amount),
                    )  # fmt: skip
                    for ref, h in hits
                ],
            )
            db.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?, ?, ?)", (*key, head))
        return head

    def _read(
        self, chain: Chain, vault: str, agent: str, begin: int, end: int
    ) -> list[tuple[bytes, RefHit]]:
        agent_topic = bytes(12) + bytes.fromhex(agent[2:])
        reader = LogReader(log_source(chain))  # raw logs: no web3 formatting per log
        out: list[tuple[bytes, RefHit]] = []
        for event in _EVENTS:
            layout = _layout(event)
            topics: list[Any] = [event_topic(event)] + [None] * (layout.agent_topic - 1)
            topics.append(agent_topic)
            for _, _, logs in reader.chunks(begin, end, [vault], topics):
                out += [_hit(event, layout, log) for log in logs]
        out.sort(key=lambda item: (item[1].block_number, item[1].log_index))
        return out


def _vault_logs(chain: Chain, vault: str, first: int, head: int) -> list[RawLog]:
    """Every log of ``vault`` in blocks ``first`` to ``head`` (one ``eth_getLogs`` when the
    node accepts the range)."""
    reader = LogReader(log_source(chain))
    return [log for _, _, logs in reader.chunks(first, head, [vault], []) for log in logs]


def _agent_hits(logs: Sequence[RawLog], agent: str, begin: int) -> list[tuple[bytes, RefHit]]:
    """The agent's ``PaymentExecuted`` and ``PaymentRequested`` among ``logs``, from ``begin``."""
    agent_topic = bytes(12) + bytes.fromhex(agent[2:])
    wanted = {event_topic(event): (event, _layout(event)) for event in _EVENTS}
    out = []
    for log in logs:
        found = wanted.get(log.topics[0]) if log.topics else None
        if found is None or log.block_number < begin:
            continue
        event, layout = found
        if len(log.topics) > layout.agent_topic and log.topics[layout.agent_topic] == agent_topic:
            out.append(_hit(event, layout, log))
    return out


def _hit(event: str, layout: _Layout, log: RawLog) -> tuple[bytes, RefHit]:
    topics, data = log.topics, log.data
    kind, index = layout.to
    to = _address(topics[index] if kind == "topic" else _word(data, index))
    return _word(data, layout.ref), RefHit(
        event=event,
        block_number=log.block_number,
        tx_hash=bytes.fromhex(log.tx_hash[2:]),
        log_index=log.log_index,
        token=_address(topics[layout.token_topic]),
        to=to,
        amount=int.from_bytes(_word(data, layout.amount), "big"),
    )


def earlier_payment(wallet: AgentWallet, ref: bytes) -> PaymentOutcome | None:
    """An earlier payment or request of ``wallet``'s agent with ``ref``, from the vault's logs
    through the ref index (:mod:`agentwallet.ref_index`: only the blocks since its last look
    are read). A ``PaymentExecuted`` followed by ``RequestExecuted`` in its transaction is
    the owners' execution of an escalated request, not this agent's payment: skipped (its
    request's ``PaymentRequested`` answers the ref). A hit whose transaction is no longer
    mined (a reorg deeper than the index re-reads) answers nothing. The logs read also
    refresh the wallet's ``policy_cache`` (:func:`lookup`)."""
    return lookup(wallet, ref)[0]


class _Feed:
    """Hands the logs a lookup read to the wallet's ``policy_cache``; ``head``: the block it
    was brought up to (None if it took nothing)."""

    def __init__(self, wallet: AgentWallet) -> None:
        self.cache = wallet.policy_cache
        self.head: int | None = None

    def wants_from(self) -> int | None:
        return self.cache.wants_from()

    def take(self, logs: Sequence[RawLog], first: int, head: int) -> None:
        if self.cache.take(logs, first, head):
            self.head = head


def lookup(wallet: AgentWallet, ref: bytes) -> tuple[PaymentOutcome | None, int | None]:
    """:func:`earlier_payment`, and the block up to which the logs it read brought the
    wallet's ``policy_cache`` (its next ``approve(..., polled_to=)`` need not read them again),
    None if they did not."""
    bindings = wallet.vault.bindings
    feed = _Feed(wallet)
    try:
        hits = wallet.refs.find(
            wallet.chain,
            wallet.vault.address,
            wallet.address,
            ref,
            request_log.deployment_block(wallet.vault),
            feed,
        )
    except RefIndexError:
        raise
    except Exception:  # noqa: BLE001 - nodes without log support: rely on the journal
        return None, None
    fed = feed.head
    for hit in hits:
        receipt = wallet.chain.transactor.receipt(hit.tx_hash)
        if receipt is None or receipt["status"] != 1:
            continue
        if hit.event == "PaymentExecuted" and bindings.executed_request_ids(receipt):
            continue
        info = wallet.vault.token(hit.token)
        return wallet._result(receipt, info, hit.to, hit.amount, ref), fed
    return None, fed
