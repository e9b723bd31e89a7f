"""Operator commands: deploy, fund, faucet, agent add|list|show|limits|pause|revoke."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from agentwallet.cli._common import (
    chain_of,
    deployments_of,
    label,
    names_by_address,
    obj_of,
    parse_positive,
    resolve_address,
    signer_of,
    token_option,
    vault_of,
    vault_option,
)
from agentwallet.cli._output import emit_json, kv_table, say, span, table

if TYPE_CHECKING:
    from agentwallet.vault import RequestRef, TokenInfo, Vault

from agentwallet.faucet import TEST_TOKEN_SYMBOL

# ------------------------------------------------------------------------------------ faucet


@click.command("faucet")
@click.argument("recipient", metavar="ADDRESS_OR_KEYNAME")
@click.option("--amount", default="1", show_default=True, help="How much, in token units.")
@click.option(
    "--token",
    default=None,
    metavar="SYMBOL",
    help=f"Mint the development test token (e.g. {TEST_TOKEN_SYMBOL}) instead of sending ETH.",
)
@click.pass_context
def faucet(ctx: click.Context, recipient: str, amount: str, token: str | None) -> None:
    """Development chains only: send ETH for gas from a dev account (or mint test tokens)."""
    from agentwallet.deployments import ETH_TOKEN
    from agentwallet.faucet import faucet as send_from_faucet
    from agentwallet.units import format_amount

    chain = chain_of(ctx)
    to = resolve_address(recipient)
    info = (
        ETH_TOKEN if token is None or token.upper() == "ETH" else deployments_of(ctx).token(token)
    )
    funded = send_from_faucet(chain, to, parse_positive(amount, info), info)
    value, balance, tx_hash = funded.amount, funded.balance, funded.tx.tx_hash
    if obj_of(ctx).json:
        emit_json(
            {
                "to": to,
                "token": info.symbol,
                "amount": format_amount(value, info.decimals),
                "balance": format_amount(balance, info.decimals),
                "tx_hash": tx_hash,
            }
        )
    else:
        click.echo(
            f"sent {format_amount(value, info.decimals)} {info.symbol} to "
            f"{label(to, names_by_address())}\n"
            + kv_table(
                [
                    ("balance now", f"{format_amount(balance, info.decimals)} {info.symbol}"),
                    ("tx", tx_hash),
                ]
            )
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
    help="An owner (repeat for each; key names or 0x addresses).",
)
@click.option("--threshold", type=int, required=True, help="Owner approvals a request needs (M).")
@click.option(
    "--request-expiry", default="3d", show_default=True, help="How long requests stay open."
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
@click.pass_context
def deploy(
    ctx: click.Context,
    name: str,
    owners: tuple[str, ...],
    threshold: int,
    request_expiry: str,
    max_open_requests: int,
    test_token: bool,
) -> None:
    """Create an M-of-N vault (deploying the factory first if this chain has none).

    Records everything in deployments/<network>.json. The sender is --as NAME.
    """
    from agentwallet.units import parse_duration
    from agentwallet.vault import Vault

    owner_addresses = [resolve_address(o) for o in owners]
    expiry = parse_duration(request_expiry)
    chain = chain_of(ctx)
    deployments = deployments_of(ctx)
    sender = signer_of(ctx, "the deployer (any key with ETH for gas)")
    token_address = None
    if test_token:
        from agentwallet.faucet import deploy_test_token

        token_address = deploy_test_token(chain, sender, deployments).address
    vault = Vault.create(
        chain,
        sender,
        owner_addresses,
        threshold,
        request_expiry=expiry,
        max_open_requests=max_open_requests,
        name=name,
        deployments=deployments,
    )
    data: dict[str, Any] = {
        "name": name,
        "vault": vault.address,
        "factory": deployments.factory(),
        "owners": owner_addresses,
        "threshold": threshold,
        "request_expiry": expiry,
        "max_open_requests": max_open_requests,
        "chain_id": chain.chain_id,
        "test_token": token_address,
    }
    if obj_of(ctx).json:
        emit_json(data)
        return
    names = names_by_address()
    rows = [
        ("vault", f"{name} at {vault.address}"),
        ("owners", ", ".join(label(o, names) for o in owner_addresses)),
        ("threshold", f"{threshold} of {len(owner_addresses)}"),
        ("request expiry", span(expiry)),
        ("max open requests", max_open_requests),
        ("factory", deployments.factory()),
        ("chain id", chain.chain_id),
    ]
    if token_address:
        rows.append(("test token", f"{TEST_TOKEN_SYMBOL} at {token_address}"))
    click.echo("deployed\n" + kv_table(rows))


# ------------------------------------------------------------------------------------ fund


@click.command("fund")
@click.argument("amount")
@token_option
@vault_option
@click.pass_context
def fund(ctx: click.Context, amount: str, token: str | None, vault_name: str) -> None:
    """Deposit AMOUNT (in token units) into the vault, from the key given by --as."""
    from agentwallet.units import format_amount

    vault = vault_of(ctx, vault_name)
    info = vault.token(token)
    value = parse_positive(amount, info)
    sender = signer_of(ctx, "the funder")
    result = vault.fund(sender, value, None if info.symbol == "ETH" else info.address)
    balance = vault.balance(None if info.symbol == "ETH" else info.address)
    data = {
        "vault": vault.address,
        "token": info.symbol,
        "amount": format_amount(value, info.decimals),
        "balance": format_amount(balance, info.decimals),
        "tx_hash": result.tx_hash,
        "gas_used": result.gas_used,
    }
    if obj_of(ctx).json:
        emit_json(data)
    else:
        click.echo(
            f"funded vault {vault_name} with {data['amount']} {info.symbol}\n"
            + kv_table(
                [("vault balance", f"{data['balance']} {info.symbol}"), ("tx", result.tx_hash)]
            )
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
    ctx: click.Context, vault: Vault, refs: list[tuple[str, RequestRef]], extra: dict[str, Any]
) -> None:
    records, rows = _request_rows(vault, refs)
    if obj_of(ctx).json:
        emit_json({**extra, "requests": records})
        return
    click.echo(table(["request", "action", "status", "approvals"], rows))
    pending = [str(r["request_id"]) for r in records if not r["executed"]]
    if pending:
        click.echo(
            "\nother owners co-sign with: "
            + "; ".join(f"agentwallet --as OWNER approve {i}" for i in pending)
        )


def _valid_until(text: str | None, now: int) -> int:
    """``--valid-until``: a date (YYYY-MM-DD, UTC midnight) or a duration from now (30d)."""
    from agentwallet.units import parse_duration

    if not text:
        return 0
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return now + parse_duration(text)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


@click.group("agent")
def agent() -> None:
    """Add agents, set their limits, and pause or revoke them."""


@agent.command("add")
@click.argument("agent_id", metavar="AGENT")
@click.option("--eth-limit", default=None, help="Largest single ETH payment without a human.")
@click.option("--eth-allowance", default=None, help="ETH budget per period (refills continuously).")
@click.option("--period", default=None, help="Budget period, e.g. 1d, 12h, 1w.")
@click.option("--token", default=None, metavar="SYMBOL", help="An ERC-20 the agent may spend.")
@click.option("--token-limit", default=None, help="Largest single token payment.")
@click.option("--token-allowance", default=None, help="Token budget per period.")
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
    "allow",
    multiple=True,
    metavar="RECIPIENT",
    help="Allowlist a recipient (repeat); with any, others escalate.",
)
@vault_option
@click.pass_context
def agent_add(
    ctx: click.Context,
    agent_id: str,
    eth_limit: str | None,
    eth_allowance: str | None,
    period: str | None,
    token: str | None,
    token_limit: str | None,
    token_allowance: str | None,
    valid_after: str | None,
    valid_until: str | None,
    allow: tuple[str, ...],
    vault_name: str,
) -> None:
    """Propose adding AGENT with limits: one governance request per change (as --as owner).

    With a threshold of 1 they execute at once; otherwise other owners approve them, in order.
    """
    from agentwallet.errors import AmountError
    from agentwallet.units import ETH, parse_amount, parse_duration

    address = resolve_address(agent_id)
    recipients = [resolve_address(r) for r in allow]
    vault = vault_of(ctx, vault_name)
    limits: list[tuple[TokenInfo, int, int]] = []
    if (eth_limit is None) != (eth_allowance is None):
        raise AmountError("give both --eth-limit and --eth-allowance, or neither")
    if token is not None and (token_limit is None or token_allowance is None):
        raise AmountError(f"--token {token} needs --token-limit and --token-allowance")
    if token is None and (token_limit is not None or token_allowance is not None):
        raise AmountError("--token-limit/--token-allowance need --token SYMBOL")
    if eth_limit is not None and eth_allowance is not None:
        eth = vault.token(None)
        limits.append((eth, parse_amount(eth_limit, 18), parse_amount(eth_allowance, 18)))
    if token is not None and token_limit is not None and token_allowance is not None:
        info = vault.token(token)
        limits.append(
            (
                info,
                parse_amount(token_limit, info.decimals),
                parse_amount(token_allowance, info.decimals),
            )
        )
    seconds = 0
    if limits:
        if period is None:
            raise AmountError("limits need a --period, e.g. --period 1d")
        seconds = parse_duration(period)
    now = chain_of(ctx).timestamp()
    after, until = _valid_until(valid_after, now), _valid_until(valid_until, now)
    sender = signer_of(ctx, "an owner of the vault")
    refs: list[tuple[str, RequestRef]] = []
    ref = vault.propose_add_agent(
        sender, address, valid_after=after, valid_until=until, allowlist=bool(recipients)
    )
    refs.append((f"add agent {label(address, names_by_address())}", ref))
    from agentwallet.units import format_amount

    for info, max_per, allowance in limits:
        ref = vault.propose_set_limits(
            sender,
            address,
            ETH if info.symbol == "ETH" else info.address,
            max_per,
            allowance,
            seconds,
        )
        refs.append(
            (
                f"limits {info.symbol}: {format_amount(max_per, info.decimals)} per payment, "
                f"{format_amount(allowance, info.decimals)} per {span(seconds)}",
                ref,
            )
        )
    for recipient in recipients:
        refs.append(
            (
                f"allow recipient {label(recipient, names_by_address())}",
                vault.propose_allow_recipient(sender, address, recipient),
            )
        )
    _print_proposals(ctx, vault, refs, {"agent": address, "vault": vault.address})


def _agent_rows(vault: Vault, address: str) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    from agentwallet.units import format_amount

    view = vault.agent(address)
    policies: list[dict[str, Any]] = []
    rows: list[tuple[Any, ...]] = []
    for token_address, p in view.policies.items():
        info = vault.token(token_address)

        def fmt(v: int, decimals: int = info.decimals) -> str:
            return format_amount(v, decimals)

        policies.append(
            {
                "token": info.symbol,
                "token_address": info.address,
                "max_per_payment": fmt(p.max_per_payment),
                "allowance": fmt(p.allowance),
                "period": p.period,
                "available": fmt(p.available),
            }
        )
        rows.append(
            (
                info.symbol,
                fmt(p.max_per_payment),
                fmt(p.allowance),
                span(p.period),
                fmt(p.available),
            )
        )
    record = {
        "agent": view.address,
        "status": view.status,
        "valid_after": view.valid_after,
        "valid_until": view.valid_until,
        "allowlist": view.allowlist,
        "open_requests": view.open_requests,
        "policies": policies,
    }
    return record, rows


@agent.command("list")
@vault_option
@click.pass_context
def agent_list(ctx: click.Context, vault_name: str) -> None:
    """List the vault's agents with status and limits."""
    vault = vault_of(ctx, vault_name)
    names = names_by_address()
    views = vault.agents()
    records = [_agent_rows(vault, v.address)[0] for v in views]
    if obj_of(ctx).json:
        emit_json({"vault": vault.address, "agents": records})
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
@click.argument("agent_id", metavar="AGENT")
@vault_option
@click.pass_context
def agent_show(ctx: click.Context, agent_id: str, vault_name: str) -> None:
    """Show one agent: status, validity window, limits and what it can spend now."""
    address = resolve_address(agent_id)
    vault = vault_of(ctx, vault_name)
    record, rows = _agent_rows(vault, address)
    if obj_of(ctx).json:
        emit_json(record)
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
@click.argument("agent_id", metavar="AGENT")
@click.option("--token", default="ETH", show_default=True, metavar="SYMBOL")
@click.option("--max", "max_per", required=True, help="Largest single payment.")
@click.option("--allowance", required=True, help="Budget per period.")
@click.option("--period", default=None, help="Period (default: keep the current one).")
@vault_option
@click.pass_context
def agent_limits(
    ctx: click.Context,
    agent_id: str,
    token: str,
    max_per: str,
    allowance: str,
    period: str | None,
    vault_name: str,
) -> None:
    """Change AGENT's limits for a token.

    Lowering both (same period) is one owner's instant call; anything else is a proposal that
    needs the threshold.
    """
    from agentwallet.errors import AmountError
    from agentwallet.units import ETH, format_amount, parse_amount, parse_duration

    address = resolve_address(agent_id)
    vault = vault_of(ctx, vault_name)
    info = vault.token(token)
    token_address = ETH if info.symbol == "ETH" else info.address
    new_max = parse_amount(max_per, info.decimals)
    new_allowance = parse_amount(allowance, info.decimals)
    current = vault.agent(address).policies.get(token_address)
    new_period = parse_duration(period) if period is not None else None
    sender = signer_of(ctx, "an owner of the vault")
    if (
        current is not None
        and current.period > 0
        and new_max <= current.max_per_payment
        and new_allowance <= current.allowance
        and (new_period is None or new_period == current.period)
    ):
        result = vault.reduce_limits(sender, address, token_address, new_max, new_allowance)
        data = {
            "agent": address,
            "token": info.symbol,
            "mode": "reduced",
            "max_per_payment": format_amount(new_max, info.decimals),
            "allowance": format_amount(new_allowance, info.decimals),
            "tx_hash": result.tx_hash,
        }
        if obj_of(ctx).json:
            emit_json(data)
        else:
            click.echo(
                "limits lowered at once (one owner suffices to reduce risk)\n"
                + kv_table(
                    [
                        ("token", info.symbol),
                        ("per payment", data["max_per_payment"]),
                        ("allowance", data["allowance"]),
                        ("tx", result.tx_hash),
                    ]
                )
            )
        return
    if new_period is None:
        if current is None or current.period == 0:
            raise AmountError(f"{info.symbol} is not in this agent's scope yet: give --period")
        new_period = current.period
    ref = vault.propose_set_limits(
        sender, address, token_address, new_max, new_allowance, new_period
    )
    action = (
        f"limits {info.symbol}: {format_amount(new_max, info.decimals)} per payment, "
        f"{format_amount(new_allowance, info.decimals)} per {span(new_period)}"
    )
    _print_proposals(ctx, vault, [(action, ref)], {"agent": address, "mode": "proposed"})


