"""What an event's index columns are, from its decoded arguments.

One rule for both decoders: :class:`agentwallet.audit.events.EventCodec` (logs to
:class:`~agentwallet.audit.events.AuditEvent`) and :mod:`agentwallet.audit.rows` (logs straight
to index rows during a sync).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from agentwallet.protocol.constants import ZERO_ADDRESS, RequestKind

__all__ = ["Columns", "event_columns"]


class Columns(NamedTuple):
    """The searchable columns of one event (see :class:`~agentwallet.audit.events.AuditEvent`)."""

    vault: str
    agent: str | None
    actor: str | None
    token: str | None
    recipient: str | None
    request_id: int | None
    kind: str | None
    amount: int | None
    ref: str | None


_PAYMENT_KIND = RequestKind.PAYMENT.text
_GOVERNANCE_KIND = RequestKind.GOVERNANCE.text
_CALL_KIND = RequestKind.CALL.text
_OWNER_ACTS = frozenset(("RequestApproved", "RequestRejected", "OwnerAdded", "OwnerRemoved"))
_EXECUTIONS = frozenset(("RequestExecuted", "GovernanceExecuted"))
_BY_ACTS = frozenset(("AgentStatusChanged", "LimitsChanged", "VaultPaused", "NoncesInvalidated"))


def event_columns(
    name: str,
    args: Mapping[str, Any],
    emitter: str,
    call_agent: Callable[[str], str | None],
) -> Columns:
    """The columns of event ``name`` with ``args`` emitted by ``emitter`` (checksummed).
    ``call_agent(data)``: the agent a governance proposal's call configures, or None."""
    agent = args.get("agent")
    actor: str | None = None
    recipient: str | None = None
    kind: str | None = None
    amount = args.get("amount")
    token = args.get("token")
    vault = emitter
    if name in ("PaymentExecuted", "SignedPaymentExecuted"):
        recipient = args["to"]
        if agent == ZERO_ADDRESS:  # the owners paid without naming an agent
            agent = None
    elif name == "PaymentRequested":
        kind, actor, recipient = _PAYMENT_KIND, agent, args["to"]
    elif name == "GovernanceProposed":
        kind, actor = _GOVERNANCE_KIND, args["proposer"]
        agent = call_agent(args["data"])
    elif name == "RelayFeePaid":
        actor = recipient = args["relayer"]
        amount = args["fee"]
    elif name in _OWNER_ACTS:
        actor = args["owner"]
    elif name in _EXECUTIONS:
        actor = args["executor"]
    elif name in ("RecipientChanged", "RecipientBudgetChanged"):
        actor, recipient = args["by"], args["recipient"]
    elif name in _BY_ACTS:
        actor = args["by"]
    elif name == "AgentRotated":
        agent, actor, recipient = args["oldKey"], args["by"], None
    elif name == "SubAgentAdded":
        agent, actor = args["child"], args["by"]
    elif name in ("CallRequested", "CallExecuted"):
        actor, recipient, token = agent, args["target"], args["spendToken"]
        amount = args["spendAmount"] if name == "CallRequested" else args["spent"]
        kind = _CALL_KIND if name == "CallRequested" else None
    elif name == "CallPermissionChanged":
        actor, recipient = args["by"], args["target"]
    elif name == "Deposited":
        actor = args["from"]
    elif name == "RequestCancelled":
        actor = agent
    elif name == "VaultCreated":
        vault = args["vault"]
        actor = args["creator"]
    request_id = args.get("requestId")
    return Columns(
        vault,
        agent,
        actor,
        token,
        recipient,
        None if request_id is None else int(request_id),
        kind,
        None if amount is None else int(amount),
        args.get("ref"),
    )
