"""Syncing the audit index from a node: reading overlapped with writing.

A reader thread asks the node for the next block range while the caller's thread writes the
rows of the previous one (the node works and SQLite writes with Python's lock released, so
the two overlap on two cores). The reader decodes each answer straight into rows
(:mod:`agentwallet.audit.rows`) and sizes its next range to about :data:`TARGET_LOGS` logs at
the density it just saw (:class:`~agentwallet.audit.logs.LogReader`; a node's range-limit
errors shrink it).

Durability. Each transaction writes a chunk's rows, its blocks and the new sync state
together, so the index always holds exactly the events up to the last committed block: a sync
killed at any moment (even ``kill -9``) leaves the index consistent at its last commit and the
next sync continues from there. The index runs in WAL mode with ``synchronous=NORMAL``: a power
loss or OS crash may lose the last transactions (never corrupt the file); the index is a cache
rebuildable from the chain, and the next sync reads those blocks again. With ``batch_blocks``
the commits come every ``batch_blocks`` blocks instead of every chunk (and a batch whose end
block changed hash while it was read is discarded and read again, as is a chunk).

A sync into an empty index (a first sync, a rebuild) drops the events table's secondary indexes
first and builds them once at its end, in a transaction after its last one (a third less CPU
per row than keeping them up to date row by row). Killed before that, it leaves the rows and
state of its last commit without those indexes: queries stay right (only slower), and the next
:class:`~agentwallet.audit.index.AuditIndex` opened on the file builds them. Such a sync also
checkpoints the write-ahead log once at its end instead of every 1,000 pages (each checkpoint
waits for the disk): its commits keep the durability stated above (WAL, ``synchronous=NORMAL``:
a power loss may lose the last transactions, it does not corrupt the file).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from agentwallet.audit.errors import LogReadError, ReorgDuringSyncError
from agentwallet.audit.events import check_range
from agentwallet.audit.logs import EmbeddedLogSource, LogReader, LogSource, log_source
from agentwallet.audit.records import SyncResult, vault_set_key
from agentwallet.audit.rows import Row, RowDecoder
from agentwallet.audit.schema import EVENT_COLUMNS, drop_indexes, restore_indexes
from agentwallet.audit.vaults import check_vaults, read_token_meta
from agentwallet.chain import Chain
from agentwallet.protocol.constants import ETH

if TYPE_CHECKING:
    from agentwallet.audit.index import AuditIndex

__all__ = ["FIRST_RANGE", "INSERT_EVENTS", "MAX_REORG_RETRIES", "TARGET_LOGS", "sync"]

MAX_REORG_RETRIES = 5
#: Logs per eth_getLogs a sync aims at, and the first range it tries (blocks).
TARGET_LOGS = 5_000
FIRST_RANGE = 10
#: Chunks read ahead of the writer (bounds memory: about TARGET_LOGS rows each).
AHEAD = 2
#: SQLite's default (pages of write-ahead log between checkpoints), restored after a first sync.
WAL_AUTOCHECKPOINT = 1000

INSERT_EVENTS = (
    f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_BLOCKS = (
    "INSERT INTO blocks VALUES (?,?,?,?,?) ON CONFLICT (chain_id, number) DO UPDATE "
    "SET hash = excluded.hash, parent_hash = coalesce(excluded.parent_hash, "
    "blocks.parent_hash), timestamp = excluded.timestamp"
)
_NAME, _VAULT, _TOKEN = 8, 7, 11  # row positions


@dataclass
class _Chunk:
    rows: list[Row]
    blocks: list[tuple[int, int, str, str | None, int]]  #: blocks table rows
    tokens: list[tuple[int, str, str, int | None]]  #: metadata of tokens not seen before
    commit: tuple[int, str] | None  #: (last block, its hash) when this chunk ends a transaction


@dataclass(frozen=True)
class _Read:
    """One range as the node gave it (decoded by the writer: see :class:`_Prefetch`)."""

    items: Sequence[Any]
    end: tuple[int, str, str, int] | None  #: (block, hash, parent, time) if it ends a transaction


@dataclass(frozen=True)
class _Plan:
    chain: Chain
    chain_id: int
    source: LogSource
    reader: LogReader
    vaults: tuple[str, ...]
    factory: str | None
    addresses: list[str]
    wanted_vaults: frozenset[str]
    batch_blocks: int | None
    known_tokens: frozenset[str]


class _Prefetch:
    """Reads and checks the ranges of [start, target] on a thread, :data:`AHEAD` ahead;
    iterating decodes them into chunks of rows on the caller's thread (or raises what the
    thread raised). Decoding stays with the writer: SQLite releases Python's lock for every
    row it inserts, and a reader thread busy in Python would make each row wait to get it
    back; the reader thread mostly waits for the node."""

    def __init__(self, plan: _Plan, decoder: RowDecoder, start: int, target: int) -> None:
        self.plan = plan
        self.decoder = decoder
        self.start = start
        self.target = target
        self.queue: queue.Queue[_Read | BaseException | None] = queue.Queue(AHEAD)
        self.stopped = threading.Event()
        self.known = set(plan.known_tokens)
        self.times: dict[int, int] = {}
        # py-evm is not shared across threads: the embedded chain is read on the caller's
        self.thread = (
            None
            if isinstance(plan.source, EmbeddedLogSource)
            else threading.Thread(target=self._run, name="audit-sync-reader", daemon=True)
        )

    def __iter__(self) -> Any:
        if self.thread is None:
            for read in self._reads():
                yield self._chunk(read)
            return
        self.thread.start()
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield self._chunk(item)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None and self.thread.is_alive():
            while self.thread.is_alive():  # unblock a put() waiting for room
                try:
                    self.queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self.thread.join()

    def _run(self) -> None:
        try:
            for read in self._reads():
                if not self._put(read):
                    return
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the writer, who raises it
            self._put(exc)

    def _put(self, item: _Read | BaseException | None) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _reads(self) -> Any:
        plan = self.plan
        header = plan.source.block_header
        start = self.start
        while start <= self.target and not self.stopped.is_set():
            batch_end = self.target
            batch_hash: str | None = None
            if plan.batch_blocks is not None:
                batch_end = min(self.target, start + plan.batch_blocks - 1)
                batch_hash = header(batch_end)[0]
            first = start
            while first <= batch_end and not self.stopped.is_set():
                ends: dict[int, tuple[str, str, int]] = {}
                end, items = plan.reader.read(
                    first, batch_end, plan.addresses, items=True, before=self._ends(ends)
                )
                last = batch_hash if end == batch_end else None
                yield _Read(items, self._checked(end, ends.get(end), last))
                first = end + 1
            start = batch_end + 1

    def _ends(self, ends: dict[int, tuple[str, str, int]]) -> Callable[[int], None] | None:
        """Per chunk (no batches): note each attempted end block's header before reading."""
        if self.plan.batch_blocks is not None:
            return None
        header = self.plan.source.block_header

        def before(end: int) -> None:
            ends[end] = header(end)

        return before

    def _checked(
        self, end: int, chunk_end: tuple[str, str, int] | None, batch_hash: str | None
    ) -> tuple[int, str, str, int] | None:
        """The header of ``end`` if a transaction ends there, after checking that the block did
        not change while its logs were read (else :class:`ReorgDuringSyncError`)."""
        if chunk_end is None and batch_hash is None:
            return None
        end_hash, end_parent, end_time = self.plan.source.block_header(end)
        expected = chunk_end[0] if chunk_end is not None else batch_hash
        if end_hash != expected:
            raise ReorgDuringSyncError(f"block {end} changed from {expected} to {end_hash}")
        return end, end_hash, end_parent, end_time

    def _chunk(self, read: _Read) -> _Chunk:
        plan = self.plan
        rows = [
            r
            for r in self.decoder.rows(read.items, self._block_time)
            if r[_NAME] != "VaultCreated" or r[_VAULT].lower() in plan.wanted_vaults
        ]
        blocks: dict[int, tuple[str, str | None, int]] = {r[1]: (r[4], None, r[3]) for r in rows}
        commit: tuple[int, str] | None = None
        if read.end is not None:
            end, end_hash, end_parent, end_time = read.end
            blocks[end] = (end_hash, end_parent, end_time)
            commit = (end, end_hash)
        new = {r[_TOKEN] for r in rows if r[_TOKEN]} - self.known
        self.known |= new
        tokens = [
            (plan.chain_id, a, "ETH", 18)
            if a == ETH
            else (plan.chain_id, a, *read_token_meta(plan.chain, a))
            for a in sorted(new)
        ]
        block_rows = [(plan.chain_id, n, h, p, t) for n, (h, p, t) in blocks.items()]
        return _Chunk(rows, block_rows, tokens, commit)

    def _block_time(self, number: int) -> int:
        if number not in self.times:
            self.times[number] = self.plan.source.block_header(number)[2]
        return self.times[number]


