"""Addresses as agentwallet accepts them: 0x + 40 hex digits, EIP-55 checked when mixed case."""

from __future__ import annotations

from eth_typing import ChecksumAddress, HexAddress, HexStr
from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from agentwallet.errors import InvalidAddressError

__all__ = ["as_checksum", "checksum"]


def checksum(address: str, what: str = "address") -> str:
    """``address`` in EIP-55 form; :class:`InvalidAddressError` if it is not an address."""
    body = address[2:] if isinstance(address, str) and address.startswith("0x") else ""
    mixed = body != body.lower() and body != body.upper()
    if (
        not isinstance(address, str)
        or not is_address(address)
        or (mixed and not is_checksum_address(address))
    ):
        raise InvalidAddressError(
            f"{address!r} is not a valid {what}: give 0x followed by 40 hex digits "
            "(with a correct EIP-55 checksum if mixed case)"
        )
    return str(to_checksum_address(address))


def as_checksum(address: str) -> ChecksumAddress:
    """:func:`checksum`, typed as eth-typing's ``ChecksumAddress`` (what web3 calls take)."""
    return ChecksumAddress(HexAddress(HexStr(checksum(address))))
