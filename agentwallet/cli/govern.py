"""Owners' governance from the command line: ``govern sign|cosign|show|submit`` (a batch of
governance calls signed off-chain by the threshold of owners and run by anyone in one
transaction: how honest owners recover from a compromised one), ``owner swap`` and
``agent replace-key`` (as an on-chain proposal, or with ``--sign`` as a signed batch).

Actions are written as words, several joined by ``--and``::

    agentwallet --as alice govern sign remove-owner mallory --and unpause --out a.json
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentwallet._text import kv_table
from agentwallet.cli._common import (
    CliContext,
    confirm_signature,
    label,
    names_by_address,
    pass_app,
    vault_option,
    yes_option,
)
from agentwallet.cli._types import AMOUNT, DURATION, KEY_OR_ADDRESS, TokenAmount
from agentwallet.cli.payments import require_owner
from agentwallet.cli.typed_data import signature_options
from agentwallet.errors import AgentWalletError

if TYPE_CHECKING:
    from agentwallet.protocol.models import SignedGovernance
    from agentwallet.vault import Vault

#: Separates actions in one batch.
AND = "--and"
_WORDS = {"ignore_unknown_options": True}

#: action -> (its arguments as shown in help, what it does)
ACTIONS: dict[str, tuple[str, str]] = {
    "remove-owner": ("OWNER [THRESHOLD]", "remove an owner (threshold kept if still reachable)"),
    "add-owner": ("OWNER [THRESHOLD]", "add an owner (threshold kept unless given)"),
    "swap-owner": ("OLD NEW", "replace owner OLD by NEW at the same place"),
    "threshold": ("N", "change the threshold"),
    "unpause": ("", "unpause the vault"),
    "unpause-agent": ("AGENT", "unpause a paused agent"),
    "replace-agent-key": ("OLD NEW", "move an agent's rights from key OLD to key NEW"),
    "add-agent": ("AGENT", "add an agent (open validity window, no allowlist)"),
    "limits": ("AGENT TOKEN MAX ALLOWANCE PERIOD", "set an agent's limits for TOKEN"),
    "request-expiry": ("DURATION", "how long new requests stay open"),
    "max-open-requests": ("N", "open requests an agent may have"),
}
ACTIONS_HELP = "\n".join(
    f"  {name} {args}".rstrip() + f": {what}" for name, (args, what) in ACTIONS.items()
)

_NAMES = ", ".join(ACTIONS)


def _split(words: Sequence[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for word in words:
        if word == AND:
            groups.append([])
        else:
            groups[-1].append(word)
    if any(not g for g in groups):
        raise AgentWalletError(
            f"empty action: write actions as `ACTION ARGS [{AND} ACTION ARGS ...]` with ACTION "
            f"one of {_NAMES} (see `agentwallet govern sign --help`)"
        )
    return groups


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AgentWalletError(f"{what} must be a whole number, got {text!r}") from None
    if value < 0:
        raise AgentWalletError(f"{what} must not be negative, got {text!r}")
    return value


def parse_actions(vault: Vault, words: Sequence[str]) -> list[bytes]:
    """The calldata of each action in ``words`` (``ACTION ARGS [--and ACTION ARGS ...]``), in
    order. A default threshold follows the owner count as the batch changes it."""
    owners, threshold = len(vault.owners()), vault.threshold()
    calls: list[bytes] = []
    for action, *args in _split(words):
        if action not in ACTIONS:
            raise AgentWalletError(
                f"unknown action {action!r}: use one of {_NAMES} "
                "(see `agentwallet govern sign --help`)"
            )
        shape = ACTIONS[action][0].split()
        needed = len([a for a in shape if not a.startswith("[")])
        if not needed <= len(args) <= len(shape):
            raise AgentWalletError(
                f"{action} takes {ACTIONS[action][0] or 'no arguments'}, got "
                f"{len(args)} argument{'s' if len(args) != 1 else ''}: {' '.join(args) or '-'}"
            )
        key: Callable[[str], str] = KEY_OR_ADDRESS.parse
        call = vault.governance_call
        if action in ("remove-owner", "add-owner"):
            owners += 1 if action == "add-owner" else -1
            default = min(threshold, owners) if action == "remove-owner" else threshold
            threshold = _int(args[1], "THRESHOLD") if len(args) > 1 else default
            name = "addOwner" if action == "add-owner" else "removeOwner"
            calls.append(call(name, key(args[0]), threshold))
        elif action == "swap-owner":
            calls.append(call("swapOwner", key(args[0]), key(args[1])))
        elif action == "threshold":
            threshold = _int(args[0], "N")
            calls.append(call("changeThreshold", threshold))
        elif action == "unpause":
            calls.append(call("unpause"))
        elif action == "unpause-agent":
            calls.append(call("unpauseAgent", key(args[0])))
        elif action == "replace-agent-key":
            calls.append(call("replaceAgentKey", key(args[0]), key(args[1])))
        elif action == "add-agent":
            calls.append(call("addAgent", key(args[0]), 0, 0, False))
        elif action == "limits":
            info = vault.token(args[1])
            max_per, allowance = (
                AMOUNT.parse(a) for a in (args[2], args[3])
            )  # TokenAmount: decimals come with the token
            assert isinstance(max_per, TokenAmount) and isinstance(allowance, TokenAmount)
            calls.append(
                call(
                    "setLimits",
                    key(args[0]),
                    info.address,
                    max_per.base_units(info, "MAX", positive=False),
                    allowance.base_units(info, "ALLOWANCE", positive=False),
                    DURATION.parse(args[4]),
                )
            )
        elif action == "request-expiry":
            calls.append(call("setRequestExpiry", DURATION.parse(args[0])))
        else:  # max-open-requests
            calls.append(call("setMaxOpenRequests", _int(args[0], "N")))
    return calls


def batch_table(
    vault: Vault,
    calls: Sequence[bytes],
    nonce: int,
    deadline: int,
    names: dict[str, str],
    signer: str | None = None,
) -> str:
    """Exactly what owners sign: vault, chain, each call in words and as its function, the
    nonce and the deadline."""
    from agentwallet.views import describe_governance

    ends = dt.datetime.fromtimestamp(deadline, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows: list[tuple[str, Any]] = [("vault", vault.address), ("chain id", vault.chain.chain_id)]
    for i, data in enumerate(calls, 1):
        words = describe_governance(vault, data, names) or f"0x{data.hex()}"
        rows.append((f"call {i}", words))
    rows += [("nonce", nonce), ("valid until", ends)]
    if signer is not None:
        rows.append(("signed by", label(signer, names) + f"  {signer}"))
    return kv_table(rows)


def _write(app: CliContext, signed: SignedGovernance, out: Path | None) -> None:
    text = signed.to_json()
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n")
    fields = {"signer": signed.signer, "nonce": signed.nonce, "file": str(out)}
    app.emit(fields, f"\nsigned the batch as {label(signed.signer, names_by_address())}: {out}")


def sign_batch(
    app: CliContext,
    vault: Vault,
    calls: Sequence[bytes],
    *,
    nonce: int | None,
    deadline: int | None,
    out: Path | None,
    yes: bool,
) -> None:
    """Unlock ``--as``, check it is an owner, show the batch, ask, sign and write it."""
    signer = app.unlock("an owner of the vault")
    names = names_by_address()
    require_owner(vault, signer.address, names)
    batch, nonce, deadline = vault.governance_draft(calls, nonce, deadline)
    click.echo(
        "you are about to sign a governance batch:\n"
        + batch_table(vault, batch, nonce, deadline, names),
        err=app.json or out is None,
    )
    confirm_signature(app, yes, "sign this batch?")
    _write(app, vault.sign_governance(signer, batch, nonce, deadline), out)


def load_governance(text: str) -> SignedGovernance:
    """A signed batch from ``--sig`` (a file or its JSON)."""
    from agentwallet.cli._common import load_json_arg
    from agentwallet.protocol.models import SignedGovernance

    raw = load_json_arg(text, "signed-governance", "`agentwallet govern sign ... --out FILE`")
    return SignedGovernance.from_json(raw)


def _out(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"Write the {what} (JSON) here instead of stdout.",
    )


_valid_for = click.option(
    "--valid-for",
    default="1d",
    show_default=True,
    type=DURATION,
    help="How long the signatures stay usable (rounded up to the hour, so co-signers agree).",
)


@click.group("govern")
def govern() -> None:
    """Governance by owners' signatures: a batch of calls runs in one transaction once the
    threshold of owners signed it. No request is stored, so no single owner can reject,
    expire or front-run it."""


@govern.command(
    "sign",
    context_settings=_WORDS,
    epilog="\b\nActions (join several with --and):\n" + ACTIONS_HELP,
)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, required=True, metavar="ACTION...")
@_valid_for
@_out("signed batch")
@yes_option
@vault_option
@pass_app
def govern_sign(
    app: CliContext,
    words: tuple[str, ...],
    valid_for: int,
    out: Path | None,
    yes: bool,
    vault_name: str,
) -> None:
    """Sign, as the owner given by --as, a batch of governance actions (several joined by
    --and); nothing is sent. Other owners sign the same batch with `govern cosign FILE` (or the
    same command within the hour); anyone runs it with `govern submit --sig FILE ...`."""
    from agentwallet.governance import default_deadline

    vault = app.vault(vault_name)
    calls = parse_actions(vault, words)
    deadline = default_deadline(app.chain.timestamp(), valid_for)
    sign_batch(app, vault, calls, nonce=None, deadline=deadline, out=out, yes=yes)


@govern.command("cosign")
@click.argument("file", metavar="FILE_OR_JSON")
@_out("signed batch")
@yes_option
@vault_option
@pass_app
def govern_cosign(app: CliContext, file: str, out: Path | None, yes: bool, vault_name: str) -> None:
    """Sign, as the owner given by --as, the same batch (calls, nonce, deadline) as another
    owner's signed batch in FILE."""
    first = load_governance(file)
    vault = app.vault(vault_name)
    if (first.vault, first.chain_id) != (vault.address, app.chain.chain_id):
        raise AgentWalletError(
            f"{file} is a batch for vault {first.vault} on chain {first.chain_id}, not "
            f"{vault.address} on chain {app.chain.chain_id}: pass --vault"
        )
    sign_batch(
        app, vault, first.call_data(), nonce=first.nonce, deadline=first.deadline, out=out, yes=yes
    )