def sync(
    index: AuditIndex,
    chain: Chain,
    vaults: Sequence[str],
    *,
    factory: str | None = None,
    from_block: int = 0,
    to_block: int | None = None,
    confirmations: int = 0,
    reader: LogReader | None = None,
    batch_blocks: int | None = None,
    check: bool = True,
) -> SyncResult:
    """:meth:`AuditIndex.sync <agentwallet.audit.index.AuditIndex.sync>`."""
    started = time.perf_counter()
    vaults = check_vaults(chain, vaults) if check else tuple(to_checksum_address(v) for v in vaults)
    factory = to_checksum_address(factory) if factory else None
    source = reader.source if reader else log_source(chain)
    reader = reader or LogReader(source, first_range=FIRST_RANGE, target_logs=TARGET_LOGS)
    chain_id = chain.chain_id
    key = vault_set_key(vaults, factory)
    plan = _Plan(
        chain,
        chain_id,
        source,
        reader,
        vaults,
        factory,
        [*vaults, *([factory] if factory else [])],
        frozenset(v.lower() for v in vaults),
        batch_blocks,
        frozenset(
            r[0]
            for r in index.db.execute("SELECT address FROM tokens WHERE chain_id = ?", (chain_id,))
        ),
    )
    decoder = RowDecoder(index.codec, chain_id)
    write_state = _state_writer(index, chain_id, key, vaults, factory, from_block)
    deferred = _defer_indexes(index)
    try:
        return _sync(
            index, plan, decoder, write_state, from_block, to_block, confirmations, started
        )
    finally:
        if deferred:
            with index._tx() as db:
                restore_indexes(db)
            index.db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            index.db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _defer_indexes(index: AuditIndex) -> bool:
    """Drop the secondary indexes if the index holds no events yet; whether it did."""
    if index.db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
        return False
    with index._tx() as db:
        drop_indexes(db)
    index.db.execute("PRAGMA wal_autocheckpoint=0")  # one checkpoint at the end, not one a MiB
    return True


