"""The agent's wallet as tools for a language model: one definition per tool, shared by the MCP
server (:mod:`agentwallet.mcp_server`) and by frameworks that take plain JSON-schema function
definitions (:func:`openai_tools`, :func:`anthropic_tools`).

Each :class:`ToolSpec` has a name, a description written for the model, a JSON-schema input
(addresses, amounts in token units such as ``"1.5"``, refs, request ids are validated before
anything runs) and a handler that calls the SDK (:class:`~agentwallet.agent.AgentWallet`).
:class:`AgentTools` binds them to one agent's wallet; :meth:`AgentTools.call_tool` is the
dispatcher. Malformed arguments raise :class:`ToolInputError`; a refusal by the SDK raises its
typed :class:`~agentwallet.errors.AgentWalletError`, whose message says what to change.

What the model can do: pay (inside the limits it is paid at once; outside them the owners get a
request, which the tool returns as ``status: "escalated"`` with the request id and reasons, a
normal result), check a payment first, read its budget, read and cancel its own requests, list
its payments, and fetch an x402-priced URL within its limits. What it cannot do: no tool
changes a limit, approves a request, adds a recipient, or returns, signs arbitrary data with or
exports the key. The key stays inside the :class:`~agentwallet.agent.AgentWallet`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentwallet.bindings.vault import event_topic
from agentwallet.chain.logs import get_logs
from agentwallet.errors import AgentWalletError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import TokenInfo
from agentwallet.protocol.refs import ref_text
from agentwallet.units import format_amount, parse_amount

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet

__all__ = [
    "TOOLS",
    "AgentTools",
    "ToolInputError",
    "ToolSpec",
    "anthropic_tools",
    "openai_tools",
    "tool_spec",
]


class ToolInputError(AgentWalletError, ValueError):
    """A tool was called with arguments that do not fit its input schema (the message names the
    argument and what it must look like)."""


# ------------------------------------------------------------------------------------ schemas

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
TOKEN_PATTERN = r"^(ETH|[A-Za-z0-9._-]{1,32}|0x[0-9a-fA-F]{40})$"
URL_PATTERN = r"^https?://[^\s]+$"
#: The most of a fetched body the ``fetch_paid`` tool hands the model.
MAX_BODY_CHARS = 100_000

_TO = {
    "type": "string",
    "pattern": ADDRESS_PATTERN,
    "description": "Recipient address: 0x followed by 40 hex digits.",
}
_AMOUNT = {
    "type": "string",
    "pattern": AMOUNT_PATTERN,
    "maxLength": 80,
    "description": "Amount in token units as a decimal string, e.g. '2.5' (not base units).",
}
_TOKEN = {
    "type": "string",
    "pattern": TOKEN_PATTERN,
    "description": "Token symbol (e.g. 'tUSDC') or address; 'ETH' or omitted for ether.",
}
_REF = {
    "type": "string",
    "minLength": 1,
    "maxLength": 66,
    "description": "Reference: an invoice id or idempotency key (a retry with the same ref never "
    "pays twice). Up to 32 characters, or 0x + 64 hex digits.",
}
_REQUEST_ID = {
    "type": "integer",
    "minimum": 1,
    "description": "The request id returned by an escalated payment.",
}


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _check_value(name: str, value: Any, rule: Mapping[str, Any]) -> None:
    kind = rule["type"]
    if kind == "string":
        if not isinstance(value, str):
            raise ToolInputError(f"argument {name!r} must be a string")
        if len(value) < rule.get("minLength", 0) or len(value) > rule.get("maxLength", 10**6):
            raise ToolInputError(f"argument {name!r} has the wrong length: {rule['description']}")
        if "pattern" in rule and not re.match(rule["pattern"], value):
            raise ToolInputError(f"argument {name!r} is malformed: {rule['description']}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToolInputError(f"argument {name!r} must be an integer")
        if value < rule.get("minimum", value) or value > rule.get("maximum", value):
            raise ToolInputError(f"argument {name!r} is out of range: {rule['description']}")
    else:  # pragma: no cover - the schemas below use only the two kinds
        raise AssertionError(kind)


def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> dict[str, Any]:
    """``arguments`` checked against the tool's ``schema`` (object of strings and integers,
    required keys, no unknown keys, patterns, lengths, ranges); :class:`ToolInputError` else."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ToolInputError("tool arguments must be a JSON object")
    properties: Mapping[str, Any] = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolInputError(
            f"unknown argument(s) {', '.join(map(repr, unknown))}: this tool takes "
            f"{', '.join(properties) or 'no arguments'}"
        )
    for name in schema["required"]:
        if name not in arguments:
            raise ToolInputError(f"missing argument {name!r}: {properties[name]['description']}")
    for name, value in arguments.items():
        _check_value(name, value, properties[name])
    return dict(arguments)


