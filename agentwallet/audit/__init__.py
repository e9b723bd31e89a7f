"""Audit and monitoring: who authorised what, answered from the chain's events.

- :mod:`~agentwallet.audit.logs`: raw logs in block ranges the node accepts (range-adaptive).
- :mod:`~agentwallet.audit.events`: decode AgentVault/AgentVaultFactory logs into events.
- :mod:`~agentwallet.audit.index`: the SQLite index, incremental and reorg-safe sync.
- :mod:`~agentwallet.audit.trail`: structured rows (:class:`AuditRow`) and an agent's trail
  across rotations and delegation; :mod:`~agentwallet.audit.lineage` the agent graph.
- :mod:`~agentwallet.audit.spend`, :mod:`~agentwallet.audit.requests`,
  :mod:`~agentwallet.audit.reports`: spend, requests, owners, summary (from the index).
- :mod:`~agentwallet.audit.damage`: a damaged index is one typed error (fix: ``--rebuild``).
- :mod:`~agentwallet.audit.reconcile`: balances vs deposits - payments.
- :mod:`~agentwallet.audit.watch`: alerts (and optional auto-pause) on new blocks.
- :mod:`~agentwallet.audit.whatif`: replay history against proposed limits (contract GCRA math).
"""

from agentwallet.audit.errors import (
    AuditError,
    AuditIndexDamagedError,
    AuditIndexError,
    BlockRangeError,
    LogReadError,
    NotAVaultAddressError,
    ReorgDuringSyncError,
    WhatIfError,
)
from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter, read_events
from agentwallet.audit.index import AuditIndex, SyncResult, SyncState, default_db_path
from agentwallet.audit.lineage import AgentGraph, agent_graph
from agentwallet.audit.logs import LogReader, RawLog, log_source
from agentwallet.audit.reconcile import ReconcileRow, reconcile
from agentwallet.audit.reports import owners_report, summary_report
from agentwallet.audit.requests import requests_report
from agentwallet.audit.spend import spend_payments, spend_report
from agentwallet.audit.trail import AuditRow, trail
from agentwallet.audit.watch import Alert, WatchConfig, Watcher, watch_loop
from agentwallet.audit.whatif import Limits, evaluate, whatif

__all__ = [
    "AgentGraph",
    "Alert",
    "AuditError",
    "AuditEvent",
    "AuditIndex",
    "AuditIndexDamagedError",
    "AuditIndexError",
    "AuditRow",
    "BlockRangeError",
    "EventCodec",
    "EventFilter",
    "Limits",
    "LogReadError",
    "LogReader",
    "NotAVaultAddressError",
    "RawLog",
    "ReconcileRow",
    "ReorgDuringSyncError",
    "SyncResult",
    "SyncState",
    "WatchConfig",
    "Watcher",
    "WhatIfError",
    "agent_graph",
    "default_db_path",
    "evaluate",
    "log_source",
    "owners_report",
    "read_events",
    "reconcile",
    "requests_report",
    "spend_payments",
    "spend_report",
    "summary_report",
    "trail",
    "watch_loop",
    "whatif",
]
