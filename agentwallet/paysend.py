"""Signing, journaling and broadcasting one direct payment of an :class:`AgentWallet`.

The journal entry (the signed bytes) is written before the broadcast, so a crash or a timeout
leaves a transaction a retry re-sends instead of signing a new one. A node refusing the nonce
("nonce too low": another transaction of this key took it) resyncs the local nonce counter and
tries once more with the node's count; a second refusal raises :class:`NonceConflictError`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from agentwallet.chain.tx import broadcast_fault
from agentwallet.errors import NonceConflictError, PaymentPendingError
from agentwallet.protocol.refs import ref_text

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet
    from agentwallet.protocol.models import TokenInfo

__all__ = ["send_journaled"]


def send_journaled(
    wallet: AgentWallet,
    tx: dict[str, Any],
    key: tuple[int, str, str, bytes],
    info: TokenInfo,
    to: str,
    amount: int,
) -> bytes:
    """Sign ``tx`` with the agent's next nonce, journal it under ``key`` and broadcast it;
    return its hash. Raises :class:`PaymentPendingError` if another caller journaled the ref
    meanwhile, :class:`NonceConflictError` (nothing sent, the journal entry removed) after two
    nonce refusals, and the wallet's ``PaymentOutcomeUnknownError`` when the broadcast failed
    in a way that may have delivered it."""
    chain, address = wallet.chain, wallet.address
    nonces = chain.transactor.nonces
    ref = key[3]
    for attempt in (1, 2):
        with nonces.reserve(chain, address) as slot:
            if wallet.journal.get(*key) is not None:  # another thread took this ref meanwhile
                raise PaymentPendingError(
                    f"payment ref {ref_text(ref)!r} is being sent by another caller: "
                    "retry with the same ref to get its result"
                )
            signed = wallet.signer.sign_transaction(cast(Any, {**tx, "nonce": slot.nonce}))
            tx_hash, raw = bytes(signed.hash), bytes(signed.raw_transaction)
            wallet.journal.put(
                *key,
                {
                    "chain_id": chain.chain_id,
                    "vault": wallet.vault.address,
                    "agent": address,
                    "ref": "0x" + ref.hex(),
                    "nonce": slot.nonce,
                    "tx_hash": "0x" + tx_hash.hex(),
                    "raw_tx": "0x" + raw.hex(),
                    "token": info.address,
                    "to": to,
                    "amount": str(amount),
                    "created": time.time(),
                },
            )
            try:
                chain.transactor.broadcast(raw)
            except Exception as exc:  # noqa: BLE001 - the outcome is unknown: keep the journal
                fault = broadcast_fault(exc)
                if fault == "nonce":  # another sender of this key took the nonce: tx is dead
                    wallet.journal.delete(*key)
                    nonces.resync(chain, address)
                    if attempt == 1:
                        continue
                    raise NonceConflictError(
                        f"nonce {slot.nonce} of agent {address} was already used by another "
                        "transaction twice in a row, even after asking the node for the next "
                        "one (another process signing with this key?); nothing was sent: "
                        "retry pay with the same ref"
                    ) from None
                if fault != "known":
                    nonces.resync(chain, address)  # did it reach the pool? the node knows
                    what = f"broadcasting failed or timed out ({type(exc).__name__})"
                    raise wallet._unknown(ref, tx_hash, what) from None
            slot.tx_hash = tx_hash
        return tx_hash
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
