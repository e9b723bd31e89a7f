"""Reports computed from the audit index (never from the chain): an agent's trail, spend per
day, requests, owner decisions and a vault summary."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eth_utils.address import to_checksum_address

from agentwallet._text import short, table
from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter
from agentwallet.audit.index import AuditIndex, TokenMeta
from agentwallet.protocol.calls import describe
from agentwallet.protocol.constants import ETH, AgentStatus, reason_texts


def format_units(amount: int, decimals: int | None) -> str:
    """Base units → token units text, trailing zeros trimmed ("0.5"); raw if decimals unknown."""
    if decimals is None or decimals == 0:
        return str(amount)
    text = format(Decimal(amount).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def iso(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


class Amounts:
    """Formats amounts with the token symbols and decimals cached in the index."""

    def __init__(self, index: AuditIndex, chain_id: int) -> None:
        self.index = index
        self.chain_id = chain_id
        self._cache: dict[str, TokenMeta] = {}

    def meta(self, token: str | None) -> TokenMeta:
        token = token or ETH
        if token not in self._cache:
            self._cache[token] = self.index.token(self.chain_id, token)
        return self._cache[token]

    def text(self, amount: int, token: str | None) -> str:
        meta = self.meta(token)
        return f"{format_units(amount, meta.decimals)} {meta.symbol}"


# ------------------------------------------------------------------------------------ requests


@dataclass
class RequestState:
    """A request rebuilt from its events. ``approvals`` are the owners who authorised it, in
    order: on-chain approvals, then (at execution) the signers whose signatures executed it
    (also in ``signature_approvals``); an owner's later rejection of a proposal replaces its
    approval and vice versa."""

    request_id: int
    kind: str
    creator: str  #: the agent (payment) or proposing owner (governance)
    agent: str | None
    token: str | None
    to: str | None
    amount: int
    reasons: tuple[str, ...]
    ref: str | None
    created_at: int
    expires_at: int
    action: str
    lineage: int | None = None  #: a payment request's agent lineage
    status: str = "pending"
    approvals: list[str] = field(default_factory=list)
    signature_approvals: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    rejected_by: str | None = None
    executed_by: str | None = None
    closed_at: int | None = None
    created_tx: str = ""

    def effective_status(self, now: int) -> str:
        """ "expired" for a pending request past its expiry (it can no longer execute)."""
        if self.status == "pending" and now > self.expires_at:
            return "expired"
        return self.status


def describe_call(codec: EventCodec, data_hex: str) -> str:
    call = codec.decode_call(bytes.fromhex(data_hex[2:]))
    if call is None:
        return f"call {data_hex[:10]}"
    return describe(call, address=short)


def _created(codec: EventCodec, e: AuditEvent) -> RequestState:
    a = e.args
    if e.name == "PaymentRequested":
        return RequestState(
            request_id=int(a["requestId"]),
            kind="payment",
            creator=a["agent"],
            agent=e.agent,
            token=a["token"],
            to=a["to"],
            amount=int(a["amount"]),
            reasons=reason_texts(int(a["reasons"])),
            ref=a["ref"],
            created_at=e.block_time,
            expires_at=int(a["expiresAt"]),
            action="payment",
            lineage=int(a["lineage"]),
            created_tx=e.tx_hash,
        )
    return RequestState(
        request_id=int(a["requestId"]),
        kind="governance",
        creator=a["proposer"],
        agent=e.agent,
        token=None,
        to=None,
        amount=0,
        reasons=(),
        ref=a["ref"],
        created_at=e.block_time,
        expires_at=int(a["expiresAt"]),
        action=describe_call(codec, a["data"]),
        created_tx=e.tx_hash,
    )


def build_requests(codec: EventCodec, events: Iterable[AuditEvent]) -> dict[int, RequestState]:
    requests: dict[int, RequestState] = {}
    for e in events:
        rid = e.request_id
        if e.name in CREATION_EVENTS:
            requests[int(e.args["requestId"])] = _created(codec, e)
            continue
        if e.name == "OpenRequestsClosed":  # a revoked agent's pending requests die with it
            for dead in requests.values():
                if dead.status == "pending" and dead.lineage == int(e.args["lineage"]):
                    dead.status, dead.closed_at = "agent_revoked", e.block_time
            continue
        found = requests.get(rid) if rid else None
        if found is None:
            continue
        r = found
        if e.name == "RequestApproved":
            owner = e.args["owner"]
            if owner in r.rejections:
                r.rejections.remove(owner)
            if owner not in r.approvals:
                r.approvals.append(owner)
        elif e.name == "RequestRejected":
            owner = e.args["owner"]
            if owner in r.approvals:
                r.approvals.remove(owner)
            r.rejections.append(owner)
            if e.args["closed"]:
                r.status, r.rejected_by, r.closed_at = "rejected", owner, e.block_time
        elif e.name == "RequestCancelled":
            r.status, r.closed_at = "cancelled", e.block_time
        elif e.name == "RequestExpired":
            r.status, r.closed_at = "expired", e.block_time
        elif e.name == "RequestExecuted":
            r.status, r.executed_by, r.closed_at = "executed", e.args["executor"], e.block_time
            for signer in e.args["signers"]:
                if signer not in r.approvals:
                    r.approvals.append(signer)
                    r.signature_approvals.append(signer)
    return requests


#: Events that create a request.
CREATION_EVENTS = ("PaymentRequested", "GovernanceProposed")
REQUEST_EVENTS = (
    *CREATION_EVENTS,
    "RequestApproved",
    "RequestRejected",
    "RequestCancelled",
    "RequestExpired",
    "RequestExecuted",
    "OpenRequestsClosed",
)


def vault_requests(index: AuditIndex, chain_id: int, vault: str) -> dict[int, RequestState]:
    events = index.events(chain_id, EventFilter(vaults=(vault,), names=REQUEST_EVENTS))
    return build_requests(index.codec, events)


def now_of(index: AuditIndex, chain_id: int, now: int | None) -> int:
    if now is not None:
        return now
    return index.last_block_time(chain_id) or 0


@dataclass(frozen=True)
class RequestRow:
    request_id: int
    kind: str
    status: str
    creator: str
    agent: str | None
    action: str
    amount: str
    to: str | None
    reasons: str
    approvals: str
    created: str
    expires: str


def requests_report(
    index: AuditIndex, chain_id: int, vault: str, status: str = "open", now: int | None = None
) -> list[RequestRow]:
    """Requests by status: ``open`` (pending, not expired), ``expired`` (past expiry, never
    executed), ``pending``, ``executed``, ``rejected``, ``cancelled`` or ``all``."""
    t = now_of(index, chain_id, now)
    amounts = Amounts(index, chain_id)
    rows = []
    for r in vault_requests(index, chain_id, vault).values():
        effective = r.effective_status(t)
        if status == "open" and effective != "pending":
            continue
        if status not in ("open", "all") and effective != status:
            continue
        rows.append(
            RequestRow(
                request_id=r.request_id,
                kind=r.kind,
                status=effective,
                creator=r.creator,
                agent=r.agent,
                action=r.action,
                amount=amounts.text(r.amount, r.token) if r.kind == "payment" else "",
                to=r.to,
                reasons=", ".join(r.reasons),
                approvals=", ".join(r.approvals),
                created=iso(r.created_at),
                expires=iso(r.expires_at),
            )
        )
    return rows


# ------------------------------------------------------------------------------------ trail


@dataclass(frozen=True)
class TrailEntry:
    block: int
    time: str
    tx: str
    event: str
    request_id: int
    what: str
    approved_by: str


def trail(index: AuditIndex, chain_id: int, vault: str, agent: str) -> list[TrailEntry]:
    """Everything about ``agent``: how it was added and with which limits, by which request and
    which owners approved; each payment (direct or via request); each escalation and its
    decision; pauses, revocation."""
    agent = to_checksum_address(agent)
    vault = to_checksum_address(vault)
    own = index.events(chain_id, EventFilter(vaults=(vault,), agent=agent))
    ids = {e.request_id for e in own if e.request_id}
    events = own
    if ids:
        related = [
            e
            for e in index.events(chain_id, EventFilter(vaults=(vault,)), request_ids=ids)
            if e.agent != agent
        ]
        events = sorted([*own, *related], key=lambda e: e.key)
    requests = build_requests(index.codec, events)
    amounts = Amounts(index, chain_id)
    out = []
    for e in events:
        rid = e.request_id or 0
        r = requests.get(rid)
        approved = ", ".join(r.approvals) if r and e.name not in CREATION_EVENTS else ""
        out.append(
            TrailEntry(
                block=e.block_number,
                time=iso(e.block_time),
                tx=e.tx_hash,
                event=e.name,
                request_id=rid,
                what=_describe(e, r, amounts, index.codec),
                approved_by=approved,
            )
        )
    return out


def _describe(e: AuditEvent, r: RequestState | None, amounts: Amounts, codec: EventCodec) -> str:
    a = e.args
    rid = e.request_id or 0
    via = f"by request #{rid}" if rid else "by owners' signatures"
    name = e.name
    if name == "AgentConfigured":
        window = f"validAfter={a['validAfter']}, validUntil={a['validUntil'] or 'none'}"
        settings = f"({window}, allowlist={a['useAllowlist']})"
        if rid:
            return f"agent added/configured {settings} {via}"
        return (
            f"agent configured {settings} without a request: by owners' signatures, or one "
            "owner switched its allowlist on"
        )
    if name == "LimitsChanged":
        sym = amounts.meta(e.token).symbol
        if int(a["period"]) == 0:
            return f"{sym} removed from scope by owner {a['by']}"
        limits = (
            f"{sym}: max {amounts.text(int(a['maxPerPayment']), e.token)} per payment, "
            f"{amounts.text(int(a['allowance']), e.token)} per {a['period']}s"
        )
        left = f"; {amounts.text(int(a['available']), e.token)} available"
        if rid or a["by"] == e.vault:
            return f"limits set {via} ({limits}){left}"
        return f"limits reduced by owner {a['by']} ({limits}){left}"
    if name == "RecipientChanged":
        if a["allowed"]:
            return f"recipient {a['recipient']} allowed {via}"
        return f"recipient {a['recipient']} removed by owner {a['by']}"
    if name == "RecipientBudgetChanged":
        sym = amounts.meta(e.token).symbol
        target = a["recipient"] if a["recipient"] != ETH else "every other recipient"
        if int(a["period"]) == 0:
            return f"{sym} budget for {target} removed {via}"
        return (
            f"{sym} budget for {target}: max {amounts.text(int(a['maxPerPayment']), e.token)} "
            f"per payment, {amounts.text(int(a['allowance']), e.token)} per {a['period']}s, "
            f"set by {a['by']}" + (f" (request #{rid})" if rid else "")
        )
    if name == "AgentStatusChanged":
        status = AgentStatus.text_of(a["status"])
        if rid or a["by"] == e.vault:
            return f"agent {status} {via}"
        return f"agent {status} by owner {a['by']}"
    if name == "AgentRotated":
        return f"agent key rotated from {a['oldKey']} to {a['newKey']} by {a['by']}"
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


# ------------------------------------------------------------------------------------ spend


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
) -> list[SpendRow]:
    """Executed payments per agent, token and UTC day: direct (inside the agent's limits, with
    the fees relayers took for its intents, which count against the same limits) vs authorised
    by owners (an executed payment request, linked by the RequestExecuted after it, or their
    signatures on a signed payment; those without an agent are listed under agent "")."""
    names = ("PaymentExecuted", "SignedPaymentExecuted", "RelayFeePaid")
    events = index.events(
        chain_id, EventFilter(vaults=(vault,), names=names, agent=agent, token=token)
    )
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        day = datetime.fromtimestamp(e.block_time, UTC).strftime("%Y-%m-%d")
        s = sums[(e.agent or "", e.token or ETH, day)]
        s[0] += 0 if e.name == "RelayFeePaid" else 1
        by_owners = e.name == "SignedPaymentExecuted" or bool(e.request_id)
        s[2 if by_owners else 1] += int(e.amount or 0)
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


# ------------------------------------------------------------------------------------ owners


@dataclass(frozen=True)
class OwnerRow:
    owner: str
    current: bool
    proposals: int
    approvals: int
    by_signature: int
    rejections: int
    executions: int
    last_decision: str


def owners_report(index: AuditIndex, chain_id: int, vault: str) -> list[OwnerRow]:
    """Decisions per owner: proposals, approvals (on-chain, or by a signature that executed a
    request or a signed governance batch), rejections, and the executions they sent."""
    names = ("OwnerAdded", "OwnerRemoved", "GovernanceExecuted", *REQUEST_EVENTS)
    events = index.events(chain_id, EventFilter(vaults=(vault,), names=names))
    current: dict[str, bool] = {}
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    voted: dict[int, set[str]] = defaultdict(set)  # on-chain approvers per request

    def signed(signers: Iterable[str], skip: set[str], when: int) -> None:
        for signer in signers:
            if signer not in skip:
                s = stats[signer]
                s[1], s[2], s[5] = s[1] + 1, s[2] + 1, when

    for e in events:
        if e.name == "OwnerAdded":
            current[e.args["owner"]] = True
        elif e.name == "OwnerRemoved":
            current[e.args["owner"]] = False
        elif e.name == "GovernanceProposed":
            stats[e.args["proposer"]][0] += 1
        elif e.name == "RequestApproved":
            s = stats[e.args["owner"]]
            s[1] += 1
            s[5] = e.block_time
            voted[e.request_id or 0].add(e.args["owner"])
        elif e.name == "RequestRejected":
            stats[e.args["owner"]][3] += 1
            stats[e.args["owner"]][5] = e.block_time
        elif e.name == "RequestExecuted":
            stats[e.args["executor"]][4] += 1
            signed(e.args["signers"], voted[e.request_id or 0], e.block_time)
        elif e.name == "GovernanceExecuted":
            stats[e.args["executor"]][4] += 1
            signed(e.args["signers"], set(), e.block_time)
    rows = []
    for owner in sorted(set(current) | {o for o in stats if o in current}):
        s = stats[owner]
        rows.append(
            OwnerRow(
                owner, current.get(owner, False), s[0], s[1], s[2], s[3], s[4], iso(s[5] or None)
            )
        )
    return rows


# ------------------------------------------------------------------------------------ summary


def summary_report(
    index: AuditIndex, chain_id: int, vault: str, now: int | None = None
) -> dict[str, Any]:
    """The vault's state as the events tell it: owners, threshold, agents, totals (relay fees
    when any were paid), requests."""
    vault = to_checksum_address(vault)
    events = index.events(chain_id, EventFilter(vaults=(vault,)))
    t = now_of(index, chain_id, now)
    amounts = Amounts(index, chain_id)
    owners: dict[str, bool] = {}
    settings: dict[str, Any] = {"paused": False}
    agents: dict[str, dict[str, Any]] = {}
    deposits: dict[str, int] = defaultdict(int)
    paid: dict[str, int] = defaultdict(int)
    fees: dict[str, int] = defaultdict(int)
    for e in events:
        a = e.args
        if e.name == "OwnerAdded":
            owners[a["owner"]] = True
        elif e.name == "OwnerRemoved":
            owners.pop(a["owner"], None)
        elif e.name == "ThresholdChanged":
            settings["threshold"] = int(a["threshold"])
        elif e.name == "RequestExpiryChanged":
            settings["request_expiry"] = int(a["requestExpiry"])
        elif e.name == "MaxOpenRequestsChanged":
            settings["max_open_requests"] = int(a["maxOpenRequests"])
        elif e.name == "VaultPaused":
            settings["paused"] = True
        elif e.name == "VaultUnpaused":
            settings["paused"] = False
        elif e.name == "Deposited":
            deposits[a["token"]] += int(a["amount"])
        elif e.name == "PaymentExecuted":
            paid[a["token"]] += int(a["amount"])
            agents.setdefault(a["agent"], {"status": "active", "limits": {}})
        elif e.name == "SignedPaymentExecuted":
            paid[a["token"]] += int(a["amount"])
        elif e.name == "RelayFeePaid":
            fees[a["token"]] += int(a["fee"])
        elif e.name == "AgentRotated":  # the new key holds the old key's rights
            old = agents.setdefault(a["oldKey"], {"status": "active", "limits": {}})
            agents[a["newKey"]] = {**old, "limits": dict(old["limits"])}
            old["status"] = AgentStatus.ROTATED.text
        elif e.name == "SubAgentAdded":
            ag = agents.setdefault(a["child"], {"status": "active", "limits": {}})
            ag["parent"] = a["parent"]
        elif e.name == "AgentConfigured":
            ag = agents.setdefault(a["agent"], {"status": "active", "limits": {}})
            ag["allowlist"] = bool(a["useAllowlist"])
        elif e.name == "AgentStatusChanged":
            ag = agents.setdefault(a["agent"], {"status": "active", "limits": {}})
            ag["status"] = AgentStatus.text_of(a["status"])
        elif e.name == "LimitsChanged":
            ag = agents.setdefault(a["agent"], {"status": "active", "limits": {}})
            sym = amounts.meta(a["token"]).symbol
            if int(a["period"]) == 0:
                ag["limits"].pop(sym, None)
            else:
                ag["limits"][sym] = {
                    "max_per_payment": amounts.text(int(a["maxPerPayment"]), a["token"]),
                    "allowance": amounts.text(int(a["allowance"]), a["token"]),
                    "period": int(a["period"]),
                }
    counts: dict[str, int] = defaultdict(int)
    for r in vault_requests(index, chain_id, vault).values():
        counts[r.effective_status(t)] += 1
    return {
        "vault": vault,
        "chain_id": chain_id,
        "owners": sorted(owners),
        **settings,
        "agents": {k: agents[k] for k in sorted(agents)},
        "deposits": {amounts.meta(k).symbol: amounts.text(v, k) for k, v in deposits.items()},
        "payments": {amounts.meta(k).symbol: amounts.text(v, k) for k, v in paid.items()},
        **(
            {"relay_fees": {amounts.meta(k).symbol: amounts.text(v, k) for k, v in fees.items()}}
            if fees
            else {}
        ),
        "requests": dict(sorted(counts.items())),
        "events": len(events),
        "last_event_block": events[-1].block_number if events else None,
    }


# ------------------------------------------------------------------------------------ output


def rows_to_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [asdict(r) if hasattr(r, "__dataclass_fields__") else dict(r) for r in rows]


def render(rows: Sequence[Any], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """Rows (dataclasses or dicts) as an aligned text table, JSON or CSV."""
    dicts = rows_to_dicts(rows)
    if fmt == "json":
        return json.dumps(dicts, indent=2, default=str)
    cols = list(columns or (dicts[0].keys() if dicts else []))
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(dicts)
        return buf.getvalue().rstrip("\n")
    if not dicts:
        return "(none)"
    return table(cols, [[d.get(c) for c in cols] for d in dicts])
