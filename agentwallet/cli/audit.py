"""``agentwallet audit ...`` and ``agentwallet watch``: who authorised what, from the chain.

Reports read the local index (``--db``, default ``$AGENTWALLET_HOME/audit.sqlite``); run
``agentwallet audit sync --vault ADDR`` first. Register in the main group with
``main.add_command(audit.audit)`` and ``main.add_command(audit.watch)``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click

from agentwallet.audit.errors import AuditIndexError, WhatIfError
from agentwallet.audit.index import AuditIndex, default_db_path
from agentwallet.cli._common import ErrorReportingGroup, report_errors
from agentwallet.errors import ConfigurationError
from agentwallet.protocol.constants import ETH
from agentwallet.units import parse_amount, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Audit index file (default: $AGENTWALLET_HOME/audit.sqlite).",
)


def _obj(ctx: click.Context) -> Any:
    """The main group's CliContext, or a stand-in when run outside it."""
    obj = ctx.find_root().obj
    if obj is None:
        from agentwallet.cli import CliContext

        obj = CliContext(rpc=None, json=False, signer=None)
        ctx.find_root().obj = obj
    return obj


def _connect(ctx: click.Context) -> Any:
    from agentwallet.chain import connect

    return connect(_obj(ctx).rpc_or_node())


def _vault_address(ctx: click.Context, chain: Any, value: str) -> str:
    """An address as given, or a vault name from the deployments record (if the SDK has it)."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return value
    try:
        from agentwallet.deployments import Deployments
    except ImportError:
        raise ConfigurationError(f"{value!r} is not a vault address (0x + 40 hex digits)") from None
    if chain is None:
        chain = _connect(ctx)
    return str(Deployments(chain).vault_address(value))


def _agent_address(value: str | None) -> str | None:
    """An agent given as an address, or as the name of a key in the local keystore."""
    if value is None or re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return value
    from agentwallet.keys import KeyStore

    return str(KeyStore().info(value).address)


def _open(db: Path | None) -> AuditIndex:
    return AuditIndex(db or default_db_path())


def _chain_id(ctx: click.Context, index: AuditIndex, vault: str, chain_id: int | None) -> int:
    if chain_id is not None:
        return chain_id
    ids = sorted(
        {s.chain_id for s in index.states() if vault.lower() in {v.lower() for v in s.vaults}}
    )
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise AuditIndexError(
            f"vault {vault} is not in the index {index.path}: run `agentwallet audit sync "
            f"--vault {vault}` first"
        )
    return int(_connect(ctx).chain_id)


def _report(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    report: Callable[..., Any],
    *args: Any,
) -> Any:
    """``report(index, chain_id, vault, *args)`` from the index; the vault by address or name."""
    vault = _vault_address(ctx, None, vault)
    with _open(db) as index:
        return report(index, _chain_id(ctx, index, vault, chain_id), vault, *args)


def _out(
    ctx: click.Context, rows: Any, as_csv: bool, as_json: bool, columns: list[str] | None = None
) -> None:
    from agentwallet.audit.reports import render

    fmt = "csv" if as_csv else "json" if (as_json or _obj(ctx).json) else "table"
    click.echo(render(rows, fmt, columns))


def _report_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--vault", required=True, help="Vault address (or name in deployments)."),
            DB_OPTION,
            click.option(
                "--chain-id",
                type=int,
                default=None,
                help="Chain of the index to read (default: the only one with this vault).",
            ),
            click.option("--json", "as_json", is_flag=True, help="JSON output."),
            click.option("--csv", "as_csv", is_flag=True, help="CSV output."),
        ]
    ):
        fn = option(fn)
    return fn


@click.group("audit", cls=ErrorReportingGroup)
def audit() -> None:
    """Who authorised what: index vault events and report from the index."""


@audit.command("sync")
@click.option("--vault", "vaults", multiple=True, required=True, help="Vault address (repeat).")
@click.option("--factory", default=None, help="Also index VaultCreated for these vaults.")
@click.option("--from-block", type=int, default=0, show_default=True)
@click.option("--to-block", type=int, default=None, help="Default: head - confirmations.")
@click.option(
    "--confirmations",
    type=int,
    default=0,
    show_default=True,
    help="Stay this many blocks behind the head (0 on dev chains).",
)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_context
def sync_cmd(
    ctx: click.Context,
    vaults: tuple[str, ...],
    factory: str | None,
    from_block: int,
    to_block: int | None,
    confirmations: int,
    db: Path | None,
    as_json: bool,
) -> None:
    """Read new vault events from the chain into the index (incremental, reorg-safe)."""
    chain = _connect(ctx)
    addresses = [_vault_address(ctx, chain, v) for v in vaults]
    with _open(db) as index:
        result = index.sync(
            chain,
            addresses,
            factory=factory,
            from_block=from_block,
            to_block=to_block,
            confirmations=confirmations,
        )
        total = index.count(chain.chain_id)
    data = {**result.to_dict(), "db": str(index.path), "indexed_events": total}
    if as_json or _obj(ctx).json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        rate = result.events / result.seconds if result.seconds else 0
        click.echo(
            f"synced blocks {result.from_block}..{result.to_block}: {result.events} new events "
            f"in {result.seconds:.2f}s ({rate:,.0f}/s), {result.reorgs} reorg(s) rolled back, "
            f"{total} events in {index.path}"
        )


@audit.command("trail")
@_report_options
@click.option("--agent", required=True, help="Agent address or key name.")
@click.pass_context
def trail_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
    agent: str,
) -> None:
    """An agent's full trail: added with which limits by which request and owners, payments,
    escalations and decisions, pauses."""
    from agentwallet.audit.reports import trail

    rows = _report(ctx, vault, db, chain_id, trail, str(_agent_address(agent)))
    _out(
        ctx,
        rows,
        as_csv,
        as_json,
        None if (as_csv or as_json) else ["block", "time", "event", "what", "approved_by"],
    )


@audit.command("spend")
@_report_options
@click.option("--agent", default=None, help="Only this agent (address or key name).")
@click.option("--token", default=None, help="Only this token address (ETH = 0x0…0).")
@click.pass_context
def spend_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
    agent: str | None,
    token: str | None,
) -> None:
    """Executed payments per agent, token and UTC day (direct vs via request)."""
    from agentwallet.audit.reports import spend_report

    if token and token.upper() == "ETH":
        token = ETH
    rows = _report(ctx, vault, db, chain_id, spend_report, _agent_address(agent), token)
    _out(
        ctx,
        rows,
        as_csv,
        as_json,
        None
        if (as_csv or as_json)
        else ["agent", "symbol", "day", "payments", "direct", "via_request", "total"],
    )


@audit.command("requests")
@_report_options
@click.option(
    "--status",
    type=click.Choice(["open", "expired", "pending", "executed", "rejected", "cancelled", "all"]),
    default="open",
    show_default=True,
)
@click.pass_context
def requests_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
    status: str,
) -> None:
    """Requests by status (open = pending and not expired, as of the last indexed block)."""
    from agentwallet.audit.reports import requests_report

    rows = _report(ctx, vault, db, chain_id, requests_report, status)
    _out(
        ctx,
        rows,
        as_csv,
        as_json,
        None
        if (as_csv or as_json)
        else [
            "request_id",
            "kind",
            "status",
            "agent",
            "action",
            "amount",
            "reasons",
            "approvals",
            "expires",
        ],
    )


@audit.command("owners")
@_report_options
@click.pass_context
def owners_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Decisions per owner: proposals, approvals, rejections, executions."""
    from agentwallet.audit.reports import owners_report

    rows = _report(ctx, vault, db, chain_id, owners_report)
    _out(ctx, rows, as_csv, as_json)


