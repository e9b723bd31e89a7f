"""What the command modules share: the chain, keys, addresses, vaults, amounts, confirmation."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import click

from agentwallet.errors import AgentWalletError

if TYPE_CHECKING:
    from agentwallet.chain import Chain
    from agentwallet.deployments import Deployments
    from agentwallet.keys import KeyStore, Signer
    from agentwallet.vault import TokenInfo, Vault

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_ENV = "AGENTWALLET_PASSWORD"


class Options(Protocol):
    """The global options (``agentwallet.cli.CliContext``; not imported: no import cycle)."""

    json: bool
    signer: str | None

    def rpc_or_node(self) -> str: ...


def report_errors(fn: F) -> F:
    """AgentWalletError → one line ``error: ...`` on stderr and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentWalletError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return cast(F, wrapper)


class ErrorReportingGroup(click.Group):
    """A click group whose commands report AgentWalletError as :func:`report_errors` does."""

    def invoke(self, ctx: click.Context) -> Any:
        return report_errors(super().invoke)(ctx)


class ConfirmationRequiredError(AgentWalletError):
    """A human must confirm a signature, but there is no terminal to ask on."""


def obj_of(ctx: click.Context) -> Options:
    obj: Options = ctx.find_root().obj
    return obj


def chain_of(ctx: click.Context) -> Chain:
    """The chain chosen by ``--rpc`` (connected once per invocation)."""
    from agentwallet.chain import connect

    root = ctx.find_root()
    if "chain" not in root.meta:
        root.meta["chain"] = connect(obj_of(ctx).rpc_or_node())
    chain: Chain = root.meta["chain"]
    return chain


def deployments_of(ctx: click.Context) -> Deployments:
    """The deployment record of the chosen chain (one instance per invocation)."""
    from agentwallet.deployments import Deployments

    root = ctx.find_root()
    if "deployments" not in root.meta:
        root.meta["deployments"] = Deployments(chain_of(ctx))
    deployments: Deployments = root.meta["deployments"]
    return deployments


def keystore() -> KeyStore:
    from agentwallet.keys import KeyStore

    return KeyStore()


def resolve_address(text: str) -> str:
    """A key name or a 0x address → checksum address.

    Anything starting with ``0x`` must be a valid address (:class:`InvalidAddressError`);
    anything else must be a key name (:class:`UnknownKeyError` listing the known ones).
    """
    from web3 import Web3

    from agentwallet.errors import InvalidAddressError

    value = text.strip()
    if value.lower().startswith("0x"):
        digits = value[2:]
        mixed = digits != digits.lower() and digits != digits.upper()
        # eth-utils 5 is_address accepts any case: a mixed-case address must match EIP-55
        if not Web3.is_address(value) or (mixed and not Web3.is_checksum_address(value)):
            raise InvalidAddressError(
                f"{text!r} is not a valid address: give 0x plus 40 hex digits (with a correct "
                "checksum if mixed-case) or the name of a key from `agentwallet key list`"
            )
        return str(Web3.to_checksum_address(value))
    return keystore().info(value).address


def names_by_address() -> dict[str, str]:
    """checksum address → key name, for labelling addresses in tables."""
    try:
        return {k.address: k.name for k in keystore().list()}
    except AgentWalletError:
        return {}


def label(address: str | None, names: dict[str, str]) -> str:
    """``alice (0x70997970…)`` for known keys, else the short address."""
    from agentwallet.cli._output import short

    if not address:
        return "-"
    name = names.get(address)
    return f"{name} ({short(address)})" if name else short(address)


def password_for(name: str, *, confirm: bool = False) -> str | None:
    """The password for key ``name``: None when ``$AGENTWALLET_PASSWORD`` is set (the keystore
    reads it), else a hidden prompt on a terminal. With neither, None (the keystore raises
    :class:`PasswordRequiredError`)."""
    if os.environ.get(PASSWORD_ENV):
        return None
    if not sys.stdin.isatty():
        return None
    value: str = click.prompt(
        f"password for key {name!r}", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return value


def signer_of(ctx: click.Context, role: str) -> Signer:
    """The key named by ``--as``, unlocked. ``role`` says who must sign (for the error)."""
    from agentwallet.errors import PasswordRequiredError

    name = obj_of(ctx).signer
    if not name:
        raise AgentWalletError(
            f"this command sends a transaction signed by {role}: pass --as NAME "
            "(see `agentwallet key list`)"
        )
    store = keystore()
    store.info(name)  # unknown key: fail before asking for a password
    password = password_for(name)
    if password is None and not os.environ.get(PASSWORD_ENV):
        raise PasswordRequiredError(
            f"key {name!r} needs its password: run in a terminal to be asked, or set {PASSWORD_ENV}"
        )
    return store.load(name, password)


def vault_of(ctx: click.Context, name: str) -> Vault:
    from agentwallet.vault import Vault

    return Vault.at(chain_of(ctx), name, deployments=deployments_of(ctx))


def parse_positive(text: str, token: TokenInfo, what: str = "amount") -> int:
    """``"0.5"`` in ``token`` units → base units; must be > 0."""
    from agentwallet.errors import AmountError
    from agentwallet.units import parse_amount

    amount = parse_amount(text, token.decimals)
    if amount <= 0:
        raise AmountError(f"{what} must be greater than 0 {token.symbol}, got {text!r}")
    return amount


def confirm_signature(ctx: click.Context, yes: bool, question: str) -> None:
    """Ask before a human signs. ``--yes`` skips; no terminal and no ``--yes`` is an error."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequiredError(
            "refusing to sign without confirmation: no terminal to ask on; review the table "
            "above and pass --yes to sign"
        )
    if not click.confirm(question, default=False, err=obj_of(ctx).json):
        raise ConfirmationRequiredError("not confirmed: nothing was signed")


def vault_option(f: F) -> F:
    decorated: F = click.option(
        "--vault",
        "vault_name",
        default="main",
        show_default=True,
        metavar="NAME_OR_ADDRESS",
        help="Vault name from deployments/<network>.json, or its address.",
    )(f)
    return decorated


def token_option(f: F) -> F:
    decorated: F = click.option(
        "--token", default=None, metavar="SYMBOL", help="ERC-20 symbol (default ETH)."
    )(f)
    return decorated


def yes_option(f: F) -> F:
    decorated: F = click.option(
        "--yes", "-y", is_flag=True, help="Sign without asking (the table is still shown)."
    )(f)
    return decorated
