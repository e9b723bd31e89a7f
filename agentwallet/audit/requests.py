"""Requests rebuilt from their events (the vault stores only a hash of each): payment requests,
call requests and governance proposals, their votes and their fate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agentwallet._text import short
from agentwallet.audit.events import AuditEvent, EventCodec, EventFilter
from agentwallet.audit.format import Amounts, iso, ref_of
from agentwallet.audit.index import AuditIndex
from agentwallet.protocol.calls import describe
from agentwallet.protocol.constants import ETH, reason_texts

__all__ = [
    "CREATION_EVENTS",
    "REQUEST_EVENTS",
    "RequestRow",
    "RequestState",
    "build_requests",
    "describe_call",
    "now_of",
    "requests_report",
    "vault_requests",
]

#: Events that create a request.
CREATION_EVENTS = ("PaymentRequested", "CallRequested", "GovernanceProposed")
REQUEST_EVENTS = (
    *CREATION_EVENTS,
    "RequestApproved",
    "RequestRejected",
    "RequestCancelled",
    "RequestExpired",
    "RequestExecuted",
    "OpenRequestsClosed",
)


@dataclass
class RequestState:
    """A request rebuilt from its events. ``approvals`` are the owners who authorised it, in
    order: on-chain approvals, then (at execution) the signers whose signatures executed it
    (also in ``signature_approvals``); an owner's later rejection of a proposal replaces its
    approval and vice versa. A call request's ``to`` is its target, ``token``/``amount`` what
    it may spend (``value`` the ETH it sends)."""

    request_id: int
    kind: str
    creator: str  #: the agent (payment, call) or proposing owner (governance)
    agent: str | None
    token: str | None
    to: str | None
    amount: int
    reasons: tuple[str, ...]
    ref: str | None
    created_at: int
    expires_at: int
    action: str
    lineage: int | None = None  #: a payment or call request's agent lineage
    value: int = 0  #: ETH a call request sends
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
    common = {
        "request_id": int(a["requestId"]),
        "ref": a["ref"],
        "created_at": e.block_time,
        "expires_at": int(a["expiresAt"]),
        "created_tx": e.tx_hash,
        "agent": e.agent,
    }
    if e.name == "PaymentRequested":
        return RequestState(
            kind="payment",
            creator=a["agent"],
            token=a["token"],
            to=a["to"],
            amount=int(a["amount"]),
            reasons=reason_texts(int(a["reasons"])),
            action="payment",
            lineage=int(a["lineage"]),
            **common,
        )
    if e.name == "CallRequested":
        return RequestState(
            kind="call",
            creator=a["agent"],
            token=a["spendToken"],
            to=a["target"],
            amount=int(a["spendAmount"]),
            value=int(a["value"]),
            reasons=reason_texts(int(a["reasons"])),
            action=f"call {a['target']} {a['data'][:10]}",
            lineage=int(a["lineage"]),
            **common,
        )
    return RequestState(
        kind="governance",
        creator=a["proposer"],
        token=None,
        to=None,
        amount=0,
        reasons=(),
        action=describe_call(codec, a["data"]),
        **common,
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


def vault_requests(index: AuditIndex, chain_id: int, vault: str) -> dict[int, RequestState]:
    events = index.events(chain_id, EventFilter(vaults=(vault,), names=REQUEST_EVENTS))
    return build_requests(index.codec, events)


def requests_by_id(
    index: AuditIndex, chain_id: int, vault: str, ids: Iterable[int]
) -> dict[int, RequestState]:
    """The requests with these ids (their events found through the request-id index)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    events = index.events(chain_id, EventFilter(vaults=(vault,)), request_ids=wanted)
    return build_requests(index.codec, [e for e in events if e.name in REQUEST_EVENTS])


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
    ref: str
    reasons: str
    approvals: list[str]
    created: str
    expires: str
    tx: str


def requests_report(
    index: AuditIndex, chain_id: int, vault: str, status: str = "open", now: int | None = None
) -> list[RequestRow]:
    """Requests by status: ``open`` (pending, not expired), ``expired`` (past expiry, never
    executed), ``pending``, ``executed``, ``rejected``, ``cancelled``, ``agent_revoked`` or
    ``all``; payment, call and governance requests alike."""
    t = now_of(index, chain_id, now)
    amounts = Amounts(index, chain_id)
    rows = []
    for r in vault_requests(index, chain_id, vault).values():
        effective = r.effective_status(t)
        if status == "open" and effective != "pending":
            continue
        if status not in ("open", "all") and effective != status:
            continue
        amount = ""
        if r.kind == "payment" or (r.kind == "call" and r.amount):
            amount = amounts.text(r.amount, r.token)
        if r.kind == "call" and r.value:
            amount = ", ".join(x for x in (amount, amounts.text(r.value, ETH)) if x)
        rows.append(
            RequestRow(
                request_id=r.request_id,
                kind=r.kind,
                status=effective,
                creator=r.creator,
                agent=r.agent,
                action=r.action,
                amount=amount,
                to=r.to,
                ref=ref_of(r.ref),
                reasons=", ".join(r.reasons),
                approvals=list(r.approvals),
                created=iso(r.created_at),
                expires=iso(r.expires_at),
                tx=r.created_tx,
            )
        )
    return rows
