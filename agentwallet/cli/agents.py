"""Commands for agents where they live: ``mcp`` (the wallet as MCP tools), ``fetch`` (GET an
x402-priced URL and pay it within the vault's limits) and ``facilitator`` (a local x402
facilitator settling ``exact``/``erc7710`` payments through the vault)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from agentwallet.cli._common import PASSWORD_ENV, CliContext, pass_app, vault_option

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet


def _agent_wallet(app: CliContext, vault_name: str) -> AgentWallet:
    from agentwallet.agent import AgentWallet

    vault = app.vault(vault_name)
    signer = app.unlock("the agent")
    os.environ.pop(PASSWORD_ENV, None)  # unlocked once; nothing started later inherits it
    return AgentWallet(app.chain, vault, signer)


@click.command("mcp")
@vault_option
@click.option("--http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 (default: stdio).")
@click.option("--port", default=8765, show_default=True, help="Port for --http.")
@pass_app
def mcp(app: CliContext, vault_name: str, http: bool, port: int) -> None:
    """Serve the agent's wallet as MCP tools (pay, check, budget, requests, x402 fetch).

    Run as the agent: `agentwallet --as AGENT mcp`. The key is unlocked once here (password
    from $AGENTWALLET_PASSWORD or a terminal prompt, never through the protocol) and stays in
    this process; no tool can change a limit or reveal the key.
    """
    from agentwallet.mcp_server import serve
    from agentwallet.tools import AgentTools

    wallet = _agent_wallet(app, vault_name)
    where = f"http://127.0.0.1:{port}/mcp" if http else "stdio"
    click.echo(
        f"agentwallet MCP server for agent {wallet.address} on vault {wallet.vault.address} "
        f"({where})",
        err=True,
    )
    serve(AgentTools(wallet), http=http, port=port)
