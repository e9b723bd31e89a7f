"""Owner and relayer payment commands: ``requests``, ``approve``, ``reject``, ``sign``,
``execute``, ``sign-payment``, ``pay-signed``. The agent's own ``pay`` is in
:mod:`agentwallet.cli.wallet`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentwallet._text import kv_table, short, span, table
from agentwallet.cli._common import (
    CliContext,
    confirm_signature,
    label,
    load_json_arg,
    names_by_address,
    pass_app,
    vault_option,
    yes_option,
)
from agentwallet.cli._types import TokenAmount
from agentwallet.cli.typed_data import payment_options, signature_options
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.protocol.models import RequestInfo
    from agentwallet.vault import Vault


# ------------------------------------------------------------------------------------ requests


def _request_record(r: RequestInfo, now: int) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "agent": r.agent,
        "to": r.to,
        "token": r.token.symbol,
        "token_address": r.token.address,
        "amount": r.amount_text,
        "amount_base_units": str(r.amount),
        "reasons": list(r.reasons),
        "action": r.action,
        "ref": r.ref,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "age": now - r.created_at,
        "expires_in": r.expires_at - now,
        "approvals": list(r.approvals),
        "threshold": r.threshold,
    }


def _what(r: RequestInfo, vault: Vault | None = None, names: dict[str, str] | None = None) -> str:
    """A payment's amount, or a governance call in words (addresses as key names, limits in
    token units) when ``vault`` is given."""
    if r.kind == "payment":
        return r.amount_text
    if r.kind == "call":
        return f"call{' spending ' + r.amount_text if r.amount else ''}"
    if vault is None or not r.data or r.data == "0x":
        return r.action
    from agentwallet.views import describe_governance

    return describe_governance(vault, bytes.fromhex(r.data[2:]), names or {}) or r.action


@click.command("requests")
@click.option("--all", "show_all", is_flag=True, help="Include decided and expired requests.")
@vault_option
@pass_app
def requests(app: CliContext, show_all: bool, vault_name: str) -> None:
    """List requests waiting for owners (pending ones; --all for every one)."""
    vault = app.vault(vault_name)
    items = vault.requests(status="all" if show_all else "pending")
    now = app.chain.timestamp()
    if app.json:
        app.emit({"vault": vault.address, "requests": [_request_record(r, now) for r in items]})
        return
    if not items:
        click.echo("no pending requests" if not show_all else "no requests yet")
        return
    names = names_by_address()
    headers = ["id", "agent", "to", "amount", "reasons", "age", "expires in", "approvals"]
    if show_all:
        headers.insert(1, "status")
    rows = []
    for r in items:
        row: list[Any] = [
            r.id,
            label(r.agent, names) + (" (owner)" if r.kind == "governance" else ""),
            label(r.to, names) if r.kind != "governance" else "vault",
            _what(r, vault, names),
            ", ".join(r.reasons) or ("governance" if r.kind == "governance" else "-"),
            span(now - r.created_at),
            "-"
            if r.status not in ("pending", "expired")
            else span(r.expires_at - now)
            if r.expires_at > now
            else "expired",
            f"{len(r.approvals)}/{r.threshold}",
        ]
        if show_all:
            row.insert(1, r.status)
        rows.append(row)
    click.echo(table(headers, rows))


# ------------------------------------------------------------------------------------ deciding


def _signing_table(vault: Vault, r: RequestInfo, chain_id: int, names: dict[str, str]) -> str:
    """Exactly what an owner approves: vault, chain, request, agent, recipient, amount, why."""
    expires = dt.datetime.fromtimestamp(r.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[tuple[str, Any]] = [
        ("vault", vault.address),
        ("chain id", chain_id),
        ("request", f"#{r.id} ({r.kind}, {r.status})"),
    ]
    if r.kind == "payment":
        rows += [
            ("agent", label(r.agent, names) + f"  {r.agent}"),
            ("recipient", label(r.to, names) + f"  {r.to}"),
            ("amount", f"{r.amount_text}  ({r.amount} base units)"),
            ("token", f"{r.token.symbol} {r.token.address}"),
            ("reasons", ", ".join(r.reasons) or "-"),
        ]
    elif r.kind == "call":
        rows += [
            ("agent", label(r.agent, names) + f"  {r.agent}"),
            ("calls", label(r.to, names) + f"  {r.to}"),
            ("call", r.action),
            ("call data", r.data if len(r.data) <= 202 else r.data[:200] + "…"),
            ("may spend", f"{r.amount_text}  ({r.amount} base units)" if r.amount else "-"),
            ("reasons", ", ".join(r.reasons) or "-"),
        ]
    else:
        rows += [
            ("proposed by", label(r.agent, names)),
            ("action", _what(r, vault, names)),
            ("call", r.action),
        ]
    rows += [
        ("ref", r.ref or "-"),
        ("expires", expires),
        (
            "approvals",
            f"{len(r.approvals)}/{r.threshold}: "
            + (", ".join(label(a, names) for a in r.approvals) or "none"),
        ),
    ]
    return kv_table(rows)


def _show_and_confirm(app: CliContext, vault: Vault, r: RequestInfo, yes: bool, verb: str) -> None:
    names = names_by_address()
    app.say(f"you are about to {verb}:\n" + _signing_table(vault, r, app.chain.chain_id, names))
    confirm_signature(app, yes, f"{verb} request {r.id}?")


def require_owner(vault: Vault, address: str, names: dict[str, str] | None = None) -> None:
    """Refuse, before any table or prompt, a signer who is not an owner of ``vault``
    (:class:`~agentwallet.errors.NotOwnerError`, naming the key)."""
    from agentwallet.errors import ContractRevertError

    if address not in vault.owners():
        who = label(address, names if names is not None else names_by_address())
        raise ContractRevertError.from_error(
            "NotOwner",
            {"caller": address},
            message=f"{who} is not an owner of vault {vault.address}: only owners' signatures "
            "count; sign as one of them (--as NAME)",
        )


def _may_approve(vault: Vault, r: RequestInfo, address: str) -> None:
    """Refuse, before the table, an approval the vault would refuse: not an owner, or this
    owner approved already."""
    from agentwallet.errors import ContractRevertError

    names = names_by_address()
    require_owner(vault, address, names)
    if address in r.approvals:
        raise ContractRevertError.from_error(
            "AlreadyApproved",
            {"requestId": r.id, "owner": address},
            message=f"{label(address, names)} already approved request {r.id} "
            f"({len(r.approvals)}/{r.threshold} approvals): another owner must approve it",
        )


def _pending(vault: Vault, request_id: int) -> RequestInfo:
    """The request, which must still be pending (before anything is signed or sent)."""
    from agentwallet.errors import ContractRevertError
    from agentwallet.protocol.constants import RequestStatus

    r = vault.request(request_id)
    if r.status != RequestStatus.PENDING.text:
        raise ContractRevertError.from_error(
            "RequestNotPending",
            {"requestId": request_id, "status": int(RequestStatus[r.status.upper()])},
            message=f"request {request_id} is {r.status}, not pending: it was already decided "
            "(see `agentwallet requests --all`)",
        )
    return r


@click.command("approve")
@click.argument("request_id", metavar="ID", type=int)
@yes_option
@vault_option
@pass_app
def approve(app: CliContext, request_id: int, yes: bool, vault_name: str) -> None:
    """Approve request ID on-chain as the owner given by --as (the threshold-th approval executes
    it). Shows what is being approved and asks first."""
    vault = app.vault(vault_name)
    signer = app.unlock("an owner of the vault")
    r = _pending(vault, request_id)
    _may_approve(vault, r, signer.address)
    _show_and_confirm(app, vault, r, yes, "approve")
    result = vault.approve(signer, request_id)
    after = vault.request(request_id)
    data = {
        "request_id": request_id,
        "status": after.status,
        "executed": after.status == "executed",
        "approvals": len(after.approvals),
        "threshold": after.threshold,
        "tx_hash": result.tx_hash,
        "gas_used": result.gas_used,
    }
    if app.json:
        app.emit(data)
    elif after.status == "executed":
        click.echo(
            f"\napproved: request {request_id} reached the threshold and executed "
            f"(tx {result.tx_hash})"
        )
    else:
        click.echo(
            f"\napproved: request {request_id} has {len(after.approvals)}/"
            f"{after.threshold} approvals (tx {result.tx_hash})"
        )


@click.command("reject")
@click.argument("request_id", metavar="ID", type=int)
@vault_option
@pass_app
def reject(app: CliContext, request_id: int, vault_name: str) -> None:
    """Reject request ID as the owner given by --as. An agent's payment request closes at one
    owner's no; a governance proposal once more than (owners - threshold) owners rejected it,
    so no minority can veto what the threshold wants."""
    vault = app.vault(vault_name)
    signer = app.unlock("an owner of the vault")
    r = _pending(vault, request_id)
    require_owner(vault, signer.address)
    result = vault.reject(signer, request_id)
    after = vault.request(request_id)
    data = {"request_id": request_id, "status": after.status, "tx_hash": result.tx_hash}
    if after.status == "rejected":
        what = f"{_what(r, vault)} to {short(r.to)}" if r.kind == "payment" else _what(r, vault)
        text = f"rejected request {request_id} ({what}); tx {result.tx_hash}"
    else:
        owners = len(vault.owners())
        text = (
            f"rejection of proposal {request_id} recorded; it stays open until more than "
            f"{owners - after.threshold} of the {owners} owners reject it; tx {result.tx_hash}"
        )
    app.emit(data, text)


def _out_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"Write the {what} (JSON) here instead of stdout.",
    )


def _write_signed(
    app: CliContext, text: str, out: Path | None, fields: dict[str, Any], what: str
) -> None:
    """A signature's JSON to stdout, or to ``out`` with a confirmation line."""
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n")
    if app.json:
        app.emit({**fields, "file": str(out)})
    else:
        signer = label(str(fields["signer"]), names_by_address())
        click.echo(f"\nsigned {what} as {signer}: {out}")


