"""``agentwallet mcp``: a Model Context Protocol server (the ``mcp`` SDK's ``MCPServer``) for one
agent key, over stdio or streamable HTTP on 127.0.0.1.

The tools are :data:`agentwallet.tools.TOOLS`, registered with their own JSON schemas (one
definition of each tool, shared with :func:`agentwallet.tools.openai_tools`). The key was
unlocked by the process that built the :class:`~agentwallet.agent.AgentWallet` and never
leaves it: no tool, resource or prompt returns it, and nothing the client sends can unlock
another key or change a limit. Resources ``agentwallet://vault`` and ``agentwallet://limits``
and the prompt ``spending_rules`` tell the model where it stands.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict

from agentwallet.errors import AgentWalletError
from agentwallet.tools import TOOLS, AgentTools, ToolSpec

__all__ = ["build_server", "serve"]

INSTRUCTIONS = (
    "These tools spend from an on-chain vault for one AI agent, within limits set by its human "
    "owners. Amounts are decimal strings in token units ('2.5'). A payment inside the limits is "
    "paid at once; outside them it is escalated to the owners (status 'escalated'): that is a "
    "normal outcome, not an error; wait, check request_status, or cancel_request. Use "
    "check_payment or remaining_budget before paying when unsure. You cannot change limits."
)


class _RawArguments(ArgModelBase):
    """Hands the client's arguments through unchanged: :mod:`agentwallet.tools` validates them
    against the tool's one JSON schema (and says what is wrong in its own words)."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def _result(data: dict[str, Any]) -> CallToolResult:
    text = json.dumps(data, sort_keys=True, default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def _mcp_tool(tools: AgentTools, spec: ToolSpec) -> Tool:
    def run(arguments: dict[str, Any]) -> CallToolResult:
        try:
            return _result(tools.call_tool(spec.name, arguments))
        except AgentWalletError as exc:  # typed, written for the caller: shown as the tool error
            raise ToolError(f"{type(exc).__name__}: {exc}") from None

    return Tool(
        fn=run,
        name=spec.name,
        title=None,
        description=spec.description,
        parameters=spec.input_schema,
        fn_metadata=FuncMetadata(arg_model=_RawArguments),
        is_async=False,
        context_kwarg=None,
        annotations=ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=False,
            idempotent_hint=spec.read_only,
            open_world_hint=spec.name == "fetch_paid",
        ),
    )


def vault_summary(tools: AgentTools) -> dict[str, Any]:
    """What the ``agentwallet://vault`` resource shows."""
    wallet = tools.wallet
    vault = wallet.vault
    view = vault.agent(wallet.address)
    return {
        "chain_id": wallet.chain.chain_id,
        "vault": vault.address,
        "agent": wallet.address,
        "agent_status": view.status,
        "valid_until": view.valid_until,
        "allowlist_enforced": view.allowlist,
        "open_requests": view.open_requests,
        "owners": vault.owners(),
        "threshold": vault.threshold(),
        "paused": vault.paused(),
    }


def build_server(tools: AgentTools) -> MCPServer[Any]:
    """An ``MCPServer`` exposing ``tools``, with the vault and limits resources and a prompt."""
    server: MCPServer[Any] = MCPServer(
        "agentwallet",
        version="1",
        instructions=INSTRUCTIONS,
        tools=[_mcp_tool(tools, spec) for spec in TOOLS],
    )

    @server.resource(
        "agentwallet://vault",
        name="vault",
        description="The vault this agent spends from: chain, owners, threshold, paused.",
        mime_type="application/json",
    )
    def vault_resource() -> str:
        return json.dumps(vault_summary(tools), sort_keys=True)

    @server.resource(
        "agentwallet://limits",
        name="limits",
        description="The agent's budget per token: available now, per-payment cap, allowance.",
        mime_type="application/json",
    )
    def limits_resource() -> str:
        return json.dumps(tools.call_tool("remaining_budget", {}), sort_keys=True)

    @server.prompt(
        name="spending_rules",
        description="How to pay from the vault: limits, escalation, what you cannot do.",
    )
    def spending_rules() -> list[UserMessage]:
        limits = tools.call_tool("remaining_budget", {})
        return [
            UserMessage(
                f"{INSTRUCTIONS}\n\nYour agent address is {tools.wallet.address}, vault "
                f"{tools.wallet.vault.address}. Your budgets now:\n"
                + json.dumps(limits["budgets"], indent=2)
            )
        ]

    del vault_resource, limits_resource, spending_rules  # registered by the decorators
    return server


def serve(tools: AgentTools, *, http: bool = False, port: int = 8765) -> None:
    """Run until the client disconnects (stdio) or Ctrl-C (HTTP on 127.0.0.1:``port``/mcp)."""
    server = build_server(tools)
    if http:
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()