@govern.command("show")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@vault_option
@pass_app
def govern_show(app: CliContext, files: tuple[str, ...], vault_name: str) -> None:
    """Show, in plain words, what each signed batch in FILE... signs, who signed it and
    whether the signature is theirs."""
    from agentwallet.protocol import signatures
    from agentwallet.views import describe_governance

    vault = app.vault(vault_name)
    names = names_by_address()
    records, texts = [], []
    for file in files:
        s = load_governance(file)
        calls = s.call_data()
        try:
            signatures.verify_claimed(vault.governance_digest(calls, s.nonce, s.deadline), [s])
            valid = "yes (ERC-1271: checked by the owner's contract)" if s.contract else "yes"
        except AgentWalletError as exc:
            valid = f"no: {exc}"
        owner = s.signer in vault.owners()
        described = [describe_governance(vault, c, names) for c in calls]
        records.append(
            {**_fields(s), "actions": described, "signature_valid": valid == "yes", "owner": owner}
        )
        texts.append(
            f"{file}:\n"
            + batch_table(vault, calls, s.nonce, s.deadline, names, s.signer)
            + f"\nsignature   {valid}\nowner now   {'yes' if owner else 'no'}"
        )
    app.emit({"batches": records}, "\n\n".join(texts))


def _fields(s: SignedGovernance) -> dict[str, Any]:
    return {
        "vault": s.vault,
        "chain_id": s.chain_id,
        "calls": list(s.calls),
        "nonce": s.nonce,
        "deadline": s.deadline,
        "signer": s.signer,
    }