@click.command("sign")
@click.argument("request_id", metavar="ID", type=int)
@_out_option("signed approval")
@yes_option
@vault_option
@pass_app
def sign(app: CliContext, request_id: int, out: Path | None, yes: bool, vault_name: str) -> None:
    """Sign request ID off-chain (EIP-712) as the owner given by --as; nothing is sent.

    Give the output to whoever runs `agentwallet execute ID --sig FILE ...`.
    """
    vault = app.vault(vault_name)
    signer = app.unlock("an owner of the vault")
    r = _pending(vault, request_id)
    require_owner(vault, signer.address)  # an on-chain approval does not count here: may sign
    names = names_by_address()
    # the table goes to stderr when the signature itself is printed on stdout
    click.echo(
        "you are about to sign:\n" + _signing_table(vault, r, app.chain.chain_id, names),
        err=app.json or out is None,
    )
    confirm_signature(app, yes, f"sign request {request_id}?")
    approval = vault.sign(signer, request_id)
    fields = {"request_id": request_id, "signer": signer.address}
    _write_signed(app, approval.to_json(), out, fields, f"request {request_id}")


def _load_approval(text: str) -> Any:
    from agentwallet.protocol.models import SignedApproval

    how = "`agentwallet sign ID --out FILE`"
    return SignedApproval.from_json(load_json_arg(text, "signed-approval", how))


