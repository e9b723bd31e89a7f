"""Delegation commands in the ``agent`` group: delegate, sub-limits, tree, recipient-budget
(and the helpers :mod:`agentwallet.cli.scoped_calls` shares: allow-call, revoke-call, call).

Who signs decides the path: an owner proposes what adds risk (a governance request other
owners approve) and acts alone on what reduces it; an agent acts directly on its own sub-agents
(and, as an ancestor, on anything below it). Every signing command shows a table of what is
signed and asks first (``--yes`` skips the question; without a terminal it is required).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from agentwallet._text import kv_table, span, table
from agentwallet.cli._common import (
    CliContext,
    confirm_signature,
    label,
    names_by_address,
    pass_app,
    vault_option,
    yes_option,
)
from agentwallet.cli._types import AMOUNT, DURATION, KEY_OR_ADDRESS, Amount, TokenAmount
from agentwallet.errors import AgentWalletError, AmountError
from agentwallet.protocol.constants import ZERO_ADDRESS
from agentwallet.protocol.models import ETH_TOKEN
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.keys import Signer
    from agentwallet.protocol.delegation import DelegationNode
    from agentwallet.protocol.models import RequestRef, TokenInfo, TxResult
    from agentwallet.vault import Vault

ETH_AMOUNT = Amount(ETH_TOKEN)

__all__ = ["delegate", "recipient_budget", "sub_limits", "tree"]


# ------------------------------------------------------------------------------------ helpers


def as_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--as NAME`` after the command too (same as the global option)."""
    decorated: Callable[..., Any] = click.option(
        "--as", "as_name", default=None, metavar="NAME", help="Sign as this named key."
    )(f)
    return decorated


def signer_for(app: CliContext, as_name: str | None, role: str) -> Signer:
    if as_name:
        app.signer = as_name
    return app.unlock(role)


def is_owner(vault: Vault, address: str) -> bool:
    return address in vault.owners()


def confirm(app: CliContext, yes: bool, what: str, rows: list[tuple[str, Any]]) -> None:
    app.say(f"you are about to sign {what}:\n" + kv_table(rows))
    confirm_signature(app, yes, f"sign {what}?")


def limits_text(info: TokenInfo, max_per: int, allowance: int, period: int) -> str:
    return (
        f"{format_amount(max_per, info.decimals)} {info.symbol} per payment, "
        f"{format_amount(allowance, info.decimals)} per {span(period)}"
    )


def emit_done(app: CliContext, data: dict[str, Any], sent: list[tuple[str, Any]]) -> None:
    """Report transactions sent (TxResult) and proposals made (RequestRef)."""
    records: list[dict[str, Any]] = []
    rows: list[tuple[Any, ...]] = []
    for action, result in sent:
        if hasattr(result, "request_id"):
            ref: RequestRef = result
            status = "executed" if ref.executed else "proposed"
            record = {
                "action": action,
                "status": status,
                "request_id": ref.request_id,
                "tx_hash": ref.tx.tx_hash,
            }
        else:
            tx: TxResult = result
            record = {"action": action, "status": "done", "request_id": None, "tx_hash": tx.tx_hash}
        records.append(record)
        rows.append((action, record["status"], record["request_id"] or "-", record["tx_hash"]))
    if app.json:
        app.emit({**data, "actions": records})
        return
    click.echo(table(["action", "status", "request", "tx"], rows))
    pending = [str(r["request_id"]) for r in records if r["status"] == "proposed"]
    if pending:
        click.echo(
            "\nother owners co-sign with: "
            + "; ".join(f"agentwallet --as OWNER approve {i}" for i in pending)
        )


