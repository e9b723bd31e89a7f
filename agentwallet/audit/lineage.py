"""Agents as the events tell them: lineages across key rotations and the delegation tree.

An agent is known by its key and by its *lineage*, a number fixed when it is added that survives
key rotation (``AgentRotated(oldKey, newKey, lineage)``); a sub-agent's lineage hangs under its
parent's (``SubAgentAdded(parent, child, lineage)``). The graph is built from the vault's
``AgentConfigured``, ``AgentRotated`` and ``SubAgentAdded`` events only (a few per agent, read
through the (vault, name) index), so following an agent costs nothing that grows with the
vault's payment history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eth_utils.address import to_checksum_address

from agentwallet.audit.events import AuditEvent, EventFilter
from agentwallet.audit.index import AuditIndex

__all__ = ["AGENT_EVENTS", "AgentGraph", "agent_graph"]

AGENT_EVENTS = ("AgentConfigured", "AgentRotated", "SubAgentAdded")


@dataclass
class AgentGraph:
    """Lineages (keys over time) and who delegated to whom."""

    #: lineage -> [(first block, key)], oldest first
    keys_of: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    #: key -> its lineages (a revoked key added again gets a new one)
    lineages_of: dict[str, list[int]] = field(default_factory=dict)
    parent_of: dict[int, int] = field(default_factory=dict)
    children_of: dict[int, list[int]] = field(default_factory=dict)
    #: SubAgentAdded events (a parent's trail shows whom it delegated to)
    delegations: list[AuditEvent] = field(default_factory=list)

    def _add_key(self, lineage: int, key: str, block: int) -> None:
        keys = self.keys_of.setdefault(lineage, [])
        if key not in (k for _, k in keys):
            keys.append((block, key))
        owned = self.lineages_of.setdefault(key, [])
        if lineage not in owned:
            owned.append(lineage)

    def add(self, e: AuditEvent) -> None:
        a = e.args
        if e.name == "AgentConfigured":
            self._add_key(int(a["lineage"]), a["agent"], e.block_number)
        elif e.name == "AgentRotated":
            lineage = int(a["lineage"])
            self._add_key(lineage, a["oldKey"], e.block_number)
            self._add_key(lineage, a["newKey"], e.block_number)
        elif e.name == "SubAgentAdded":
            child = int(a["lineage"])
            self._add_key(child, a["child"], e.block_number)
            parents = self.lineages_of.get(a["parent"])
            if parents:
                self.parent_of[child] = parents[-1]
                self.children_of.setdefault(parents[-1], []).append(child)
            self.delegations.append(e)

    def lineages(self, key: str) -> list[int]:
        return list(self.lineages_of.get(to_checksum_address(key), []))

    def subtree(self, lineages: Iterable[int]) -> list[int]:
        """``lineages`` and every lineage delegated from them, at any depth."""
        out: list[int] = []
        todo = list(lineages)
        while todo:
            lineage = todo.pop(0)
            if lineage in out:
                continue
            out.append(lineage)
            todo += self.children_of.get(lineage, [])
        return out

    def keys(self, lineages: Iterable[int]) -> list[str]:
        """Every key these lineages ever had, oldest first per lineage."""
        out: list[str] = []
        for lineage in lineages:
            out += [k for _, k in self.keys_of.get(lineage, []) if k not in out]
        return out

    def key_at(self, lineage: int, block: int) -> str | None:
        """The key ``lineage`` acted with at ``block`` (the first one before it was added)."""
        keys = self.keys_of.get(lineage, [])
        current = keys[0][1] if keys else None
        for first, key in keys:
            if first <= block:
                current = key
        return current

    def delegation(self, key: str | None, block: int) -> list[str]:
        """The chain of agents that delegated to ``key``, root first, with the keys they held at
        ``block`` (empty for an agent the owners added)."""
        if not key:
            return []
        lineages = self.lineages_of.get(key)
        if not lineages:
            return []
        chain: list[str] = []
        lineage: int | None = self.parent_of.get(lineages[-1])
        while lineage is not None and len(chain) < 16:
            chain.insert(0, self.key_at(lineage, block) or f"lineage {lineage}")
            lineage = self.parent_of.get(lineage)
        return chain


def agent_graph(index: AuditIndex, chain_id: int, vault: str) -> AgentGraph:
    """The vault's agents from their configuration, rotation and delegation events."""
    graph = AgentGraph()
    for e in index.events(chain_id, EventFilter(vaults=(vault,), names=AGENT_EVENTS)):
        graph.add(e)
    return graph
