"""``agentwallet audit ...`` and ``agentwallet watch``: who authorised what, from the chain.

Reports read the local index (``--db``, default ``$AGENTWALLET_HOME/audit.sqlite``); run
``agentwallet audit sync --vault ADDR`` first. Register in the main group with
``main.add_command(audit.audit)`` and ``main.add_command(audit.watch)``.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from agentwallet.audit.errors import AuditIndexError, WhatIfError
from agentwallet.audit.index import AuditIndex, default_db_path
from agentwallet.cli._common import (
    EXIT_DIFFERENCE,
    CliContext,
    ErrorReportingGroup,
    pass_app,
    report_errors,
)
from agentwallet.cli._types import DURATION
from agentwallet.errors import ConfigurationError
from agentwallet.protocol.constants import ETH
from agentwallet.units import parse_amount

DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Audit index file (default: $AGENTWALLET_HOME/audit.sqlite).",
)


def _vault_address(app: CliContext, value: str) -> str:
    """An address as given, or a vault name from the deployments record."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return value
    return str(app.deployments.vault_address(value))


def _agent_address(value: str | None) -> str | None:
    """An agent given as an address, or as the name of a key in the local keystore."""
    if value is None or re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return value
    from agentwallet.keys import KeyStore

    return str(KeyStore().info(value).address)


def _key_names() -> dict[str, str]:
    """Address -> key name for the keys in the local keystore (names only: no key is
    decrypted); empty when there is no keystore."""
    from agentwallet.keys import KeyStore

    try:
        return {str(k.address): k.name for k in KeyStore().list()}
    except Exception:  # noqa: BLE001 - names are a convenience: a missing/odd keystore has none
        return {}


def _open(db: Path | None) -> AuditIndex:
    return AuditIndex(db or default_db_path())


def _chain_id(app: CliContext, index: AuditIndex, vault: str, chain_id: int | None) -> int:
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
    return int(app.chain.chain_id)


@dataclass(frozen=True)
class Report:
    """What a report command works on: the open index, the chain id and the vault."""

    app: CliContext
    index: AuditIndex
    chain_id: int
    vault: str


@dataclass(frozen=True)
class Output:
    """Rows to render, a line to print after a table, and the exit code."""

    rows: Any
    footer: str = ""
    exit_code: int = 0
    columns: list[str] | None = None  #: table columns, when they depend on the options


def _render(app: CliContext, output: Output, fmt: str, columns: list[str] | None) -> None:
    from agentwallet.audit.format import render

    if isinstance(output.rows, dict):  # a summary: key: value lines, or one JSON document
        if fmt == "table":
            for key, value in output.rows.items():
                shown = (
                    json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
                )
                click.echo(f"{key}: {shown}")
        else:
            click.echo(json.dumps(output.rows, indent=2, sort_keys=True))
        return
    click.echo(render(output.rows, fmt, columns if fmt == "table" else None))
    if output.footer and fmt == "table":
        click.echo(output.footer)


@click.group("audit", cls=ErrorReportingGroup)
def audit() -> None:
    """Who authorised what: index vault events and report from the index."""


