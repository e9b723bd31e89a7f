"""What the audit index records about syncs and tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["SyncResult", "SyncState", "TokenMeta", "vault_set_key"]


@dataclass(frozen=True)
class TokenMeta:
    address: str
    symbol: str
    decimals: int | None  #: None: unknown (amounts shown in base units)


@dataclass(frozen=True)
class SyncState:
    chain_id: int
    vaults: tuple[str, ...]
    factory: str | None
    from_block: int
    last_block: int
    last_hash: str | None


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`AuditIndex.sync` did."""

    chain_id: int
    vaults: tuple[str, ...]
    from_block: int
    to_block: int
    events: int
    batches: int
    reorgs: int  #: how often a reorg was detected and rolled back
    rolled_back_blocks: int
    seconds: float
    range_halvings: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, vaults=list(self.vaults))


def vault_set_key(vaults: Iterable[str], factory: str | None = None) -> str:
    key = ",".join(sorted(v.lower() for v in vaults))
    return key + (f"|factory={factory.lower()}" if factory else "")
