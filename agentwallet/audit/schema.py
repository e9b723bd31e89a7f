"""The audit index's SQLite schema, and events as rows.

A row's ``args`` JSON holds only the arguments its columns do not already hold (for a payment:
none, ``{}``): :func:`row_event` puts the others back from the columns, so the row is smaller
and the event read back is the event written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from agentwallet.audit.events import _ARGS_ENCODER, AuditEvent, EventCodec

__all__ = [
    "DERIVED_ARGS",
    "EVENT_COLUMNS",
    "INDEXES",
    "SCHEMA",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "column_value",
    "compact_args",
    "drop_indexes",
    "full_args",
    "event_row",
    "missing_indexes",
    "restore_indexes",
    "row_event",
]

SCHEMA_NAME = "agentwallet-audit"
#: 2: the four-part vault's events (PaymentRequested/GovernanceProposed, a request payment's
#: PaymentExecuted linked to its request id).
#: 3: call events carry their spend token; five indexes (the primary key serves block ranges;
#: token filters always come with an agent or event name and are applied on those rows).
#: 4: rows keep in ``args`` only what their columns do not hold; the recipient and request id
#: indexes skip rows without one (most payments have no request id). Cheaper inserts for a fast
#: full sync. (Not WITHOUT ROWID: SQLite then prefers the clustered primary key on chain_id
#: over every secondary index, a test checks the plans.)
SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE blocks (
    chain_id INTEGER NOT NULL, number INTEGER NOT NULL, hash TEXT NOT NULL,
    parent_hash TEXT, timestamp INTEGER NOT NULL, PRIMARY KEY (chain_id, number)
);
CREATE TABLE events (
    chain_id INTEGER NOT NULL, block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,
    block_time INTEGER NOT NULL, block_hash TEXT NOT NULL, tx_hash TEXT NOT NULL,
    emitter TEXT NOT NULL, vault TEXT NOT NULL, name TEXT NOT NULL, agent TEXT, actor TEXT,
    token TEXT, recipient TEXT, request_id INTEGER, kind TEXT, amount TEXT, ref TEXT,
    args TEXT NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX events_vault ON events (chain_id, vault, block_number);
CREATE INDEX events_agent ON events (chain_id, vault, agent, block_number);
CREATE INDEX events_recipient ON events (chain_id, vault, recipient)
    WHERE recipient IS NOT NULL;
CREATE INDEX events_request ON events (chain_id, vault, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX events_name ON events (chain_id, vault, name);
CREATE TABLE sync_state (
    chain_id INTEGER NOT NULL, vault_set TEXT NOT NULL, vaults TEXT NOT NULL, factory TEXT,
    from_block INTEGER NOT NULL, last_block INTEGER NOT NULL, last_hash TEXT,
    updated_at INTEGER NOT NULL, PRIMARY KEY (chain_id, vault_set)
);
CREATE TABLE tokens (
    chain_id INTEGER NOT NULL, address TEXT NOT NULL, symbol TEXT NOT NULL, decimals INTEGER,
    PRIMARY KEY (chain_id, address)
);
CREATE TABLE alerts (key TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
"""

#: The secondary indexes of the events table, by name: a sync into an empty index drops them
#: and builds them once at its end (:func:`drop_indexes`, :func:`restore_indexes`).
INDEXES: Mapping[str, str] = {
    statement.split()[2]: statement.strip()
    for statement in SCHEMA.split(";")
    if statement.strip().startswith("CREATE INDEX")
}


def missing_indexes(db: sqlite3.Connection) -> list[str]:
    """The secondary indexes ``db`` lacks (a sync into an empty index that did not finish)."""
    found = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return [name for name in INDEXES if name not in found]


def drop_indexes(db: sqlite3.Connection) -> None:
    """Drop the secondary indexes (inside the caller's transaction)."""
    for name in INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")


def restore_indexes(db: sqlite3.Connection) -> None:
    """Create the secondary indexes that are missing (inside the caller's transaction)."""
    for name in missing_indexes(db):
        db.execute(INDEXES[name])


EVENT_COLUMNS = (
    "chain_id, block_number, log_index, block_time, block_hash, tx_hash, emitter, vault, name, "
    "agent, actor, token, recipient, request_id, kind, amount, ref, args"
)


#: Arguments a column can hold, and the row position of that column (agent, token,
#: recipient, request id, amount as text, ref).
DERIVED_ARGS: Mapping[str, int] = {
    "agent": 9,
    "token": 11,
    "to": 12,
    "requestId": 13,
    "amount": 15,
    "ref": 16,
}


def column_value(position: int, value: Any) -> Any:
    """An argument as its column stores it (amounts as decimal text)."""
    return str(value) if position == 15 and isinstance(value, int) else value


def compact_args(args: Mapping[str, Any], row: Sequence[Any]) -> dict[str, Any]:
    """``args`` without those its row's columns hold with the same value."""
    return {
        k: v
        for k, v in args.items()
        if k not in DERIVED_ARGS or row[DERIVED_ARGS[k]] != column_value(DERIVED_ARGS[k], v)
    }


@cache
def _codec() -> EventCodec:
    return EventCodec()


@cache
def _derived(name: str) -> tuple[tuple[str, int], ...]:
    """The arguments of event ``name`` a column may hold, with the column's position."""
    spec = _codec().by_name.get(name)
    inputs = () if spec is None else spec.inputs
    return tuple((arg, DERIVED_ARGS[arg]) for arg, _, _ in inputs if arg in DERIVED_ARGS)


def full_args(name: str, stored: Mapping[str, Any], row: Sequence[Any]) -> dict[str, Any]:
    """The event's arguments from a row: the stored ones and those its columns hold."""
    args = dict(stored)
    for arg, position in _derived(name):
        if arg not in args:
            value = row[position]
            args[arg] = int(value) if position == 15 else value
    return dict(sorted(args.items()))


def event_row(chain_id: int, e: AuditEvent) -> tuple[Any, ...]:
    row = _row(chain_id, e)
    return (*row[:-1], _ARGS_ENCODER.encode(compact_args(e.args, row)))


def _row(chain_id: int, e: AuditEvent) -> tuple[Any, ...]:
    return (
        chain_id,
        e.block_number,
        e.log_index,
        e.block_time,
        e.block_hash,
        e.tx_hash,
        e.emitter,
        e.vault,
        e.name,
        e.agent,
        e.actor,
        e.token,
        e.recipient,
        e.request_id,
        e.kind,
        None if e.amount is None else str(e.amount),
        e.ref,
        "",  # args: see event_row
    )


def row_event(r: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        block_number=r[1],
        log_index=r[2],
        block_time=r[3],
        block_hash=r[4],
        tx_hash=r[5],
        emitter=r[6],
        vault=r[7],
        name=r[8],
        agent=r[9],
        actor=r[10],
        token=r[11],
        recipient=r[12],
        request_id=r[13],
        kind=r[14],
        amount=None if r[15] is None else int(r[15]),
        ref=r[16],
        args=full_args(r[8], json.loads(r[17]), r),
    )
