from decimal import Decimal

import pytest

from agentwallet.errors import AmountError, DurationError
from agentwallet.units import format_amount, parse_amount, parse_duration


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("1", 18, 10**18),
        ("0.5", 18, 5 * 10**17),
        (".5", 6, 500_000),
        ("1.", 6, 10**6),
        ("  250  ", 6, 250 * 10**6),
        ("0.000001", 6, 1),
        ("1.500000", 6, 1_500_000),  # trailing zeros beyond nothing are fine
        ("1.0000000", 6, 10**6),  # zeros past the token's decimals are not precision
        ("0", 6, 0),
        ("007", 0, 7),
        (Decimal("2.25"), 6, 2_250_000),
        (3, 6, 3 * 10**6),
    ],
)
def test_parse_amount_accepts_plain_decimals(text: object, decimals: int, expected: int) -> None:
    assert parse_amount(text, decimals) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "-0.5",
        "1e18",
        "1E6",
        "1,5",
        "",
        " ",
        "abc",
        "1.2.3",
        "0x10",
        "+1",
        "1 ETH",
        "nan",
        "∞",
        "١",
    ],
)
def test_parse_amount_rejects_malformed_or_negative(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, 18)


def test_parse_amount_rejects_more_decimals_than_the_token() -> None:
    with pytest.raises(AmountError, match="6 decimal places but the token has only 6|has only 6"):
        parse_amount("0.0000001", 6)
    with pytest.raises(AmountError):
        parse_amount(Decimal("1.0000001"), 6)
    with pytest.raises(AmountError):
        parse_amount(-1, 6)
    with pytest.raises(AmountError):
        parse_amount(Decimal("-1"), 6)
    with pytest.raises(AmountError):
        parse_amount(True, 6)


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (5 * 10**17, 18, "0.5"),
        (10**6, 6, "1"),
        (1, 6, "0.000001"),
        (0, 18, "0"),
        (1_234_500, 6, "1.2345"),
        (7, 0, "7"),
        (-5 * 10**5, 6, "-0.5"),
    ],
)
def test_format_amount_trims_trailing_zeros(amount: int, decimals: int, text: str) -> None:
    assert format_amount(amount, decimals) == text


def test_format_parse_round_trip() -> None:
    for amount in (0, 1, 999_999, 10**6, 123_456_789_012):
        assert parse_amount(format_amount(amount, 6), 6) == amount


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        ("2w", 1_209_600),
        ("3600", 3600),
        (" 1D ", 86400),
        ("0", 0),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1d", "1.5h", "1y", "d", "1 day", "10ms"])
def test_parse_duration_rejects_bad_text(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)