@govern.command("submit")
@signature_options(
    "agentwallet govern sign",
    "typed-data governance",
    data="agentwallet typed-data governance ...",
)
@vault_option
@pass_app
def govern_submit(
    app: CliContext,
    sigs: tuple[str, ...],
    signers: tuple[str, ...],
    data: str | None,
    vault_name: str,
) -> None:
    """Run the owners' signed batch (executeGovernance) in one transaction. Sent by --as (any
    key with gas); the owners' signatures are what authorise it."""
    from agentwallet.cli.typed_data import collect_signatures
    from agentwallet.views import describe_governance

    vault = app.vault(vault_name)
    signed = collect_signatures(vault, sigs, signers, data, load_governance, "governance")
    sender = app.unlock("any key with ETH for gas")
    result = vault.execute_governance(sender, signed)
    first = signed[0]
    names = names_by_address()
    actions = [describe_governance(vault, c, names) for c in first.call_data()]
    app.emit(
        {
            "status": "executed",
            "actions": actions,
            "signers": sorted({s.signer for s in signed}),
            "nonce": first.nonce,
            "tx_hash": result.tx_hash,
            "gas_used": result.gas_used,
        },
        "executed: " + "; ".join(actions) + f" (tx {result.tx_hash})",
    )


# ------------------------------------------------------------------------- conveniences


