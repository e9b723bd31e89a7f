"""Delegation's pure parts: the rules' constants, the results of scoped calls and delegation
views, and function-call encoding (``buy(address,uint256)`` and its arguments).

No chain access; :mod:`agentwallet.delegation` and :mod:`agentwallet.delegation_views` use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from agentwallet.errors import AgentWalletError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import AgentView, PolicyView, TokenInfo

__all__ = [
    "FORBIDDEN_SELECTORS",
    "MAX_DEPTH",
    "MAX_SUB_AGENTS",
    "NOT_GRANTED",
    "CallCheck",
    "CallEncodingError",
    "CallEscalated",
    "CallRefReusedError",
    "CallGrant",
    "CallOutcome",
    "Called",
    "DelegationNode",
    "EarlierCall",
    "RecipientBudget",
    "encode_call",
    "selector_of",
    "wider_than",
]

#: Levels of sub-agents below an owners' agent, and sub-agents under one agent.
MAX_DEPTH = 3
MAX_SUB_AGENTS = 8
#: Selectors a scoped call may never use (they move tokens around a budget) -> their name.
FORBIDDEN_SELECTORS: dict[bytes, str] = {
    bytes.fromhex(h): name
    for h, name in (
        ("a9059cbb", "transfer"),
        ("095ea7b3", "approve"),
        ("23b872dd", "transferFrom"),
        ("d505accf", "permit (ERC-2612)"),
        ("8fcbaf0c", "permit (DAI)"),
        ("39509351", "increaseAllowance"),
        ("a22cb465", "setApprovalForAll"),
        ("42842e0e", "safeTransferFrom (ERC-721)"),
        ("b88d4fde", "safeTransferFrom with data (ERC-721)"),
        ("f242432a", "safeTransferFrom (ERC-1155)"),
        ("2eb2c2d6", "safeBatchTransferFrom (ERC-1155)"),
        ("4000aea0", "transferAndCall (ERC-677)"),
        ("9bd9bbc6", "send (ERC-777)"),
    )
}
#: A scoped call's escalation reason when the (target, selector) pair is not granted.
NOT_GRANTED = "call not granted"


class CallEncodingError(AgentWalletError, ValueError):
    """A function signature, selector or argument that cannot be ABI-encoded."""


class CallRefReusedError(AgentWalletError, ValueError):
    """A scoped call's ref (its idempotency key) was already used for a different call."""


@dataclass(frozen=True)
class EarlierCall:
    """An agent's scoped call found by its ref in the vault's events: ``kind``
    ("CallExecuted" or "CallRequested"), ``key`` (target, selector, value, spend token),
    ``data`` and ``spend_amount`` (None when they could not be read), ``tx_hash``."""

    kind: str
    key: tuple[str, bytes, int, str]
    data: bytes | None
    spend_amount: int | None
    tx_hash: str


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CallCheck:
    """What :meth:`AgentDelegation.scoped_call` would do now: call at once (``will_call``) or
    escalate for ``reasons``."""

    will_call: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Called:
    """A scoped call that ran inside the agent's grants and limits; ``spent`` is what left the
    vault in ``spend_token`` (the ``CallExecuted`` event's)."""

    tx_hash: str
    gas_used: int
    target: str
    selector: str
    value: int
    spend_token: TokenInfo
    spent: int
    ref: str

    @property
    def status(self) -> str:
        return "called"


@dataclass(frozen=True)
class CallEscalated:
    """A scoped call outside the grants or limits: call request ``request_id`` waits for the
    owners (approve it like a payment request)."""

    tx_hash: str
    gas_used: int
    request_id: int
    reasons: tuple[str, ...]
    target: str
    selector: str
    value: int
    spend_token: TokenInfo
    spend_amount: int
    ref: str

    @property
    def status(self) -> str:
        return "escalated"


#: What :meth:`AgentDelegation.scoped_call` returns.
CallOutcome = Called | CallEscalated


@dataclass(frozen=True)
class CallGrant:
    """An agent's grant to call ``selector`` on ``target``: the ETH value per call, per period,
    and what is available now."""

    agent: str
    target: str
    selector: str
    max_value: int
    value_allowance: int
    period: int
    available: int


