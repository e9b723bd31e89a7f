"""Delegation views and the local checks of the contract's delegation rules.

Views: :func:`delegation_chain` (an agent and every agent above it), :func:`delegation_tree`
(the sub-agents below), :func:`call_grants` and :func:`recipient_budgets` (with what is available
now). Checks (``check_*``): each mirrors one rule of the contract and raises the same typed
:class:`~agentwallet.errors.ContractRevertError` it would, with a message that says what to fix,
before anything is signed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from agentwallet import request_log
from agentwallet.bindings.vault import event_topic
from agentwallet.chain.logs import get_logs
from agentwallet.errors import AgentWalletError, ContractRevertError
from agentwallet.protocol.addresses import as_checksum, checksum
from agentwallet.protocol.constants import MAX_LIMIT, MAX_PERIOD, ZERO_ADDRESS, AgentStatus
from agentwallet.protocol.delegation import (
    FORBIDDEN_SELECTORS,
    MAX_DEPTH,
    MAX_SUB_AGENTS,
    CallGrant,
    DelegationNode,
    EarlierCall,
    RecipientBudget,
    wider_than,
)
from agentwallet.protocol.models import AgentView, PolicyView

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = [
    "LIVE",
    "ancestors",
    "call_grants",
    "delegation_chain",
    "delegation_tree",
    "find_call",
    "check_attenuated",
    "check_forbidden",
    "check_grant_within",
    "check_limits",
    "check_new_child",
    "check_tighter_budget",
    "check_window",
    "not_delegator",
    "read_budget",
    "read_grant",
    "recipient_budgets",
    "revert_with",
    "sub_agents",
]

#: Statuses of an agent that is still in the tree (it may act on its descendants).
LIVE = (AgentStatus.ACTIVE, AgentStatus.PAUSED)


# ---------------------------------------------------------------------------------- reads


def _read_policy(vault: Vault, fn: str, *args: Any) -> PolicyView:
    p = vault.contract.functions[fn](*args).call()
    return PolicyView(int(p[0]), int(p[1]), int(p[2]), int(p[3]))


def read_grant(vault: Vault, agent: str, target: str, selector: bytes) -> PolicyView:
    return _read_policy(
        vault, "getCallPermission", as_checksum(agent), as_checksum(target), selector
    )


def read_budget(vault: Vault, agent: str, token: str, recipient: str) -> PolicyView:
    args = (as_checksum(agent), as_checksum(token), as_checksum(recipient))
    return _read_policy(vault, "getRecipientBudget", *args)


def sub_agents(vault: Vault, agent: str) -> list[str]:
    return [checksum(str(a)) for a in vault.contract.functions.getSubAgents(agent).call()]


def ancestors(vault: Vault, agent: str) -> list[str]:
    """The agents above ``agent``, nearest first (the last is the owners' agent)."""
    chain: list[str] = []
    parent = vault.bindings.agent(agent).parent
    while parent != ZERO_ADDRESS and len(chain) <= MAX_DEPTH:
        chain.append(parent)
        parent = vault.bindings.agent(parent).parent
    return chain


def delegation_chain(vault: Vault, agent: str) -> list[AgentView]:
    """``agent`` and every agent above it, up to the owners' agent (``[agent]`` for an agent the
    owners added): who delegated to whom, e.g. for a sub-agent's request."""
    address = checksum(agent, "agent address")
    return [vault.agent(a) for a in [address, *ancestors(vault, address)]]


def delegation_tree(vault: Vault, agent: str) -> DelegationNode:
    """``agent`` and its sub-agents below it (recursively), with their limits now."""
    address = checksum(agent, "agent address")

    def node(key: str, depth: int) -> DelegationNode:
        children = tuple(node(c, depth + 1) for c in sub_agents(vault, key))
        return DelegationNode(vault.agent(key), depth, children)

    return node(address, len(ancestors(vault, address)))


def _events(vault: Vault, event: str, agent: str) -> list[Any]:
    topics = [event_topic(event), bytes(12) + bytes.fromhex(agent[2:])]
    logs = get_logs(vault.chain, vault.address, topics, request_log.deployment_block(vault))
    return [d[1] for d in map(vault.bindings.decode_log, logs) if d is not None]


def _call_input(
    vault: Vault, event: str, args: Any, tx_hash: bytes
) -> tuple[bytes | None, int | None]:
    """A scoped call's data and spend amount: a call request's event has them; an executed
    call's are read from the agent's ``scopedCall`` transaction."""
    if event == "CallRequested":
        return bytes(args["data"]), int(args["spendAmount"])
    try:
        tx = vault.chain.w3.eth.get_transaction(HexBytes(tx_hash))
        fn, inputs = vault.contract.decode_function_input(tx["input"])
    except Exception:  # noqa: BLE001 - not a direct scopedCall: compare what the event has
        return None, None
    if fn.fn_name != "scopedCall":
        return None, None
    return bytes(inputs["data"]), int(inputs["spendAmount"])


def find_call(vault: Vault, agent: str, ref: bytes) -> EarlierCall | None:
    """``agent``'s earlier scoped call with ``ref``, from the vault's ``CallExecuted`` (not the
    owners' execution of a call request: its ``CallRequested`` answers) and ``CallRequested``
    events; None if there is none (or the node serves no logs)."""
    agent_topic = bytes(12) + bytes.fromhex(agent[2:])
    from_block = request_log.deployment_block(vault)
    for event, topics in (
        ("CallExecuted", [event_topic("CallExecuted"), agent_topic]),
        ("CallRequested", [event_topic("CallRequested"), None, agent_topic]),
    ):
        try:
            logs = get_logs(vault.chain, vault.address, topics, from_block)
        except Exception:  # noqa: BLE001 - nodes without log support: nothing to answer from
            return None
        for log in logs:
            decoded = vault.bindings.decode_log(log)
            if decoded is None or bytes(decoded[1]["ref"]) != ref:
                continue
            a = decoded[1]
            if event == "CallExecuted" and int(a["requestId"]) != 0:
                continue
            tx_hash = bytes(log["transactionHash"])
            data, amount = _call_input(vault, event, a, tx_hash)
            selector = bytes(a["selector"]) if data is None else data[:4].ljust(4, b"\x00")
            key = (
                checksum(str(a["target"])),
                selector,
                int(a["value"]),
                checksum(str(a["spendToken"])),
            )
            return EarlierCall(event, key, data, amount, "0x" + tx_hash.hex())
    return None


def call_grants(vault: Vault, agent: str) -> list[CallGrant]:
    """``agent``'s call grants now (found in its ``CallPermissionChanged`` events)."""
    address = checksum(agent, "agent address")
    pairs = dict.fromkeys(
        (checksum(str(e["target"])), bytes(e["selector"]))
        for e in _events(vault, "CallPermissionChanged", address)
    )
    result = []
    for target, selector in pairs:
        p = read_grant(vault, address, target, selector)
        if p.period:
            grant = (p.max_per_payment, p.allowance, p.period, p.available)
            result.append(CallGrant(address, target, "0x" + selector.hex(), *grant))
    return result


def recipient_budgets(vault: Vault, agent: str) -> list[RecipientBudget]:
    """``agent``'s per-recipient budgets now (found in its ``RecipientBudgetChanged`` events;
    a removed one is left out)."""
    address = checksum(agent, "agent address")
    last: dict[tuple[str, str], int] = {}
    for e in _events(vault, "RecipientBudgetChanged", address):
        last[(checksum(str(e["token"])), checksum(str(e["recipient"])))] = int(e["period"])
    result = []
    for (token, recipient), period in last.items():
        p = read_budget(vault, address, token, recipient)
        if period and p.period:
            limits = (p.max_per_payment, p.allowance, p.period, p.available)
            result.append(RecipientBudget(address, vault.token(token), recipient, *limits))
    return result


# ---------------------------------------------------------------------------------- checks


def revert_with(name: str, args: dict[str, object], message: str) -> ContractRevertError:
    """The contract's error ``name(args)`` for a rule checked here, named in its message."""
    return ContractRevertError.from_error(name, args, message=f"{name}: {message}")


def _symbol(vault: Vault, token: str) -> str:
    try:
        return vault.token(token).symbol
    except AgentWalletError:
        return token


def _amounts(vault: Vault, token: str) -> Callable[[int], str]:
    def render(amount: int) -> str:
        try:
            return vault.format(token, amount)
        except AgentWalletError:
            return f"{amount} base units"

    return render


def check_limits(max_value: int, allowance: int, period: int) -> None:
    for value in (max_value, allowance):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise revert_with(
                "LimitTooLarge",
                {"value": value, "max": MAX_LIMIT},
                f"limit {value!r} must be an int of base units >= 0",
            )
        if value > MAX_LIMIT:
            raise ContractRevertError.from_error(
                "LimitTooLarge", {"value": value, "max": MAX_LIMIT}
            )
    if not 0 < period <= MAX_PERIOD:
        raise revert_with(
            "InvalidPeriod",
            {"period": period},
            f"period {period} must be 1 to {MAX_PERIOD} seconds",
        )


def check_attenuated(
    vault: Vault,
    child: str,
    token: str,
    max_value: int,
    allowance: int,
    period: int,
    parent: str | None = None,
) -> None:
    """Limits no wider than the parent's (``parent``: the child's own, or the one it is
    proposed under when it is not added yet)."""
    check_limits(max_value, allowance, period)
    parent = parent or vault.bindings.agent(child).parent
    policy = vault.bindings.policy(parent, token)
    why = wider_than(policy, max_value, allowance, period, _amounts(vault, token))
    if why is not None:
        raise revert_with(
            "ExceedsParent",
            {"parent": parent, "token": token},
            f"a sub-agent's limits cannot exceed its parent's in {_symbol(vault, token)}: {why}",
        )


def check_grant_within(
    vault: Vault,
    child: str,
    target: str,
    selector: bytes,
    max_value: int,
    allowance: int,
    period: int,
) -> None:
    check_forbidden(vault, target, selector)
    check_limits(max_value, allowance, period)
    parent = vault.bindings.agent(child).parent
    grant = read_grant(vault, parent, target, selector)
    why = wider_than(grant, max_value, allowance, period, _amounts(vault, ZERO_ADDRESS))
    if why is not None:
        raise revert_with(
            "ExceedsParent",
            {"parent": parent, "token": target},
            f"a sub-agent's call grant cannot exceed its parent's grant of "
            f"0x{selector.hex()} on {target}: {why}",
        )


def check_forbidden(vault: Vault, target: str, selector: bytes) -> None:
    if target == ZERO_ADDRESS:
        raise ContractRevertError.from_error("ZeroAddress")
    name = FORBIDDEN_SELECTORS.get(selector)
    # the vault's token registry holds every token an agent has had limits for
    registry = {t for a in vault.bindings.agents() for t in vault.bindings.agent_tokens(a)}
    if target == vault.address or name or target in registry:
        what = f"selector {name}" if name else f"target {target} (the vault or a token)"
        raise revert_with(
            "ForbiddenCall",
            {"target": target, "selector": selector},
            f"a scoped call may not use {what}: pay through the vault instead",
        )


def check_window(vault: Vault, parent: str, valid_after: int, valid_until: int) -> None:
    p = vault.bindings.agent(parent)
    if valid_after < p.valid_after or (
        p.valid_until and (valid_until == 0 or valid_until > p.valid_until)
    ):
        raise revert_with(
            "InvalidValidity",
            {"validAfter": valid_after, "validUntil": valid_until},
            f"a sub-agent's window must lie inside its parent's ({p.valid_after} to "
            f"{p.valid_until or 'open'})",
        )


def check_new_child(vault: Vault, parent: str, child: str) -> None:
    if len(ancestors(vault, parent)) + 1 > MAX_DEPTH:
        raise ContractRevertError.from_error("TooDeep", {"max": MAX_DEPTH})
    if len(sub_agents(vault, parent)) >= MAX_SUB_AGENTS:
        raise ContractRevertError.from_error("TooManySubAgents", {"parent": parent, "max": 8})
    if vault.bindings.agent(child).status in LIVE:
        raise ContractRevertError.from_error("InvalidNewKey", {"newKey": child})


def check_tighter_budget(
    vault: Vault,
    agent: str,
    token: str,
    recipient: str,
    max_value: int,
    allowance: int,
    period: int,
) -> None:
    check_limits(max_value, allowance, period)
    current = read_budget(vault, agent, token, recipient)
    if current.period and wider_than(current, max_value, allowance, period):
        raise revert_with(
            "LimitNotReduced",
            {"current": current.allowance, "proposed": allowance},
            "one owner or an ancestor only tightens a recipient budget "
            f"({current.max_per_payment} per payment, {current.allowance} per "
            f"{current.period}s now): raise it through governance",
        )


def not_delegator(vault: Vault, sender: str, agent: str) -> ContractRevertError:
    return revert_with(
        "NotOwner",
        {"caller": sender},
        f"{sender} is neither an owner nor a live agent above {agent}",
    )
