"""``agentwallet mcp`` driven by the ``mcp`` client: over stdio as a subprocess (as Claude
Desktop or any MCP client runs it) and once over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import anyio
import httpx
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client import Client

from agentwallet.chain.node import free_port
from tests.agents.conftest import PASSWORD, AgentHome


def _server_args(home: AgentHome, *extra: str) -> list[str]:
    return ["-m", "agentwallet", "--as", "agent", "mcp", "--vault", "test", *extra]


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def _stdio_session(home: AgentHome) -> dict[str, Any]:
    world = home.world
    payee = world.payee
    out: dict[str, Any] = {}
    params = StdioServerParameters(command=sys.executable, args=_server_args(home), env=home.env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        out["tools"] = {t.name: t for t in listed.tools}
        out["paid"] = await session.call_tool(
            "pay", {"to": payee, "amount": "3", "token": "tUSDC", "ref": "inv-1"}
        )
        out["over"] = await session.call_tool(
            "pay", {"to": payee, "amount": "250", "token": "tUSDC"}
        )
        out["malformed"] = await session.call_tool("pay", {"to": "bob", "amount": "3"})
        out["unknown"] = await session.call_tool("set_limits", {"agent": payee})
        out["limits"] = await session.read_resource("agentwallet://limits")
        out["vault"] = await session.read_resource("agentwallet://vault")
        out["prompt"] = await session.get_prompt("spending_rules", {})
        out["request"] = world.vault.request(out["over"].structured_content["request_id"])
        world.vault.revoke_agent(world.owners[0], world.agent.address)  # an owner, meanwhile
        out["revoked"] = await session.call_tool(
            "pay", {"to": payee, "amount": "1", "token": "tUSDC"}
        )
    return out


def test_mcp_over_stdio_pays_escalates_and_refuses(agent_home: AgentHome) -> None:
    world = agent_home.world
    before = world.vault.balance(world.usdc)
    out = anyio.run(_stdio_session, agent_home)

    tools = out["tools"]
    assert {
        "pay",
        "check_payment",
        "remaining_budget",
        "request_status",
        "cancel_request",
        "recent_payments",
        "fetch_paid",
    } == set(tools)
    assert tools["pay"].input_schema["properties"]["to"]["pattern"]
    assert tools["remaining_budget"].annotations.read_only_hint is True

    paid = out["paid"]
    assert not paid.is_error and paid.structured_content["status"] == "paid"
    assert paid.structured_content["ref"] == "inv-1"
    over = out["over"]  # a pending state the model can reason about, not an error
    assert not over.is_error and over.structured_content["status"] == "escalated"
    request = out["request"]
    assert request.status == "pending" and request.agent == world.agent.address
    assert world.vault.balance(world.usdc) == before - 3 * 10**6

    assert out["malformed"].is_error and "'to' is malformed" in _text(out["malformed"])
    assert out["unknown"].is_error and "set_limits" in _text(out["unknown"])
    limits = json.loads(out["limits"].contents[0].text)
    assert {b["token"] for b in limits["budgets"]} == {"tUSDC", "ETH"}
    vault = json.loads(out["vault"].contents[0].text)
    assert vault["vault"] == world.vault.address and vault["threshold"] == 2
    assert "escalated" in out["prompt"].messages[0].content.text
    revoked = out["revoked"]
    assert revoked.is_error and "AgentNotActive" in _text(revoked)
    everything = json.dumps([str(v) for v in out.values()])
    assert world.agent.key.hex()[2:] not in everything and PASSWORD not in everything


def test_mcp_needs_a_password_and_never_reads_it_from_the_protocol(
    agent_home: AgentHome,
) -> None:
    env = {k: v for k, v in agent_home.env.items() if k != "AGENTWALLET_PASSWORD"}
    proc = subprocess.run(
        [sys.executable, *_server_args(agent_home)],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "AGENTWALLET_PASSWORD" in proc.stderr
    assert proc.stdout == ""


async def _http_session(url: str) -> dict[str, Any]:
    async with Client(url) as client:
        budget = await client.call_tool("remaining_budget", {})
        bad = await client.call_tool("request_status", {"request_id": "one"})
    return {"budget": budget, "bad": bad}


def test_mcp_over_streamable_http_on_loopback(agent_home: AgentHome) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *_server_args(agent_home, "--http", "--port", str(port))],
        env=agent_home.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        # DNS rebinding: a page on another origin cannot drive the local server
        rebinding = httpx.post(url, headers={"Host": "evil.example"}, json={})
        assert rebinding.status_code == 421
        out = anyio.run(_http_session, url)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    budgets = out["budget"].structured_content["budgets"]
    assert {b["token"] for b in budgets} == {"tUSDC", "ETH"}
    assert out["bad"].is_error and "must be an integer" in _text(out["bad"])
