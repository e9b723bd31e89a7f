"""The ``agentwallet`` command line interface.

Every :class:`~agentwallet.errors.AgentWalletError` becomes ``error: <message>`` on stderr and
exit code 1, never a traceback (:func:`agentwallet.cli._common.click_error`, the one place).
Commands take the invocation's :class:`CliContext` with ``@pass_app`` and are clients of the
services (:class:`~agentwallet.vault.Vault`, :class:`~agentwallet.agent.AgentWallet`) and of
:mod:`agentwallet.protocol`; none touches web3. Command modules register in :data:`COMMANDS`
and are imported only when they run, so ``--help``, ``--version`` and usage errors start in a
fraction of a second (:mod:`agentwallet.cli._lazy`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agentwallet import DISTRIBUTION
from agentwallet.cli._common import DEFAULT_NODE_URL, EXIT_ERROR, CliContext, pass_app
from agentwallet.cli._lazy import LazyGroup

__all__ = ["COMMANDS", "DISTRIBUTION", "SUBCOMMANDS", "CliContext", "main"]

# ---------------------------------------------------------------------------------------------
# Command registration: name -> "module:attribute", one line each. The module is imported when
# the command runs (or its --help is asked for), never to start the CLI; `agentwallet --help`
# lists it with the summary read from its source. A broken entry fails loudly when used (and in
# tests/cli/test_startup.py). compile, node and chain are defined below, in this module.
# ---------------------------------------------------------------------------------------------
COMMANDS: dict[str, str] = {
    "key": "agentwallet.cli.keys:key",
    "faucet": "agentwallet.cli.vault:faucet",
    "deploy": "agentwallet.cli.vault:deploy",
    "fund": "agentwallet.cli.vault:fund",
    "agent": "agentwallet.cli.vault:agent",
    "pay": "agentwallet.cli.wallet:pay",
    "requests": "agentwallet.cli.payments:requests",
    "approve": "agentwallet.cli.payments:approve",
    "reject": "agentwallet.cli.payments:reject",
    "sign": "agentwallet.cli.payments:sign",
    "execute": "agentwallet.cli.payments:execute",
    "sign-payment": "agentwallet.cli.payments:sign_payment",
    "pay-signed": "agentwallet.cli.payments:pay_signed",
    "govern": "agentwallet.cli.govern:govern",
    "owner": "agentwallet.cli.govern:owner",
    "typed-data": "agentwallet.cli.typed_data:typed_data",
    "cancel": "agentwallet.cli.wallet:cancel",
    "invalidate-nonces": "agentwallet.cli.wallet:invalidate_nonces",
    "relay": "agentwallet.cli.wallet:relay",
    "demo": "agentwallet.cli.demo:demo",
    "audit": "agentwallet.cli.audit:audit",
    "watch": "agentwallet.cli.audit:watch",
    "console": "agentwallet.cli.console:console",
    "mcp": "agentwallet.cli.agents:mcp",
    "fetch": "agentwallet.cli.agents:fetch",
    "facilitator": "agentwallet.cli.agents:facilitator",
}
#: Commands of a group defined in another module: group name -> its extra "module:attribute"
#: commands, added when the group is loaded.
SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "agent": (
        "agentwallet.cli.govern:agent_replace_key",
        "agentwallet.cli.wallet:rotate_key",
        "agentwallet.cli.delegation:delegate",
        "agentwallet.cli.delegation:sub_limits",
        "agentwallet.cli.delegation:tree",
        "agentwallet.cli.delegation:recipient_budget",
        "agentwallet.cli.scoped_calls:allow_call",
        "agentwallet.cli.scoped_calls:revoke_call",
        "agentwallet.cli.scoped_calls:agent_call",
    ),
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    lazy_subcommands=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--rpc",
    envvar="AGENTWALLET_RPC",
    default=None,
    metavar="URL",
    help="JSON-RPC URL, or 'embedded' (default: embedded for demo, else "
    f"{DEFAULT_NODE_URL}). Env: AGENTWALLET_RPC.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("--as", "signer", default=None, metavar="NAME", help="Sign as this named key.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show the version and exit.",
)
@click.pass_context
def main(ctx: click.Context, rpc: str | None, as_json: bool, signer: str | None) -> None:
    """agentwallet: AI agents spend from an on-chain vault within limits set by humans."""
    ctx.obj = CliContext(rpc=rpc, json=as_json, signer=signer)


def _print_version(ctx: click.Context) -> None:
    """``agentwallet-vault, version X``: the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        click.echo(f"{DISTRIBUTION}, version {version(DISTRIBUTION)}")
    except PackageNotFoundError:
        click.echo(
            f"error: the distribution {DISTRIBUTION} is not installed (installed under its old "
            "name agentwallet?): run `pip uninstall agentwallet` and `pip install -e .` in the "
            "project",
            err=True,
        )
        ctx.exit(EXIT_ERROR)
    ctx.exit()