@click.command("execute")
@click.argument("request_id", metavar="ID", type=int)
@signature_options("agentwallet sign", "typed-data request ID", required=False)
@vault_option
@pass_app
def execute(
    app: CliContext,
    request_id: int,
    sigs: tuple[str, ...],
    signers: tuple[str, ...],
    vault_name: str,
) -> None:
    """Execute request ID: with the collected --sig approvals, or, without any, with the
    on-chain approvals it already has. Sent by --as (any key with gas)."""
    from agentwallet.cli.typed_data import collect_signatures

    vault = app.vault(vault_name)
    approvals = collect_signatures(
        vault, sigs, signers, None, _load_approval, "request", request_id=request_id
    )
    sender = app.unlock("any key with ETH for gas")
    _pending(vault, request_id)
    if approvals:
        result = vault.execute_with_signatures(sender, request_id, approvals)
    else:
        result = vault.execute(sender, request_id)
    after = vault.request(request_id)
    how = f"{len(approvals)} signatures" if approvals else "on-chain approvals"
    app.emit(
        {
            "request_id": request_id,
            "status": after.status,
            "tx_hash": result.tx_hash,
            "gas_used": result.gas_used,
            "signatures": len(approvals),
        },
        f"request {request_id} {after.status} with {how} (tx {result.tx_hash})",
    )


