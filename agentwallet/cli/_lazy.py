"""A click group whose commands are imported when they run, so the CLI starts fast.

``agentwallet --help``, ``--version`` and usage errors import no command module (those import
web3, which takes seconds): the group knows each command as ``"module:attribute"`` and lists them
with the summary read from the command function's source (its docstring, or the ``help=`` /
``short_help=`` given to the decorator), without importing it. A command whose summary cannot be
read that way is imported to list it: slower, never wrong. ``agentwallet CMD ...`` (and
``agentwallet CMD --help``) imports only CMD's module.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from agentwallet.cli._common import ErrorReportingGroup

__all__ = ["LazyGroup", "source_summary"]


class LazyGroup(ErrorReportingGroup):
    """An :class:`ErrorReportingGroup` with lazily imported commands (``lazy_commands``: name
    → ``"package.module:attribute"``) besides the ones added directly."""

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, str] | None = None,
        lazy_subcommands: Mapping[str, Sequence[str]] | None = None,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.lazy_commands = dict(lazy_commands or {})
        self.lazy_subcommands = {k: tuple(v) for k, v in (lazy_subcommands or {}).items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> click.Command:
        command = _import_command(self.lazy_commands[name])
        extra = self.lazy_subcommands.get(name, ())
        if extra and not isinstance(command, click.Group):
            raise TypeError(f"{self.lazy_commands[name]} is not a click group")
        for target in extra:
            assert isinstance(command, click.Group)
            command.add_command(_import_command(target))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, with unloaded commands' summaries read from source."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            summary = None
            if name not in self.commands:
                summary = source_summary(self.lazy_commands[name], limit)
            if summary is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                summary = command.get_short_help_str(limit)
            rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _import_command(target: str) -> click.Command:
    """The click command at ``"module:attribute"``."""
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


def source_summary(target: str, limit: int = 45) -> str | None:
    """The one-line help click would show for the command ``"module:attribute"``, read from the
    module's source without importing it; None if it cannot be read there with certainty
    (then import the command and ask it)."""
    module_name, _, attribute = target.partition(":")
    tree = _module_tree(module_name)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return _summary_of(node, limit)
    return None


@functools.cache
def _module_tree(module_name: str) -> ast.Module | None:
    """The parsed source of ``module_name`` (found, not imported); parsed once per process."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


#: Decorator arguments that do not change the listed summary (others, such as hidden= or
#: deprecated=, make :func:`source_summary` give up and the command be imported).
_NEUTRAL = {"cls", "context_settings", "invoke_without_command", "no_args_is_help", "epilog"}


def _summary_of(function: ast.FunctionDef, limit: int) -> str | None:
    texts: dict[str, str] = {}
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        if not ast.unparse(decorator.func).endswith((".command", ".group")):
            continue
        for keyword in decorator.keywords:
            value = keyword.value
            if keyword.arg in ("help", "short_help") and isinstance(value, ast.Constant):
                texts[keyword.arg] = str(value.value)
            elif keyword.arg not in _NEUTRAL:
                return None
    help_text = texts.get("help") or ast.get_docstring(function, clean=False)
    # click's own rule for the summary, applied to what the decorator would give it
    stand_in = click.Command(function.name, help=help_text, short_help=texts.get("short_help"))
    return stand_in.get_short_help_str(limit)
