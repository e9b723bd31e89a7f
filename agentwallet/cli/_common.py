"""What the command modules share: the invocation's context (chain, deployments, keys), the one
mapping from errors to exit codes, confirmation, labels and common options."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click

from agentwallet._text import label as label
from agentwallet.errors import AgentWalletError, PasswordRequiredError

if TYPE_CHECKING:
    from agentwallet.chain import Chain
    from agentwallet.deployments import Deployments
    from agentwallet.keys import KeyStore, Signer
    from agentwallet.vault import Vault

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_ENV = "AGENTWALLET_PASSWORD"
DEFAULT_NODE_URL = "http://127.0.0.1:8545"

#: Exit codes: an AgentWalletError, and `audit reconcile` finding a difference. (Click's own
#: usage errors, such as an unknown option, keep click's exit code 2 and usage text.)
EXIT_ERROR = 1
EXIT_DIFFERENCE = 2


# ----------------------------------------------------------------------------------- errors


class CliError(click.ClickException):
    """An :class:`AgentWalletError` as the CLI reports it: one line ``error: <message>`` on
    stderr, exit code 1, never a traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def click_error(exc: AgentWalletError) -> CliError:
    """The one mapping from agentwallet's errors to the CLI's."""
    return CliError(str(exc))


def report_errors(fn: F) -> F:
    """Raise :func:`click_error` for the AgentWalletError ``fn`` raises."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentWalletError as exc:
            raise click_error(exc) from None

    return cast(F, wrapper)


class ErrorReportingGroup(click.Group):
    """A click group whose commands report AgentWalletError as :func:`report_errors` does."""

    def invoke(self, ctx: click.Context) -> Any:
        return report_errors(super().invoke)(ctx)


class ConfirmationRequiredError(AgentWalletError):
    """A human must confirm a signature, but there is no terminal to ask on."""


# ----------------------------------------------------------------------------------- context


@dataclass
class CliContext:
    """The global options, and what one invocation connects to and unlocks (each once)."""

    rpc: str | None = None  #: None: embedded for `demo`, DEFAULT_NODE_URL for everything else
    json: bool = False
    signer: str | None = None  #: ``--as NAME``
    _chain: Chain | None = field(default=None, init=False, repr=False)
    _deployments: Deployments | None = field(default=None, init=False, repr=False)

    def rpc_or_node(self) -> str:
        return self.rpc or DEFAULT_NODE_URL

    @property
    def chain(self) -> Chain:
        """The chain chosen by ``--rpc`` (connected once per invocation)."""
        if self._chain is None:
            from agentwallet.chain import connect

            self._chain = connect(self.rpc_or_node())
        return self._chain

    @property
    def deployments(self) -> Deployments:
        """The deployment record of the chosen chain."""
        if self._deployments is None:
            from agentwallet.deployments import Deployments

            self._deployments = Deployments(self.chain)
        return self._deployments

    def vault(self, name: str) -> Vault:
        """The vault recorded as ``name`` (or at that address)."""
        from agentwallet.vault import Vault

        return Vault.at(self.chain, name, deployments=self.deployments)

    def unlock(self, role: str) -> Signer:
        """The key named by ``--as``, unlocked. ``role`` says who must sign (for the error)."""
        name = self.signer
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
                f"key {name!r} needs its password: run in a terminal to be asked, or set "
                f"{PASSWORD_ENV}"
            )
        return store.load(name, password)

    def say(self, text: str) -> None:
        """Human text: stdout normally, stderr under --json (stdout holds only the JSON)."""
        click.echo(text, err=self.json)

    def emit(self, data: Any, text: str | None = None) -> None:
        """``data`` as one JSON document under --json, else ``text`` (if any)."""
        if self.json:
            click.echo(json.dumps(data, sort_keys=True, default=str))
        elif text is not None:
            click.echo(text)


#: Pass the invocation's :class:`CliContext` as the command's first argument.
pass_app = click.make_pass_decorator(CliContext, ensure=True)


# ----------------------------------------------------------------------------------- keys


def keystore() -> KeyStore:
    from agentwallet.keys import KeyStore

    return KeyStore()


def names_by_address() -> dict[str, str]:
    """checksum address → key name, for labelling addresses in tables."""
    try:
        return {k.address: k.name for k in keystore().list()}
    except AgentWalletError:
        return {}


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


def confirm_signature(app: CliContext, yes: bool, question: str) -> None:
    """Ask before a human signs. ``--yes`` skips; no terminal and no ``--yes`` is an error."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfirmationRequiredError(
            "refusing to sign without confirmation: no terminal to ask on; review the table "
            "above and pass --yes to sign"
        )
    if not click.confirm(question, default=False, err=app.json):
        raise ConfirmationRequiredError("not confirmed: nothing was signed")


# ----------------------------------------------------------------------------------- options


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


def load_json_arg(text: str, what: str, how: str) -> str:
    """``--sig`` value: a file's path or the JSON itself."""
    if text.lstrip().startswith("{"):
        raw = text
    else:
        path = Path(text)
        if not path.is_file():
            raise AgentWalletError(f"--sig {text!r}: no such file; pass the file written by {how}")
        raw = path.read_text()
    try:
        json.loads(raw)
    except ValueError:
        raise AgentWalletError(
            f"--sig {text!r} is neither a file nor {what} JSON: pass the file written by {how} "
            "or its contents"
        ) from None
    return raw
