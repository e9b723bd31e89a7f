"""Owner signatures in the packed form AgentVault reads (the encoding Safe uses).

Each owner contributes 65 bytes ``r | s | v``, ordered by owner address strictly ascending:

- ``v`` 27 or 28: an EOA's ECDSA signature of the EIP-712 digest;
- ``v`` 0: an ERC-1271 owner (a contract, e.g. a Safe). ``r`` is its address left-padded to 32
  bytes, ``s`` the byte offset in the packed bytes where its own signature sits as a 32-byte length
  followed by the bytes. Those dynamic parts come after all the 65-byte parts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentwallet.errors import AgentWalletError

__all__ = ["OwnerSignature", "pack_signatures"]


@dataclass(frozen=True)
class OwnerSignature:
    """One owner's signature: ECDSA (65 bytes r|s|v) or, with ``contract``, whatever the owner
    contract's ``isValidSignature`` accepts."""

    signer: str
    signature: bytes
    contract: bool = False


def pack_signatures(signatures: Iterable[OwnerSignature | tuple[str, bytes]]) -> bytes:
    """Sort by signer and pack for ``executeWithSignatures`` / ``payWithSignatures``.

    Plain ``(signer, signature)`` pairs are ECDSA signatures. Raises :class:`AgentWalletError`
    for a malformed ECDSA signature or the same signer twice.
    """
    items = [
        s if isinstance(s, OwnerSignature) else OwnerSignature(s[0], bytes(s[1]))
        for s in signatures
    ]
    items.sort(key=lambda s: int(s.signer, 16))
    for a, b in zip(items, items[1:], strict=False):
        if int(a.signer, 16) == int(b.signer, 16):
            raise AgentWalletError(f"two signatures by {b.signer}: each owner signs once")
    head = bytearray()
    tail = bytearray()
    static_end = 65 * len(items)
    for item in items:
        if item.contract:
            offset = static_end + len(tail)
            head += int(item.signer, 16).to_bytes(32, "big") + offset.to_bytes(32, "big") + b"\x00"
            tail += len(item.signature).to_bytes(32, "big") + bytes(item.signature)
        else:
            if len(item.signature) != 65:
                raise AgentWalletError(
                    f"signature by {item.signer} has {len(item.signature)} bytes, expected 65 "
                    "(r|s|v); for a contract owner (ERC-1271) pass "
                    "OwnerSignature(..., contract=True)"
                )
            head += bytes(item.signature)
    return bytes(head + tail)
