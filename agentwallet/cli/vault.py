"""Operator commands: deploy, fund, faucet, agent add|list|show|limits|pause|revoke."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from agentwallet._text import kv_table, span, table
from agentwallet.cli._common import (
    CliContext,
    label,
    names_by_address,
    pass_app,
    token_option,
    vault_option,
)
from agentwallet.cli._types import AMOUNT, DURATION, KEY_OR_ADDRESS, Amount, TokenAmount
from agentwallet.errors import InsufficientFundsError
from agentwallet.faucet import TEST_TOKEN_SYMBOL
from agentwallet.protocol.models import ETH_TOKEN
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.protocol.models import RequestRef, TokenInfo
    from agentwallet.vault import Vault

ETH_AMOUNT = Amount(ETH_TOKEN)


# ------------------------------------------------------------------------------------ faucet


@click.command("faucet")
@click.argument("to", metavar="ADDRESS_OR_KEYNAME", type=KEY_OR_ADDRESS)
@click.option("--amount", default="1", show_default=True, type=AMOUNT, help="In token units.")
@click.option(
    "--token",
    default=None,
    metavar="SYMBOL",
    help=f"Mint the development test token (e.g. {TEST_TOKEN_SYMBOL}) instead of sending ETH.",
)
@pass_app
def faucet(app: CliContext, to: str, amount: TokenAmount, token: str | None) -> None:
    """Development chains only: send ETH for gas from a dev account (or mint test tokens)."""
    from agentwallet.faucet import faucet as send_from_faucet

    eth = token is None or token.upper() == "ETH"
    info = ETH_TOKEN if eth else app.deployments.token(str(token))
    funded = send_from_faucet(app.chain, to, amount.base_units(info), info)
    sent, balance = (
        format_amount(funded.amount, info.decimals),
        format_amount(funded.balance, info.decimals),
    )
    app.emit(
        {
            "to": to,
            "token": info.symbol,
            "amount": sent,
            "balance": balance,
            "tx_hash": funded.tx.tx_hash,
        },
        f"sent {sent} {info.symbol} to {label(to, names_by_address())}\n"
        + kv_table([("balance now", f"{balance} {info.symbol}"), ("tx", funded.tx.tx_hash)]),
    )


# ------------------------------------------------------------------------------------ deploy


@click.command("deploy")
@click.option("--name", default="main", show_default=True, help="Name to record the vault under.")
@click.option(
    "--owner",
    "owners",
    multiple=True,
    required=True,
    metavar="ADDR_OR_KEY",
    type=KEY_OR_ADDRESS,
    help="An owner (repeat for each; key names or 0x addresses).",
)
@click.option("--threshold", type=int, required=True, help="Owner approvals a request needs (M).")
@click.option(
    "--request-expiry",
    default="3d",
    show_default=True,
    type=DURATION,
    help="How long requests stay open.",
)
@click.option(
    "--max-open-requests",
    type=int,
    default=10,
    show_default=True,
    help="Pending escalated payments one agent may have open.",
)
@click.option(
    "--test-token",
    is_flag=True,
    help=f"Also deploy TestUSDC and record it as token {TEST_TOKEN_SYMBOL}.",
)
@click.option("--replace", is_flag=True, help="Record under --name even if that name is taken.")
@pass_app
def deploy(
    app: CliContext,
    name: str,
    owners: tuple[str, ...],
    threshold: int,
    request_expiry: int,
    max_open_requests: int,
    test_token: bool,
    replace: bool,
) -> None:
    """Create an M-of-N vault (deploying the factory first if this chain has none).

    Records everything in deployments/<network>.json (see deployments/README.md for where);
    refuses a --name already recorded unless --replace. The sender is --as NAME.
    """
    from agentwallet.faucet import deploy_test_token
    from agentwallet.vault import Vault

    chain, deployments = app.chain, app.deployments
    deployments.check_vault_name(name, replace=replace)
    sender = app.unlock("the deployer (any key with ETH for gas)")
    token_address = deploy_test_token(chain, sender, deployments).address if test_token else None
    vault = Vault.create(
        chain,
        sender,
        list(owners),
        threshold,
        request_expiry=request_expiry,
        max_open_requests=max_open_requests,
        name=name,
        deployments=deployments,
    )
    data: dict[str, Any] = {
        "name": name,
        "vault": vault.address,
        "factory": deployments.factory(),
        "owners": list(owners),
        "threshold": threshold,
        "request_expiry": request_expiry,
        "max_open_requests": max_open_requests,
        "chain_id": chain.chain_id,
        "test_token": token_address,
    }
    if app.json:
        app.emit(data)
        return
    names = names_by_address()
    rows = [
        ("vault", f"{name} at {vault.address}"),
        ("owners", ", ".join(label(o, names) for o in owners)),
        ("threshold", f"{threshold} of {len(owners)}"),
        ("request expiry", span(request_expiry)),
        ("max open requests", max_open_requests),
        ("factory", deployments.factory()),
        ("chain id", chain.chain_id),
    ]
    if token_address:
        rows.append(("test token", f"{TEST_TOKEN_SYMBOL} at {token_address}"))
    click.echo("deployed\n" + kv_table(rows))


# ------------------------------------------------------------------------------------ fund


@click.command("fund")
@click.argument("amount", type=AMOUNT)
@token_option
@vault_option
@pass_app
def fund(app: CliContext, amount: TokenAmount, token: str | None, vault_name: str) -> None:
    """Deposit AMOUNT (in token units) into the vault, from the key given by --as."""
    vault = app.vault(vault_name)
    info = vault.token(token)
    value = amount.base_units(info)
    sender = app.unlock("the funder")
    try:
        result = vault.fund(sender, value, None if info.is_eth else info.address)
    except InsufficientFundsError as exc:  # the same message, with the key's and vault's names
        text = str(exc).replace(f"vault {vault.address}", f"vault {vault_name!r} ({vault.address})")
        raise InsufficientFundsError(
            text.replace(sender.address, f"key {app.signer!r} ({sender.address})", 1)
        ) from None
    balance = format_amount(vault.balance(info), info.decimals)
    app.emit(
        {
            "vault": vault.address,
            "token": info.symbol,
            "amount": format_amount(value, info.decimals),
            "balance": balance,
            "tx_hash": result.tx_hash,
            "gas_used": result.gas_used,
        },
        f"funded vault {vault_name} with {format_amount(value, info.decimals)} {info.symbol}\n"
        + kv_table([("vault balance", f"{balance} {info.symbol}"), ("tx", result.tx_hash)]),
    )


# ------------------------------------------------------------------------------------ agents


def _request_rows(
    vault: Vault, refs: list[tuple[str, RequestRef]]
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """JSON records and table rows for governance requests just proposed."""
    threshold = vault.threshold()
    records: list[dict[str, Any]] = []
    rows: list[tuple[Any, ...]] = []
    for action, ref in refs:
        if ref.executed:
            status, approvals = "executed", threshold
        else:
            info = vault.request(ref.request_id)
            status, approvals = info.status, len(info.approvals)
        records.append(
            {
                "request_id": ref.request_id,
                "action": action,
                "executed": ref.executed,
                "status": status,
                "approvals": approvals,
                "threshold": threshold,
            }
        )
        rows.append((ref.request_id, action, status, f"{approvals}/{threshold}"))
    return records, rows


def _print_proposals(
    app: CliContext, vault: Vault, refs: list[tuple[str, RequestRef]], extra: dict[str, Any]
) -> None:
    records, rows = _request_rows(vault, refs)
    if app.json:
        app.emit({**extra, "requests": records})
        return
    click.echo(table(["request", "action", "status", "approvals"], rows))
    pending = [str(r["request_id"]) for r in records if not r["executed"]]
    if pending:
        click.echo(
            "\nother owners co-sign with: "
            + "; ".join(f"agentwallet --as OWNER approve {i}" for i in pending)
        )


def _limits_text(info: TokenInfo, max_per: int, allowance: int, period: int) -> str:
    return (
        f"limits {info.symbol}: {format_amount(max_per, info.decimals)} per payment, "
        f"{format_amount(allowance, info.decimals)} per {span(period)}"
    )


def _valid_until(text: str | None, now: int) -> int:
    """``--valid-until``: a date (YYYY-MM-DD, UTC midnight) or a duration from now (30d)."""
    if not text:
        return 0
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return now + DURATION.parse(text)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@click.group("agent")
def agent() -> None:
    """Add agents, set their limits, and pause or revoke them."""


@agent.command("add")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@click.option("--eth-limit", type=ETH_AMOUNT, help="Largest single ETH payment without a human.")
@click.option("--eth-allowance", type=ETH_AMOUNT, help="ETH budget per period (refills).")
@click.option("--period", type=DURATION, help="Budget period, e.g. 1d, 12h, 1w.")
@click.option("--token", default=None, metavar="SYMBOL", help="An ERC-20 the agent may spend.")
@click.option("--token-limit", type=AMOUNT, help="Largest single token payment.")
@click.option("--token-allowance", type=AMOUNT, help="Token budget per period.")
@click.option(
    "--valid-from",
    "valid_after",
    default=None,
    help="No payments before: date YYYY-MM-DD or duration from now.",
)
@click.option(
    "--valid-until",
    default=None,
    help="No payments after: date YYYY-MM-DD or duration from now (30d).",
)
@click.option(
    "--allow",
    "recipients",
    multiple=True,
    metavar="RECIPIENT",
    type=KEY_OR_ADDRESS,
    help="Allowlist a recipient (repeat); with any, others escalate.",
)
@vault_option
@pass_app
def agent_add(
    app: CliContext,
    address: str,
    eth_limit: int | None,
    eth_allowance: int | None,
    period: int | None,
    token: str | None,
    token_limit: TokenAmount | None,
    token_allowance: TokenAmount | None,
    valid_after: str | None,
    valid_until: str | None,
    recipients: tuple[str, ...],
    vault_name: str,
) -> None:
    """Propose adding AGENT with limits: one governance request per change (as --as owner).

    With a threshold of 1 they execute at once; otherwise other owners approve them, in order.
    """
    from agentwallet.errors import AmountError

    vault = app.vault(vault_name)
    limits: list[tuple[TokenInfo, int, int]] = []
    if (eth_limit is None) != (eth_allowance is None):
        raise AmountError("give both --eth-limit and --eth-allowance, or neither")
    if token is not None and (token_limit is None or token_allowance is None):
        raise AmountError(f"--token {token} needs --token-limit and --token-allowance")
    if token is None and (token_limit is not None or token_allowance is not None):
        raise AmountError("--token-limit/--token-allowance need --token SYMBOL")
    if eth_limit is not None and eth_allowance is not None:
        limits.append((ETH_TOKEN, eth_limit, eth_allowance))
    if token is not None and token_limit is not None and token_allowance is not None:
        info = vault.token(token)
        limit = token_limit.base_units(info, positive=False)
        limits.append((info, limit, token_allowance.base_units(info, positive=False)))
    if limits and period is None:
        raise AmountError("limits need a --period, e.g. --period 1d")
    now = app.chain.timestamp()
    after, until = _valid_until(valid_after, now), _valid_until(valid_until, now)
    sender = app.unlock("an owner of the vault")
    names = names_by_address()
    refs: list[tuple[str, RequestRef]] = [
        (
            f"add agent {label(address, names)}",
            vault.propose_add_agent(
                sender, address, valid_after=after, valid_until=until, allowlist=bool(recipients)
            ),
        )
    ]
    for info, max_per, allowance in limits:
        seconds = int(period or 0)
        ref = vault.propose_set_limits(sender, address, info.address, max_per, allowance, seconds)
        refs.append((_limits_text(info, max_per, allowance, seconds), ref))
    for recipient in recipients:
        refs.append(
            (
                f"allow recipient {label(recipient, names)}",
                vault.propose_allow_recipient(sender, address, recipient),
            )
        )
    _print_proposals(app, vault, refs, {"agent": address, "vault": vault.address})


def _agent_rows(vault: Vault, address: str) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    view = vault.agent(address)
    policies: list[dict[str, Any]] = []
    rows: list[tuple[Any, ...]] = []
    for token_address, p in view.policies.items():
        info = vault.token(token_address)
        amounts = [
            format_amount(v, info.decimals) for v in (p.max_per_payment, p.allowance, p.available)
        ]
        policies.append(
            {
                "token": info.symbol,
                "token_address": info.address,
                "max_per_payment": amounts[0],
                "allowance": amounts[1],
                "period": p.period,
                "available": amounts[2],
            }
        )
        rows.append((info.symbol, amounts[0], amounts[1], span(p.period), amounts[2]))
    record = {
        "agent": view.address,
        "status": view.status,
        "valid_after": view.valid_after,
        "valid_until": view.valid_until,
        "allowlist": view.allowlist,
        "open_requests": view.open_requests,
        "lineage": view.lineage,
        "parent": view.parent,
        "policies": policies,
    }
    return record, rows


@agent.command("list")
@vault_option
@pass_app
def agent_list(app: CliContext, vault_name: str) -> None:
    """List the vault's agents with status and limits."""
    vault = app.vault(vault_name)
    names = names_by_address()
    records = [_agent_rows(vault, v.address)[0] for v in vault.agents()]
    if app.json:
        app.emit({"vault": vault.address, "agents": records})
        return
    if not records:
        click.echo("no agents yet: add one with `agentwallet --as OWNER agent add AGENT ...`")
        return
    rows = []
    for r in records:
        limits = "; ".join(
            f"{p['token']} {p['max_per_payment']}/payment, {p['available']} of "
            f"{p['allowance']} left"
            for p in r["policies"]
        )
        rows.append((label(r["agent"], names), r["status"], r["open_requests"], limits or "-"))
    click.echo(table(["agent", "status", "open requests", "limits"], rows))


