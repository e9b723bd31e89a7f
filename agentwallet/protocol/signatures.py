"""Owner signatures in the packed form AgentVault reads (the encoding Safe uses), and the rules
for choosing and checking them before anything is sent.

Each owner contributes 65 bytes ``r | s | v``, ordered by owner address strictly ascending:

- ``v`` 27 or 28: an EOA's ECDSA signature of the EIP-712 digest;
- ``v`` 0: an ERC-1271 owner (a contract, e.g. a Safe). ``r`` is its address left-padded to 32
  bytes, ``s`` the byte offset in the packed bytes where its own signature sits as a 32-byte length
  followed by the bytes. Those dynamic parts come after all the 65-byte parts;
- ``v`` 1: an owner whose on-chain approval of the stored request stands in for a signature
  (Safe's "approved hash"). ``r`` is its address, ``s`` zero. Only the request-execution paths
  accept it, and only while that approval counts (same owner epoch).

The vault reads the lowest ``threshold`` signers and nothing else, so the signatures sent must be
exactly the threshold's worth of current owners (:func:`select_current_signers`), each ECDSA
signature by its claimed signer (:func:`verify_claimed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from eth_account import Account
from hexbytes import HexBytes

from agentwallet.errors import AgentWalletError, SignatureMismatchError

__all__ = [
    "ClaimedSignature",
    "OwnerSignature",
    "choose_mixed",
    "pack_mixed",
    "pack_signatures",
    "select_current_signers",
    "verify_claimed",
]


@dataclass(frozen=True)
class OwnerSignature:
    """One owner's signature: ECDSA (65 bytes r|s|v) or, with ``contract``, whatever the owner
    contract's ``isValidSignature`` accepts; with ``approved``, no signature at all: the owner's
    on-chain approval of the request being executed (``signature`` is then ignored)."""

    signer: str
    signature: bytes
    contract: bool = False
    approved: bool = False


class ClaimedSignature(Protocol):
    """A signature that says who made it (``SignedApproval``, ``SignedPayment``)."""

    @property
    def signer(self) -> str: ...

    @property
    def signature(self) -> str: ...  # 0x hex

    @property
    def contract(self) -> bool: ...


_S = TypeVar("_S", bound=ClaimedSignature)


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
        if item.approved:
            head += int(item.signer, 16).to_bytes(32, "big") + bytes(32) + b"\x01"
        elif item.contract:
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


def select_current_signers(signed: Sequence[_S], owners: Iterable[str], threshold: int) -> list[_S]:
    """The threshold's worth of signatures the vault will read: current owners only, one each,
    lowest addresses first. (The vault checks the lowest ``threshold`` signers and nothing else,
    so a stale signature, e.g. by an owner removed since, must not be among them.) Too few
    raises :class:`AgentWalletError`."""
    current = set(owners)
    usable = {s.signer: s for s in signed if s.signer in current}
    if len(usable) < threshold:
        strangers = sorted({s.signer for s in signed} - current)
        note = f"; not owners (any more): {', '.join(strangers)}" if strangers else ""
        raise AgentWalletError(
            f"this needs {threshold} owner signatures, got {len(usable)}{note}: collect "
            "more from current owners"
        )
    return sorted(usable.values(), key=lambda s: int(s.signer, 16))[:threshold]


def choose_mixed(
    on_chain: Sequence[str], signed: Sequence[_S], owners: Sequence[str], threshold: int
) -> list[_S]:
    """The signatures needed next to ``on_chain`` (owners whose on-chain approval of the request
    counts; they go in as ``v == 1`` entries) to reach ``threshold``: current owners' only, none
    by an owner already counted on-chain. Too few raises :class:`AgentWalletError`."""
    others = [s for s in signed if s.signer not in on_chain]
    need = threshold - len(on_chain)
    if need <= 0:
        return []
    usable = {s.signer for s in others if s.signer in owners}
    if on_chain and len(usable) < need:
        raise AgentWalletError(
            f"this needs {threshold} owners: {len(on_chain)} approved on-chain and "
            f"{len(usable)} other current owners signed; collect {need - len(usable)} more "
            "signatures (or on-chain approvals)"
        )
    return select_current_signers(others, owners, need)


def pack_mixed(on_chain: Sequence[str], chosen: Iterable[ClaimedSignature]) -> bytes:
    """:func:`pack_signatures` of on-chain approvals (``v == 1``) and claimed signatures."""
    return pack_signatures(
        [OwnerSignature(o, b"", approved=True) for o in on_chain]
        + [OwnerSignature(s.signer, bytes(HexBytes(s.signature)), s.contract) for s in chosen]
    )


def verify_claimed(digest: bytes, chosen: Iterable[ClaimedSignature]) -> None:
    """Check each ECDSA signature is by its claimed signer over ``digest``
    (:class:`SignatureMismatchError` otherwise). ERC-1271 owners are left to the vault, which
    asks their contract."""
    for s in chosen:
        if s.contract:
            continue
        try:
            by = str(Account._recover_hash(digest, signature=bytes(HexBytes(s.signature))))
        except Exception:  # noqa: BLE001 - malformed bytes: eth_keys raises several types
            by = "nobody (not a valid 65-byte ECDSA signature)"
        if by != s.signer:
            raise SignatureMismatchError(
                f"signature says it is by {s.signer} but over this digest it is by {by}: "
                "it was made for another request, payment, vault or chain, or by another "
                "key; ask the owner to sign again"
            )


def packed(chosen: Iterable[ClaimedSignature]) -> bytes:
    """:func:`pack_signatures` of claimed signatures (hex text)."""
    return pack_signatures(
        OwnerSignature(s.signer, bytes(HexBytes(s.signature)), s.contract) for s in chosen
    )
