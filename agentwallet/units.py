"""Amounts and durations at the human edge: ``"0.5"`` ETH <-> ``500000000000000000`` wei.

Inside agentwallet every amount is an ``int`` in the token's base units; only text typed or read
by a human goes through :func:`parse_amount` / :func:`format_amount` with the token's decimals.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agentwallet.errors import AmountError, DurationError
from agentwallet.protocol.constants import ETH

__all__ = [
    "ETH",
    "format_amount",
    "format_duration",
    "parse_amount",
    "parse_duration",
    "to_decimal",
]

_AMOUNT_RE = re.compile(r"^([0-9]+)(?:\.([0-9]*))?$|^\.([0-9]+)$")
_DURATION_RE = re.compile(r"^([0-9]+) *([smhdw]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_amount(value: str | int | Decimal, decimals: int) -> int:
    """Turn a human amount (``"1.5"``, ``Decimal("2")``, ``3``) into base units.

    Raises :class:`AmountError` for negative values, malformed text (``"1e18"``, ``"1,5"``,
    ``""``), and more fractional digits than the token's ``decimals``. Surrounding whitespace is
    ignored. Zero is accepted; rejecting it is the caller's choice.
    """
    if decimals < 0:
        raise AmountError(f"decimals must be >= 0, not {decimals}")
    if isinstance(value, bool):
        raise AmountError(f"{value!r} is not an amount: give a number like 1.5")
    if isinstance(value, int):
        if value < 0:
            raise AmountError(f"amount {value} is negative: amounts must be positive")
        return int(value * 10**decimals)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError(f"amount {value} is not a finite number")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise AmountError(f"{value!r} is not an amount: give text like '1.5' or an int")
    if text.startswith("-"):
        raise AmountError(f"amount {text!r} is negative: amounts must be positive")
    match = _AMOUNT_RE.match(text)
    if match is None:
        raise AmountError(
            f"{text!r} is not an amount: use digits with an optional decimal point, like 0.25 "
            "(no signs, exponents, commas or units)"
        )
    whole = match.group(1) or "0"
    fraction = (match.group(2) if match.group(1) is not None else match.group(3)) or ""
    stripped = fraction.rstrip("0")
    if len(stripped) > decimals:
        raise AmountError(
            f"{text!r} has {len(stripped)} decimal places but the token has only {decimals}: "
            f"round it to {decimals} places"
        )
    scaled = int(whole) * 10**decimals
    return int(scaled + (int(stripped.ljust(decimals, "0")) if decimals else 0))


def format_amount(amount: int, decimals: int) -> str:
    """Base units to human text with trailing zeros trimmed: ``format_amount(5 * 10**17, 18)``
    is ``"0.5"``, ``format_amount(10**6, 6)`` is ``"1"``. Negative amounts keep their sign."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**decimals)
    if decimals == 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


def parse_duration(text: str) -> int:
    """``"45s"``, ``"30m"``, ``"12h"``, ``"1d"``, ``"2w"`` or plain seconds (``"3600"``) -> seconds.

    Raises :class:`DurationError` for anything else (negative, fractional, unknown unit).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise DurationError(f"duration {text} is negative")
        return text
    match = _DURATION_RE.match(str(text).strip().lower())
    if match is None:
        raise DurationError(
            f"{text!r} is not a duration: use a whole number with an optional unit s, m, h, d "
            "or w, like 30m or 1d"
        )
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """Seconds to the largest exact unit: 86400 -> ``"1d"``, 90 -> ``"90s"``."""
    for unit in ("w", "d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def to_decimal(amount: int, decimals: int) -> Decimal:
    """Base units to an exact :class:`Decimal` in token units."""
    try:
        return Decimal(amount).scaleb(-decimals)
    except InvalidOperation as exc:  # pragma: no cover - ints always convert
        raise AmountError(str(exc)) from None