def _sync(
    index: AuditIndex,
    plan: _Plan,
    decoder: RowDecoder,
    write_state: Callable[[int, str | None], None],
    from_block: int,
    to_block: int | None,
    confirmations: int,
    started: float,
) -> SyncResult:
    source, reader, chain_id = plan.source, plan.reader, plan.chain_id
    vaults, factory = plan.vaults, plan.factory
    total = batches = reorgs = rolled_back = retries = 0
    first_start: int | None = None
    while True:
        head = source.head()
        target = head - confirmations if to_block is None else to_block
        if to_block is not None:
            check_range(from_block, to_block, head)
        ancestor = _check_reorg(index, chain_id, source)
        if ancestor is not None:
            reorgs += 1
            rolled_back += ancestor[1]
        state = index.state(chain_id, vaults, factory)
        start = state.last_block + 1 if state else from_block
        if first_start is None:
            first_start = start
        try:
            events, commits = _write(index, _Prefetch(plan, decoder, start, target), write_state)
            total += events
            batches += commits
            break
        except ReorgDuringSyncError:
            retries += 1
            if retries > MAX_REORG_RETRIES:
                raise ReorgDuringSyncError(
                    f"the chain reorganised {retries} times during this sync: wait for it "
                    "to settle or use --confirmations"
                ) from None
    if state is None and target < from_block:
        # nothing to read yet: remember the set so `watch` and reports know it
        with index._tx():
            write_state(from_block - 1, None)
    return SyncResult(
        chain_id=chain_id,
        vaults=vaults,
        from_block=first_start if first_start is not None else from_block,
        to_block=target,
        events=total,
        batches=batches,
        reorgs=reorgs,
        rolled_back_blocks=rolled_back,
        seconds=time.perf_counter() - started,
        range_halvings=reader.halvings,
    )


