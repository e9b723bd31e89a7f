"""``agentwallet console``: serve the co-signer console for owners' browser wallets."""

from __future__ import annotations

import click

from agentwallet.cli._common import CliContext, names_by_address, pass_app


@click.command("console")
@click.option(
    "--vault",
    "vault_names",
    multiple=True,
    metavar="NAME_OR_ADDRESS",
    help="A vault to show (repeat for several; default: every vault recorded for the chain).",
)
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1.")
@pass_app
def console(app: CliContext, vault_names: tuple[str, ...], port: int) -> None:
    """Serve the co-signer console on http://127.0.0.1:PORT/ until Ctrl-C.

    Owners open it in the browser that has their wallet (MetaMask or any EIP-1193 wallet),
    connect, and approve, sign, reject or execute requests, or pause and revoke, with their own
    keys: the console builds what is signed and shows it first; it holds no key.
    """
    from agentwallet.console import Console, ConsoleError, create_app
    from agentwallet.console.server import check_port, serve
    from agentwallet.keys import home_dir

    check_port(port)
    names = vault_names or tuple(app.deployments.vaults())
    if not names:
        raise ConsoleError(
            f"no vault is recorded for chain {app.chain.chain_id}: deploy one "
            "(`agentwallet deploy`) or pass --vault ADDRESS"
        )
    vaults = {name: app.vault(name) for name in names}
    served = Console(app.chain, vaults, home_dir(), names_by_address())
    url = f"http://127.0.0.1:{port}/"
    app.emit(
        {
            "url": url,
            "chain_id": app.chain.chain_id,
            "vaults": {n: v.address for n, v in vaults.items()},
        },
        f"agentwallet console on {url} (chain {app.chain.chain_id}; vaults: "
        + ", ".join(f"{n} {v.address}" for n, v in vaults.items())
        + "); Ctrl-C stops it",
    )
    serve(create_app(served), port)
