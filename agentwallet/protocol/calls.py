"""Governance calls: the calldata a governance request carries, decoded and described.

One decoder (:class:`CallDecoder`, built from the vault's ABI) and one describer
(:func:`describe`) serve the SDK (``RequestInfo.action``), the CLI (what an owner approves) and
the audit reports; callers only choose how addresses, tokens, amounts and durations read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = [
    "AGENT_ARGS",
    "AGENT_CALLS",
    "Call",
    "CallDecoder",
    "canonical_type",
    "describe",
    "plain",
]

#: Governance calls that configure one agent -> the argument naming it (for a sub-agent the
#: child, for a key replacement the key whose rights move).
AGENT_ARGS: Mapping[str, str] = {
    "addAgent": "agent",
    "unpauseAgent": "agent",
    "setLimits": "agent",
    "allowRecipient": "agent",
    "setRecipientBudget": "agent",
    "removeRecipientBudget": "agent",
    "replaceAgentKey": "oldKey",
    "addSubAgent": "child",
    "setSubAgentLimits": "child",
    "allowSubAgentRecipient": "child",
}
#: The same calls, as a set.
AGENT_CALLS = frozenset(AGENT_ARGS)
#: Arguments that are token amounts (of the call's ``token``), durations, validity bounds,
#: bitmasks.
AMOUNT_ARGS = frozenset({"maxPerPayment", "allowance"})
DURATION_ARGS = frozenset({"period", "requestExpiry"})
WINDOW_ARGS = frozenset({"validAfter", "validUntil"})
MASK_ARGS = frozenset({"mask"})
#: Arguments shown first, without their name, in the worded form (who and what the call is about).
SUBJECT_ARGS = ("agent", "parent", "child", "oldKey", "newKey", "oldOwner", "newOwner", "token")


@dataclass(frozen=True)
class Call:
    """A decoded call: the function name and its arguments as plain values (checksummed
    addresses, ints, bools, 0x-hex bytes), in ABI order."""

    name: str
    args: Mapping[str, Any] = field(hash=False)

    @property
    def agent(self) -> str | None:
        """The agent the call configures, if it is one of :data:`AGENT_CALLS`."""
        arg = AGENT_ARGS.get(self.name)
        value = self.args.get(arg) if arg is not None else None
        return None if value is None else str(value)


def canonical_type(inp: Mapping[str, Any]) -> str:
    """An ABI input's canonical type (tuples spelled out), as in selectors and topics."""
    typ = str(inp["type"])
    if typ.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in inp["components"])
        return f"({inner}){typ[5:]}"
    return typ


@cache
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def plain(typ: str, value: Any) -> Any:
    """An ABI value as a plain, JSON-friendly Python value."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        return [plain(inner, v) for v in value]
    if typ == "address":
        return _checksum(value)
    if typ.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


class CallDecoder:
    """Decodes calldata of the functions in ``abi`` (pure: ABI data in, calls out)."""

    def __init__(self, abi: Iterable[Mapping[str, Any]]) -> None:
        self._functions: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
        for item in abi:
            if item.get("type") != "function":
                continue
            types = tuple(canonical_type(i) for i in item["inputs"])
            names = tuple(str(i["name"]) for i in item["inputs"])
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            self._functions[selector] = (str(item["name"]), names, types)

    def decode(self, data: bytes) -> Call | None:
        """The call ``data`` makes, or None if it is no call of this ABI."""
        entry = self._functions.get(bytes(data[:4]))
        if entry is None:
            return None
        name, names, types = entry
        try:
            values = abi_decode(list(types), bytes(data[4:]))
        except Exception:  # noqa: BLE001 - malformed call data: not decodable
            return None
        args = {n: plain(t, v) for n, t, v in zip(names, types, values, strict=True)}
        return Call(name, args)


def describe(
    call: Call,
    *,
    address: Callable[[str], str] = str,
    token: Callable[[str], str] | None = None,
    amount: Callable[[int, str], str] | None = None,
    duration: Callable[[int], str] | None = None,
    words: bool = False,
) -> str:
    """``call`` as one line of text.

    ``address`` renders address arguments, ``token`` the token argument (default: as an
    address), ``amount(value, token_address)`` the amounts of that token and ``duration`` the
    periods (default for both: the plain number). Compact form: ``setLimits(agent=0x..,
    token=tUSDC, maxPerPayment=.., ...)``. With ``words``: ``setLimits(<agent>, <token>,
    maxPerPayment 0.5, allowance 1, period 1d)``, for humans deciding whether to approve: who
    and what the call is about first (``swapOwner(oldOwner <a>, newOwner <b>)`` when two keys or
    owners are named), bitmasks in hex, empty validity bounds left out. Every function of the
    vault's ABI decodes, so proposals of newer calls (sub-agents, per-recipient budgets, key
    replacement, nonce invalidation) read the same way.
    """
    token_address = str(call.args.get("token", ""))
    show_token = token or address

    def value_text(key: str, value: Any) -> str:
        if key == "token":
            return show_token(str(value))
        if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            return address(value)
        if key in AMOUNT_ARGS and amount is not None:
            return amount(int(value), token_address)
        if key in DURATION_ARGS and duration is not None:
            return duration(int(value))
        if key in MASK_ARGS and isinstance(value, int):
            return hex(value)
        return str(value)

    if not words:
        parts = [f"{key}={value_text(key, value)}" for key, value in call.args.items()]
        return f"{call.name}({', '.join(parts)})"
    subjects = [key for key in SUBJECT_ARGS if key in call.args]
    head = [value_text(key, call.args[key]) for key in subjects]
    if len(subjects) > 1 and subjects[0] != "agent":  # two keys or owners: say which is which
        head = [f"{key} {value_text(key, call.args[key])}" for key in subjects]
    rest = [
        f"{key} {value_text(key, value)}"
        for key, value in call.args.items()
        if key not in subjects and not (key in WINDOW_ARGS and not value)
    ]
    return f"{call.name}({', '.join(head + rest)})"
