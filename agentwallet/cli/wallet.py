"""Agent-side commands: ``pay`` (as the agent given by ``--as``)."""

from __future__ import annotations

from typing import Any

import click

from agentwallet._text import budget, kv_table
from agentwallet.cli._common import (
    CliContext,
    label,
    names_by_address,
    pass_app,
    token_option,
    vault_option,
)
from agentwallet.cli._types import AMOUNT, KEY_OR_ADDRESS, TokenAmount
from agentwallet.units import format_amount

# ------------------------------------------------------------------------------------ pay


@click.command("pay", context_settings={"ignore_unknown_options": True})
@click.argument("to", metavar="TO", type=KEY_OR_ADDRESS)
@click.argument("amount", type=AMOUNT)
@token_option
@click.option(
    "--ref",
    default=None,
    metavar="TEXT",
    help="Reference / idempotency key (invoice id); a retry with it never pays twice.",
)
@vault_option
@pass_app
def pay(
    app: CliContext,
    to: str,
    amount: TokenAmount,
    token: str | None,
    ref: str | None,
    vault_name: str,
) -> None:
    """Pay AMOUNT to TO as the agent given by --as.

    Inside the agent's limits the vault pays at once; outside them it opens a request for the
    owners (status "escalated").
    """
    from agentwallet.agent import AgentWallet

    vault = app.vault(vault_name)
    info = vault.token(token)
    value = amount.base_units(info)
    signer = app.unlock("the agent")
    wallet = AgentWallet(app.chain, vault, signer)
    result = wallet.pay(to, value, None if info.is_eth else info.address, ref=ref)
    remaining = wallet.remaining().get(info.symbol)
    data: dict[str, Any] = {
        "status": result.status,
        "tx_hash": result.tx_hash,
        "gas_used": result.gas_used,
        "request_id": getattr(result, "request_id", None),
        "reasons": list(getattr(result, "reasons", ())),
        "agent": signer.address,
        "to": to,
        "token": info.symbol,
        "amount": format_amount(value, info.decimals),
        "ref": ref,
        "remaining": format_amount(remaining.available, info.decimals) if remaining else None,
    }
    if app.json:
        app.emit(data)
        return
    names = names_by_address()
    rows: list[tuple[str, Any]] = [
        ("status", data["status"]),
        ("agent", label(signer.address, names)),
        ("to", label(to, names)),
        ("amount", f"{data['amount']} {info.symbol}"),
    ]
    if ref:
        rows.append(("ref", ref))
    if result.status == "escalated":
        rows += [
            ("request", data["request_id"]),
            ("reasons", ", ".join(data["reasons"])),
        ]
    if remaining is not None:
        rows.append(("budget left", f"{budget(remaining.available, info.decimals)} {info.symbol}"))
    rows += [("tx", data["tx_hash"]), ("gas used", data["gas_used"])]
    click.echo(kv_table(rows))
    if result.status == "escalated":
        click.echo(f"\nwaiting for owners: agentwallet --as OWNER approve {data['request_id']}")
