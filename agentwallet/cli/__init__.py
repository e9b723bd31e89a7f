"""The ``agentwallet`` command line interface.

Every :class:`~agentwallet.errors.AgentWalletError` becomes ``error: <message>`` on stderr and
exit code 1, never a traceback. Command modules register at the bottom of this file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from agentwallet.cli._common import ErrorReportingGroup
from agentwallet.keys import home_dir

DEFAULT_NODE_URL = "http://127.0.0.1:8545"


@dataclass
class CliContext:
    """What the global options leave in ``ctx.obj`` for every command."""

    rpc: str | None  #: None: embedded for `demo`, DEFAULT_NODE_URL for everything else
    json: bool
    signer: str | None  #: ``--as NAME``

    def rpc_or_node(self) -> str:
        return self.rpc or DEFAULT_NODE_URL


def emit(ctx: click.Context, data: dict[str, Any], text: str) -> None:
    """Print ``data`` as JSON under ``--json``, else ``text``."""
    obj: CliContext = ctx.obj
    click.echo(json.dumps(data, sort_keys=True) if obj.json else text)


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
@click.pass_context
def compile_cmd(ctx: click.Context, check: bool) -> None:
    """Compile contracts/ into agentwallet/artifacts/*.json."""
    from agentwallet._build import compiler

    if check:
        differing = compiler.check_artifacts()
        emit(
            ctx,
            {"up_to_date": not differing, "differing": differing},
            "artifacts are up to date"
            if not differing
            else "artifacts differ from a fresh compile: "
            + ", ".join(differing)
            + "\nrun `agentwallet compile` and commit agentwallet/artifacts/",
        )
        if differing:
            sys.exit(1)
        return
    artifacts = compiler.compile_all(write=True)
    paths = [str(compiler.ARTIFACTS_DIR / f"{name}.json") for name in artifacts]
    emit(ctx, {"artifacts": paths}, "\n".join(f"wrote {p}" for p in paths))


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
@click.pass_context
def chain_cmd(ctx: click.Context) -> None:
    """Show the chain: id, client, head block, whether it is a development chain."""
    from agentwallet.chain import connect

    obj: CliContext = ctx.obj
    chain = connect(obj.rpc_or_node())
    data = {
        "url": chain.url or "embedded",
        "chain_id": chain.chain_id,
        "client_version": chain.client_version,
        "block_number": chain.block_number(),
        "development": chain.is_development,
    }
    emit(ctx, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


# ---------------------------------------------------------------------------------------------
# Command registration. Other command modules define click commands/groups and are added here,
# explicitly, one line each (no try/except: a broken module must fail loudly):
# ---------------------------------------------------------------------------------------------
from agentwallet.cli import audit as _audit  # noqa: E402
from agentwallet.cli import demo as _demo  # noqa: E402
from agentwallet.cli import keys as _keys  # noqa: E402
from agentwallet.cli import payments as _payments  # noqa: E402
from agentwallet.cli import vault as _vault  # noqa: E402

main.add_command(_keys.key)
main.add_command(_vault.faucet)
main.add_command(_vault.deploy)
main.add_command(_vault.fund)
main.add_command(_vault.agent)
main.add_command(_payments.pay)
main.add_command(_payments.requests)
main.add_command(_payments.approve)
main.add_command(_payments.reject)
main.add_command(_payments.sign)
main.add_command(_payments.execute)
main.add_command(_payments.sign_payment)
main.add_command(_payments.pay_signed)
main.add_command(_demo.demo)
main.add_command(_audit.audit)
main.add_command(_audit.watch)