# ------------------------------------------------------------------------------------ specs

Handler = Callable[["AgentTools", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what the model reads, its JSON-schema input, and its handler.
    ``read_only`` tools change nothing on-chain."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    read_only: bool

    def openai(self) -> dict[str, Any]:
        """OpenAI-style function definition (Chat Completions ``tools`` entry)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema,
            },
        }

    def anthropic(self) -> dict[str, Any]:
        """Anthropic-style tool definition (Messages API ``tools`` entry)."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def _amount_text(amount: int, token: TokenInfo) -> str:
    return f"{format_amount(amount, token.decimals)} {token.symbol}"


def _pay(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    wallet = tools.wallet
    info = tools.token(args.get("token"))
    to = checksum(args["to"], "recipient address")
    amount = tools.amount(args["amount"], info)
    result = wallet.pay(to, amount, None if info.is_eth else info.address, ref=args.get("ref"))
    out: dict[str, Any] = {
        "status": result.status,
        "to": to,
        "amount": format_amount(amount, info.decimals),
        "token": info.symbol,
        "ref": result.ref,
        "tx_hash": result.tx_hash,
    }
    if result.status == "escalated":
        out["request_id"] = getattr(result, "request_id", None)
        out["reasons"] = list(getattr(result, "reasons", ()))
        out["note"] = (
            "outside your limits: the owners must approve this request; nothing was paid yet. "
            "Check it later with request_status, or cancel it with cancel_request."
        )
    return out


def _check(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    info = tools.token(args.get("token"))
    to = checksum(args["to"], "recipient address")
    amount = tools.amount(args["amount"], info)
    check = tools.wallet.check(to, amount, None if info.is_eth else info.address)
    return {
        "will_pay_now": check.will_pay,
        "would_escalate_for": list(check.reasons),
        "available_now": format_amount(check.available, info.decimals),
        "max_per_payment": format_amount(check.max_per_payment, info.decimals),
        "token": info.symbol,
    }


def _budget(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for symbol, r in tools.wallet.remaining().items():
        rows.append(
            {
                "token": symbol,
                "address": r.token.address,
                "available_now": format_amount(r.available, r.token.decimals),
                "max_per_payment": format_amount(r.max_per_payment, r.token.decimals),
                "allowance_per_period": format_amount(r.allowance, r.token.decimals),
                "period_seconds": r.period,
            }
        )
    return {"agent": tools.wallet.address, "vault": tools.wallet.vault.address, "budgets": rows}


def _own_request(tools: AgentTools, request_id: int) -> dict[str, Any]:
    info = tools.wallet.vault.request(request_id)
    if info.kind != "payment" or info.agent != tools.wallet.address:
        raise AgentWalletError(
            f"request {request_id} is not one of your payment requests: use the request_id "
            "an escalated pay returned"
        )
    return {
        "request_id": info.id,
        "status": info.status,
        "to": info.to,
        "amount": info.amount_text,
        "token": info.token.symbol,
        "reasons": list(info.reasons),
        "ref": info.ref,
        "approvals": len(info.approvals),
        "threshold": info.threshold,
        "expires_at": info.expires_at,
    }


def _status(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    return _own_request(tools, args["request_id"])


def _cancel(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    _own_request(tools, args["request_id"])
    tx = tools.wallet.cancel(args["request_id"])
    return {"request_id": args["request_id"], "status": "cancelled", "tx_hash": tx.tx_hash}


def _recent(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    from agentwallet import request_log

    wallet = tools.wallet
    vault = wallet.vault
    agent_topic = bytes(12) + bytes.fromhex(wallet.address[2:])
    logs = get_logs(
        wallet.chain,
        vault.address,
        [event_topic("PaymentExecuted"), agent_topic],
        request_log.deployment_block(vault),
    )
    rows = []
    for log in logs[::-1][: args.get("limit", 10)]:
        decoded = vault.bindings.decode_log(log)
        if decoded is None:  # pragma: no cover - the topic filter names a vault event
            continue
        a = decoded[1]
        info = vault.token(str(a["token"]))
        rows.append(
            {
                "to": checksum(str(a["to"])),
                "amount": format_amount(int(a["amount"]), info.decimals),
                "token": info.symbol,
                "ref": ref_text(bytes(a["ref"])),
                "tx_hash": "0x" + bytes(log["transactionHash"]).hex(),
                "block": int(log["blockNumber"]),
            }
        )
    return {"payments": rows}


def _fetch(tools: AgentTools, args: dict[str, Any]) -> dict[str, Any]:
    from agentwallet.x402client import fetch_paid

    out = fetch_paid(tools.wallet, args["url"], max_amount=args.get("max_amount")).as_dict()
    if len(out["body"]) > MAX_BODY_CHARS:  # a model's context is not a download folder
        out["body"] = out["body"][:MAX_BODY_CHARS]
        out["body_truncated"] = True
    return out


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "pay",
        "Pay an amount of a token from your vault to a recipient. Inside your limits it is paid "
        "at once (status 'paid', with the transaction). Outside them it becomes a request the "
        "owners must approve (status 'escalated', with request_id and reasons): nothing is paid "
        "until they do. Reuse the same ref to retry safely.",
        _schema({"to": _TO, "amount": _AMOUNT, "token": _TOKEN, "ref": _REF}, ("to", "amount")),
        _pay,
        read_only=False,
    ),
    ToolSpec(
        "check_payment",
        "Check what paying would do, without paying: whether it is paid now or would escalate "
        "to the owners (and why), and your budget for that token.",
        _schema({"to": _TO, "amount": _AMOUNT, "token": _TOKEN}, ("to", "amount")),
        _check,
        read_only=True,
    ),
    ToolSpec(
        "remaining_budget",
        "What you can still spend now, per token: available now, the per-payment cap, the "
        "allowance per period and the period length.",
        _schema({}),
        _budget,
        read_only=True,
    ),
    ToolSpec(
        "request_status",
        "The status of one of your escalated payment requests (pending, executed, rejected, "
        "cancelled, expired), with the owners' approvals so far.",
        _schema({"request_id": _REQUEST_ID}, ("request_id",)),
        _status,
        read_only=True,
    ),
    ToolSpec(
        "cancel_request",
        "Withdraw one of your own pending payment requests (for example when it is no longer "
        "needed).",
        _schema({"request_id": _REQUEST_ID}, ("request_id",)),
        _cancel,
        read_only=False,
    ),
    ToolSpec(
        "recent_payments",
        "Your most recent payments made directly from the vault, newest first.",
        _schema(
            {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 50,
                    "description": "How many payments to return (1-50, default 10).",
                }
            }
        ),
        _recent,
        read_only=True,
    ),
    ToolSpec(
        "fetch_paid",
        "GET an HTTP resource priced with x402 (HTTP 402 Payment Required) and pay for it from "
        "your vault within your limits. A price over your per-payment cap or remaining budget "
        "is refused before anything is signed. Returns the HTTP status, the body and the "
        "settlement transaction.",
        _schema(
            {
                "url": {
                    "type": "string",
                    "pattern": URL_PATTERN,
                    "maxLength": 2048,
                    "description": "The http(s) URL of the resource.",
                },
                "max_amount": {
                    **_AMOUNT,
                    "description": "Most you accept to pay, in token units (optional).",
                },
            },
            ("url",),
        ),
        _fetch,
        read_only=False,
    ),
)

_BY_NAME = {spec.name: spec for spec in TOOLS}


def tool_spec(name: str) -> ToolSpec:
    """The tool called ``name``; :class:`ToolInputError` naming the tools if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ToolInputError(
            f"unknown tool {name!r}: the tools are {', '.join(_BY_NAME)}"
        ) from None


def openai_tools() -> list[dict[str, Any]]:
    """Every tool as an OpenAI-style function definition."""
    return [spec.openai() for spec in TOOLS]


def anthropic_tools() -> list[dict[str, Any]]:
    """Every tool as an Anthropic-style tool definition."""
    return [spec.anthropic() for spec in TOOLS]


class AgentTools:
    """The tools bound to one agent's wallet. ``call_tool(name, arguments)`` validates the
    arguments against the tool's schema and runs it, returning a JSON-ready dict."""

    def __init__(self, wallet: AgentWallet) -> None:
        self.wallet = wallet

    def __repr__(self) -> str:
        return f"AgentTools(agent={self.wallet.address}, vault={self.wallet.vault.address})"

    def token(self, text: str | None) -> TokenInfo:
        """The token named by a tool argument (symbol or address; ETH when omitted)."""
        if text is None or text.upper() == "ETH":
            return self.wallet.vault.token(None)
        return self.wallet.vault.token(text)

    @staticmethod
    def amount(text: str, info: TokenInfo) -> int:
        """A tool's decimal amount in base units of ``info``; zero is refused."""
        value = parse_amount(text, info.decimals)
        if value == 0:
            raise ToolInputError("argument 'amount' must be greater than zero")
        return value

    def call_tool(self, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Run tool ``name`` with ``arguments`` (a JSON object)."""
        spec = tool_spec(name)
        return spec.handler(self, validate_arguments(spec.input_schema, arguments))
