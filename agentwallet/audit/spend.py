"""What left the vault: each outflow as a structured row, or totals per agent, token and day.

Outflows are ``PaymentExecuted`` (direct, or an executed payment request), ``SignedPaymentExecuted``
(owners' signatures), ``RelayFeePaid`` (the fee a relayer took for an agent's intent, counted
against its limits) and ``CallExecuted`` (a scoped call: ``spent`` of ``spendToken`` and ``value``
of ETH).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_utils.address import to_checksum_address

from agentwallet.audit.events import AuditEvent, EventFilter
from agentwallet.audit.format import Amounts, format_units
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.lineage import agent_graph
from agentwallet.audit.trail import OUTFLOW_EVENTS, AuditRow, call_outflows, payment_rows
from agentwallet.protocol.constants import ETH

__all__ = ["SpendRow", "outflows", "spend_payments", "spend_report"]


def agent_keys(
    index: AuditIndex, chain_id: int, vault: str, agent: str, subtree: bool = False
) -> list[str]:
    """Every key of ``agent``'s lineage (and of its sub-agents' with ``subtree``)."""
    graph = agent_graph(index, chain_id, vault)
    lineages = graph.lineages(agent)
    if subtree:
        lineages = graph.subtree(lineages)
    return graph.keys(lineages) or [to_checksum_address(agent)]


def outflows(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    *,
    agent: str | None = None,
    token: str | None = None,
    subtree: bool = False,
    to_block: int | None = None,
) -> list[tuple[AuditEvent, str, int]]:
    """(event, token, amount) for everything that left the vault, oldest first; a scoped call
    that spent a token and sent ETH gives two."""
    vault = to_checksum_address(vault)
    keys = agent_keys(index, chain_id, vault, agent, subtree) if agent else None
    events = index.events(
        chain_id, EventFilter(vaults=(vault,), names=OUTFLOW_EVENTS, to_block=to_block), agents=keys
    )
    want = None if token is None else to_checksum_address(token)
    out = []
    for e in events:
        moved = call_outflows(e) if e.name == "CallExecuted" else [(e.token or ETH, e.amount or 0)]
        out += [(e, t, int(n)) for t, n in moved if want is None or t == want]
    return out


def spend_payments(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    agent: str | None = None,
    token: str | None = None,
    *,
    subtree: bool = False,
    names: Mapping[str, str] | None = None,
) -> list[AuditRow]:
    """Each outflow as an :class:`AuditRow` (with its ref, request id, how it was authorised
    and by whom), oldest first."""
    flows = outflows(index, chain_id, vault, agent=agent, token=token, subtree=subtree)
    events: list[AuditEvent] = []
    for e, _, _ in flows:
        if not events or events[-1].key != e.key:
            events.append(e)
    rows = payment_rows(index, chain_id, vault, events, names)
    want = None if token is None else to_checksum_address(token)
    return [r for r in rows if want is None or r.token == want]


@dataclass(frozen=True)
class SpendRow:
    agent: str
    token: str
    symbol: str
    day: str
    payments: int
    direct: str
    via_request: str
    total: str
    total_base_units: int


def spend_report(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    agent: str | None = None,
    token: str | None = None,
    *,
    subtree: bool = False,
) -> list[SpendRow]:
    """Outflows per agent, token and UTC day: direct (inside the agent's limits: payments,
    scoped calls, and the fees relayers took for its intents, which count against the same
    limits) vs authorised by owners (an executed payment or call request, or their signatures
    on a signed payment; those without an agent are listed under agent "")."""
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for e, tok, amount in outflows(
        index, chain_id, vault, agent=agent, token=token, subtree=subtree
    ):
        day = datetime.fromtimestamp(e.block_time, UTC).strftime("%Y-%m-%d")
        s = sums[(e.agent or "", tok, day)]
        s[0] += 0 if e.name == "RelayFeePaid" else 1
        by_owners = e.name == "SignedPaymentExecuted" or bool(e.request_id)
        s[2 if by_owners else 1] += amount
    amounts = Amounts(index, chain_id)
    rows = []
    for (ag, tok, day), (n, direct, via) in sorted(sums.items()):
        meta = amounts.meta(tok)
        rows.append(
            SpendRow(
                agent=ag,
                token=tok,
                symbol=meta.symbol,
                day=day,
                payments=n,
                direct=format_units(direct, meta.decimals),
                via_request=format_units(via, meta.decimals),
                total=format_units(direct + via, meta.decimals),
                total_base_units=direct + via,
            )
        )
    return rows


def totals(flows: Sequence[tuple[AuditEvent, str, int]]) -> dict[str, int]:
    """Sum of outflows per token."""
    out: dict[str, int] = defaultdict(int)
    for _, token, amount in flows:
        out[token] += amount
    return dict(out)
