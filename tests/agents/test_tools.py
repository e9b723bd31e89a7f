"""The function tools, called directly as a framework without MCP would: each tool's schema,
its result on a real vault, and the arguments a confused or hostile model might send."""

from __future__ import annotations

import json

import pytest

from agentwallet.errors import AgentWalletError, ContractRevertError, UnknownTokenError
from agentwallet.tools import (
    TOOLS,
    AgentTools,
    ToolInputError,
    anthropic_tools,
    openai_tools,
)
from tests.sdk.conftest import World


def test_every_tool_is_defined_once_and_exported_for_both_styles() -> None:
    names = [t.name for t in TOOLS]
    assert len(names) == len(set(names))
    assert [t["function"]["name"] for t in openai_tools()] == names
    assert [t["name"] for t in anthropic_tools()] == names
    for spec in openai_tools():
        schema = spec["function"]["parameters"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        json.dumps(spec)  # plain JSON
    forbidden = ("limit", "approve", "key", "owner", "sign", "allow", "unpause", "export")
    assert not [n for n in names if any(word in n for word in forbidden)]


def test_pay_inside_limits_is_paid_and_over_them_is_escalated(
    tools: AgentTools, world: World
) -> None:
    before = world.vault.balance(world.usdc)
    paid = tools.call_tool("pay", {"to": world.payee, "amount": "2.5", "token": "tUSDC"})
    assert paid["status"] == "paid" and paid["amount"] == "2.5" and paid["tx_hash"]
    assert world.vault.balance(world.usdc) == before - 2_500_000
    over = tools.call_tool("pay", {"to": world.payee, "amount": "150", "token": "tUSDC"})
    assert over["status"] == "escalated" and over["request_id"] >= 1
    assert over["reasons"] and "owners" in over["note"]
    assert world.vault.balance(world.usdc) == before - 2_500_000
    status = tools.call_tool("request_status", {"request_id": over["request_id"]})
    assert status["status"] == "pending" and status["amount"].startswith("150")
    cancelled = tools.call_tool("cancel_request", {"request_id": over["request_id"]})
    assert cancelled["status"] == "cancelled"
    assert tools.call_tool("request_status", {"request_id": over["request_id"]})["status"] == (
        "cancelled"
    )
    recent = tools.call_tool("recent_payments", {"limit": 5})["payments"]
    assert recent[0]["amount"] == "2.5" and recent[0]["to"] == world.payee


def test_check_and_budget_read_without_paying(tools: AgentTools, world: World) -> None:
    block = world.chain.block_number()
    check = tools.call_tool("check_payment", {"to": world.payee, "amount": "101", "token": "tUSDC"})
    assert check["will_pay_now"] is False and check["would_escalate_for"]
    assert check["max_per_payment"] == "100"
    ok = tools.call_tool("check_payment", {"to": world.payee, "amount": "0.01"})
    assert ok["will_pay_now"] is True and ok["token"] == "ETH"
    budgets = {b["token"]: b for b in tools.call_tool("remaining_budget", {})["budgets"]}
    assert budgets["tUSDC"]["available_now"] == "500" and budgets["ETH"]["max_per_payment"] == "0.1"
    assert world.chain.block_number() == block


@pytest.mark.parametrize(
    ("name", "arguments", "needle"),
    [
        ("pay", {"to": "0x123", "amount": "1"}, "'to' is malformed"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": "-1"}, "'amount' is malformed"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": 1}, "'amount' must be a string"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": "1e18"}, "'amount' is malformed"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": "0"}, "greater than zero"),
        ("pay", {"amount": "1"}, "missing argument 'to'"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": "1", "ref": "x" * 67}, "'ref'"),
        ("pay", {"to": "0x" + "ab" * 20, "amount": "1", "max_limit": "9"}, "unknown argument"),
        ("pay", ["0x" + "ab" * 20, "1"], "JSON object"),
        ("request_status", {"request_id": 0}, "out of range"),
        ("request_status", {"request_id": True}, "must be an integer"),
        ("recent_payments", {"limit": 500}, "out of range"),
        ("set_limits", {}, "unknown tool"),
        ("fetch_paid", {"url": "file:///etc/passwd"}, "'url' is malformed"),
        ("fetch_paid", {"url": "http://x", "max_amount": "lots"}, "'max_amount' is malformed"),
    ],
)
def test_malformed_arguments_get_a_clear_tool_error(
    tools: AgentTools, name: str, arguments: object, needle: str
) -> None:
    with pytest.raises(ToolInputError, match=needle):
        tools.call_tool(name, arguments)  # type: ignore[arg-type]


def test_a_model_cannot_reach_other_requests_tokens_or_a_revoked_wallet(
    tools: AgentTools, world: World
) -> None:
    with pytest.raises(UnknownTokenError):
        tools.call_tool("pay", {"to": world.payee, "amount": "1", "token": "NOPE"})
    # another party's request (an owner's governance proposal) is not the agent's to read
    proposal = world.vault.propose_add_agent(world.owners[0], world.outsider.address)
    with pytest.raises(AgentWalletError, match="not one of your payment requests"):
        tools.call_tool("cancel_request", {"request_id": proposal.request_id})
    world.vault.revoke_agent(world.owners[0], world.agent.address)
    with pytest.raises(ContractRevertError, match="AgentNotActive|not active"):
        tools.call_tool("pay", {"to": world.payee, "amount": "1", "token": "tUSDC"})


def test_fetch_paid_hands_the_model_at_most_a_bounded_body(
    tools: AgentTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentwallet import x402client
    from agentwallet.tools import MAX_BODY_CHARS

    def huge(wallet: object, url: str, **kwargs: object) -> x402client.PaidFetch:
        return x402client.PaidFetch(url, "free", 200, "x" * (MAX_BODY_CHARS + 5), "text/plain")

    monkeypatch.setattr(x402client, "fetch_paid", huge)
    out = tools.call_tool("fetch_paid", {"url": "http://127.0.0.1:1/big"})
    assert len(out["body"]) == MAX_BODY_CHARS and out["body_truncated"] is True
