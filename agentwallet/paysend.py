"""Signing, journaling and broadcasting one direct payment of an :class:`AgentWallet`.

The journal entry (the signed bytes) is written before the broadcast, so a crash or a timeout
leaves a transaction a retry re-sends instead of signing a new one. A node refusing the nonce
("nonce too low": another transaction of this key took it) resyncs the local nonce counter and
tries once more with the node's count; a second refusal raises :class:`NonceConflictError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from web3.exceptions import TimeExhausted
from web3.types import TxReceipt

from agentwallet.chain.tx import RECEIPT_TIMEOUT, broadcast_fault
from agentwallet.errors import (
    NonceConflictError,
    PaymentOutcomeUnknownError,
    PaymentPendingError,
)
from agentwallet.protocol.refs import ref_text

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet
    from agentwallet.protocol.models import TokenInfo

__all__ = ["send_journaled", "unknown_error", "wait_paid"]


def unknown_error(ref: bytes, tx_hash: bytes, what: str) -> PaymentOutcomeUnknownError:
    """The error of a payment broadcast whose fate is unknown (``what`` happened)."""
    text, hex_hash = ref_text(ref), "0x" + tx_hash.hex()
    return PaymentOutcomeUnknownError(
        f"payment {hex_hash} (ref {text!r}) was broadcast but {what}; it MAY have been "
        f"sent: retry pay with the same ref (never a new one) or check "
        f"AgentWallet.payment_state({text!r})",
        ref=text,
        tx_hash=hex_hash,
    )


def send_journaled(
    wallet: AgentWallet,
    tx: dict[str, Any],
    key: tuple[int, str, str, bytes],
    info: TokenInfo,
    to: str,
    amount: int,
) -> tuple[bytes, dict[str, Any]]:
    """Sign ``tx`` with the agent's next nonce, journal it under ``key`` and broadcast it;
    return its hash and the fields signed (with the nonce: :func:`wait_paid` replaces it).
    Raises :class:`PaymentPendingError` if another caller journaled the ref meanwhile,
    :class:`NonceConflictError` (nothing sent, the journal entry removed) after two nonce
    refusals, and :class:`PaymentOutcomeUnknownError` when the broadcast failed in a way that
    may have delivered it."""
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
            fields = {**tx, "nonce": slot.nonce}
            signed = wallet.signer.sign_transaction(cast(Any, fields))
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
                    raise unknown_error(ref, tx_hash, what) from None
            slot.tx_hash = tx_hash
        return tx_hash, fields
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def wait_paid(
    wallet: AgentWallet,
    tx_hashes: Sequence[bytes],
    key: tuple[int, str, str, bytes],
    tx: dict[str, Any] | None,
    timeout: float = RECEIPT_TIMEOUT,
) -> TxReceipt:
    """The receipt of the journaled payment: the first mined of ``tx_hashes`` (the journaled
    one, then any it replaced) or of a new replacement. Pending for
    ``stuck.rebroadcast_after`` seconds: its signed bytes are sent again; for
    ``stuck.replace_after``: replaced by ``tx`` (its unsigned fields with the nonce) with
    higher fees, journaled before it is sent (the replaced hashes stay in the entry, so a
    retry after a crash finds whichever one was mined). Raises ``TimeExhausted`` after
    ``timeout`` seconds."""
    transactor = wallet.chain.transactor
    stuck = transactor.stuck
    hashes, started = list(tx_hashes), time.monotonic()
    resent = replaced = False
    while True:
        step = timeout
        if not resent:
            step = stuck.rebroadcast_after
        elif not replaced and tx is not None:
            step = stuck.replace_after
        until = started + min(step, timeout)
        try:
            newest, *older = reversed(hashes)
            return transactor.wait(
                newest, timeout=max(until - time.monotonic(), 0.0), check=False, also=older
            )
        except TimeExhausted:
            if time.monotonic() < until or until >= started + timeout:
                raise  # the waiter gave up (or the whole timeout passed)
        if not resent:
            resent = True
            entry = wallet.journal.get(*key)
            if entry is not None:
                _send_again(wallet, bytes.fromhex(entry["raw_tx"][2:]))
        elif not replaced and tx is not None:
            replaced = True
            new_hash = _replace(wallet, key, tx, hashes)
            if new_hash is not None:
                hashes.append(new_hash)


def _send_again(wallet: AgentWallet, raw: bytes) -> None:
    """Broadcast ``raw`` again; a node that has it, or mined it, says so: fine."""
    try:
        wallet.chain.transactor.broadcast(raw)
    except Exception:  # noqa: BLE001, S110 - known, nonce used (mined) or a flaky node: keep waiting
        pass


def _replace(
    wallet: AgentWallet, key: tuple[int, str, str, bytes], tx: dict[str, Any], hashes: list[bytes]
) -> bytes | None:
    """Sign ``tx`` again with higher fees (same nonce, same calldata), journal it with the
    hashes it replaces, broadcast it; its hash, or None if the node refused it (the original
    was mined meanwhile, or another replacement pays more): the journal is put back."""
    chain, bump = wallet.chain, wallet.chain.transactor.stuck.bump
    chain.fees.clear()
    quote = chain.fee_params()
    tip = max(int(int(tx["maxPriorityFeePerGas"]) * bump) + 1, quote["maxPriorityFeePerGas"])
    max_fee = max(int(int(tx["maxFeePerGas"]) * bump) + 1, quote["maxFeePerGas"], tip)
    new_tx = {**tx, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    signed = wallet.signer.sign_transaction(cast(Any, new_tx))
    new_hash, raw = bytes(signed.hash), bytes(signed.raw_transaction)
    entry = wallet.journal.get(*key)
    if entry is None:  # pragma: no cover - the journal entry is written before the broadcast
        return None
    updated = {
        **entry,
        "tx_hash": "0x" + new_hash.hex(),
        "raw_tx": "0x" + raw.hex(),
        "replaced": [*entry.get("replaced", []), entry["tx_hash"]],
    }
    wallet.journal.put(*key, updated)
    wallet.policy_cache.own(new_hash)
    try:
        chain.transactor.broadcast(raw)
    except Exception as exc:  # noqa: BLE001 - refused: the original stays the one to wait for
        if broadcast_fault(exc) != "known":
            wallet.journal.put(*key, entry)
            return None
    tx.update(new_tx)  # a later replacement bumps from these fees
    return new_hash
