"""``agentwallet demo``: the whole story on the embedded chain, in this process."""

from __future__ import annotations

import time

import click

from agentwallet.cli._common import obj_of
from agentwallet.cli._output import emit_json


@click.command("demo")
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the demo: a 2-of-3 vault, two agents, payments, escalation, co-signing, rejection,
    revocation and the audit trail, on a fresh in-process chain (nothing to install or start)."""
    from agentwallet.demo import run_demo

    obj = obj_of(ctx)
    started = time.monotonic()
    lines: list[str] = []
    result = run_demo(lines.append if obj.json else click.echo)
    elapsed = time.monotonic() - started
    if obj.json:
        emit_json({**result.to_json(), "seconds": round(elapsed, 1)})
    else:
        click.echo(f"\ndemo finished in {elapsed:.1f}s")