# ------------------------------------------------------------------------ signed payments


@click.command("sign-payment")
@payment_options
@_out_option("signed payment")
@yes_option
@vault_option
@pass_app
def sign_payment(
    app: CliContext,
    to: str,
    amount: TokenAmount,
    token: str | None,
    agent: str | None,
    ref: str | None,
    valid_for: int,
    out: Path | None,
    yes: bool,
    vault_name: str,
) -> None:
    """Sign off-chain (EIP-712), as the owner given by --as, a payment of AMOUNT to TO that runs
    at once once the threshold of owners signed it, with no request stored; nothing is sent.

    Give the outputs to whoever runs `agentwallet pay-signed --sig FILE ...`. The signatures
    are good for one payment, before the deadline. Their nonce is derived from the payment, so
    owners who sign the same payment agree on it, and other signed payments do not use it up;
    any one owner can still cancel it by invalidating the nonce.
    """
    from agentwallet.cli.typed_data import payment_draft

    vault = app.vault(vault_name)
    draft = payment_draft(app, vault, to, amount, token, agent, ref, valid_for)
    signer = app.unlock("an owner of the vault")
    require_owner(vault, signer.address)
    table_text = kv_table(draft.rows)
    click.echo("you are about to sign a payment:\n" + table_text, err=app.json or out is None)
    confirm_signature(app, yes, "sign this payment?")
    signed = vault.sign_payment(
        signer,
        to,
        draft.amount,
        draft.token.address,
        agent=draft.agent,
        ref=ref,
        deadline=draft.deadline,
        nonce=draft.nonce,
    )
    fields = {"signer": signer.address, "nonce": signed.nonce}
    _write_signed(app, signed.to_json(), out, fields, "the payment")


@click.command("pay-signed")
@signature_options(
    "agentwallet sign-payment", "typed-data payment", data="agentwallet typed-data payment ..."
)
@vault_option
@pass_app
def pay_signed(
    app: CliContext,
    sigs: tuple[str, ...],
    signers: tuple[str, ...],
    data: str | None,
    vault_name: str,
) -> None:
    """Submit the owners' signed payment (payWithSignatures). Sent by --as (any key with gas,
    e.g. a relayer); the owners' signatures are what authorise it."""
    from agentwallet.cli.typed_data import collect_signatures
    from agentwallet.protocol.models import SignedPayment

    how = "`agentwallet sign-payment TO AMOUNT --out FILE`"

    def load(text: str) -> SignedPayment:
        return SignedPayment.from_json(load_json_arg(text, "signed-payment", how))

    vault = app.vault(vault_name)
    signed = collect_signatures(vault, sigs, signers, data, load, "payment")
    sender = app.unlock("any key with ETH for gas")
    result = vault.pay_with_signatures(sender, signed)
    first = signed[0]
    info = vault.token(first.token)
    record = {
        "status": "paid",
        "to": first.to,
        "token": info.symbol,
        "amount": format_amount(first.amount, info.decimals),
        "signers": sorted({s.signer for s in signed}),
        "nonce": first.nonce,
        "tx_hash": result.tx_hash,
        "gas_used": result.gas_used,
    }
    app.emit(
        record,
        f"paid {record['amount']} {info.symbol} to {short(first.to)} with {len(signed)} "
        f"owner signatures (tx {result.tx_hash})",
    )
