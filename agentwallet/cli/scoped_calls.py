"""Scoped-call commands in the ``agent`` group: allow-call, revoke-call, call.

An owner proposes a grant (governance) and revokes alone; a parent grants its sub-agent a call
it holds itself; the agent calls through the vault (``agent call``). Each shows what is signed
and asks first (``--yes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from agentwallet._text import kv_table, span
from agentwallet.cli._common import (
    CliContext,
    label,
    names_by_address,
    pass_app,
    vault_option,
    yes_option,
)
from agentwallet.cli._types import AMOUNT, DURATION, KEY_OR_ADDRESS
from agentwallet.cli.delegation import (
    ETH_AMOUNT,
    as_option,
    confirm,
    emit_done,
    is_owner,
    selector_text,
    signer_for,
)
from agentwallet.errors import AgentWalletError, AmountError
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.protocol.models import TokenInfo
    from agentwallet.vault import Vault

__all__ = ["agent_call", "allow_call", "revoke_call"]


# ------------------------------------------------------------------------------------ calls


@click.command("allow-call")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@click.argument("target", metavar="TARGET", type=KEY_OR_ADDRESS)
@click.argument("signature", metavar="SIG_OR_SELECTOR")
@as_option
@click.option("--max-value", type=ETH_AMOUNT, default=0, help="Most ETH sent with one call.")
@click.option("--value-allowance", type=ETH_AMOUNT, default=0, help="ETH per period.")
@click.option("--period", type=DURATION, default="1d", show_default=True, help="Refill period.")
@yes_option
@vault_option
@pass_app
def allow_call(
    app: CliContext,
    address: str,
    target: str,
    signature: str,
    as_name: str | None,
    max_value: int,
    value_allowance: int,
    period: int,
    yes: bool,
    vault_name: str,
) -> None:
    """Grant AGENT calls of SIG_OR_SELECTOR (``buy(address,uint256)`` or 0x12345678) on TARGET.

    An owner proposes it (governance); a parent grants its sub-agent a call it holds itself.
    """
    from agentwallet.delegation import AgentDelegation, OwnerDelegation

    vault = app.vault(vault_name)
    selector = selector_text(signature)
    signer = signer_for(app, as_name, "an owner (or the agent's parent)")
    names = names_by_address()
    confirm(
        app,
        yes,
        "a call grant",
        [
            ("vault", vault.address),
            ("signer", label(signer.address, names)),
            ("agent", label(address, names)),
            ("target", target),
            ("function", f"{signature} (0x{selector.hex()})"),
            (
                "ETH value",
                f"{format_amount(max_value, 18)} per call, "
                f"{format_amount(value_allowance, 18)} per {span(period)}",
            ),
        ],
    )
    limits = (max_value, value_allowance, period)
    result: Any
    if is_owner(vault, signer.address):
        result = OwnerDelegation(vault).propose_grant_call(
            signer, address, target, selector, *limits
        )
    else:
        result = AgentDelegation(vault, signer).grant_sub_agent_call(
            address, target, selector, *limits
        )
    data = {
        "vault": vault.address,
        "agent": address,
        "target": target,
        "selector": "0x" + selector.hex(),
    }
    emit_done(app, data, [(f"grant 0x{selector.hex()} on {target}", result)])


@click.command("revoke-call")
@click.argument("address", metavar="AGENT", type=KEY_OR_ADDRESS)
@click.argument("target", metavar="TARGET", type=KEY_OR_ADDRESS)
@click.argument("signature", metavar="SIG_OR_SELECTOR")
@as_option
@yes_option
@vault_option
@pass_app
def revoke_call(
    app: CliContext,
    address: str,
    target: str,
    signature: str,
    as_name: str | None,
    yes: bool,
    vault_name: str,
) -> None:
    """Revoke AGENT's grant of SIG_OR_SELECTOR on TARGET at once (one owner, or an agent
    above AGENT)."""
    from agentwallet.delegation import AgentDelegation, OwnerDelegation

    vault = app.vault(vault_name)
    selector = selector_text(signature)
    signer = signer_for(app, as_name, "an owner (or an agent above AGENT)")
    names = names_by_address()
    confirm(
        app,
        yes,
        "a call revocation",
        [
            ("vault", vault.address),
            ("signer", label(signer.address, names)),
            ("agent", label(address, names)),
            ("target", target),
            ("function", f"{signature} (0x{selector.hex()})"),
        ],
    )
    result: Any
    if is_owner(vault, signer.address):
        result = OwnerDelegation(vault).revoke_call(signer, address, target, selector)
    else:
        result = AgentDelegation(vault, signer).revoke_call(address, target, selector)
    data = {
        "vault": vault.address,
        "agent": address,
        "target": target,
        "selector": "0x" + selector.hex(),
    }
    emit_done(app, data, [(f"revoke 0x{selector.hex()} on {target}", result)])


def _spend(vault: Vault, text: str | None) -> tuple[TokenInfo | None, int]:
    if not text:
        return None, 0
    symbol, sep, amount = text.partition(":")
    if not sep or not amount:
        raise AmountError(f"--spend {text!r}: write TOKEN:AMOUNT, e.g. tUSDC:12.5")
    info = vault.token(symbol)
    parsed = AMOUNT.parse(amount)
    return info, parsed if isinstance(parsed, int) else parsed.base_units(info, "--spend")


@click.command("call")
@click.argument("target", metavar="TARGET", type=KEY_OR_ADDRESS)
@click.argument("function", metavar="FUNCTION_SIG")
@click.argument("args", nargs=-1, metavar="ARGS...")
@as_option
@click.option(
    "--spend",
    default=None,
    metavar="TOKEN:AMOUNT",
    help="What the target may pull from the vault (e.g. tUSDC:12.5).",
)
@click.option("--value", type=ETH_AMOUNT, default=0, help="ETH sent with the call.")
@click.option("--ref", default=None, metavar="TEXT", help="Reference (order id) in the events.")
@yes_option
@vault_option
@pass_app
def agent_call(
    app: CliContext,
    target: str,
    function: str,
    args: tuple[str, ...],
    as_name: str | None,
    spend: str | None,
    value: int,
    ref: str | None,
    yes: bool,
    vault_name: str,
) -> None:
    """Call FUNCTION_SIG (``buy(address,uint256)``, or raw 0x calldata) on TARGET with ARGS,
    as the agent, through the vault. Inside its grants and limits the call runs now; outside
    them a call request waits for the owners (status "escalated")."""
    from agentwallet.delegation import AgentDelegation, encode_call

    vault = app.vault(vault_name)
    if function.startswith("0x"):
        if args:
            raise AgentWalletError("raw 0x calldata takes no ARGS")
        data = bytes.fromhex(function[2:])
    else:
        data = encode_call(function, args)
    info, amount = _spend(vault, spend)
    signer = signer_for(app, as_name, "the agent")
    side = AgentDelegation(vault, signer)
    spend_token = info.address if info else None
    check = side.check_call(target, data, value, spend_token, amount)
    names = names_by_address()
    confirm(
        app,
        yes,
        "a scoped call",
        [
            ("vault", vault.address),
            ("agent", label(signer.address, names)),
            ("target", target),
            ("call", f"{function.split('(')[0]}({', '.join(args)})" if args else function),
            ("ETH value", format_amount(value, 18)),
            ("may spend", f"{format_amount(amount, info.decimals)} {info.symbol}" if info else "-"),
            (
                "outcome",
                "runs now" if check.will_call else "escalates: " + ", ".join(check.reasons),
            ),
        ],
    )
    outcome = side.scoped_call(target, data, value, spend_token, amount, ref)
    record: dict[str, Any] = {
        "status": outcome.status,
        "tx_hash": outcome.tx_hash,
        "gas_used": outcome.gas_used,
        "agent": signer.address,
        "target": target,
        "selector": outcome.selector,
        "value": format_amount(value, 18),
        "ref": outcome.ref,
        "request_id": getattr(outcome, "request_id", None),
        "reasons": list(getattr(outcome, "reasons", ())),
        "spent": format_amount(getattr(outcome, "spent", 0), outcome.spend_token.decimals),
        "spend_token": outcome.spend_token.symbol,
    }
    if app.json:
        app.emit(record)
        return
    rows = [(k.replace("_", " "), v) for k, v in record.items() if v not in (None, [], "")]
    click.echo(kv_table(rows))
    if outcome.status == "escalated":
        click.echo(f"\nwaiting for owners: agentwallet --as OWNER approve {record['request_id']}")
