"""Formatting shared by the audit reports: token amounts, times, refs, and rows rendered as an
aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from agentwallet._text import table
from agentwallet.audit.index import AuditIndex, TokenMeta
from agentwallet.protocol.constants import ETH
from agentwallet.protocol.refs import ref_text

__all__ = ["Amounts", "format_units", "iso", "ref_of", "render", "rows_to_dicts"]


def format_units(amount: int, decimals: int | None) -> str:
    """Base units → token units text, trailing zeros trimmed ("0.5"); raw if decimals unknown."""
    if decimals is None or decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**decimals)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + str(fraction).rjust(decimals, "0").rstrip("0")


def iso(ts: int | None) -> str:
    """A block time as UTC text ("2026-11-30 03:37:00")."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def ref_of(value: Any) -> str:
    """An event's ``bytes32 ref`` (0x-hex as decoded) as an auditor reads it: its text if it is
    printable utf-8 padded with zeros (an invoice id), else 0x-hex; "" for no ref."""
    if not isinstance(value, str) or not value.startswith("0x"):
        return ""
    return ref_text(bytes.fromhex(value[2:]))


class Amounts:
    """Formats amounts with the token symbols and decimals cached in the index."""

    def __init__(self, index: AuditIndex, chain_id: int) -> None:
        self.index = index
        self.chain_id = chain_id
        self._cache: dict[str, TokenMeta] = {}

    def meta(self, token: str | None) -> TokenMeta:
        token = token or ETH
        if token not in self._cache:
            self._cache[token] = self.index.token(self.chain_id, token)
        return self._cache[token]

    def units(self, amount: int, token: str | None) -> str:
        """``amount`` in token units, without the symbol ("0.5")."""
        return format_units(amount, self.meta(token).decimals)

    def text(self, amount: int, token: str | None) -> str:
        meta = self.meta(token)
        return f"{format_units(amount, meta.decimals)} {meta.symbol}"


def rows_to_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [asdict(r) if hasattr(r, "__dataclass_fields__") else dict(r) for r in rows]


def _flat(value: Any, sep: str) -> Any:
    """Lists (approvers, signers) as one cell: CSV and tables have no nesting."""
    if isinstance(value, list | tuple):
        return sep.join(str(v) for v in value)
    return value


def render(rows: Sequence[Any], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """Rows (dataclasses or dicts) as an aligned text table, JSON (lists stay lists) or CSV
    (lists joined with ";")."""
    dicts = rows_to_dicts(rows)
    if fmt == "json":
        return json.dumps(dicts, indent=2, default=str)
    cols = list(columns or (dicts[0].keys() if dicts else []))
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: _flat(v, ";") for k, v in d.items()} for d in dicts])
        return buf.getvalue().rstrip("\n")
    if not dicts:
        return "(none)"
    return table(cols, [[_flat(d.get(c), ", ") for c in cols] for d in dicts])
