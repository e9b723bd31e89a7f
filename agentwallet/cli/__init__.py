"""The ``agentwallet`` command line interface.

Every :class:`~agentwallet.errors.AgentWalletError` becomes ``error: <message>`` on stderr and
exit code 1, never a traceback (:func:`agentwallet.cli._common.click_error`, the one place).
Commands take the invocation's :class:`CliContext` with ``@pass_app`` and are clients of the
services (:class:`~agentwallet.vault.Vault`, :class:`~agentwallet.agent.AgentWallet`) and of
:mod:`agentwallet.protocol`; none touches web3. Command modules register at the bottom.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agentwallet.cli._common import (
    DEFAULT_NODE_URL,
    EXIT_ERROR,
    CliContext,
    ErrorReportingGroup,
    pass_app,
)
from agentwallet.keys import home_dir

__all__ = ["CliContext", "main"]


@click.group(cls=ErrorReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.version_option(package_name="agentwallet")
@click.pass_context
def main(ctx: click.Context, rpc: str | None, as_json: bool, signer: str | None) -> None:
    """agentwallet: AI agents spend from an on-chain vault within limits set by humans."""
    ctx.obj = CliContext(rpc=rpc, json=as_json, signer=signer)


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
def node_cmd(port: int, state: Path | None, block_time: float | None) -> None:
    """Run a local anvil node in the foreground until Ctrl-C."""
    from agentwallet.chain.node import start_anvil

    state = state or home_dir() / "node-state.json"
    node = start_anvil(port=port, state=state, block_time=block_time, quiet=False)
    click.echo(f"anvil listening on {node.url} (chain id 31337), state in {state}", err=True)
    try:
        code = node.wait()
    except KeyboardInterrupt:
        node.stop()
        code = 0
    if code not in (0, -2, -15):
        sys.exit(code)


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


# ---------------------------------------------------------------------------------------------
# Command registration. Other command modules define click commands/groups and are added here,
# explicitly, one line each (no try/except: a broken module must fail loudly):
# ---------------------------------------------------------------------------------------------
from agentwallet.cli import audit as _audit  # noqa: E402
from agentwallet.cli import demo as _demo  # noqa: E402
from agentwallet.cli import govern as _govern  # noqa: E402
from agentwallet.cli import keys as _keys  # noqa: E402
from agentwallet.cli import payments as _payments  # noqa: E402
from agentwallet.cli import typed_data as _typed_data  # noqa: E402
from agentwallet.cli import vault as _vault  # noqa: E402
from agentwallet.cli import wallet as _wallet  # noqa: E402

main.add_command(_keys.key)
main.add_command(_vault.faucet)
main.add_command(_vault.deploy)
main.add_command(_vault.fund)
main.add_command(_vault.agent)
main.add_command(_wallet.pay)
main.add_command(_payments.requests)
main.add_command(_payments.approve)
main.add_command(_payments.reject)
main.add_command(_payments.sign)
main.add_command(_payments.execute)
main.add_command(_payments.sign_payment)
main.add_command(_payments.pay_signed)
main.add_command(_govern.govern)
main.add_command(_govern.owner)
_vault.agent.add_command(_govern.agent_replace_key)
main.add_command(_typed_data.typed_data)
main.add_command(_demo.demo)
main.add_command(_audit.audit)
main.add_command(_audit.watch)