@main.command("compile")
@click.option("--check", is_flag=True, help="Exit 1 if the committed artifacts are out of date.")
@pass_app
def compile_cmd(app: CliContext, check: bool) -> None:
    """Compile contracts/ into agentwallet/artifacts/*.json."""
    from agentwallet._build import compiler

    if check:
        differing = compiler.check_artifacts()
        app.emit(
            {"up_to_date": not differing, "differing": differing},
            "artifacts are up to date"
            if not differing
            else "artifacts differ from a fresh compile: "
            + ", ".join(differing)
            + "\nrun `agentwallet compile` and commit agentwallet/artifacts/",
        )
        if differing:
            sys.exit(EXIT_ERROR)
        return
    artifacts = compiler.compile_all(write=True)
    paths = [str(compiler.ARTIFACTS_DIR / f"{name}.json") for name in artifacts]
    app.emit({"artifacts": paths}, "\n".join(f"wrote {p}" for p in paths))


@main.command("node")
@click.option("--port", default=8545, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="State file kept across restarts (default: $AGENTWALLET_HOME/node-state.json).",
)
@click.option("--block-time", type=float, default=None, help="Mine every S seconds.")
@click.option(
    "--log",
    "log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File for anvil's output, rewritten each start, owner-only "
    "(default: $AGENTWALLET_HOME/node.log).",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show anvil's output here instead (its banner lists the development private keys).",
)
def node_cmd(
    port: int, state: Path | None, block_time: float | None, log: Path | None, verbose: bool
) -> None:
    """Run a local anvil node in the foreground until Ctrl-C, `kill` (SIGTERM) or the terminal
    closing (SIGHUP); anvil stops with it and writes its state.

    Anvil's output (the development accounts' private keys, a line per RPC call) goes to a log
    file, not the terminal, unless --verbose."""
    from agentwallet.chain.node import start_anvil
    from agentwallet.keys import home_dir

    state = state or home_dir() / "node-state.json"
    log = None if verbose else (log or home_dir() / "node.log")
    node = start_anvil(
        port=port, state=state, block_time=block_time, quiet=False, log=log, die_with_parent=True
    )
    where = f", output in {log}" if log else ""
    stopped_by = node.serve(
        ready=lambda: click.echo(
            f"anvil (pid {node.process.pid}) listening on {node.url} (chain id 31337), "
            f"state in {state}{where}; stop with Ctrl-C",
            err=True,
        )
    )
    if stopped_by is None:
        code = node.process.returncode
        click.echo(f"error: anvil exited by itself with code {code}", err=True)
        sys.exit(code or EXIT_ERROR)
    click.echo("anvil stopped", err=True)


@main.command("chain")
@pass_app
def chain_cmd(app: CliContext) -> None:
    """Show the chain: id, client, head block, whether it is a development chain."""
    chain = app.chain
    data = {
        "url": chain.url or "embedded",
        "chain_id": chain.chain_id,
        "client_version": chain.client_version,
        "block_number": chain.block_number(),
        "development": chain.is_development,
    }
    app.emit(data, "\n".join(f"{k}: {v}" for k, v in data.items()))
