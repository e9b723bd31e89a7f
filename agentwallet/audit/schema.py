"""The audit index's SQLite schema, and events as rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentwallet.audit.events import AuditEvent

__all__ = ["EVENT_COLUMNS", "SCHEMA", "SCHEMA_NAME", "SCHEMA_VERSION", "event_row", "row_event"]

SCHEMA_NAME = "agentwallet-audit"
#: 2: the four-part vault's events (PaymentRequested/GovernanceProposed, a request payment's
#: PaymentExecuted linked to its request id).
#: 3: call events carry their spend token; five indexes (the primary key serves block ranges;
#: token filters always come with an agent or event name and are applied on those rows).
SCHEMA_VERSION = 3

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
CREATE INDEX events_recipient ON events (chain_id, vault, recipient);
CREATE INDEX events_request ON events (chain_id, vault, request_id);
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

EVENT_COLUMNS = (
    "chain_id, block_number, log_index, block_time, block_hash, tx_hash, emitter, vault, name, "
    "agent, actor, token, recipient, request_id, kind, amount, ref, args"
)


def event_row(chain_id: int, e: AuditEvent) -> tuple[Any, ...]:
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
        e.args_json(),
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
        args=json.loads(r[17]),
    )