def _write(
    index: AuditIndex, prefetch: _Prefetch, write_state: Callable[[int, str | None], None]
) -> tuple[int, int]:
    """Write the chunks ``prefetch`` yields, a transaction per commit point; (events written
    in committed transactions, commits). On any error the open transaction is rolled back."""
    db = index.db
    events = pending = commits = 0
    open_tx = False
    try:
        for chunk in prefetch:
            if not open_tx:
                db.execute("BEGIN IMMEDIATE")
                open_tx = True
            if chunk.tokens:
                db.executemany("INSERT OR REPLACE INTO tokens VALUES (?,?,?,?)", chunk.tokens)
            db.executemany(INSERT_EVENTS, chunk.rows)
            db.executemany(_INSERT_BLOCKS, chunk.blocks)
            pending += len(chunk.rows)
            if chunk.commit is not None:
                write_state(*chunk.commit)
                db.execute("COMMIT")
                open_tx = False
                events += pending
                pending = 0
                commits += 1
    except BaseException:
        if open_tx:
            db.execute("ROLLBACK")
        raise
    finally:
        prefetch.stop()
    return events, commits


def _state_writer(
    index: AuditIndex,
    chain_id: int,
    key: str,
    vaults: tuple[str, ...],
    factory: str | None,
    from_block: int,
) -> Callable[[int, str | None], None]:
    vaults_json = json.dumps(list(vaults))

    def write(last_block: int, last_hash: str | None) -> None:
        index.db.execute(
            "INSERT INTO sync_state VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (chain_id, vault_set) "
            "DO UPDATE SET last_block = excluded.last_block, last_hash = excluded.last_hash, "
            "updated_at = excluded.updated_at",
            (
                chain_id,
                key,
                vaults_json,
                factory,
                from_block,
                last_block,
                last_hash,
                int(time.time()),
            ),
        )

    return write


def _check_reorg(index: AuditIndex, chain_id: int, source: LogSource) -> tuple[int, int] | None:
    """Roll back to the common ancestor if the node no longer has our newest stored block.
    Returns (ancestor block, blocks rolled back) or None when nothing changed."""
    rows = index.db.execute(
        "SELECT number, hash FROM blocks WHERE chain_id = ? ORDER BY number DESC",
        (chain_id,),
    )
    newest: int | None = None
    ancestor = -1
    for number, stored_hash in rows:
        if newest is None:
            newest = number
        if _node_hash(source, number) == stored_hash:
            ancestor = number
            break
    rows.close()
    if newest is None or ancestor == newest:
        return None
    with index._tx() as db:
        db.execute(
            "DELETE FROM events WHERE chain_id = ? AND block_number > ?", (chain_id, ancestor)
        )
        db.execute("DELETE FROM blocks WHERE chain_id = ? AND number > ?", (chain_id, ancestor))
        row = db.execute(
            "SELECT hash FROM blocks WHERE chain_id = ? AND number = ?", (chain_id, ancestor)
        ).fetchone()
        db.execute(
            "UPDATE sync_state SET last_block = max(?, from_block - 1), last_hash = ? "
            "WHERE chain_id = ? AND last_block > ?",
            (ancestor, row[0] if row else None, chain_id, ancestor),
        )
    return ancestor, newest - ancestor


def _node_hash(source: LogSource, number: int) -> str | None:
    try:
        return source.block_header(number)[0]
    except LogReadError:
        raise
    except Exception:  # noqa: BLE001 - the node does not have the block any more
        return None