def _instant(ctx: click.Context, agent_id: str, vault_name: str, verb: str) -> None:
    address = resolve_address(agent_id)
    vault = vault_of(ctx, vault_name)
    sender = signer_of(ctx, "an owner of the vault")
    call = vault.pause_agent if verb == "paused" else vault.revoke_agent
    result = call(sender, address)
    if obj_of(ctx).json:
        emit_json({"agent": address, "status": verb, "tx_hash": result.tx_hash})
    else:
        say(
            obj_of(ctx).json,
            f"agent {label(address, names_by_address())} {verb} (tx {result.tx_hash})",
        )


@agent.command("pause")
@click.argument("agent_id", metavar="AGENT")
@vault_option
@click.pass_context
def agent_pause(ctx: click.Context, agent_id: str, vault_name: str) -> None:
    """Pause AGENT at once (one owner). Unpausing needs the threshold."""
    _instant(ctx, agent_id, vault_name, "paused")


@agent.command("revoke")
@click.argument("agent_id", metavar="AGENT")
@vault_option
@click.pass_context
def agent_revoke(ctx: click.Context, agent_id: str, vault_name: str) -> None:
    """Revoke AGENT for good (one owner): it can never pay from this vault again."""
    _instant(ctx, agent_id, vault_name, "revoked")
