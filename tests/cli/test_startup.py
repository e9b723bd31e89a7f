"""The CLI starts without the Ethereum stack: ``--help``, ``--version`` and usage errors import
no command module and none of web3 / eth-account / eth-utils (seconds of imports), while every
command's own ``--help`` still works and the listing says what the commands say."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

import agentwallet
from agentwallet.cli import COMMANDS, DISTRIBUTION, main
from agentwallet.cli._lazy import source_summary

#: Top-level packages that must not be imported to start the CLI.
HEAVY = {"web3", "eth_account", "eth_utils", "eth_abi", "eth_keys", "hexbytes", "eth_typing"}


def _run_with_importtime(*args: str, code: str | None = None) -> tuple[int, str, set[str]]:
    """Run ``python -X importtime -m agentwallet ARGS`` (or ``-c CODE``); return the exit code,
    the output without the import lines, and the top-level packages imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWALLET_")}
    env["COLUMNS"] = "80"
    target = ["-c", code] if code is not None else ["-m", "agentwallet", *args]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *target],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    imported, other = set(), []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[1].strip()
            imported.add(name.split(".")[0])
        else:
            other.append(line)
    return proc.returncode, proc.stdout + "\n".join(other), imported


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("--help",), 0, "Commands:"),
        (("-h",), 0, "Commands:"),
        (("--version",), 0, f"{DISTRIBUTION}, version"),
        (("no-such-command",), 2, "No such command 'no-such-command'"),
        (("--no-such-option",), 2, "No such option '--no-such-option'"),
        ((), 2, "Usage: "),
    ],
)
def test_help_version_and_usage_errors_do_not_import_web3(
    args: tuple[str, ...], code: int, needle: str
) -> None:
    exit_code, output, imported = _run_with_importtime(*args)
    assert exit_code == code, output
    assert needle in output
    assert not HEAVY & imported, sorted(HEAVY & imported)
    assert "agentwallet" in imported and "click" in imported


def test_importing_the_package_does_not_import_web3_until_asked() -> None:
    exit_code, output, imported = _run_with_importtime(
        code="import agentwallet; print(agentwallet.AmountError.__name__, agentwallet.ETH)"
    )
    assert exit_code == 0 and "AmountError" in output, output
    assert not HEAVY & imported
    exit_code, output, imported = _run_with_importtime(
        code="from agentwallet import Vault; print(Vault.__module__)"
    )
    assert exit_code == 0 and "agentwallet.vault" in output, output
    assert "web3" in imported  # the lazy name loads its module on first use


def test_every_public_name_resolves() -> None:
    for name in agentwallet.__all__:
        assert getattr(agentwallet, name) is not None, name
    assert set(agentwallet.__all__) <= set(dir(agentwallet))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        agentwallet.Nope  # noqa: B018


def test_the_version_is_the_distributions() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"{DISTRIBUTION}, version {version(DISTRIBUTION)}"
    assert agentwallet.__version__ == version(DISTRIBUTION)


def test_the_command_table_loads_and_lists_what_the_commands_say() -> None:
    """Each lazy entry is a click command of that name, and the summary `--help` shows for it
    without importing it is exactly what click shows once it is imported."""
    assert {"key", "deploy", "pay", "approve", "demo", "audit", "node", "chain"} <= set(
        main.list_commands(click.Context(main))
    )
    for name, target in COMMANDS.items():
        command = main.get_command(click.Context(main), name)
        assert isinstance(command, click.Command), target
        assert command.name == name, target
        for limit in (45, 60):
            assert source_summary(target, limit) == command.get_short_help_str(limit), target


def test_the_listing_is_the_same_before_and_after_loading() -> None:
    """The subprocess lists commands from source; in this process they are all imported."""
    exit_code, output, _ = _run_with_importtime("--help")
    assert exit_code == 0
    for name in COMMANDS:
        main.get_command(click.Context(main), name)
    loaded = CliRunner().invoke(main, ["--help"], terminal_width=78)  # click: min(columns, 80) - 2
    assert loaded.exit_code == 0
    listing = output[output.index("Commands:") :].strip()
    assert listing == loaded.output[loaded.output.index("Commands:") :].strip()


def _all_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _all_commands(command, (*path, name))
    return found


def test_every_command_and_subcommand_has_help() -> None:
    commands = _all_commands(main)
    assert len(commands) > len(COMMANDS)
    runner = CliRunner()
    for path, _command in commands:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: main {' '.join(path)}" in result.output, path


def test_a_command_help_works_from_a_fresh_process() -> None:
    exit_code, output, imported = _run_with_importtime("deploy", "--help")
    assert exit_code == 0, output
    assert "Usage: python -m agentwallet deploy" in output and "--replace" in output


def test_version_without_the_distribution_installed_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A venv that installed this checkout under the old name `agentwallet`: one line, exit 1."""
    import importlib.metadata

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: the distribution {DISTRIBUTION} is not installed (installed under its old name "
        "agentwallet?): run `pip uninstall agentwallet` and `pip install -e .` in the project"
    ]