def _valid_until(text: str | None, now: int) -> int | None:
    """``--valid-until``: a date (YYYY-MM-DD, UTC) or a duration from now; None: the parent's."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return now + DURATION.parse(text)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def selector_text(sig: str) -> bytes:
    from agentwallet.protocol.delegation import selector_of

    return selector_of(sig)


# ------------------------------------------------------------------------------------ delegate


@click.command("delegate")
@click.argument("child", metavar="CHILD", type=KEY_OR_ADDRESS)
@as_option
@click.option(
    "--parent",
    type=KEY_OR_ADDRESS,
    default=None,
    help="The parent agent (default: the signer; an owner signing must name it).",
)
@click.option("--eth-limit", type=ETH_AMOUNT, help="Largest single ETH payment.")
@click.option("--eth-allowance", type=ETH_AMOUNT, help="ETH budget per period.")
@click.option("--token", default=None, metavar="SYMBOL", help="An ERC-20 the sub-agent may spend.")
@click.option("--token-limit", type=AMOUNT, help="Largest single token payment.")
@click.option("--token-allowance", type=AMOUNT, help="Token budget per period.")
@click.option("--period", type=DURATION, help="Budget period, e.g. 1d (refills no faster).")
@click.option("--valid-until", default=None, help="Date or duration (default: the parent's).")
@click.option(
    "--allow",
    "recipients",
    multiple=True,
    type=KEY_OR_ADDRESS,
    metavar="RECIPIENT",
    help="Allowlist a recipient (repeat); with any, others escalate.",
)
@yes_option
@vault_option
@pass_app
def delegate(
    app: CliContext,
    child: str,
    as_name: str | None,
    parent: str | None,
    eth_limit: int | None,
    eth_allowance: int | None,
    token: str | None,
    token_limit: TokenAmount | None,
    token_allowance: TokenAmount | None,
    period: int | None,
    valid_until: str | None,
    recipients: tuple[str, ...],
    yes: bool,
    vault_name: str,
) -> None:
    """Add CHILD as a sub-agent of the signing agent, with limits no wider than its own.

    Every payment of CHILD also spends its parent's budget (and every ancestor's). An owner
    signing proposes the same through governance (--parent required).
    """
    from agentwallet.delegation import AgentDelegation, OwnerDelegation

    vault = app.vault(vault_name)
    limits: list[tuple[TokenInfo, int, int]] = []
    if (eth_limit is None) != (eth_allowance is None):
        raise AmountError("give both --eth-limit and --eth-allowance, or neither")
    if token is not None and (token_limit is None or token_allowance is None):
        raise AmountError(f"--token {token} needs --token-limit and --token-allowance")
    if eth_limit is not None and eth_allowance is not None:
        limits.append((ETH_TOKEN, eth_limit, eth_allowance))
    if token is not None and token_limit is not None and token_allowance is not None:
        info = vault.token(token)
        amounts = (
            token_limit.base_units(info, positive=False),
            token_allowance.base_units(info, positive=False),
        )
        limits.append((info, *amounts))
    if limits and period is None:
        raise AmountError("limits need a --period, e.g. --period 1d")
    until = _valid_until(valid_until, app.chain.timestamp())
    signer = signer_for(app, as_name, "the parent agent (or an owner)")
    owner = is_owner(vault, signer.address)
    if owner and parent is None:
        raise AgentWalletError("an owner delegating names the parent agent: pass --parent AGENT")
    parent = parent or signer.address
    names = names_by_address()
    rows: list[tuple[str, Any]] = [
        ("vault", vault.address),
        ("signer", f"{label(signer.address, names)} ({'owner' if owner else 'parent agent'})"),
        ("parent", label(parent, names)),
        ("sub-agent", label(child, names)),
        ("valid until", until if until is not None else "the parent's end"),
    ]
    rows += [(f"limits {i.symbol}", limits_text(i, m, a, period or 0)) for i, m, a in limits]
    rows += [("allow", label(r, names)) for r in recipients]
    confirm(app, yes, "a delegation", rows)
    sent: list[tuple[str, Any]] = []
    if owner:
        side = OwnerDelegation(vault)
        sent.append(
            (
                "add sub-agent",
                side.propose_add_sub_agent(
                    signer, parent, child, valid_until=until, allowlist=bool(recipients)
                ),
            )
        )
        for info, m, a in limits:
            sent.append(
                (
                    f"limits {info.symbol}",
                    side.propose_set_sub_agent_limits(
                        signer, child, info.address, m, a, period or 0, parent=parent
                    ),
                )
            )
        for r in recipients:
            sent.append((f"allow {r}", side.propose_allow_sub_agent_recipient(signer, child, r)))
    else:
        agent_side = AgentDelegation(vault, signer)
        sent.append(
            (
                "add sub-agent",
                agent_side.add_sub_agent(child, valid_until=until, allowlist=bool(recipients)),
            )
        )
        for info, m, a in limits:
            sent.append(
                (
                    f"limits {info.symbol}",
                    agent_side.set_sub_agent_limits(child, info.address, m, a, period or 0),
                )
            )
        for r in recipients:
            sent.append((f"allow {r}", agent_side.allow_sub_agent_recipient(child, r)))
    emit_done(app, {"vault": vault.address, "parent": parent, "child": child}, sent)


@click.command("sub-limits")
@click.argument("child", metavar="CHILD", type=KEY_OR_ADDRESS)
@as_option
@click.option("--token", default="ETH", show_default=True, metavar="SYMBOL")
@click.option("--max", "max_per", required=True, type=AMOUNT, help="Largest single payment.")
@click.option("--allowance", required=True, type=AMOUNT, help="Budget per period.")
@click.option("--period", required=True, type=DURATION, help="Period, e.g. 1d.")
@yes_option
@vault_option
@pass_app
def sub_limits(
    app: CliContext,
    child: str,
    as_name: str | None,
    token: str,
    max_per: TokenAmount,
    allowance: TokenAmount,
    period: int,
    yes: bool,
    vault_name: str,
) -> None:
    """Set a sub-agent's limits in a token (the parent at once; an owner proposes)."""
    from agentwallet.delegation import AgentDelegation, OwnerDelegation

    vault = app.vault(vault_name)
    info = vault.token(token)
    m, a = (max_per.base_units(info, positive=False), allowance.base_units(info, positive=False))
    signer = signer_for(app, as_name, "the parent agent (or an owner)")
    owner = is_owner(vault, signer.address)
    names = names_by_address()
    confirm(
        app,
        yes,
        "sub-agent limits",
        [
            ("vault", vault.address),
            ("signer", label(signer.address, names)),
            ("sub-agent", label(child, names)),
            ("limits", limits_text(info, m, a, period)),
        ],
    )
    result: Any
    if owner:
        result = OwnerDelegation(vault).propose_set_sub_agent_limits(
            signer, child, info.address, m, a, period
        )
    else:
        result = AgentDelegation(vault, signer).set_sub_agent_limits(
            child, info.address, m, a, period
        )
    emit_done(app, {"vault": vault.address, "child": child}, [(f"limits {info.symbol}", result)])


