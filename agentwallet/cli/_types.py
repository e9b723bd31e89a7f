"""Click parameter types for the domain's values: addresses, key names, amounts, durations.

A value that does not parse fails like every other agentwallet error (one line ``error: ...``,
exit 1, see :func:`agentwallet.cli._common.click_error`), with the SDK's own message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import click

from agentwallet.errors import AgentWalletError, AmountError, InvalidAddressError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import TokenInfo
from agentwallet.units import parse_amount, parse_duration

__all__ = [
    "ADDRESS",
    "AMOUNT",
    "DURATION",
    "KEY_OR_ADDRESS",
    "Address",
    "Amount",
    "Duration",
    "KeyOrAddress",
    "TokenAmount",
]

#: More decimals than any token has: syntax and sign are checked before the token is known.
_ANY_DECIMALS = 77


_V = TypeVar("_V")


class _SdkType(click.ParamType[_V, Any]):
    """A parameter type that parses with the SDK and reports its errors as the CLI does."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> _V:
        from agentwallet.cli._common import click_error

        try:
            return self.parse(value)
        except AgentWalletError as exc:
            raise click_error(exc) from None

    def parse(self, value: Any) -> _V:
        raise NotImplementedError


class Address(_SdkType[str]):
    """``0x`` + 40 hex digits (EIP-55 checked when mixed case) -> the checksummed address."""

    name = "address"

    def parse(self, value: Any) -> str:
        return checksum(str(value).strip())


class KeyOrAddress(_SdkType[str]):
    """A 0x address, or the name of a key in the keystore -> its checksummed address."""

    name = "address_or_key"

    def parse(self, value: Any) -> str:
        from agentwallet.keys import KeyStore

        text = str(value).strip()
        if text.lower().startswith("0x"):
            try:
                return checksum(text)
            except InvalidAddressError:
                raise InvalidAddressError(
                    f"{value!r} is not a valid address: give 0x plus 40 hex digits (with a "
                    "correct checksum if mixed-case) or the name of a key from "
                    "`agentwallet key list`"
                ) from None
        return KeyStore().info(text).address


@dataclass(frozen=True)
class TokenAmount:
    """An amount typed in token units (``"0.5"``), checked for syntax and sign; the token's
    decimals come later with :meth:`base_units`."""

    text: str

    def base_units(self, token: TokenInfo, what: str = "amount", *, positive: bool = True) -> int:
        """The amount in ``token``'s base units (greater than zero if ``positive``)."""
        amount = parse_amount(self.text, token.decimals)
        if positive and amount <= 0:
            raise AmountError(f"{what} must be greater than 0 {token.symbol}, got {self.text!r}")
        return amount

    def __str__(self) -> str:
        return self.text


class Amount(_SdkType["TokenAmount | int"]):
    """An amount in token units: a :class:`TokenAmount`, or base units of ``token`` when the
    token is known up front (``Amount(ETH_TOKEN)``; zero allowed unless ``positive``)."""

    name = "amount"

    def __init__(self, token: TokenInfo | None = None, *, positive: bool = False) -> None:
        self.token = token
        self.positive = positive

    def parse(self, value: Any) -> TokenAmount | int:
        if isinstance(value, TokenAmount | int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        parse_amount(text, _ANY_DECIMALS)  # syntax and sign
        amount = TokenAmount(text)
        if self.token is None:
            return amount
        return amount.base_units(self.token, positive=self.positive)


class Duration(_SdkType[int]):
    """``45s``, ``30m``, ``12h``, ``1d``, ``2w`` or plain seconds -> seconds."""

    name = "duration"

    def parse(self, value: Any) -> int:
        return value if isinstance(value, int) else parse_duration(str(value))


ADDRESS = Address()
KEY_OR_ADDRESS = KeyOrAddress()
AMOUNT = Amount()
DURATION = Duration()