@audit.command("summary")
@_report_options
@click.pass_context
def summary_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """The vault as its events tell it: owners, threshold, agents and limits, totals."""
    from agentwallet.audit.reports import summary_report

    data = _report(ctx, vault, db, chain_id, summary_report)
    if as_json or as_csv or _obj(ctx).json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True)
        click.echo(f"{key}: {value}")


@audit.command("reconcile")
@_report_options
@click.pass_context
def reconcile_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Per token: balance (at the last synced block) vs deposits - payments from events.
    Exit code 2 when a difference is found."""
    from agentwallet.audit.reconcile import reconcile

    chain = _connect(ctx)
    vault = _vault_address(ctx, chain, vault)
    with _open(db) as index:
        rows = reconcile(index, chain, vault)
    _out(
        ctx,
        rows,
        as_csv,
        as_json,
        None
        if (as_csv or as_json)
        else ["symbol", "deposits", "payments", "expected", "actual", "difference", "note"],
    )
    if any(r.difference_base_units for r in rows):
        sys.exit(2)


@audit.command("what-if")
@_report_options
@click.option("--agent", required=True, help="Agent address or key name.")
@click.option(
    "--limit",
    "limits",
    multiple=True,
    required=True,
    metavar="TOKEN:MAX:ALLOWANCE:PERIOD",
    help="Proposed limits in token units, e.g. ETH:0.5:2:1d (repeat per token; TOKEN = "
    "ETH or an address). Tokens not given are out of scope.",
)
@click.option(
    "--allowlist",
    "allow",
    multiple=True,
    help="Allowed recipient (repeat); given at least once, the allowlist is on.",
)
@click.option("--valid-after", type=int, default=0, help="Unix time; earlier payments refused.")
@click.option("--valid-until", type=int, default=0, help="Unix time; later payments refused.")
@click.pass_context
def whatif_cmd(
    ctx: click.Context,
    vault: str,
    db: Path | None,
    chain_id: int | None,
    as_json: bool,
    as_csv: bool,
    agent: str,
    limits: tuple[str, ...],
    allow: tuple[str, ...],
    valid_after: int,
    valid_until: int,
) -> None:
    """Replay an agent's past payments against proposed limits: which would have run,
    escalated (why) or been refused."""
    from agentwallet.audit.whatif import Limits, whatif

    vault = _vault_address(ctx, None, vault)
    agent = str(_agent_address(agent))
    with _open(db) as index:
        cid = _chain_id(ctx, index, vault, chain_id)
        proposed: dict[str, Limits] = {}
        for spec in limits:
            parts = spec.split(":")
            if len(parts) != 4:
                raise WhatIfError(f"--limit {spec!r}: expected TOKEN:MAX:ALLOWANCE:PERIOD")
            token = ETH if parts[0].upper() == "ETH" else parts[0]
            decimals = index.token(cid, token).decimals
            proposed[token] = Limits(
                parse_amount(parts[1], decimals or 0),
                parse_amount(parts[2], decimals or 0),
                parse_duration(parts[3]),
            )
        rows = whatif(
            index,
            cid,
            vault,
            agent,
            proposed,
            allowlist=set(allow) if allow else None,
            valid_after=valid_after,
            valid_until=valid_until,
        )
    _out(
        ctx,
        rows,
        as_csv,
        as_json,
        None
        if (as_csv or as_json)
        else ["block", "time", "amount", "to", "actual", "proposed", "reasons"],
    )
    if not (as_json or as_csv or _obj(ctx).json):
        changed = sum(r.changed for r in rows)
        click.echo(f"{len(rows)} payments replayed, {changed} with a different outcome")


@click.command("watch")
@click.option("--vault", "vaults", multiple=True, required=True, help="Vault address (repeat).")
@DB_OPTION
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="Seconds between polls."
)
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option("--max-blocks", type=int, default=None, help="Exit after syncing this many blocks.")
@click.option("--webhook", default=None, metavar="URL", help="POST each alert as JSON here.")
@click.option(
    "--as",
    "as_key",
    default=None,
    metavar="OWNER_KEY",
    help="Owner key for --auto-pause (or the global --as).",
)
@click.option(
    "--auto-pause",
    is_flag=True,
    help="Pause agents behind spend_spike/escalation_burst alerts (needs --as).",
)
@click.option(
    "--expiry-window",
    default="1h",
    show_default=True,
    help="Alert when a pending request expires within this.",
)
@click.option("--spike-factor", type=Decimal, default=Decimal(3), show_default=True)
@click.option(
    "--spike-min",
    type=Decimal,
    default=Decimal(1),
    show_default=True,
    help="Minimum last-hour spend (token units) for a spike alert.",
)
@click.option("--burst-count", type=int, default=3, show_default=True)
@click.option("--burst-window", default="1h", show_default=True)
@click.option("--confirmations", type=int, default=0, show_default=True)
@click.pass_context
@report_errors
def watch(
    ctx: click.Context,
    vaults: tuple[str, ...],
    db: Path | None,
    interval: float,
    once: bool,
    max_blocks: int | None,
    webhook: str | None,
    as_key: str | None,
    auto_pause: bool,
    expiry_window: str,
    spike_factor: Decimal,
    spike_min: Decimal,
    burst_count: int,
    burst_window: str,
    confirmations: int,
) -> None:
    """Watch vaults for new blocks and print (or POST) alerts: requests waiting or expiring,
    spend spikes, new recipients, escalation bursts."""
    from agentwallet.audit.watch import Alert, WatchConfig, Watcher, post_webhook, watch_loop

    obj = _obj(ctx)
    chain = _connect(ctx)
    addresses = [_vault_address(ctx, chain, v) for v in vaults]
    pauser = None
    if auto_pause:
        key = as_key or obj.signer
        if not key:
            raise ConfigurationError("--auto-pause needs an owner key: pass --as OWNER_KEY")
        try:
            from agentwallet.keys import KeyStore
        except ImportError:
            raise ConfigurationError(
                "--auto-pause needs agentwallet.keys (the key store), which is not installed"
            ) from None
        pauser = KeyStore().load(key)
    config = WatchConfig(
        expiry_window=parse_duration(expiry_window),
        spike_factor=spike_factor,
        spike_min=spike_min,
        burst_count=burst_count,
        burst_window=parse_duration(burst_window),
        confirmations=confirmations,
    )
    as_json = obj.json

    def emit(alert: Alert) -> None:
        if webhook:
            post_webhook(webhook, alert)
        if as_json or webhook:
            click.echo(json.dumps(alert.to_dict(), sort_keys=True, default=str))
        else:
            click.echo(f"[{alert.kind}] {alert.message}")

    with _open(db) as index:
        watcher = Watcher(index, chain, addresses, config, pauser=pauser)
        try:
            watch_loop(watcher, emit, interval=interval, once=once, max_blocks=max_blocks)
        except KeyboardInterrupt:
            pass