# ------------------------------------------------------------------------------------ tree


def _budget(
    decimals: int, max_per: int, allowance: int, period: int, available: int
) -> dict[str, Any]:
    """Limits as JSON: amounts in token units, the period in seconds."""
    amounts = [format_amount(v, decimals) for v in (max_per, allowance, available)]
    return {"max": amounts[0], "allowance": amounts[1], "period": period, "available": amounts[2]}


def _node_record(vault: Vault, node: DelegationNode) -> dict[str, Any]:
    policies = []
    for address, p in node.agent.policies.items():
        info = vault.token(address)
        limits = (p.max_per_payment, p.allowance, p.period, p.available)
        policies.append({"token": info.symbol, **_budget(info.decimals, *limits)})
    parent = node.agent.parent
    return {
        "agent": node.agent.address,
        "status": node.agent.status,
        "depth": node.depth,
        "parent": parent if parent != ZERO_ADDRESS else None,
        "policies": policies,
        "sub_agents": [_node_record(vault, c) for c in node.children],
    }


def _row(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["max"], record["allowance"], span(record["period"]), record["available"])


@click.command("tree")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS, required=False)
@click.option(
    "--request",
    "request_id",
    type=int,
    default=None,
    help="Show the delegation chain of this request's agent instead.",
)
@vault_option
@pass_app
def tree(app: CliContext, address: str | None, request_id: int | None, vault_name: str) -> None:
    """Show AGENT's chain of delegation (up to the owners' agent), its sub-agents below, its
    call grants and its per-recipient budgets, with what is available now."""
    from agentwallet.delegation import (
        call_grants,
        delegation_chain,
        delegation_tree,
        recipient_budgets,
    )

    vault = app.vault(vault_name)
    if request_id is not None:
        address = vault.request(request_id).agent
    if address is None:
        raise AgentWalletError("name an AGENT, or pass --request ID")
    chain = delegation_chain(vault, address)
    below = delegation_tree(vault, address)
    grants = [
        {
            "target": g.target,
            "selector": g.selector,
            **_budget(18, g.max_value, g.value_allowance, g.period, g.available),
        }
        for g in call_grants(vault, address)
    ]
    budgets = [
        {
            "token": b.token.symbol,
            "recipient": None if b.recipient == ZERO_ADDRESS else b.recipient,
            **_budget(b.token.decimals, b.max_per_payment, b.allowance, b.period, b.available),
        }
        for b in recipient_budgets(vault, address)
    ]
    tree_record = _node_record(vault, below)
    data = {
        "vault": vault.address,
        "agent": address,
        "request_id": request_id,
        "chain": [a.address for a in chain],
        "tree": tree_record,
        "call_grants": grants,
        "recipient_budgets": budgets,
    }
    if app.json:
        app.emit(data)
        return
    names = names_by_address()
    lines = ["chain of delegation (agent first, the owners' agent last):"]
    lines += [f"  {'  ' * i}{label(a.address, names)} [{a.status}]" for i, a in enumerate(chain)]
    lines.append("sub-agents:" if below.children else "sub-agents: none")
    for node in below.walk()[1:]:
        limits = "; ".join(
            f"{p['token']} {p['available']} of {p['allowance']} left"
            for p in _node_record(vault, node)["policies"]
        )
        indent = "  " * (node.depth - below.depth)
        address_text = label(node.agent.address, names)
        lines.append(f"  {indent}{address_text} [{node.agent.status}] {limits or 'no limits'}")
    click.echo("\n".join(lines))
    heads = ["per payment", "allowance", "period", "available"]
    if grants:
        rows = [(label(g["target"], names), g["selector"], *_row(g)) for g in grants]
        click.echo("\ncall grants (ETH value):\n" + table(["target", "selector", *heads], rows))
    if budgets:
        rows = [
            (b["token"], label(b["recipient"], names) if b["recipient"] else "default", *_row(b))
            for b in budgets
        ]
        click.echo("\nper-recipient budgets:\n" + table(["token", "recipient", *heads], rows))


