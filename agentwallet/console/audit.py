"""The console's audit page: the trail of a vault's agents (with refs) from the audit index, and
the anomaly alerts of ``agentwallet watch``.

The console keeps its own index file (``$AGENTWALLET_HOME/console/audit-<chain>.sqlite``), so
the alerts it has shown are not taken from a ``watch`` running beside it. The index is synced
on each visit; alerts are kept for the console's lifetime, newest first.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from hexbytes import HexBytes

from agentwallet.audit.events import EventFilter
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.reports import TrailEntry, trail
from agentwallet.audit.watch import Alert, Watcher
from agentwallet.chain import Chain
from agentwallet.console.rows import Labels
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.refs import ref_text
from agentwallet.vault import Vault

__all__ = ["AuditView"]

#: The newest alerts kept per vault.
MAX_ALERTS = 200


class AuditView:
    """The audit index and watcher of one console. The index is opened for each page and
    closed after it (a SQLite connection belongs to the thread that opened it, and a server
    may answer each request on another thread)."""

    def __init__(self, chain: Chain, home: Path) -> None:
        self.chain = chain
        self.path = home / "console" / f"audit-{chain.chain_id}.sqlite"
        self._index: AuditIndex | None = None
        self._alerts: dict[str, list[Alert]] = {}

    @property
    def index(self) -> AuditIndex:
        if self._index is None:
            raise RuntimeError("the audit index is open only inside page()")
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def alerts(self, vault: Vault) -> list[Alert]:
        """Sync the index and return the alerts seen so far for ``vault``, newest first."""
        new = Watcher(self.index, self.chain, [vault.address]).poll()
        kept = self._alerts.setdefault(vault.address, [])
        kept[:0] = list(reversed(new))
        del kept[MAX_ALERTS:]
        return list(kept)

    def trail(self, vault: Vault, agents: list[str], agent: str | None) -> list[TrailEntry]:
        """The trail of ``agent`` (an address), or of every agent in ``agents``, oldest first
        (call :meth:`alerts` first: it syncs the index)."""
        chosen = [checksum(agent, "agent address")] if agent else agents
        seen: dict[tuple[str, str, int, str], TrailEntry] = {}
        for a in chosen:
            for entry in trail(self.index, self.chain.chain_id, vault.address, a):
                seen.setdefault((entry.tx, entry.event, entry.request_id, entry.what), entry)
        return sorted(seen.values(), key=lambda e: (e.block, e.time))

    def refs(self, vault: Vault) -> dict[tuple[str, str], str]:
        """The payment reference of each event that carries one, as text: by (tx, event), and
        by request id for the events of a request that do not repeat it."""
        out: dict[tuple[str, str], str] = {}
        for e in self.index.events(self.chain.chain_id, EventFilter(vaults=(vault.address,))):
            ref = e.args.get("ref")
            raw = bytes(HexBytes(ref)) if isinstance(ref, str | bytes | bytearray) else b""
            if any(raw):
                text = ref_text(raw)
                out[(e.tx_hash, e.name)] = text
                if e.request_id:
                    out.setdefault(("", str(e.request_id)), text)
        return out

    def page(
        self, vault: Vault, agents: list[str], agent: str | None, labels: Labels
    ) -> dict[str, Any]:
        """Everything the audit page shows."""
        self._index = AuditIndex(self.path)
        try:
            return self._page(vault, agents, agent, labels)
        finally:
            self.close()

    def _page(
        self, vault: Vault, agents: list[str], agent: str | None, labels: Labels
    ) -> dict[str, Any]:
        alerts = self.alerts(vault)
        refs = self.refs(vault)
        rows = [
            {**asdict(e), "ref": refs.get((e.tx, e.event)) or refs.get(("", str(e.request_id)), "")}
            for e in self.trail(vault, agents, agent)
        ]
        return {
            "agent": checksum(agent) if agent else "",
            "agents": [(a, labels.label(a)) for a in agents],
            "trail": rows,
            "alerts": [a.to_dict() for a in alerts],
        }
