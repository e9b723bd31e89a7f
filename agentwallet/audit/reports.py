"""Reports computed from the audit index (never from the chain): owner decisions and a vault
summary here; an agent's trail (:mod:`~agentwallet.audit.trail`), spend
(:mod:`~agentwallet.audit.spend`) and requests (:mod:`~agentwallet.audit.requests`) in their own
modules, re-exported here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from agentwallet.audit.events import EventFilter
from agentwallet.audit.format import Amounts, format_units, iso, ref_of, render, rows_to_dicts
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.requests import (
    CREATION_EVENTS,
    REQUEST_EVENTS,
    RequestRow,
    RequestState,
    build_requests,
    describe_call,
    now_of,
    requests_report,
    vault_requests,
)
from agentwallet.audit.spend import SpendRow, spend_payments, spend_report
from agentwallet.audit.trail import AuditRow, TrailEntry, call_outflows, trail
from agentwallet.protocol.constants import AgentStatus

__all__ = [
    "CREATION_EVENTS",
    "REQUEST_EVENTS",
    "Amounts",
    "AuditRow",
    "OwnerRow",
    "RequestRow",
    "RequestState",
    "SpendRow",
    "TrailEntry",
    "build_requests",
    "describe_call",
    "format_units",
    "iso",
    "now_of",
    "owners_report",
    "ref_of",
    "render",
    "requests_report",
    "rows_to_dicts",
    "spend_payments",
    "spend_report",
    "summary_report",
    "trail",
    "vault_requests",
]


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
    calls: dict[str, int] = defaultdict(int)
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
        elif e.name == "CallExecuted":
            for token, amount in call_outflows(e):
                calls[token] += amount
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
        **(
            {"calls": {amounts.meta(k).symbol: amounts.text(v, k) for k, v in calls.items()}}
            if calls
            else {}
        ),
        "requests": dict(sorted(counts.items())),
        "events": len(events),
        "last_event_block": events[-1].block_number if events else None,
    }