# ------------------------------------------------------------------------------------ budgets


@click.command("recipient-budget")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@click.argument("recipient", metavar="RECIPIENT", type=KEY_OR_ADDRESS, required=False)
@as_option
@click.option(
    "--default", "default", is_flag=True, help="The budget for every recipient without its own."
)
@click.option("--token", default="ETH", show_default=True, metavar="SYMBOL")
@click.option("--max", "max_per", type=AMOUNT, help="Largest single payment to the recipient.")
@click.option("--allowance", type=AMOUNT, help="Budget per period to the recipient.")
@click.option("--period", type=DURATION, default="1d", show_default=True)
@click.option("--raise", "raise_", is_flag=True, help="Propose any value (governance).")
@click.option("--remove", is_flag=True, help="Propose removing the budget (governance).")
@yes_option
@vault_option
@pass_app
def recipient_budget(
    app: CliContext,
    address: str,
    recipient: str | None,
    as_name: str | None,
    default: bool,
    token: str,
    max_per: TokenAmount | None,
    allowance: TokenAmount | None,
    period: int,
    raise_: bool,
    remove: bool,
    yes: bool,
    vault_name: str,
) -> None:
    """Add or tighten AGENT's budget for payments to RECIPIENT (or --default) at once (one
    owner, or an agent above AGENT); --raise or --remove proposes it to the owners."""
    from agentwallet.delegation import AgentDelegation, OwnerDelegation

    if (recipient is None) == (not default):
        raise AgentWalletError("name a RECIPIENT or pass --default (not both)")
    if not remove and (max_per is None or allowance is None):
        raise AmountError("a recipient budget needs --max and --allowance")
    vault = app.vault(vault_name)
    info = vault.token(token)
    m = max_per.base_units(info, positive=False) if max_per else 0
    a = allowance.base_units(info, positive=False) if allowance else 0
    signer = signer_for(app, as_name, "an owner (or an agent above AGENT)")
    names = names_by_address()
    mode = "remove" if remove else "raise" if raise_ else "tighten"
    confirm(
        app,
        yes,
        f"a recipient budget ({mode})",
        [
            ("vault", vault.address),
            ("signer", label(signer.address, names)),
            ("agent", label(address, names)),
            ("recipient", label(recipient, names) if recipient else "default (every other)"),
            ("budget", "removed" if remove else limits_text(info, m, a, period)),
        ],
    )
    owners = OwnerDelegation(vault)
    result: Any
    if remove:
        result = owners.propose_remove_recipient_budget(signer, address, info.address, recipient)
    elif raise_:
        result = owners.propose_set_recipient_budget(
            signer, address, info.address, recipient, m, a, period
        )
    elif is_owner(vault, signer.address):
        result = owners.limit_recipient(signer, address, info.address, recipient, m, a, period)
    else:
        result = AgentDelegation(vault, signer).limit_recipient(
            address, info.address, recipient, m, a, period
        )
    data = {"vault": vault.address, "agent": address, "recipient": recipient, "mode": mode}
    emit_done(app, data, [(f"{mode} {info.symbol} budget", result)])
