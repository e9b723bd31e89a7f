"""The plain-words tables the console shows: a request as the CLI's signing table shows it
(``agentwallet approve``/``sign``), an agent with its limits and what it can spend now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from agentwallet._text import label, short, span
from agentwallet.errors import AgentWalletError
from agentwallet.protocol.constants import ZERO_ADDRESS
from agentwallet.protocol.models import AgentView, RequestInfo
from agentwallet.units import format_amount
from agentwallet.vault import Vault

__all__ = ["Labels", "agent_rows", "delegation", "request_rows", "utc"]

#: How deep a sub-agent chain is followed (the vault bounds its depth far below this).
MAX_DEPTH = 16


def utc(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Labels:
    """Names for addresses: the owner's key names and the console's vault names."""

    names: dict[str, str]

    def label(self, address: str | None) -> str:
        """``alice (0x7099…79C8)`` for a known address, else the short address."""
        return label(address, self.names)

    def describe(self, vault: Vault, r: RequestInfo) -> str:
        """A governance request's call in plain words (names, token units), as the CLI says it."""
        from agentwallet.views import describe_governance

        if not r.data or r.data == "0x":
            return r.action
        return describe_governance(vault, bytes.fromhex(r.data[2:]), self.names) or r.action


def delegation(vault: Vault, agent: str) -> list[str]:
    """The agent and the agents above it (the one that added it as a sub-agent, and so on);
    just the agent for one the owners added."""
    chain = [agent]
    current = agent
    for _ in range(MAX_DEPTH):
        parent = vault.bindings.agent(current).parent
        if parent == ZERO_ADDRESS or parent in chain:
            break
        chain.append(parent)
        current = parent
    return chain


def request_rows(
    vault: Vault, r: RequestInfo, chain_id: int, labels: Labels, now: int
) -> list[tuple[str, str]]:
    """Exactly what an owner decides on: vault, chain, request, who, to whom, how much, why,
    the ref, age, expiry and approvals (the CLI's signing table, row for row)."""
    label = labels.label
    rows: list[tuple[str, str]] = [
        ("vault", vault.address),
        ("chain id", str(chain_id)),
        ("request", f"#{r.id} ({r.kind}, {r.status})"),
    ]
    if r.kind == "payment":
        rows += [
            ("agent", f"{label(r.agent)}  {r.agent}"),
            ("recipient", f"{label(r.to)}  {r.to}"),
            ("amount", f"{r.amount_text}  ({r.amount} base units)"),
            ("token", f"{r.token.symbol} {r.token.address}"),
            ("reasons", ", ".join(r.reasons) or "-"),
        ]
    elif r.kind == "governance":
        rows += [
            ("proposed by", label(r.agent)),
            ("action", labels.describe(vault, r)),
            ("call", r.action),
        ]
    else:
        rows += [
            ("agent", f"{label(r.agent)}  {r.agent}"),
            ("action", r.action),
            ("reasons", ", ".join(r.reasons) or "-"),
        ]
    rows += [
        ("ref", r.ref or "-"),
        ("age", span(now - r.created_at)),
        (
            "expires",
            utc(r.expires_at)
            + (f" (in {span(r.expires_at - now)})" if r.expires_at > now else " (expired)"),
        ),
        (
            "approvals",
            f"{len(r.approvals)}/{r.threshold} on-chain: "
            + (", ".join(label(a) for a in r.approvals) or "none"),
        ),
    ]
    return rows


def agent_rows(vault: Vault, view: AgentView, labels: Labels) -> dict[str, Any]:
    """An agent for the vault page: status, validity, and per token its limits and what it can
    spend in one payment now."""
    limits = []
    for token, policy in view.policies.items():
        try:
            info = vault.token(token)
            symbol, decimals = info.symbol, info.decimals
        except AgentWalletError:
            symbol, decimals = short(token), 18
        now_max = min(policy.available, policy.max_per_payment)
        limits.append(
            {
                "symbol": symbol,
                "token": token,
                "max_per_payment": format_amount(policy.max_per_payment, decimals),
                "allowance": format_amount(policy.allowance, decimals),
                "period": span(policy.period),
                "available": format_amount(policy.available, decimals),
                "spend_now": format_amount(now_max, decimals),
            }
        )
    return {
        "address": view.address,
        "label": labels.label(view.address),
        "status": view.status,
        "valid_until": utc(view.valid_until) if view.valid_until else "open",
        "allowlist": view.allowlist,
        "open_requests": view.open_requests,
        "parent": labels.label(view.parent) if view.parent != ZERO_ADDRESS else "",
        "limits": limits,
    }
