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


@click.command("fetch")
@click.argument("url")
@vault_option
@click.option(
    "--max", "max_amount", default=None, metavar="AMOUNT", help="Most to pay, in token units."
)
@click.option(
    "--escalate",
    is_flag=True,
    help="Over the limits, open a payment request for the owners instead of refusing.",
)
@pass_app
def fetch(
    app: CliContext, url: str, vault_name: str, max_amount: str | None, escalate: bool
) -> None:
    """GET URL as the agent, paying an x402 (HTTP 402) price from the vault within its limits.

    The price is checked against the agent's policy before anything is signed; the payment is
    an intent bound to the URL that the server's facilitator settles through the vault.
    """
    from agentwallet.x402client import fetch_paid

    wallet = _agent_wallet(app, vault_name)
    result = fetch_paid(
        wallet, url, max_amount=max_amount, on_over_limit="escalate" if escalate else "refuse"
    )
    if app.json:
        app.emit(result.as_dict())
        return
    from agentwallet._text import kv_table

    rows: list[tuple[str, object]] = [("status", result.status), ("http", result.http_status)]
    if result.amount:
        rows += [("paid", f"{result.amount} {result.token}"), ("to", result.pay_to)]
    if result.request_id is not None:
        rows.append(("request", result.request_id))
    if result.transaction:
        rows.append(("tx", result.transaction))
    click.echo(kv_table(rows), err=True)
    click.echo(result.body)


@click.command("facilitator")
@click.option("--port", default=8402, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--gas-ceiling",
    default=250_000,
    show_default=True,
    help="Most gas one redeemDelegations may use (simulated first).",
)
@pass_app
def facilitator(app: CliContext, port: int, gas_ceiling: int) -> None:
    """Run an x402 facilitator for exact/erc7710 on this chain, on 127.0.0.1.

    Sign and pay gas as --as KEY. /verify simulates the vault's redeemDelegations with the
    transfer built from the requirements; /settle sends it; /supported lists exact on this chain.
    """
    import uvicorn

    from agentwallet.facilitator import Erc7710Facilitator, facilitator_app

    signer = app.unlock("the facilitator (it pays the settlement gas)")
    os.environ.pop(PASSWORD_ENV, None)
    scheme = Erc7710Facilitator(app.chain, signer, gas_ceiling=gas_ceiling)
    click.echo(
        f"x402 facilitator {scheme.address} for exact/erc7710 on {scheme.network} at "
        f"http://127.0.0.1:{port}",
        err=True,
    )
    uvicorn.run(facilitator_app(scheme), host="127.0.0.1", port=port, log_level="warning")
