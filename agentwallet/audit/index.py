"""The local audit index: decoded events in SQLite, synced incrementally and reorg-safely.

Sync (:mod:`agentwallet.audit.sync`) reads vault (and optionally factory) logs from the last
synced block to ``head - confirmations`` in ranges sized to the node, the next range read while
the last is written. Each range (or ``batch_blocks`` blocks) is written in one SQLite transaction
together with the new sync state, so the index is never half-written. Before syncing, the stored
hash of the last synced block is compared with the node's; on a mismatch the index walks back
over its stored block hashes to the newest block the node still has (the common ancestor: a block
hash commits to all its ancestors), deletes everything above it and re-syncs. A range whose end
block changed hash while it was being read is discarded and read again.
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
)
from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter
from agentwallet.audit.logs import LogReader
from agentwallet.audit.records import SyncResult, SyncState, TokenMeta, vault_set_key
from agentwallet.audit.schema import (
    EVENT_COLUMNS,
    SCHEMA,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    event_row,
    missing_indexes,
    restore_indexes,
    row_event,
)
from agentwallet.audit.sync import sync as _sync
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
            if missing_indexes(self.db):
                self._restore_indexes()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _restore_indexes(self) -> None:
        """Build the secondary indexes a sync into an empty index dropped and did not get to
        build (it was killed). Skipped while another process holds the file (a sync still
        running builds them at its end): queries are right without them, only slower."""
        try:
            with self._tx():
                restore_indexes(self.db)
        except sqlite3.OperationalError as exc:
            if not any(w in str(exc).lower() for w in ("locked", "busy", "readonly")):
                raise

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
        batch_blocks: int | None = None,
        check: bool = True,
    ) -> SyncResult:
        """Bring the index for ``vaults`` (and ``factory``'s VaultCreated events for them) up
        to ``to_block`` (default ``head - confirmations``), reading the next block range while
        writing the last (:mod:`agentwallet.audit.sync`: what a crash keeps). A transaction per
        range read, or per ``batch_blocks`` blocks if given."""
        return _sync(
            self,
            chain,
            vaults,
            factory=factory,
            from_block=from_block,
            to_block=to_block,
            confirmations=confirmations,
            reader=reader,
            batch_blocks=batch_blocks,
            check=check,
        )

    # ------------------------------------------------------------------------------ tokens

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
