"""``agentwallet key new|import|list|show``: encrypted keystores under $AGENTWALLET_HOME/keys."""

from __future__ import annotations

import os
import sys

import click

from agentwallet._text import kv_table, table
from agentwallet.cli._common import PASSWORD_ENV, CliContext, keystore, pass_app, password_for


def _new_password(name: str) -> str:
    from agentwallet.errors import PasswordRequiredError

    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    password = password_for(name, confirm=True)
    if password is None:
        raise PasswordRequiredError(
            f"key {name!r} needs a password: run in a terminal to be asked, or set {PASSWORD_ENV}"
        )
    return password


def _show(app: CliContext, name: str, address: str, path: str, verb: str) -> None:
    app.emit(
        {"name": name, "address": address, "path": path},
        f"{verb} key {name}".strip() + "\n" + kv_table([("address", address), ("keystore", path)]),
    )


@click.group("key")
def key() -> None:
    """Create, import and list the encrypted keys of owners and agents."""


@key.command("new")
@click.argument("name")
@pass_app
def key_new(app: CliContext, name: str) -> None:
    """Create a new random key NAME (password from a prompt or $AGENTWALLET_PASSWORD)."""
    info = keystore().create(name, _new_password(name))
    _show(app, info.name, info.address, str(info.path), "created")


@key.command("import")
@click.argument("name")
@pass_app
def key_import(app: CliContext, name: str) -> None:
    """Import a private key as NAME: from a hidden prompt, or the first line of stdin.

    The private key is never a command-line argument (it would land in shell history).
    """
    from agentwallet.errors import KeyStoreError

    store = keystore()
    if sys.stdin.isatty():
        secret: str = click.prompt("private key (hex)", hide_input=True, err=True)
    else:
        secret = sys.stdin.readline().strip()
    if not secret:
        raise KeyStoreError("no private key given: type it at the prompt or pipe it on stdin")
    info = store.import_key(name, secret, _new_password(name))
    del secret
    _show(app, info.name, info.address, str(info.path), "imported")


@key.command("list")
@pass_app
def key_list(app: CliContext) -> None:
    """List the keys in $AGENTWALLET_HOME/keys (names and addresses, never secrets)."""
    infos = keystore().list()
    if app.json:
        app.emit([{"name": k.name, "address": k.address, "path": str(k.path)} for k in infos])
    elif not infos:
        click.echo("no keys yet: create one with `agentwallet key new NAME`")
    else:
        click.echo(table(["name", "address"], [(k.name, k.address) for k in infos]))


@key.command("show")
@click.argument("name")
@pass_app
def key_show(app: CliContext, name: str) -> None:
    """Show key NAME's address and keystore file."""
    info = keystore().info(name)
    _show(app, info.name, info.address, str(info.path), "")
