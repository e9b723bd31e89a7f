"""Plain text for humans: tables, key/value lists, short addresses, spans of time, budgets.

Shared by the CLI, the demo and the audit reports; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agentwallet.units import format_amount

__all__ = ["budget", "kv_table", "label", "short", "span", "table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A left-aligned text table with a header underline::

    id  agent   amount
    --  ------  --------
    1   0xab…   0.5 ETH
    """
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    """Two columns, ``key  value``, keys right-padded; for "what you are about to sign"."""
    items = [(k, "" if v is None else str(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in items)


def short(address: str | None) -> str:
    """``0x1234…abcd`` (addresses) / ``0x12345678…abcdef`` (hashes) for tables; --json has
    the full value."""
    if not address:
        return "-"
    if len(address) == 42:
        return f"{address[:6]}…{address[-4:]}"
    if len(address) == 66:  # a transaction hash
        return f"{address[:10]}…{address[-6:]}"
    return address


def span(seconds: int) -> str:
    """A duration for humans: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def budget(amount: int, decimals: int, places: int = 4) -> str:
    """A refilling budget for humans: at most ``places`` decimals, rounded down (the exact
    base-unit value is in --json output)."""
    step = 10 ** max(decimals - places, 0)
    return format_amount(amount - amount % step, decimals)


def label(address: str | None, names: dict[str, str]) -> str:
    """``alice (0x70997970…)`` for known keys, else the short address."""
    if not address:
        return "-"
    name = names.get(address)
    return f"{name} ({short(address)})" if name else short(address)
