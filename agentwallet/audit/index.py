"""The local audit index: decoded events in SQLite, synced incrementally and reorg-safely.

Sync reads vault (and optionally factory) logs from the last synced block to ``head -
confirmations`` in batches. Each batch is written in one SQLite transaction together with the
new sync state, so the index is never half-written. Before each batch the stored hash of the last
synced block is compared with the node's; on a mismatch the index walks back over its stored
block hashes to the newest block the node still has (the common ancestor: a block hash commits to
all its ancestors), deletes everything above it and re-syncs. A batch whose end block changed hash
while it was being read is discarded and read again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from agentwallet.audit.damage import (
    classify,
    damaged,
    expected_columns,
    guarded,
    has_sqlite_header,
)
from agentwallet.audit.errors import (
    AuditIndexDamagedError,
    AuditIndexError,
    LogReadError,
    ReorgDuringSyncError,
)
from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter, check_range
from agentwallet.audit.logs import LogReader, LogSource, log_source
from agentwallet.audit.records import SyncResult, SyncState, TokenMeta, vault_set_key
from agentwallet.audit.rows import Row, RowDecoder
from agentwallet.audit.schema import (
    EVENT_COLUMNS,
    SCHEMA,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    event_row,
    row_event,
)
from agentwallet.audit.vaults import check_vaults, read_token_meta
from agentwallet.chain import Chain
from agentwallet.keys import home_dir
from agentwallet.protocol.constants import ETH

__all__ = [
    "AuditIndex",
    "SyncResult",
    "SyncState",
    "TokenMeta",
    "check_vaults",
    "default_db_path",
    "read_token_meta",
    "vault_set_key",
]

DEFAULT_DB_NAME = "audit.sqlite"
ORDERED = " ORDER BY block_number, log_index"


def _row_position(row: Sequence[Any]) -> tuple[int, int]:
    return (int(row[1]), int(row[2]))


MAX_REORG_RETRIES = 5


def default_db_path() -> Path:
    return home_dir() / DEFAULT_DB_NAME


class AuditIndex:
    """The SQLite audit index. ``AuditIndex(path)`` creates the file if missing; a file that is
    not an agentwallet audit index raises :class:`AuditIndexError` (never overwritten)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.codec = EventCodec()
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not has_sqlite_header(self.path):
            raise self._damaged("not a readable SQLite audit index: its header is not SQLite's")
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._open(fresh)
        except BaseException:
            self.db.close()
            raise

    def _open(self, fresh: bool) -> None:
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-32768")  # 32 MiB: index pages stay cached
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
            if not tables:
                if not fresh:
                    raise self._damaged("it is an empty SQLite file")
                with self._tx():
                    for statement in SCHEMA.strip().split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self.db.executemany(
                        "INSERT INTO meta VALUES (?, ?)",
                        [("schema", SCHEMA_NAME), ("version", str(SCHEMA_VERSION))],
                    )
                return
            if "meta" not in tables:
                raise AuditIndexError(
                    f"{self.path} is a SQLite file but not an agentwallet audit index (no meta "
                    "table): pass another --db"
                )
            meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            self._check_meta(meta)
            self._check_size()
            self._check_schema()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _check_meta(self, meta: dict[str, str]) -> None:
        if meta.get("schema") != SCHEMA_NAME:
            raise AuditIndexError(
                f"{self.path} is not an agentwallet audit index (schema {meta.get('schema')!r}): "
                "pass another --db"
            )
        if meta.get("version") != str(SCHEMA_VERSION):
            raise AuditIndexDamagedError(
                f"{self.path} has audit index schema version {meta.get('version')}, this "
                f"agentwallet reads version {SCHEMA_VERSION}: run `agentwallet audit sync "
                "--rebuild --vault VAULT` (it moves the old file aside and rebuilds the index "
                "from the chain)"
            )

    def _check_size(self) -> None:
        """A truncated file: SQLite's header counts more pages than the file holds."""
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return  # pages may live in the write-ahead log until a checkpoint
        pages = int(self.db.execute("PRAGMA page_count").fetchone()[0])
        size = int(self.db.execute("PRAGMA page_size").fetchone()[0])
        if self.path.stat().st_size < pages * size:
            raise self._damaged(
                f"it is truncated: {self.path.stat().st_size} bytes of {pages * size}"
            )

    def _check_schema(self) -> None:
        for table, columns in expected_columns().items():
            found = tuple(r[1] for r in self.db.execute(f"PRAGMA table_info({table})"))
            if found != columns:
                raise self._damaged(
                    f"wrong schema: table {table} has columns {list(found) or 'none'}, "
                    f"expected {list(columns)}"
                )

    def _damaged(self, detail: str) -> AuditIndexDamagedError:
        return damaged(self.path, detail)

    def _error(self, exc: BaseException) -> AuditIndexError:
        return classify(self.path, exc)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AuditIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------------------ state

    @guarded
    def state(
        self, chain_id: int, vaults: Iterable[str], factory: str | None = None
    ) -> SyncState | None:
        row = self.db.execute(
            "SELECT vaults, factory, from_block, last_block, last_hash FROM sync_state "
            "WHERE chain_id = ? AND vault_set = ?",
            (chain_id, vault_set_key(vaults, factory)),
        ).fetchone()
        if row is None:
            return None
        return SyncState(chain_id, tuple(json.loads(row[0])), row[1], row[2], row[3], row[4])

    @guarded
    def states(self, chain_id: int | None = None) -> list[SyncState]:
        rows = self.db.execute(
            "SELECT chain_id, vaults, factory, from_block, last_block, last_hash FROM sync_state"
            + (" WHERE chain_id = ?" if chain_id is not None else ""),
            (chain_id,) if chain_id is not None else (),
        ).fetchall()
        return [SyncState(r[0], tuple(json.loads(r[1])), r[2], r[3], r[4], r[5]) for r in rows]

    @guarded
    def chain_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT chain_id FROM sync_state")]

    # ------------------------------------------------------------------------------ sync

    @guarded
    def sync(
        self,
        chain: Chain,
        vaults: Sequence[str],
        *,
        factory: str | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        confirmations: int = 0,
        reader: LogReader | None = None,
        batch_blocks: int = 100_000,
        check: bool = True,
    ) -> SyncResult:
        """Bring the index for ``vaults`` (and ``factory``'s VaultCreated events for them) up
        to ``to_block`` (default ``head - confirmations``)."""
        started = time.perf_counter()
        vaults = (
            check_vaults(chain, vaults) if check else tuple(to_checksum_address(v) for v in vaults)
        )
        factory = to_checksum_address(factory) if factory else None
        source = reader.source if reader else log_source(chain)
        reader = reader or LogReader(source)
        chain_id = chain.chain_id
        key = vault_set_key(vaults, factory)
        addresses = [*vaults, *([factory] if factory else [])]
        wanted_vaults = {v.lower() for v in vaults}
        total = batches = reorgs = rolled_back = 0
        first_start: int | None = None
        target = 0
        retries = 0
        while True:
            head = source.head()
            target = head - confirmations if to_block is None else to_block
            if to_block is not None:
                check_range(from_block, to_block, head)
            ancestor = self._check_reorg(chain_id, source)
            if ancestor is not None:
                reorgs += 1
                rolled_back += ancestor[1]
            state = self.state(chain_id, vaults, factory)
            start = state.last_block + 1 if state else from_block
            if first_start is None:
                first_start = start
            try:
                while start <= target:
                    end = min(target, start + batch_blocks - 1)
                    count = self._sync_batch(
                        chain,
                        chain_id,
                        key,
                        vaults,
                        factory,
                        from_block,
                        source,
                        reader,
                        start,
                        end,
                        addresses,
                        wanted_vaults,
                    )
                    total += count
                    batches += 1
                    start = end + 1
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
            with self._tx():
                self._write_state(chain_id, key, vaults, factory, from_block, from_block - 1, None)
        return SyncResult(
            chain_id=chain_id,
            vaults=vaults,
            from_block=first_start or from_block,
            to_block=target,
            events=total,
            batches=batches,
            reorgs=reorgs,
            rolled_back_blocks=rolled_back,
            seconds=time.perf_counter() - started,
            range_halvings=reader.halvings,
        )

    def _sync_batch(
        self,
        chain: Chain,
        chain_id: int,
        key: str,
        vaults: tuple[str, ...],
        factory: str | None,
        from_block: int,
        source: LogSource,
        reader: LogReader,
        start: int,
        end: int,
        addresses: list[str],
        wanted_vaults: set[str],
    ) -> int:
        end_hash, end_parent, end_time = source.block_header(end)
        times: dict[int, int] = {end: end_time}

        def block_time(number: int) -> int:
            if number not in times:
                times[number] = source.block_header(number)[2]
            return times[number]

        decoder = RowDecoder(self.codec, chain_id)
        rows: list[Row] = []
        for _, _, items in reader.item_chunks(start, end, addresses, None):
            rows += decoder.rows(items, block_time)
        # the factory's VaultCreated for vaults of this set only (row[8] name, row[7] vault)
        rows = [r for r in rows if r[8] != "VaultCreated" or r[7].lower() in wanted_vaults]
        again = source.block_header(end)[0]
        if again != end_hash:
            raise ReorgDuringSyncError(f"block {end} changed from {end_hash} to {again}")
        # (number: hash, time) from rows' block_number, block_hash, block_time
        blocks: dict[int, tuple[str, str | None, int]] = {r[1]: (r[4], None, r[3]) for r in rows}
        blocks[end] = (end_hash, end_parent, end_time)
        tokens = self._token_rows(chain, chain_id, {r[11] for r in rows if r[11]})
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO tokens VALUES (?,?,?,?)", tokens)
            db.executemany(
                f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany(
                "INSERT INTO blocks VALUES (?,?,?,?,?) ON CONFLICT (chain_id, number) DO UPDATE "
                "SET hash = excluded.hash, parent_hash = coalesce(excluded.parent_hash, "
                "blocks.parent_hash), timestamp = excluded.timestamp",
                [(chain_id, n, h, p, t) for n, (h, p, t) in blocks.items()],
            )
            self._write_state(chain_id, key, vaults, factory, from_block, end, end_hash)
        return len(rows)

    def _write_state(
        self,
        chain_id: int,
        key: str,
        vaults: tuple[str, ...],
        factory: str | None,
        from_block: int,
        last_block: int,
        last_hash: str | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO sync_state VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (chain_id, vault_set) "
            "DO UPDATE SET last_block = excluded.last_block, last_hash = excluded.last_hash, "
            "updated_at = excluded.updated_at",
            (
                chain_id,
                key,
                json.dumps(list(vaults)),
                factory,
                from_block,
                last_block,
                last_hash,
                int(time.time()),
            ),
        )

    def _check_reorg(self, chain_id: int, source: LogSource) -> tuple[int, int] | None:
        """Roll back to the common ancestor if the node no longer has our newest stored block.
        Returns (ancestor block, blocks rolled back) or None when nothing changed."""
        rows = self.db.execute(
            "SELECT number, hash FROM blocks WHERE chain_id = ? ORDER BY number DESC",
            (chain_id,),
        )
        newest: int | None = None
        ancestor = -1
        for number, stored_hash in rows:
            if newest is None:
                newest = number
            if self._node_hash(source, number) == stored_hash:
                ancestor = number
                break
        rows.close()
        if newest is None or ancestor == newest:
            return None
        with self._tx() as db:
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

    @staticmethod
    def _node_hash(source: LogSource, number: int) -> str | None:
        try:
            return source.block_header(number)[0]
        except LogReadError:
            raise
        except Exception:  # noqa: BLE001 - the node does not have the block any more
            return None

    # ------------------------------------------------------------------------------ tokens

    def _token_rows(
        self, chain: Chain, chain_id: int, seen: set[str]
    ) -> list[tuple[int, str, str, int | None]]:
        """Metadata rows for the tokens of a batch not known yet (read from each token once,
        written in the batch's transaction)."""
        known = {
            r[0]
            for r in self.db.execute("SELECT address FROM tokens WHERE chain_id = ?", (chain_id,))
        }
        rows: list[tuple[int, str, str, int | None]] = []
        for address in sorted(seen - known):
            if address == ETH:
                rows.append((chain_id, address, "ETH", 18))
                continue
            symbol, decimals = read_token_meta(chain, address)
            rows.append((chain_id, address, symbol, decimals))
        return rows

    @guarded
    def token(self, chain_id: int, address: str) -> TokenMeta:
        if address == ETH:
            return TokenMeta(ETH, "ETH", 18)
        row = self.db.execute(
            "SELECT symbol, decimals FROM tokens WHERE chain_id = ? AND address = ?",
            (chain_id, address),
        ).fetchone()
        if row is None:
            return TokenMeta(address, address[:10], None)
        return TokenMeta(address, row[0], row[1])

    # ------------------------------------------------------------------------------ queries

    @guarded
    def events(
        self,
        chain_id: int,
        flt: EventFilter | None = None,
        request_ids: Iterable[int] | None = None,
        agents: Sequence[str] | None = None,
    ) -> list[AuditEvent]:
        """Events in the index matching ``flt``, oldest first. ``request_ids``: only events of
        these requests (OR-ed with ``flt.agent``); ``agents``: only events about one of these
        agents (an agent's keys across rotations: the (vault, agent) index)."""
        flt = flt or EventFilter()
        where = ["chain_id = ?"]
        params: list[Any] = [chain_id]
        if flt.vaults is not None:
            where.append(f"vault IN ({','.join('?' * len(flt.vaults))})")
            params += [to_checksum_address(v) for v in flt.vaults]
        if flt.names is not None:
            where.append(f"name IN ({','.join('?' * len(flt.names))})")
            params += list(flt.names)
        ids = sorted(set(request_ids or ()))
        if flt.agent is not None and ids:
            where.append(
                f"(agent = ? OR (request_id IN ({','.join('?' * len(ids))}) AND request_id > 0))"
            )
            params += [to_checksum_address(flt.agent), *ids]
        elif flt.agent is not None:
            where.append("agent = ?")
            params.append(to_checksum_address(flt.agent))
        elif ids:
            where.append(f"request_id IN ({','.join('?' * len(ids))})")
            params += ids
        if agents is not None:
            where.append(f"agent IN ({','.join('?' * len(agents))})")
            params += [to_checksum_address(a) for a in agents]
        for column, value in (("token", flt.token), ("recipient", flt.recipient)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(to_checksum_address(value))
        if flt.request_id is not None:
            where.append("request_id = ?")
            params.append(flt.request_id)
        ranges: tuple[tuple[str, str, str | int | None], ...] = (
            ("kind", "=", flt.kind),
            ("block_number", ">=", flt.from_block),
            ("block_number", "<=", flt.to_block),
            ("block_time", ">=", flt.since),
            ("block_time", "<=", flt.until),
        )
        for column, op, bound in ranges:
            if bound is not None:
                where.append(f"{column} {op} ?")
                params.append(bound)
        selective = (
            flt.names is not None
            or flt.agent is not None
            or agents is not None
            or bool(ids)
            or flt.token is not None
            or flt.recipient is not None
            or flt.request_id is not None
            or flt.kind is not None
        )
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
        if not selective:
            return self._decode_rows(self.db.execute(sql + ORDERED, params))
        # No ORDER BY: with it SQLite prefers walking the (vault, block) index in order over
        # the whole vault's history to avoid a sort; without it, it picks the selective index
        # (agent, request id, name, ...) and the few rows found are sorted here.
        rows = self.db.execute(sql, params).fetchall()
        try:
            rows.sort(key=_row_position)
        except (TypeError, ValueError):
            raise self._damaged("an event row has no valid block position") from None
        return self._decode_rows(rows)

    def _decode_rows(self, rows: Iterable[Sequence[Any]]) -> list[AuditEvent]:
        """Rows as events; a row that no longer decodes (damaged page content that SQLite
        itself did not notice) is damage, not a traceback."""
        out = []
        for r in rows:
            try:
                out.append(row_event(r))
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise self._damaged(f"an event row does not decode: {exc}") from None
        return out

    @guarded
    def count(self, chain_id: int | None = None) -> int:
        if chain_id is None:
            return int(self.db.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(
            self.db.execute(
                "SELECT count(*) FROM events WHERE chain_id = ?", (chain_id,)
            ).fetchone()[0]
        )

    @guarded
    def last_block_time(self, chain_id: int) -> int | None:
        row = self.db.execute(
            "SELECT timestamp FROM blocks WHERE chain_id = ? ORDER BY number DESC LIMIT 1",
            (chain_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    @guarded
    def insert_events(self, chain_id: int, events: Iterable[AuditEvent]) -> int:
        """Insert decoded events directly (benchmarks, imports). Not a sync: no state change."""
        rows = [event_row(chain_id, e) for e in events]
        with self._tx() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    @guarded
    def alert_seen(self, key: str) -> bool:
        """Record an alert key; True if it had been recorded before (dedup across runs)."""
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO alerts VALUES (?, ?)", (key, int(time.time())))
            return cur.rowcount == 0
