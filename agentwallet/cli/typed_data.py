"""Typed data for any wallet: ``typed-data request|payment|governance`` write the EIP-712
message owners sign as standard ``eth_signTypedData_v4`` JSON (a browser or hardware wallet,
``cast wallet sign --data``, a Safe's message flow), and :func:`collect_signatures` takes the
raw ``0x`` signatures such wallets return (``--sig 0x... --signer ADDRESS``) beside the JSON
files ``sign``, ``sign-payment`` and ``govern sign`` write."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from agentwallet._text import kv_table
from agentwallet.cli._common import (
    CliContext,
    label,
    names_by_address,
    pass_app,
    token_option,
    vault_option,
)
from agentwallet.cli._types import AMOUNT, DURATION, KEY_OR_ADDRESS, TokenAmount
from agentwallet.errors import AgentWalletError
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.protocol.models import TokenInfo
    from agentwallet.vault import Vault

_S = TypeVar("_S")

#: The primaryType a raw signature must sign, per command.
_PRIMARY = {
    "request": ("PaymentRequest", "GovernanceProposal", "CallRequest"),
    "payment": ("SignedPayment",),
    "governance": ("Governance",),
}
_HOW = {
    "request": "`agentwallet typed-data request ID`",
    "payment": "`agentwallet typed-data payment TO AMOUNT --out FILE`",
    "governance": "`agentwallet typed-data governance ACTION... --out FILE`",
}


def signature_options(
    source: str, raw_of: str, *, required: bool = True, data: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--sig`` (repeat; a JSON signature from ``source``, or any wallet's raw 0x signature of
    ``raw_of``), ``--signer`` (who made each raw one) and, with ``data``, ``--data FILE``."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if data is not None:
            f = click.option(
                "--data",
                default=None,
                metavar="FILE",
                help=f"The typed data (`{data} --out FILE`) the raw signatures sign.",
            )(f)
        f = click.option(
            "--signer",
            "signers",
            multiple=True,
            type=KEY_OR_ADDRESS,
            metavar="ADDRESS",
            help="Who made each raw 0x --sig, in the same order (for a Safe owner: the Safe).",
        )(f)
        return click.option(
            "--sig",
            "sigs",
            multiple=True,
            required=required,
            metavar="FILE_OR_JSON_OR_0xHEX",
            help=f"An owner's signature from `{source}` (repeat), or any wallet's raw 0x "
            f"signature of `{raw_of}` (with --signer).",
        )(f)

    return decorate


def payment_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """TO, AMOUNT, --token, --agent, --ref, --valid-for: a payment owners sign."""
    for option in reversed(
        [
            click.argument("to", metavar="TO", type=KEY_OR_ADDRESS),
            click.argument("amount", type=AMOUNT),
            token_option,
            click.option(
                "--agent",
                default=None,
                metavar="NAME_OR_ADDRESS",
                type=KEY_OR_ADDRESS,
                help="Agent the payment is recorded for (default: none).",
            ),
            click.option("--ref", default=None, metavar="TEXT", help="Reference (invoice id)."),
            click.option(
                "--valid-for",
                default="1h",
                show_default=True,
                type=DURATION,
                help="How long the signatures stay usable (45s, 30m, 12h, 1d).",
            ),
        ]
    ):
        f = option(f)
    return f


def _is_raw(text: str) -> bool:
    return text.lower().startswith("0x") and not Path(text).is_file()


def _typed_from(vault: Vault, first: Any, kind: str) -> dict[str, Any]:
    """The wallet JSON a JSON signature of ``kind`` signed (so raw ones can join it)."""
    from hexbytes import HexBytes

    if kind == "payment":
        return vault.payment_typed_data(
            first.agent,
            first.token,
            first.to,
            first.amount,
            bytes(HexBytes(first.ref)),
            first.nonce,
            first.deadline,
            wallet=True,
        )
    return vault.governance_typed_data(first.call_data(), first.nonce, first.deadline, wallet=True)


def collect_signatures(
    vault: Vault,
    sigs: Sequence[str],
    signers: Sequence[str],
    data: str | None,
    load_json: Callable[[str], _S],
    kind: str,
    request_id: int | None = None,
) -> list[_S]:
    """The signatures of ``--sig`` values: JSON files/texts through ``load_json``, and raw
    ``0x`` signatures from any wallet paired, in order, with ``--signer`` addresses, over the
    request ``request_id``, the typed data in ``data``, or the message the JSON ones sign."""
    raw = [s for s in sigs if _is_raw(s)]
    loaded = [load_json(s) for s in sigs if not _is_raw(s)]
    if len(raw) != len(signers):
        raise AgentWalletError(
            f"got {len(raw)} raw 0x signature(s) and {len(signers)} --signer address(es): give "
            "each raw --sig its --signer ADDRESS, in the same order"
        )
    if not raw:
        return loaded
    if request_id is not None:
        typed = vault.typed_data(request_id, wallet=True)
    elif data is not None:
        path = Path(data)
        try:
            typed = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AgentWalletError(
                f"--data {data}: cannot read typed data ({exc}); write it with {_HOW[kind]}"
            ) from None
        if not isinstance(typed, dict) or typed.get("primaryType") not in _PRIMARY[kind]:
            raise AgentWalletError(
                f"--data {data} is not {' or '.join(_PRIMARY[kind])} typed data: write it "
                f"with {_HOW[kind]}"
            )
    elif loaded:
        typed = _typed_from(vault, loaded[0], kind)
    else:
        raise AgentWalletError(
            f"raw 0x signatures need the message they sign: pass --data FILE from {_HOW[kind]}"
        )
    from_wallet: list[Any] = [
        vault.signature_from_wallet(typed, signer, sig)
        for sig, signer in zip(raw, signers, strict=True)
    ]
    return loaded + from_wallet


@dataclass(frozen=True)
class PaymentDraft:
    """A payment owners are about to sign: its values and the table that shows them."""

    token: TokenInfo
    amount: int
    agent: str
    ref: bytes
    deadline: int
    nonce: int
    rows: list[tuple[str, Any]]


def payment_draft(
    app: CliContext,
    vault: Vault,
    to: str,
    amount: TokenAmount,
    token: str | None,
    agent: str | None,
    ref: str | None,
    valid_for: int,
) -> PaymentDraft:
    """The payment ``sign-payment`` and ``typed-data payment`` produce: base units, the
    deadline, the nonce derived from the payment, and the table of what is signed."""
    from agentwallet.protocol.addresses import checksum
    from agentwallet.protocol.constants import ZERO_ADDRESS
    from agentwallet.protocol.refs import to_ref

    info = vault.token(token)
    value = amount.base_units(info)
    deadline = app.chain.timestamp() + valid_for
    attributed = checksum(agent or ZERO_ADDRESS)
    raw_ref = to_ref(ref)
    nonce = vault.payment_nonce(attributed, info.address, to, value, raw_ref, deadline)
    names = names_by_address()
    ends = dt.datetime.fromtimestamp(deadline, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows: list[tuple[str, Any]] = [
        ("vault", vault.address),
        ("chain id", app.chain.chain_id),
        ("recipient", label(to, names) + f"  {to}"),
        ("amount", f"{format_amount(value, info.decimals)} {info.symbol}  ({value} base units)"),
        ("token", f"{info.symbol} {info.address}"),
        ("for agent", label(agent, names) if agent else "-"),
        ("ref", ref or "-"),
        ("nonce", nonce),
        ("valid until", ends),
    ]
    return PaymentDraft(info, value, attributed, raw_ref, deadline, nonce, rows)


# ---------------------------------------------------------------------------- typed-data


def _emit_typed(app: CliContext, typed: dict[str, Any], out: Path | None, summary: str) -> None:
    text = json.dumps(typed, indent=2)
    if out is None:
        click.echo(text)
        click.echo(summary, err=True)
        return
    out.write_text(text + "\n")
    app.emit({"file": str(out), "primaryType": typed["primaryType"]}, f"{summary}\nwrote {out}")


_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the typed data here instead of stdout.",
)


@click.group("typed-data")
def typed_data() -> None:
    """EIP-712 typed data as standard eth_signTypedData_v4 JSON, for any wallet (browser,
    hardware, `cast wallet sign --data`, a Safe). Submit what the wallet returns with
    `--sig 0x... --signer ADDRESS` (see docs/cosigning.md)."""


@typed_data.command("request")
@click.argument("request_id", metavar="ID", type=int)
@_out
@vault_option
@pass_app
def typed_request(app: CliContext, request_id: int, out: Path | None, vault_name: str) -> None:
    """What owners sign to approve request ID (a payment request, a governance proposal or a
    call request); then `agentwallet execute ID --sig 0x... --signer ADDRESS`."""
    from agentwallet.cli.payments import _pending, _signing_table

    vault = app.vault(vault_name)
    r = _pending(vault, request_id)
    typed = vault.typed_data(request_id, wallet=True)
    summary = _signing_table(vault, r, app.chain.chain_id, names_by_address())
    _emit_typed(app, typed, out, summary)


@typed_data.command("payment")
@payment_options
@_out
@vault_option
@pass_app
def typed_payment(
    app: CliContext,
    to: str,
    amount: TokenAmount,
    token: str | None,
    agent: str | None,
    ref: str | None,
    valid_for: int,
    out: Path | None,
    vault_name: str,
) -> None:
    """What owners sign for a payment that runs at once on the threshold's signatures; then
    `agentwallet pay-signed --data FILE --sig 0x... --signer ADDRESS ...`."""
    vault = app.vault(vault_name)
    d = payment_draft(app, vault, to, amount, token, agent, ref, valid_for)
    typed = vault.payment_typed_data(
        d.agent, d.token.address, to, d.amount, d.ref, d.nonce, d.deadline, wallet=True
    )
    _emit_typed(app, typed, out, kv_table(d.rows))


@typed_data.command("governance", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, type=click.UNPROCESSED, required=True, metavar="ACTION...")
@click.option("--valid-for", default="1d", show_default=True, type=DURATION)
@_out
@vault_option
@pass_app
def typed_governance(
    app: CliContext, words: tuple[str, ...], valid_for: int, out: Path | None, vault_name: str
) -> None:
    """What owners sign for a governance batch (actions as in `govern sign`, joined by
    --and); then `agentwallet govern submit --data FILE --sig 0x... --signer ADDRESS ...`."""
    from agentwallet.cli.govern import batch_table, parse_actions
    from agentwallet.governance import default_deadline

    vault = app.vault(vault_name)
    calls = parse_actions(vault, words)
    deadline = default_deadline(app.chain.timestamp(), valid_for)
    batch, nonce, deadline = vault.governance_draft(calls, None, deadline)
    typed = vault.governance_typed_data(batch, nonce, deadline, wallet=True)
    _emit_typed(app, typed, out, batch_table(vault, batch, nonce, deadline, names_by_address()))