@dataclass(frozen=True)
class RecipientBudget:
    """A per-recipient budget of ``agent`` in ``token`` (``recipient`` the zero address: the
    default for every recipient without its own)."""

    agent: str
    token: TokenInfo
    recipient: str
    max_per_payment: int
    allowance: int
    period: int
    available: int


@dataclass(frozen=True)
class DelegationNode:
    """An agent in a delegation tree, its depth below the owners' agent and its sub-agents."""

    agent: AgentView
    depth: int
    children: tuple[DelegationNode, ...] = ()

    def walk(self) -> list[DelegationNode]:
        """This node and every node below it, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]


# ---------------------------------------------------------------------------------- encoding


_SIGNATURE = re.compile(r"^\s*([A-Za-z_$][A-Za-z0-9_$]*)\s*\((.*)\)\s*$")


def _parse_signature(signature: str) -> tuple[str, list[str]]:
    match = _SIGNATURE.match(signature)
    if match is None:
        raise CallEncodingError(
            f"{signature!r} is not a function signature: write it like buy(address,uint256)"
        )
    types = [t.strip() for t in match.group(2).split(",")] if match.group(2).strip() else []
    for t in types:
        if not re.fullmatch(r"(address|bool|string|bytes\d*|u?int\d*)", t):
            raise CallEncodingError(
                f"argument type {t!r} in {signature!r} is not supported: use address, bool, "
                "string, bytes, bytesN, uintN or intN (or pass the calldata as 0x hex)"
            )
    return match.group(1), types


def selector_of(signature_or_selector: str | bytes) -> bytes:
    """The 4-byte selector of ``buy(address,uint256)``, or of ``0x`` + 8 hex digits itself."""
    if isinstance(signature_or_selector, bytes):
        if len(signature_or_selector) != 4:
            raise CallEncodingError("a selector is 4 bytes")
        return signature_or_selector
    text = signature_or_selector.strip()
    if re.fullmatch(r"0x[0-9a-fA-F]{8}", text):
        return bytes.fromhex(text[2:])
    name, types = _parse_signature(text)
    return bytes(keccak(text=f"{name}({','.join(types)})"))[:4]


def _argument(typ: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if typ == "address":
            return checksum(text, "call argument")
        if typ == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if typ.startswith(("uint", "int")):
            return int(text, 0)
        if typ.startswith("bytes"):
            return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise CallEncodingError(f"{value!r} is not a valid {typ}") from None
    return text


def encode_call(signature: str, args: Sequence[Any] = ()) -> bytes:
    """Calldata of ``signature`` (``buy(address,uint256)``) with ``args`` (Python values, or
    text as typed on a command line: addresses, decimal or 0x integers, true/false, 0x bytes)."""
    _, types = _parse_signature(signature)
    if len(args) != len(types):
        raise CallEncodingError(f"{signature} takes {len(types)} arguments, {len(args)} given")
    values = [_argument(t, v) for t, v in zip(types, args, strict=True)]
    try:
        return selector_of(signature) + abi_encode(types, values)
    except Exception as exc:  # noqa: BLE001 - eth-abi's encoding errors, one typed error
        raise CallEncodingError(f"cannot encode {signature} with {list(args)}: {exc}") from None


def wider_than(
    parent: PolicyView,
    max_value: int,
    allowance: int,
    period: int,
    amount: Callable[[int], str] = str,
) -> str | None:
    """Why limits are wider than ``parent``'s (the contract's attenuation rule: a per-payment
    limit and an allowance no larger, a refill rate no faster), or None. ``amount`` renders
    amounts for the reason."""
    if parent.period == 0:
        return "the parent has none"
    if max_value > parent.max_per_payment:
        return f"per-payment {amount(max_value)} > the parent's {amount(parent.max_per_payment)}"
    if allowance > parent.allowance:
        return f"allowance {amount(allowance)} > the parent's {amount(parent.allowance)}"
    if allowance * parent.period > parent.allowance * period:
        return (
            f"{amount(allowance)} per {period}s refills faster than the parent's "
            f"{amount(parent.allowance)} per {parent.period}s"
        )
    return None
