"""Off-chain approvals the console collects until a request has the threshold's worth.

They are not secrets (anyone may submit them once the threshold is reached), but each one is
checked before it is kept: the signer is a current owner, and the signature recovers to that
signer over the vault's own digest of the request (``paymentRequestDigest``,
``proposalDigest``, ``callRequestDigest``). They live in one small JSON file per chain under
``$AGENTWALLET_HOME/console/``, keyed by vault, request id and digest, so a restart of the
console loses nothing and a signature of another request, vault or chain never counts.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from eth_account import Account
from hexbytes import HexBytes

from agentwallet.errors import AgentWalletError, SignatureMismatchError
from agentwallet.protocol.addresses import checksum

__all__ = ["SignatureStore", "recover_signer"]


def recover_signer(digest: bytes, signature: str) -> str:
    """The address that made the 65-byte ECDSA ``signature`` (0x hex) over ``digest``; a
    malformed signature raises :class:`SignatureMismatchError`."""
    try:
        raw = bytes(HexBytes(signature))
    except (ValueError, TypeError):
        raise SignatureMismatchError(
            "the signature is not hex: send the 0x… string the wallet returned"
        ) from None
    if len(raw) != 65:
        raise SignatureMismatchError(
            f"the signature has {len(raw)} bytes, an ECDSA signature has 65 (r|s|v): send the "
            "string eth_signTypedData_v4 returned, unchanged"
        )
    try:
        return checksum(str(Account._recover_hash(digest, signature=raw)))
    except Exception:  # noqa: BLE001 - eth_keys raises several types for bad r/s/v
        raise SignatureMismatchError(
            "the signature does not recover to any address (bad r, s or v): sign again"
        ) from None


class SignatureStore:
    """Verified owner signatures per (vault, request id, digest), in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise AgentWalletError(
                f"{self.path} is not a readable signature file ({exc}): move it away (the "
                "owners then sign again)"
            ) from None
        if not isinstance(data, dict):
            raise AgentWalletError(f"{self.path} is not a signature file: move it away")
        return {str(k): {str(s): str(v) for s, v in dict(v).items()} for k, v in data.items()}

    @staticmethod
    def key(vault: str, request_id: int, digest: bytes) -> str:
        return f"{checksum(vault)}:{int(request_id)}:0x{bytes(digest).hex()}"

    def signatures(self, vault: str, request_id: int, digest: bytes) -> dict[str, str]:
        """signer → signature (0x hex) kept for this request's digest."""
        with self._lock:
            return dict(self._load().get(self.key(vault, request_id, digest), {}))

    def add(
        self, vault: str, request_id: int, digest: bytes, owners: list[str], signature: str
    ) -> str:
        """Verify ``signature`` (by a current owner, over ``digest``) and keep it; returns
        the signer. Raises :class:`SignatureMismatchError` and keeps nothing otherwise."""
        signer = recover_signer(digest, signature)
        if signer not in owners:
            raise SignatureMismatchError(
                f"this signature is by {signer}, who is not an owner of vault {vault}: sign "
                "with an owner's account (or the typed data was changed before signing)"
            )
        with self._lock:
            data = self._load()
            data.setdefault(self.key(vault, request_id, digest), {})[signer] = (
                "0x" + bytes(HexBytes(signature)).hex()
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
        return signer
