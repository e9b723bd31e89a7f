"""Errors of the audit package (all subclasses of :class:`AgentWalletError`)."""

from __future__ import annotations

from agentwallet.errors import AgentWalletError


class AuditError(AgentWalletError):
    """Base class of the audit errors."""


class AuditIndexError(AuditError):
    """The audit index file is missing, corrupt, foreign or from another schema version."""


class AuditIndexDamagedError(AuditIndexError):
    """The audit index file is damaged (truncated, corrupt pages, a wrong schema) or from
    another schema version: ``agentwallet audit sync --rebuild`` moves it aside and rebuilds it
    from the chain (the chain is the source of truth; nothing is lost)."""


class BlockRangeError(AuditError):
    """A block range that is reversed or goes beyond the chain head."""


class NotAVaultAddressError(AuditError):
    """An address given as a vault has no code or does not answer like an AgentVault."""


class LogReadError(AuditError):
    """The node failed to return logs (connection dropped, error that halving cannot fix)."""


class ReorgDuringSyncError(AuditError):
    """The chain reorganised while a sync batch was being read; the batch was discarded."""


class WhatIfError(AuditError):
    """Invalid proposed limits for a what-if replay."""