@agent.command("show")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@vault_option
@pass_app
def agent_show(app: CliContext, address: str, vault_name: str) -> None:
    """Show one agent: status, validity window, limits and what it can spend now."""
    record, rows = _agent_rows(app.vault(vault_name), address)
    if app.json:
        app.emit(record)
        return

    def when(ts: int) -> str:
        if not ts:
            return "-"
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    click.echo(
        f"agent {label(address, names_by_address())}\n"
        + kv_table(
            [
                ("status", record["status"]),
                ("valid from", when(record["valid_after"])),
                ("valid until", when(record["valid_until"])),
                ("allowlist", "on" if record["allowlist"] else "off"),
                ("open requests", record["open_requests"]),
            ]
        )
        + "\n\n"
        + (
            table(["token", "per payment", "allowance", "period", "available now"], rows)
            if rows
            else "no limits set: every payment escalates to the owners"
        )
    )


@agent.command("limits")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@click.option("--token", default="ETH", show_default=True, metavar="SYMBOL")
@click.option("--max", "max_per", required=True, type=AMOUNT, help="Largest single payment.")
@click.option("--allowance", required=True, type=AMOUNT, help="Budget per period.")
@click.option("--period", type=DURATION, help="Period (default: keep the current one).")
@vault_option
@pass_app
def agent_limits(
    app: CliContext,
    address: str,
    token: str,
    max_per: TokenAmount,
    allowance: TokenAmount,
    period: int | None,
    vault_name: str,
) -> None:
    """Change AGENT's limits for a token.

    Lowering both (same period) is one owner's instant call; anything else is a proposal that
    needs the threshold.
    """
    from agentwallet.errors import AmountError

    vault = app.vault(vault_name)
    info = vault.token(token)
    new_max = max_per.base_units(info, positive=False)
    new_allowance = allowance.base_units(info, positive=False)
    current = vault.agent(address).policies.get(info.address)
    sender = app.unlock("an owner of the vault")
    if (
        current is not None
        and current.period > 0
        and new_max <= current.max_per_payment
        and new_allowance <= current.allowance
        and (period is None or period == current.period)
    ):
        result = vault.reduce_limits(sender, address, info.address, new_max, new_allowance)
        shown = [format_amount(v, info.decimals) for v in (new_max, new_allowance)]
        app.emit(
            {
                "agent": address,
                "token": info.symbol,
                "mode": "reduced",
                "max_per_payment": shown[0],
                "allowance": shown[1],
                "tx_hash": result.tx_hash,
            },
            "limits lowered at once (one owner suffices to reduce risk)\n"
            + kv_table(
                [
                    ("token", info.symbol),
                    ("per payment", shown[0]),
                    ("allowance", shown[1]),
                    ("tx", result.tx_hash),
                ]
            ),
        )
        return
    if period is None:
        if current is None or current.period == 0:
            raise AmountError(f"{info.symbol} is not in this agent's scope yet: give --period")
        period = current.period
    ref = vault.propose_set_limits(sender, address, info.address, new_max, new_allowance, period)
    action = _limits_text(info, new_max, new_allowance, period)
    _print_proposals(app, vault, [(action, ref)], {"agent": address, "mode": "proposed"})


def _instant(app: CliContext, address: str, vault_name: str, verb: str) -> None:
    vault = app.vault(vault_name)
    sender = app.unlock("an owner of the vault")
    call = vault.pause_agent if verb == "paused" else vault.revoke_agent
    result = call(sender, address)
    app.emit(
        {"agent": address, "status": verb, "tx_hash": result.tx_hash},
        f"agent {label(address, names_by_address())} {verb} (tx {result.tx_hash})",
    )


@agent.command("pause")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@vault_option
@pass_app
def agent_pause(app: CliContext, address: str, vault_name: str) -> None:
    """Pause AGENT at once (one owner). Unpausing needs the threshold."""
    _instant(app, address, vault_name, "paused")


@agent.command("revoke")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@vault_option
@pass_app
def agent_revoke(app: CliContext, address: str, vault_name: str) -> None:
    """Revoke AGENT for good (one owner): it can never pay from this vault again."""
    _instant(app, address, vault_name, "revoked")
