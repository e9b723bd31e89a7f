"""Direct payments that pay at most once per chain: ``AgentWallet.pay(..., exactly_once=True)``.

The agent signs an intent whose nonce is derived from the ref (:func:`intents.ref_nonce`) and
submits it itself (``payWithIntent`` from its own key; anyone may submit an intent). The vault
marks that nonce used when the intent runs, so one ref runs at most once whoever sends it, from
any machine, whatever journal it has (docs/sdk.md, "Exactly once").

Because the intent carries the guarantee, the outer transaction is disposable: a retry whose
journaled transaction is gone (dropped from the pool, a node that lost its state) signs a new
one with a fresh nonce; the worst case of two outer transactions is that the second reverts
with ``NonceAlreadyUsed`` and the caller gets the first one's payment as its answer.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, cast

from hexbytes import HexBytes
from web3.exceptions import TimeExhausted

from agentwallet import intents
from agentwallet.chain.tx import broadcast_fault
from agentwallet.errors import (
    IntentRefusedError,
    NonceConflictError,
    RefCancelledError,
    RefPendingElsewhereError,
    TransactionFailedError,
)
from agentwallet.protocol.models import PaymentOutcome, SignedIntent, TokenInfo
from agentwallet.protocol.refs import ref_text

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet

__all__ = ["pay_exactly_once", "used_in_pending_block"]


def pay_exactly_once(
    wallet: AgentWallet, to: str, amount: int, info: TokenInfo, ref: str | bytes | None
) -> PaymentOutcome:
    """Pay with a ref-derived intent the agent submits itself (module docstring). The caller
    holds ``transactor.exclusive()`` (the embedded chain is not thread-safe)."""
    ref_bytes, key, entry = wallet._journaled_entry(ref, info, to, amount)
    nonce = intents.ref_nonce(ref_bytes)
    if entry is not None:
        if entry.get("kind") != "intent":  # paid directly before: finish that transaction
            return wallet._pay(to, amount, info, ref_bytes)
        if int(entry["intent"]["nonce"]) != nonce:  # a relayed intent with a free nonce
            return wallet._intent_result(entry, ref_bytes)
        found = _journaled_outcome(wallet, entry, ref_bytes)
        if found is not None:
            return found
    # sign first (nothing read), then look: an intent mined after the lookup took the nonce
    signed = intents.sign_intent(
        wallet.vault, wallet.signer, to, amount, info, ref_bytes, exactly_once=True
    )
    earlier = _earlier(wallet, ref_bytes, info, to, amount)
    if earlier is not None:
        return earlier
    if wallet.vault.bindings.is_nonce_used(wallet.address, nonce):
        raise _cancelled(wallet, ref_bytes, nonce)
    if used_in_pending_block(wallet, nonce):
        raise RefPendingElsewhereError(
            f"payment ref {ref_text(ref_bytes)!r} is already in the node's pool (sent by "
            "another process or machine with this agent key) and not mined yet; nothing was "
            "sent: wait, then retry pay with the same ref (it answers that payment) or check "
            f"AgentWallet.payment_state({ref_text(ref_bytes)!r})",
            ref=ref_text(ref_bytes),
        )
    wallet._check_agent_state()
    return _submit(wallet, signed, key, info, to, amount)


def _earlier(
    wallet: AgentWallet, ref: bytes, info: TokenInfo, to: str, amount: int
) -> PaymentOutcome | None:
    """A mined payment or request of this agent with ``ref`` (the same payment, else
    :class:`RefReusedError`)."""
    earlier = wallet._onchain_result(ref)
    if earlier is not None:
        onchain = (earlier.token.address, earlier.to, earlier.amount)
        wallet._same_payment(ref, onchain, earlier, info, to, amount)
    return earlier


def _cancelled(wallet: AgentWallet, ref: bytes, nonce: int) -> RefCancelledError:
    return RefCancelledError(
        f"payment ref {ref_text(ref)!r} can never pay: its intent nonce {nonce} of agent "
        f"{wallet.address} is used without a payment in the vault's logs (cancelled with "
        "invalidate-nonces); nothing was sent: use a new ref"
    )


def used_in_pending_block(wallet: AgentWallet, nonce: int) -> bool:
    """Whether the node's pending block (its pool applied) has spent ``nonce`` of the agent's
    intents; False when the node cannot answer for the pending block. ``pay`` refuses such a
    ref (:class:`RefPendingElsewhereError`) and ``payment_state`` says ``pending_elsewhere``."""
    fn = wallet.vault.bindings.contract.functions.isNonceUsed(wallet.address, nonce)
    try:
        return bool(fn.call(block_identifier="pending"))
    except Exception:  # noqa: BLE001 - a node without a pending state: the revert guards it
        return False


def _journaled_outcome(
    wallet: AgentWallet, entry: dict[str, Any], ref: bytes
) -> PaymentOutcome | None:
    """Finish a journaled self-submitted intent: its receipt, else wait for it while the node
    still knows it; None when it is gone (sign a new outer transaction: the intent guards)."""
    signed = SignedIntent.from_json(json.dumps(entry["intent"]))
    info = wallet.vault.token(signed.token)
    tx_hash = entry.get("tx_hash")
    if tx_hash is None:
        return None
    hash_bytes = bytes(HexBytes(tx_hash))
    transactor = wallet.chain.transactor
    receipt = transactor.receipt(hash_bytes)
    if receipt is None:
        try:
            wallet.chain.w3.eth.get_transaction(tx_hash)
        except Exception:  # noqa: BLE001 - not known to the node: dropped or lost with its state
            return None
        return _finish(wallet, hash_bytes, info, signed.to, signed.amount, ref)
    if receipt["status"] == 1:
        return intents.outcome(wallet.vault, receipt, info, signed.to, signed.amount, ref)
    return _earlier(wallet, ref, info, signed.to, signed.amount)


def _submit(
    wallet: AgentWallet,
    signed: SignedIntent,
    key: tuple[int, str, str, bytes],
    info: TokenInfo,
    to: str,
    amount: int,
) -> PaymentOutcome:
    ref = key[3]
    transactor = wallet.chain.transactor
    try:
        tx = intents.check_intent(wallet.vault, signed, 0, wallet.address)
    except IntentRefusedError as exc:
        if exc.code != "nonce_used":
            raise
        earlier = _earlier(wallet, ref, info, to, amount)
        if earlier is None:
            raise _cancelled(wallet, ref, signed.nonce) from None
        return earlier
    for attempt in (1, 2):
        with transactor.nonces.reserve(wallet.chain, wallet.address) as slot:
            raw = wallet.signer.sign_transaction(cast(Any, {**tx, "nonce": slot.nonce}))
            tx_hash = bytes(raw.hash)
            wallet.journal.put(
                *key,
                {
                    "kind": "intent",
                    "submitter": wallet.address,
                    "intent": json.loads(signed.to_json()),
                    "chain_id": wallet.chain.chain_id,
                    "vault": wallet.vault.address,
                    "agent": wallet.address,
                    "ref": "0x" + ref.hex(),
                    "nonce": slot.nonce,
                    "tx_hash": "0x" + tx_hash.hex(),
                    "raw_tx": "0x" + bytes(raw.raw_transaction).hex(),
                    "token": info.address,
                    "to": to,
                    "amount": str(amount),
                    "created": time.time(),
                },
            )
            try:
                transactor.broadcast(bytes(raw.raw_transaction))
            except Exception as exc:  # noqa: BLE001 - classified below
                fault = broadcast_fault(exc)
                if fault == "nonce":  # another sender of this key took the nonce: ask the node
                    transactor.nonces.resync(wallet.chain, wallet.address)
                    if attempt == 1:
                        continue  # the outer transaction is disposable (module docstring)
                    raise NonceConflictError(
                        f"nonce {slot.nonce} of agent {wallet.address} was already used by "
                        "another transaction twice in a row, even after asking the node for the "
                        "next one (another process signing with this key?); this payment was "
                        "not sent: retry pay with the same ref and exactly_once"
                    ) from None
                if fault != "known":
                    slot.tx_hash = tx_hash
                    what = f"broadcasting failed or timed out ({type(exc).__name__})"
                    raise wallet._unknown(ref, tx_hash, what) from None
            slot.tx_hash = tx_hash
        return _finish(wallet, tx_hash, info, to, amount, ref)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _finish(
    wallet: AgentWallet, tx_hash: bytes, info: TokenInfo, to: str, amount: int, ref: bytes
) -> PaymentOutcome:
    """Wait for the outer transaction. A revert is the ref's nonce spent by another submission
    (the first one wins): answer that payment."""
    try:
        receipt = wallet.chain.transactor.wait(tx_hash, check=False)
    except TimeExhausted:
        raise wallet._unknown(ref, tx_hash, "it is not mined yet") from None
    except OSError as exc:
        what = f"the node stopped answering while waiting ({type(exc).__name__})"
        raise wallet._unknown(ref, tx_hash, what) from None
    if receipt["status"] == 1:
        return intents.outcome(wallet.vault, receipt, info, to, amount, ref)
    earlier = _earlier(wallet, ref, info, to, amount)
    if earlier is not None:
        return earlier
    raise TransactionFailedError(
        f"payment 0x{tx_hash.hex()} (ref {ref_text(ref)!r}) was mined but reverted without "
        "paying; nothing was paid: retry pay with the same ref",
        receipt=receipt,
    )
