"""An agent's trail and the structured rows auditors join on.

Every row (:class:`AuditRow`) carries what an auditor joins on: event, block, time, tx, agent
(address, key name where known, the chain of agents that delegated to it), token (address and
symbol), recipient, amount (base units and token units), ref (text if printable, else hex),
request id, how it was authorised and the owners who approved or signed it; ``what`` says it in
words. The trail follows an agent across key rotations (its lineage) and, asked for, its
sub-agents (``subtree``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter
from agentwallet.audit.format import Amounts, iso, ref_of
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.lineage import AgentGraph, agent_graph
from agentwallet.audit.requests import (
    CREATION_EVENTS,
    RequestState,
    build_requests,
    describe_call,
    requests_by_id,
)
from agentwallet.protocol.constants import ETH, AgentStatus, reason_texts

__all__ = ["AuditRow", "RowMaker", "TrailEntry", "trail"]

#: Events whose amount left the vault (what spend and reconcile count).
OUTFLOW_EVENTS = ("PaymentExecuted", "SignedPaymentExecuted", "RelayFeePaid", "CallExecuted")


@dataclass(frozen=True)
class AuditRow:
    """One event as an auditor joins on it. ``amount`` is in base units (a decimal string, ""
    when the event moves nothing), ``amount_formatted`` in token units; ``via`` how a payment
    was authorised (``direct`` inside the agent's limits, ``request #n``, ``owners'
    signatures``, ``relay fee``); ``approvals`` the owners who approved or signed it;
    ``delegation`` the agents that delegated to ``agent``, root first."""

    event: str
    block: int
    time: str
    tx: str
    log_index: int
    agent: str
    agent_name: str
    delegation: list[str]
    token: str
    symbol: str
    recipient: str
    amount: str
    amount_formatted: str
    ref: str
    request_id: int
    via: str
    approvals: list[str]
    what: str


#: The trail's former name.
TrailEntry = AuditRow


class RowMaker:
    """Builds :class:`AuditRow`s with the index's token metadata, the vault's agent graph, the
    requests involved and the local key names."""

    def __init__(
        self,
        amounts: Amounts,
        codec: EventCodec,
        graph: AgentGraph,
        requests: Mapping[int, RequestState],
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.amounts = amounts
        self.codec = codec
        self.graph = graph
        self.requests = requests
        self.names: dict[str, str] = {
            str(to_checksum_address(k)): v for k, v in (names or {}).items()
        }

    def row(
        self, e: AuditEvent, token: str | None = None, amount: int | None = None, what: str = ""
    ) -> AuditRow:
        a = e.args
        rid = e.request_id or 0
        r = self.requests.get(rid)
        token = token if token is not None else e.token
        amount = amount if amount is not None else e.amount
        if e.name in ("SignedPaymentExecuted", "GovernanceExecuted"):
            approvals = list(a["signers"])
        elif r is not None and e.name not in CREATION_EVENTS:
            approvals = list(r.approvals)
        else:
            approvals = []
        agent = e.agent or ""
        meta = self.amounts.meta(token) if token is not None or amount is not None else None
        return AuditRow(
            event=e.name,
            block=e.block_number,
            time=iso(e.block_time),
            tx=e.tx_hash,
            log_index=e.log_index,
            agent=agent,
            agent_name=self.names.get(agent, ""),
            delegation=self.graph.delegation(agent, e.block_number),
            token=(token or ETH) if meta else "",
            symbol=meta.symbol if meta else "",
            recipient=e.recipient or "",
            amount="" if amount is None else str(amount),
            amount_formatted="" if amount is None else self.amounts.units(amount, token),
            ref=ref_of(a.get("ref")),
            request_id=rid,
            via=via(e),
            approvals=approvals,
            what=what or describe_event(e, r, self.amounts, self.codec, self.graph),
        )


def via(e: AuditEvent) -> str:
    """How an outflow was authorised ("" for other events)."""
    if e.name not in OUTFLOW_EVENTS:
        return ""
    if e.name == "SignedPaymentExecuted":
        return "owners' signatures"
    if e.name == "RelayFeePaid":
        return "relay fee"
    return f"request #{e.request_id}" if e.request_id else "direct"


def trail(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    agent: str,
    *,
    subtree: bool = False,
    names: Mapping[str, str] | None = None,
) -> list[AuditRow]:
    """Everything about ``agent`` and every key of its lineage (before and after rotations): how
    it was added and with which limits, by which request and owners; each payment and call
    (direct or via request); each escalation and its decision; delegations, pauses,
    rotation, revocation. ``subtree``: also what its sub-agents (at any depth) did.

    Reads only the agent's rows (the (vault, agent) index), the requests they name (the
    request-id index) and the vault's few agent events, never the whole history."""
    agent = to_checksum_address(agent)
    vault = to_checksum_address(vault)
    graph = agent_graph(index, chain_id, vault)
    lineages = graph.lineages(agent)
    if subtree:
        lineages = graph.subtree(lineages)
    keys = graph.keys(lineages) or [agent]
    own = index.events(chain_id, EventFilter(vaults=(vault,)), agents=keys)
    seen = {e.key for e in own}
    delegated = [e for e in graph.delegations if e.args["parent"] in keys and e.key not in seen]
    ids = {e.request_id for e in own if e.request_id}
    related = []
    if ids:
        for e in index.events(chain_id, EventFilter(vaults=(vault,)), request_ids=ids):
            if e.key not in seen:
                related.append(e)
    events = sorted([*own, *delegated, *related], key=lambda e: e.key)
    requests = build_requests(index.codec, events)
    maker = RowMaker(Amounts(index, chain_id), index.codec, graph, requests, names)
    return [maker.row(e) for e in events]


