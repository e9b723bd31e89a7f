"""Agent-side commands: ``pay`` (directly or through a relay), ``cancel`` a request,
``invalidate-nonces``, ``agent rotate-key``, and ``relay`` (the service that submits agents'
intents and pays their gas)."""

from __future__ import annotations

from typing import Any

import click

from agentwallet._text import budget, kv_table
from agentwallet.cli._common import (
    CliContext,
    click_error,
    confirm_signature,
    keystore,
    label,
    names_by_address,
    pass_app,
    password_for,
    token_option,
    vault_option,
    yes_option,
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
@click.option(
    "--relay",
    "relay_url",
    default=None,
    metavar="URL",
    help="Sign an intent and let this relay submit it and pay the gas (`agentwallet relay`).",
)
@click.option(
    "--fee",
    type=AMOUNT,
    default=None,
    help="With --relay: the most the relay may take, in the payment's token (default 0).",
)
@click.option(
    "--exactly-once",
    is_flag=True,
    help="Pay at most once per chain for this ref, from any machine: the agent signs an intent "
    "whose nonce is derived from the ref and submits it itself (or --relay does); about "
    "28,600 more gas than a direct payment.",
)
@vault_option
@pass_app
def pay(
    app: CliContext,
    to: str,
    amount: TokenAmount,
    token: str | None,
    ref: str | None,
    relay_url: str | None,
    fee: TokenAmount | None,
    exactly_once: bool,
    vault_name: str,
) -> None:
    """Pay AMOUNT to TO as the agent given by --as.

    Inside the agent's limits the vault pays at once; outside them it opens a request for the
    owners (status "escalated"). With --relay the agent needs no gas.
    """
    from agentwallet.agent import AgentWallet
    from agentwallet.errors import AgentWalletError

    if relay_url is None and fee is not None:
        raise click_error(AgentWalletError("--fee is what a relay takes: need --relay URL"))
    vault = app.vault(vault_name)
    info = vault.token(token)
    value = amount.base_units(info)
    fee_value = fee.base_units(info, "fee", positive=False) if fee is not None else 0
    signer = app.unlock("the agent")
    wallet = AgentWallet(app.chain, vault, signer)
    result = wallet.pay(
        to,
        value,
        None if info.is_eth else info.address,
        ref=ref,
        relay=relay_url,
        fee=fee_value,
        exactly_once=exactly_once,
    )
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


# ------------------------------------------------------------------------------------ cancel


@click.command("cancel")
@click.argument("request_id", type=click.IntRange(min=1), metavar="REQUEST_ID")
@vault_option
@pass_app
def cancel(app: CliContext, request_id: int, vault_name: str) -> None:
    """Withdraw one of your own pending payment requests (as the agent given by --as)."""
    from agentwallet.agent import AgentWallet

    wallet = AgentWallet(app.chain, app.vault(vault_name), app.unlock("the agent"))
    result = wallet.cancel(request_id)
    app.emit(
        {"request_id": request_id, "status": "cancelled", "tx_hash": result.tx_hash},
        f"request {request_id} cancelled (tx {result.tx_hash})",
    )


# ------------------------------------------------------------------------- invalidate-nonces


@click.command("invalidate-nonces")
@click.argument("nonces", nargs=-1, type=click.IntRange(min=0, max=2**256 - 1))
@click.option(
    "--ref",
    "refs",
    multiple=True,
    metavar="TEXT",
    help="Also the nonce an --exactly-once intent with this ref takes (repeatable).",
)
@click.option(
    "--agent",
    "agent_key",
    default=None,
    type=KEY_OR_ADDRESS,
    help="The agent whose intents to cancel (an owner's call); default: the --as key itself.",
)
@vault_option
@yes_option
@pass_app
def invalidate_nonces(
    app: CliContext,
    nonces: tuple[int, ...],
    refs: tuple[str, ...],
    agent_key: str | None,
    vault_name: str,
    yes: bool,
) -> None:
    """Cancel signed intents: mark NONCES of an agent's key used so they can never run.

    The agent cancels its own (--as AGENT); any owner can cancel an agent's (--as OWNER
    --agent AGENT). One transaction per bitmap word of 256 nonces.
    """
    from agentwallet import intents
    from agentwallet.errors import AgentWalletError
    from agentwallet.protocol.refs import to_ref

    chosen = sorted({*nonces, *(intents.ref_nonce(to_ref(r)) for r in refs)})
    if not chosen:
        raise click_error(AgentWalletError("name at least one NONCE or --ref to invalidate"))
    vault = app.vault(vault_name)
    signer = app.unlock("the agent or an owner")
    space = agent_key or str(signer.address)
    names = names_by_address()
    app.say(
        kv_table(
            [
                ("action", "invalidateNonces"),
                ("vault", label(vault.address, names)),
                ("agent key", label(space, names)),
                ("nonces", ", ".join(str(n) for n in chosen)),
                ("signer", label(str(signer.address), names)),
            ]
        )
    )
    confirm_signature(app, yes, "Cancel these nonces?")
    results = intents.invalidate_nonces(vault, signer, space, chosen)
    app.emit(
        {"agent": space, "nonces": [str(n) for n in chosen], "txs": [r.tx_hash for r in results]},
        f"{len(chosen)} nonce(s) of {label(space, names)} invalidated in "
        f"{len(results)} transaction(s)",
    )


# ------------------------------------------------------------------------ agent rotate-key


@click.command("rotate-key")
@click.argument("new_key", metavar="NEW_KEYNAME")
@click.option(
    "--relay",
    "relay_url",
    default=None,
    metavar="URL",
    help="Let this relay submit the rotation (the old key needs no gas).",
)
@vault_option
@yes_option
@pass_app
def rotate_key(
    app: CliContext, new_key: str, relay_url: str | None, vault_name: str, yes: bool
) -> None:
    """Move the agent's rights (limits, budget, open requests) from the --as key to
    NEW_KEYNAME, a key in the keystore (create it first with `agentwallet key new`).

    Both keys sign; afterwards the old key can never pay again.
    """
    from agentwallet.agent import AgentWallet

    store = keystore()
    store.info(new_key)  # an unknown name fails before any password is asked
    vault = app.vault(vault_name)
    old = app.unlock("the agent (its current key)")
    new = store.load(new_key, password_for(new_key))
    names = names_by_address()
    app.say(
        kv_table(
            [
                ("action", "rotateAgentKey"),
                ("vault", label(vault.address, names)),
                ("old key", label(str(old.address), names)),
                ("new key", label(str(new.address), names)),
                ("submitted by", relay_url or "the old key"),
            ]
        )
    )
    confirm_signature(app, yes, "Sign the rotation with both keys?")
    wallet = AgentWallet(app.chain, vault, old)
    result = wallet.rotate_key(new, relay=relay_url)
    app.emit(
        {"old_key": str(old.address), "new_key": wallet.address, "tx_hash": result.tx_hash},
        f"agent key rotated: {label(str(old.address), names)} -> {label(wallet.address, names)}"
        f" (tx {result.tx_hash})",
    )


# ------------------------------------------------------------------------------------ relay


@click.command("relay")
@click.option("--port", type=click.IntRange(1, 65535), default=8600, show_default=True)
@pass_app
def relay(app: CliContext, port: int) -> None:
    """Run the relay on 127.0.0.1:PORT: it submits agents' signed intents and key rotations
    and pays the gas from the --as key (API: docs/relay.md). Ctrl-C stops it."""
    from agentwallet.relay import RelayService, serve

    signer = app.unlock("the relayer (it pays the gas)")
    service = RelayService(app.chain, signer)
    click.echo(
        f"relay on http://127.0.0.1:{port} for chain {app.chain.chain_id}, paying gas from "
        f"{signer.address}",
        err=True,
    )
    serve(service, port, log_level="warning")