def report_command(
    name: str, columns: list[str] | None = None
) -> Callable[[Callable[..., Any]], click.Command]:
    """An ``audit NAME`` report: the shared options (--vault by address or name, --db,
    --chain-id, --json, --csv), the index opened, and the rows the function returns (or an
    :class:`Output`) rendered as a table (``columns``), JSON or CSV."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def command(
            app: CliContext,
            vault: str,
            db: Path | None,
            chain_id: int | None,
            as_json: bool,
            as_csv: bool,
            **options: Any,
        ) -> None:
            vault = _vault_address(app, vault)
            with _open(db) as index:
                report = Report(app, index, _chain_id(app, index, vault, chain_id), vault)
                result = fn(report, **options)
            output = result if isinstance(result, Output) else Output(result)
            fmt = "csv" if as_csv else "json" if (as_json or app.json) else "table"
            _render(app, output, fmt, output.columns or columns)
            if output.exit_code:
                sys.exit(output.exit_code)

        options = [
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
        decorated: Callable[..., Any] = pass_app(command)
        for option in reversed(options):
            decorated = option(decorated)
        return audit.command(name)(decorated)

    return decorate


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
@click.option(
    "--rebuild",
    is_flag=True,
    help="Move the index file aside (kept as NAME.damaged-TIME) and rebuild it from the chain: "
    "the fix for a damaged index or one from another schema version.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@pass_app
def sync_cmd(
    app: CliContext,
    vaults: tuple[str, ...],
    factory: str | None,
    from_block: int,
    to_block: int | None,
    confirmations: int,
    db: Path | None,
    rebuild: bool,
    as_json: bool,
) -> None:
    """Read new vault events from the chain into the index (incremental, reorg-safe)."""
    addresses = [_vault_address(app, v) for v in vaults]
    moved = None
    if rebuild:
        from agentwallet.audit.damage import move_aside
        from agentwallet.audit.errors import AuditIndexDamagedError
        from agentwallet.audit.vaults import check_vaults

        path = db or default_db_path()
        if path.exists():
            try:  # a foreign file (another app's database) is refused, never moved
                AuditIndex(path).close()
            except AuditIndexDamagedError:
                pass
            check_vaults(app.chain, addresses)  # the node and vaults answer: then move it
            moved = move_aside(path)
    with _open(db) as index:
        result = index.sync(
            app.chain,
            addresses,
            factory=factory,
            from_block=from_block,
            to_block=to_block,
            confirmations=confirmations,
        )
        total = index.count(app.chain.chain_id)
    data = {**result.to_dict(), "db": str(index.path), "indexed_events": total}
    if moved is not None:
        data["moved_aside"] = str(moved)
    if as_json or app.json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        if moved is not None:
            click.echo(f"moved the old index to {moved}; rebuilt {index.path} from the chain")
        rate = result.events / result.seconds if result.seconds else 0
        click.echo(
            f"synced blocks {result.from_block}..{result.to_block}: {result.events} new events "
            f"in {result.seconds:.2f}s ({rate:,.0f}/s), {result.reorgs} reorg(s) rolled back, "
            f"{total} events in {index.path}"
        )


TRAIL_COLUMNS = ["block", "time", "event", "agent_name", "what", "ref", "approvals"]
PAYMENT_COLUMNS = [
    "block",
    "time",
    "event",
    "agent",
    "agent_name",
    "amount_formatted",
    "symbol",
    "recipient",
    "ref",
    "via",
    "approvals",
]


@report_command("trail", TRAIL_COLUMNS)
@click.option("--agent", required=True, help="Agent address or key name.")
@click.option("--subtree", is_flag=True, help="Also what the agent's sub-agents (any depth) did.")
def trail_cmd(report: Report, agent: str, subtree: bool) -> Any:
    """An agent's full trail, across its key rotations: added with which limits by which
    request and owners, payments and calls with their refs, escalations and decisions,
    delegations, pauses. JSON/CSV rows carry block, tx, agent, token, recipient, amount (base
    and token units), ref, request id and approvals."""
    from agentwallet.audit.trail import trail

    return trail(
        report.index,
        report.chain_id,
        report.vault,
        str(_agent_address(agent)),
        subtree=subtree,
        names=_key_names(),
    )


@report_command("spend")
@click.option("--agent", default=None, help="Only this agent (address or key name).")
@click.option("--token", default=None, help="Only this token address (ETH = 0x0…0).")
@click.option("--subtree", is_flag=True, help="With --agent: also its sub-agents' spending.")
@click.option(
    "--by",
    type=click.Choice(["payment", "day"]),
    default="payment",
    show_default=True,
    help="One row per payment (with ref, request id, approvals) or totals per agent, token, day.",
)
def spend_cmd(report: Report, agent: str | None, token: str | None, subtree: bool, by: str) -> Any:
    """What left the vault: payments, scoped calls, relay fees; direct vs via request."""
    from agentwallet.audit.spend import spend_payments, spend_report

    if token and token.upper() == "ETH":
        token = ETH
    who = _agent_address(agent)
    if by == "day":
        rows: Any = spend_report(
            report.index, report.chain_id, report.vault, who, token, subtree=subtree
        )
        columns = ["agent", "symbol", "day", "payments", "direct", "via_request", "total"]
    else:
        rows = spend_payments(
            report.index,
            report.chain_id,
            report.vault,
            who,
            token,
            subtree=subtree,
            names=_key_names(),
        )
        columns = PAYMENT_COLUMNS
    return Output(rows, columns=columns)


@report_command(
    "requests",
    [
        "request_id",
        "kind",
        "status",
        "agent",
        "action",
        "amount",
        "ref",
        "reasons",
        "approvals",
        "expires",
    ],
)
@click.option(
    "--status",
    type=click.Choice(
        ["open", "expired", "pending", "executed", "rejected", "cancelled", "agent_revoked", "all"]
    ),
    default="open",
    show_default=True,
)
def requests_cmd(report: Report, status: str) -> Any:
    """Payment, call and governance requests by status (open = pending and not expired, as of
    the last indexed block)."""
    from agentwallet.audit.requests import requests_report

    return requests_report(report.index, report.chain_id, report.vault, status)


@report_command("owners")
def owners_cmd(report: Report) -> Any:
    """Decisions per owner: proposals, approvals, rejections, executions."""
    from agentwallet.audit.reports import owners_report

    return owners_report(report.index, report.chain_id, report.vault)


@report_command("summary")
def summary_cmd(report: Report) -> Any:
    """The vault as its events tell it: owners, threshold, agents and limits, totals."""
    from agentwallet.audit.reports import summary_report

    return summary_report(report.index, report.chain_id, report.vault)


@report_command(
    "reconcile", ["symbol", "deposits", "payments", "expected", "actual", "difference", "note"]
)
def reconcile_cmd(report: Report) -> Output:
    """Per token: balance (at the last synced block) vs deposits - payments from events.
    Exit code 2 when a difference is found."""
    from agentwallet.audit.reconcile import reconcile

    rows = reconcile(report.index, report.app.chain, report.vault)
    differs = any(r.difference_base_units for r in rows)
    return Output(rows, exit_code=EXIT_DIFFERENCE if differs else 0)


@report_command("what-if", ["block", "time", "amount", "to", "actual", "proposed", "reasons"])
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
def whatif_cmd(
    report: Report,
    agent: str,
    limits: tuple[str, ...],
    allow: tuple[str, ...],
    valid_after: int,
    valid_until: int,
) -> Output:
    """Replay an agent's past payments against proposed limits: which would have run,
    escalated (why) or been refused."""
    from agentwallet.audit.whatif import Limits, whatif

    proposed: dict[str, Limits] = {}
    for spec in limits:
        parts = spec.split(":")
        if len(parts) != 4:
            raise WhatIfError(f"--limit {spec!r}: expected TOKEN:MAX:ALLOWANCE:PERIOD")
        token = ETH if parts[0].upper() == "ETH" else parts[0]
        decimals = report.index.token(report.chain_id, token).decimals or 0
        proposed[token] = Limits(
            parse_amount(parts[1], decimals),
            parse_amount(parts[2], decimals),
            DURATION.parse(parts[3]),
        )
    rows = whatif(
        report.index,
        report.chain_id,
        report.vault,
        str(_agent_address(agent)),
        proposed,
        allowlist=set(allow) if allow else None,
        valid_after=valid_after,
        valid_until=valid_until,
    )
    changed = sum(r.changed for r in rows)
    return Output(rows, f"{len(rows)} payments replayed, {changed} with a different outcome")


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
    type=DURATION,
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
@click.option("--burst-window", default="1h", show_default=True, type=DURATION)
@click.option("--confirmations", type=int, default=0, show_default=True)
@pass_app
@report_errors
def watch(
    app: CliContext,
    vaults: tuple[str, ...],
    db: Path | None,
    interval: float,
    once: bool,
    max_blocks: int | None,
    webhook: str | None,
    as_key: str | None,
    auto_pause: bool,
    expiry_window: int,
    spike_factor: Decimal,
    spike_min: Decimal,
    burst_count: int,
    burst_window: int,
    confirmations: int,
) -> None:
    """Watch vaults for new blocks and print (or POST) alerts: requests waiting or expiring,
    spend spikes, new recipients, escalation bursts."""
    from agentwallet.audit.watch import Alert, WatchConfig, Watcher, post_webhook, watch_loop
    from agentwallet.keys import KeyStore

    addresses = [_vault_address(app, v) for v in vaults]
    pauser = None
    if auto_pause:
        key = as_key or app.signer
        if not key:
            raise ConfigurationError("--auto-pause needs an owner key: pass --as OWNER_KEY")
        pauser = KeyStore().load(key)
    config = WatchConfig(
        expiry_window=expiry_window,
        spike_factor=spike_factor,
        spike_min=spike_min,
        burst_count=burst_count,
        burst_window=burst_window,
        confirmations=confirmations,
    )

    def emit(alert: Alert) -> None:
        if webhook:
            post_webhook(webhook, alert)
        if app.json or webhook:
            click.echo(json.dumps(alert.to_dict(), sort_keys=True, default=str))
        else:
            click.echo(f"[{alert.kind}] {alert.message}")

    with _open(db) as index:
        watcher = Watcher(index, app.chain, addresses, config, pauser=pauser)
        try:
            watch_loop(watcher, emit, interval=interval, once=once, max_blocks=max_blocks)
        except KeyboardInterrupt:
            pass