def payment_rows(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    events: list[AuditEvent],
    names: Mapping[str, str] | None = None,
) -> list[AuditRow]:
    """One row per outflow event (a scoped call that sent ETH and spent a token: two rows)."""
    vault = to_checksum_address(vault)
    requests = requests_by_id(index, chain_id, vault, (e.request_id or 0 for e in events))
    graph = agent_graph(index, chain_id, vault)
    maker = RowMaker(Amounts(index, chain_id), index.codec, graph, requests, names)
    rows = []
    for e in events:
        if e.name == "CallExecuted":
            for token, amount in call_outflows(e):
                rows.append(maker.row(e, token, amount))
        else:
            rows.append(maker.row(e))
    return rows


def call_outflows(e: AuditEvent) -> list[tuple[str, int]]:
    """What a ``CallExecuted`` moved out of the vault: (spendToken, spent) and (ETH, value)."""
    out = []
    spent, value = int(e.args["spent"]), int(e.args["value"])
    if spent:
        out.append((str(e.args["spendToken"]), spent))
    if value:
        out.append((ETH, value))
    return out


def describe_event(
    e: AuditEvent,
    r: RequestState | None,
    amounts: Amounts,
    codec: EventCodec,
    graph: AgentGraph | None = None,
) -> str:
    a = e.args

    def who(address: str) -> str:
        """An owner, or a parent agent acting on its sub-agent."""
        if graph is not None and address in graph.lineages_of:
            return f"parent agent {address}"
        return f"owner {address}"

    rid = e.request_id or 0
    via_text = f"by request #{rid}" if rid else "by owners' signatures"
    name = e.name
    if name == "AgentConfigured":
        window = f"validAfter={a['validAfter']}, validUntil={a['validUntil'] or 'none'}"
        settings = f"({window}, allowlist={a['useAllowlist']})"
        if rid:
            return f"agent added/configured {settings} {via_text}"
        return (
            f"agent configured {settings} without a request: by owners' signatures, a parent "
            "agent's delegation, or one owner switched its allowlist on"
        )
    if name == "LimitsChanged":
        sym = amounts.meta(e.token).symbol
        if int(a["period"]) == 0:
            return f"{sym} removed from scope by {who(a['by'])}"
        limits = (
            f"{sym}: max {amounts.text(int(a['maxPerPayment']), e.token)} per payment, "
            f"{amounts.text(int(a['allowance']), e.token)} per {a['period']}s"
        )
        left = f"; {amounts.text(int(a['available']), e.token)} available"
        if rid or a["by"] == e.vault:
            return f"limits set {via_text} ({limits}){left}"
        return f"limits reduced by {who(a['by'])} ({limits}){left}"
    if name == "RecipientChanged":
        if a["allowed"]:
            return f"recipient {a['recipient']} allowed {via_text}"
        return f"recipient {a['recipient']} removed by {who(a['by'])}"
    if name == "RecipientBudgetChanged":
        sym = amounts.meta(e.token).symbol
        target = a["recipient"] if a["recipient"] != ETH else "every other recipient"
        if int(a["period"]) == 0:
            return f"{sym} budget for {target} removed {via_text}"
        return (
            f"{sym} budget for {target}: max {amounts.text(int(a['maxPerPayment']), e.token)} "
            f"per payment, {amounts.text(int(a['allowance']), e.token)} per {a['period']}s, "
            f"set by {a['by']}" + (f" (request #{rid})" if rid else "")
        )
    if name == "AgentStatusChanged":
        status = AgentStatus.text_of(a["status"])
        if rid or a["by"] == e.vault:
            return f"agent {status} {via_text}"
        return f"agent {status} by {who(a['by'])}"
    if name == "AgentRotated":
        return (
            f"agent key rotated from {a['oldKey']} to {a['newKey']} by {a['by']} "
            f"(lineage {a['lineage']})"
        )
    if name == "SubAgentAdded":
        return f"sub-agent {a['child']} added under {a['parent']} by {a['by']}"
    if name == "OpenRequestsClosed":
        return f"{a['count']} open request(s) closed: the agent was revoked"
    if name == "PaymentExecuted":
        paid = f"paid {amounts.text(int(a['amount']), e.token)} to {a['to']}"
        return f"{paid} via request #{rid}" if rid else f"{paid} directly (within limits)"
    if name == "RelayFeePaid":
        return f"relayer {a['relayer']} took a fee of {amounts.text(int(a['fee']), e.token)}"
    if name == "SignedPaymentExecuted":
        signers = ", ".join(a["signers"])
        paid = f"paid {amounts.text(int(a['amount']), e.token)} to {a['to']}"
        return f"{paid} on the signatures of owners {signers}"
    if name == "CallExecuted":
        moved = [amounts.text(amount, token) for token, amount in call_outflows(e)]
        spent = f" spending {' + '.join(moved)}" if moved else ""
        how = f"via request #{rid}" if rid else "within its call permissions"
        return f"called {a['target']} ({a['selector']}){spent} {how}"
    if name == "CallRequested":
        reasons = ", ".join(reason_texts(int(a["reasons"])))
        return (
            f"escalated a call to {a['target']} ({a['data'][:10]}, spending up to "
            f"{amounts.text(int(a['spendAmount']), a['spendToken'])}, value "
            f"{amounts.text(int(a['value']), ETH)}) ({reasons}) as request #{rid}, expires "
            f"{iso(int(a['expiresAt']))}"
        )
    if name == "CallPermissionChanged":
        if int(a["period"]) == 0:
            return f"call {a['target']} {a['selector']} revoked by {a['by']}"
        value = amounts.text(int(a["valueAllowance"]), ETH)
        return (
            f"call {a['target']} {a['selector']} granted by {a['by']} (max value "
            f"{amounts.text(int(a['maxValue']), ETH)}, {value} per {a['period']}s)"
            + (f" by request #{rid}" if rid else "")
        )
    if name == "PaymentRequested":
        reasons = ", ".join(reason_texts(int(a["reasons"])))
        return (
            f"escalated {amounts.text(int(a['amount']), e.token)} to {a['to']} "
            f"({reasons}) as request #{rid}, expires {iso(int(a['expiresAt']))}"
        )
    if name == "GovernanceProposed":
        return f"owner {a['proposer']} proposed {describe_call(codec, a['data'])} as request #{rid}"
    if name == "RequestApproved":
        return f"owner {a['owner']} approved request #{rid} on-chain ({a['approvals']} approvals)"
    if name == "RequestRejected":
        closed = "" if a["closed"] else f" ({a['rejections']} rejections, still open)"
        return f"owner {a['owner']} rejected request #{rid}{closed}"
    if name == "RequestCancelled":
        return f"agent cancelled request #{rid}"
    if name == "RequestExpired":
        return f"request #{rid} expired"
    if name == "RequestExecuted":
        signers = ", ".join(a["signers"])
        signed = ", ".join(r.signature_approvals) if r else ""
        by_signature = f" (by signature: {signed})" if signed else ""
        return f"request #{rid} executed by {a['executor']}, authorised by {signers}{by_signature}"
    return f"{name} {json.dumps(dict(a), default=str)}"
