"""Payment references: the ``bytes32 ref`` every payment and request carries (an invoice id, or
the idempotency key of :meth:`AgentWallet.pay <agentwallet.agent.AgentWallet.pay>`)."""

from __future__ import annotations

from eth_utils.crypto import keccak

from agentwallet.protocol.constants import ZERO_REF

__all__ = ["ref_text", "to_ref"]


def to_ref(ref: str | bytes | None) -> bytes:
    """A payment reference as bytes32: None -> zeros; ``0x`` + 64 hex -> those bytes; other
    text -> utf-8 right-padded if <= 32 bytes, else its keccak; bytes likewise."""
    if ref is None:
        return ZERO_REF
    if isinstance(ref, str):
        if len(ref) == 66 and ref.startswith("0x"):
            try:
                return bytes.fromhex(ref[2:])
            except ValueError:
                pass
        raw = ref.encode()
    else:
        raw = bytes(ref)
    return raw.ljust(32, b"\x00") if len(raw) <= 32 else keccak(raw)


def ref_text(ref: bytes) -> str:
    """bytes32 ref -> its text if it is printable utf-8 padded with zeros, else 0x hex."""
    stripped = bytes(ref).rstrip(b"\x00")
    if stripped and b"\x00" not in stripped:
        try:
            text = stripped.decode()
        except UnicodeDecodeError:
            text = ""
        if text and text.isprintable():
            return text
    return "0x" + bytes(ref).hex() if stripped else ""
