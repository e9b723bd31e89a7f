"""``agentwallet demo``: the whole story on the embedded chain, in this process."""

from __future__ import annotations

import time

import click

from agentwallet.cli._common import CliContext, pass_app


@click.command("demo")
@pass_app
def demo(app: CliContext) -> None:
    """Run the demo: a 2-of-3 vault, two agents, payments, escalation, co-signing, rejection,
    revocation and the audit trail, on a fresh in-process chain (nothing to install or start).

    With --json: one document with the summary, the whole story (each section's text, tables
    and facts) and the audit trail."""
    from agentwallet.demo import run_demo

    started = time.monotonic()
    result = run_demo(_discard if app.json else click.echo)
    elapsed = time.monotonic() - started
    if app.json:
        app.emit({**result.to_json(), "seconds": round(elapsed, 1)})
    else:
        click.echo(f"\ndemo finished in {elapsed:.1f}s")


def _discard(text: str) -> None:
    """Under --json the story is in the document, not on the terminal."""
