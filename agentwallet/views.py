"""What owners look at: a vault's requests and agents, decoded for humans.

Read-only compositions of :mod:`agentwallet.bindings.vault` and :mod:`agentwallet.protocol`;
:class:`~agentwallet.vault.Vault` exposes them as ``request``, ``requests``, ``agents``,
``agent`` and ``describe_call``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from agentwallet.bindings.vault import StoredRequest
from agentwallet.errors import AgentWalletError, ContractRevertError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.calls import Call, describe
from agentwallet.protocol.constants import AgentStatus, RequestKind, RequestStatus
from agentwallet.protocol.models import ETH_TOKEN, AgentView, RequestInfo
from agentwallet.protocol.refs import ref_text
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = ["agent_view", "agents", "describe_call", "request_info", "requests", "stored_request"]


def stored_request(vault: Vault, request_id: int) -> StoredRequest:
    """The request as stored; an unknown id raises :class:`UnknownRequestError`."""
    r = vault.bindings.request(request_id)
    if r.status == RequestStatus.NONE:
        raise ContractRevertError.from_error(
            "UnknownRequest",
            {"requestId": request_id},
            message=f"no request {request_id} in vault {vault.address}: list them with `requests`",
        )
    return r


def describe_call(vault: Vault, data: bytes) -> str:
    """A governance call as text, e.g. ``setLimits(agent=0xab.., token=tUSDC, ...)``."""

    def symbol(token: str) -> str:
        try:
            return vault.token(token).symbol
        except AgentWalletError:
            return token

    call = vault.bindings.decode_call(data)
    return "0x" + data.hex() if call is None else describe(call, token=symbol)


def request_info(vault: Vault, request_id: int) -> RequestInfo:
    """One request, decoded for humans (a pending request past its expiry reads "expired")."""
    r = stored_request(vault, request_id)
    status = RequestStatus.text_of(r.status)
    if r.status == RequestStatus.PENDING and vault.chain.timestamp() > r.expires_at:
        status = RequestStatus.EXPIRED.text
    approvals = tuple(o for o in vault.owners() if vault.bindings.has_approved(request_id, o))
    if r.kind == RequestKind.PAYMENT:
        info = vault.token(r.token)
        amount_text = f"{format_amount(r.amount, info.decimals)} {info.symbol}"
        action = f"pay {amount_text} to {r.to}"
    else:
        info, amount_text, action = ETH_TOKEN, "", describe_call(vault, r.data)
    return RequestInfo(
        id=request_id,
        kind=RequestKind.text_of(r.kind),
        status=status,
        agent=r.agent,
        token=info,
        to=r.to,
        amount=r.amount,
        amount_text=amount_text,
        reasons=r.reasons.texts,
        ref=ref_text(r.ref),
        created_at=r.created_at,
        expires_at=r.expires_at,
        approvals=approvals,
        threshold=vault.threshold(),
        action=action,
        data="0x" + r.data.hex(),
    )


def requests(vault: Vault, status: str | None = "pending") -> list[RequestInfo]:
    """Requests with ``status`` (None or "all" for every request), oldest first."""
    result = []
    for request_id in range(1, vault.request_count() + 1):
        info = request_info(vault, request_id)
        if status in (None, "all") or info.status == status:
            result.append(info)
    return result


def executed_governance_calls(vault: Vault) -> Iterator[Call]:
    """The calls of every executed governance request, oldest first."""
    for request_id in range(1, vault.request_count() + 1):
        r = vault.bindings.request(request_id)
        if (r.kind, r.status) != (RequestKind.GOVERNANCE, RequestStatus.EXECUTED):
            continue
        call = vault.bindings.decode_call(r.data)
        if call is not None:
            yield call


def agent_view(vault: Vault, address: str) -> AgentView:
    """An agent's settings and its limits for every token in scope."""
    agent = checksum(address, "agent address")
    a = vault.bindings.agent(agent)
    tokens = vault.bindings.agent_tokens(agent)
    policies = {token: vault.bindings.policy(agent, token) for token in tokens}
    status = AgentStatus.text_of(a.status)
    return AgentView(
        agent, status, a.valid_after, a.valid_until, a.allowlist, a.open_requests, policies
    )


def agents(vault: Vault) -> list[AgentView]:
    """Every agent ever added: the vault's list of active and paused agents, then revoked
    ones (found in the executed addAgent requests)."""
    seen = vault.bindings.agents()
    for call in executed_governance_calls(vault):
        if call.name == "addAgent" and call.agent is not None and call.agent not in seen:
            seen.append(call.agent)
    return [agent_view(vault, a) for a in seen]