def _propose_or_sign(
    app: CliContext,
    vault_name: str,
    fn_name: str,
    pair: tuple[str, str],
    *,
    sign: bool,
    out: Path | None,
    yes: bool,
) -> None:
    from agentwallet.views import describe_governance

    vault = app.vault(vault_name)
    call = vault.governance_call(fn_name, *pair)
    if sign:
        sign_batch(app, vault, [call], nonce=None, deadline=None, out=out, yes=yes)
        return
    signer = app.unlock("an owner of the vault")
    names = names_by_address()
    require_owner(vault, signer.address, names)
    ref = vault.propose(signer, fn_name, *pair)
    what = describe_governance(vault, call, names)
    status = "executed" if ref.executed else "proposed"
    app.emit(
        {"request_id": ref.request_id, "status": status, "action": what, "tx_hash": ref.tx.tx_hash},
        f"{status}: {what} as request {ref.request_id}"
        + ("" if ref.executed else "; other owners: `agentwallet approve ID`"),
    )


def _pair_command(name: str, fn_name: str, doc: str) -> click.Command:
    """A command ``NAME OLD NEW`` that proposes ``fn_name(OLD, NEW)`` on-chain as the owner
    given by --as, or with --sign signs it as a governance batch."""

    @click.command(name, help=doc)
    @click.argument("old", type=KEY_OR_ADDRESS)
    @click.argument("new", type=KEY_OR_ADDRESS)
    @click.option(
        "--sign",
        "as_batch",
        is_flag=True,
        help="Sign a governance batch off-chain instead of proposing on-chain.",
    )
    @_out("signed batch (with --sign)")
    @yes_option
    @vault_option
    @pass_app
    def command(
        app: CliContext,
        old: str,
        new: str,
        as_batch: bool,
        out: Path | None,
        yes: bool,
        vault_name: str,
    ) -> None:
        _propose_or_sign(app, vault_name, fn_name, (old, new), sign=as_batch, out=out, yes=yes)

    return command


@click.group("owner")
def owner() -> None:
    """Owner management (every change goes through the threshold)."""


owner.add_command(
    _pair_command(
        "swap",
        "swapOwner",
        "Replace owner OLD by NEW (same place, same threshold): propose it on-chain as the "
        "owner given by --as, or with --sign sign it as a governance batch.",
    )
)
#: ``agent replace-key OLD NEW`` (registered in the agent group).
agent_replace_key = _pair_command(
    "replace-key",
    "replaceAgentKey",
    "Owners move an agent's rights from key OLD (lost or leaked) to key NEW by threshold: "
    "propose it on-chain as the owner given by --as, or with --sign sign a governance batch. "
    "(An agent holding both keys rotates by itself, without owners.)",
)
