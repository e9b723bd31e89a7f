"""What owners look at: a vault's requests and agents, decoded for humans.

Read-only compositions of :mod:`agentwallet.bindings.vault` and :mod:`agentwallet.protocol`;
:class:`~agentwallet.vault.Vault` exposes them as ``request``, ``requests``, ``agents``,
``agent`` and ``describe_call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentwallet import request_log
from agentwallet._text import label, short, span
from agentwallet.errors import AgentWalletError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.calls import describe
from agentwallet.protocol.constants import AgentStatus, RequestStatus
from agentwallet.protocol.models import ETH_TOKEN, AgentView, RequestInfo
from agentwallet.protocol.refs import ref_text
from agentwallet.protocol.requests import CallRequest, PaymentRequest
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = [
    "agent_view",
    "agents",
    "describe_call",
    "describe_governance",
    "request_info",
    "request_status",
    "requests",
]


def describe_call(vault: Vault, data: bytes) -> str:
    """A governance call as text, e.g. ``setLimits(agent=0xab.., token=tUSDC, ...)``."""

    def symbol(token: str) -> str:
        try:
            return vault.token(token).symbol
        except AgentWalletError:
            return token

    call = vault.bindings.decode_call(data)
    return "0x" + data.hex() if call is None else describe(call, token=symbol)


def request_status(vault: Vault, found: request_log.Found) -> RequestStatus | int:
    """A request's status now: the vault's ``paymentStatus``/``proposalStatus`` (``EXPIRED``
    for a pending request past its expiry, ``AGENT_REVOKED`` for a revoked agent's request), and
    for a closed payment request whose slot a later request reuses, its final status from its
    events."""
    status = vault.bindings.request_status(found.request)
    if status == RequestStatus.CLOSED:
        status = request_log.final_status(vault, found)
    return status


def _info(vault: Vault, found: request_log.Found, owners: list[str], threshold: int) -> RequestInfo:
    r = found.request
    status = RequestStatus.text_of(request_status(vault, found))
    approvals = tuple(o for o in owners if vault.bindings.has_approved(r.id, o))
    if isinstance(r, PaymentRequest):
        info = vault.token(r.token)
        amount_text = f"{format_amount(r.amount, info.decimals)} {info.symbol}"
        action = f"pay {amount_text} to {r.to}"
    elif isinstance(r, CallRequest):
        info = vault.token(r.spend_token)
        amount_text = f"{format_amount(r.spend_amount, info.decimals)} {info.symbol}"
        value = f" with {format_amount(r.value, 18)} ETH" if r.value else ""
        spend = f", spending up to {amount_text}" if r.spend_amount else ""
        action = f"call {r.target} (0x{r.data[:4].hex()}){value}{spend}"
    else:
        info, amount_text, action = ETH_TOKEN, "", describe_call(vault, r.data)
    return RequestInfo(
        id=r.id,
        kind=r.kind.text,
        status=status,
        agent=r.agent,
        token=info,
        to=r.to,
        amount=r.amount,
        amount_text=amount_text,
        reasons=r.reasons.texts,
        ref=ref_text(r.ref),
        created_at=request_log.created_at(vault, found),
        expires_at=r.expires_at,
        approvals=approvals,
        threshold=threshold,
        action=action,
        data="0x" + r.data.hex(),
    )


def request_info(vault: Vault, request_id: int) -> RequestInfo:
    """One request, decoded for humans (a pending request past its expiry reads "expired"); an
    unknown id raises :class:`~agentwallet.errors.UnknownRequestError`."""
    found = request_log.find(vault, request_id)
    return _info(vault, found, vault.owners(), vault.threshold())


def requests(vault: Vault, status: str | None = "pending") -> list[RequestInfo]:
    """Requests with ``status`` (None or "all" for every request), oldest first."""
    owners, threshold = vault.owners(), vault.threshold()
    result = []
    for found in request_log.scan(vault):
        info = _info(vault, found, owners, threshold)
        if status in (None, "all") or info.status == status:
            result.append(info)
    return result


def agent_view(vault: Vault, address: str) -> AgentView:
    """An agent's settings and its limits for every token in scope."""
    agent = checksum(address, "agent address")
    a = vault.bindings.agent(agent)
    tokens = vault.bindings.agent_tokens(agent)
    policies = {token: vault.bindings.policy(agent, token) for token in tokens}
    status = AgentStatus.text_of(a.status)
    return AgentView(
        agent,
        status,
        a.valid_after,
        a.valid_until,
        a.allowlist,
        a.open_requests,
        policies,
        lineage=a.lineage,
        parent=a.parent,
    )


def agents(vault: Vault) -> list[AgentView]:
    """Every agent ever added: the vault's list of active and paused agents, then the others
    (revoked, rotated away), found in the vault's ``AgentConfigured`` events."""
    seen = vault.bindings.agents()
    for agent in request_log.agent_configured(vault):
        if agent not in seen:
            seen.append(agent)
    return [agent_view(vault, a) for a in seen]


def describe_governance(vault: Vault, data: bytes, names: dict[str, str]) -> str:
    """``setLimits(travel, ETH, maxPerPayment 0.5, allowance 1, period 1d)``; "" if ``data``
    is no vault call."""
    call = vault.bindings.decode_call(data)
    if call is None:  # not a vault call: the caller shows the raw text
        return ""

    def token_text(token: str) -> str:
        try:
            return vault.token(token).symbol
        except AgentWalletError:
            return short(token)

    def amount_text(value: int, token: str) -> str:
        try:
            decimals = vault.token(token).decimals
        except AgentWalletError:
            decimals = 18
        return format_amount(value, decimals)

    return describe(
        call,
        address=lambda address: label(address, names),
        token=token_text,
        amount=amount_text,
        duration=span,
        words=True,
    )
