"""Re-sending journaled payments after the node lost them, in an order that cannot deadlock.

A node restarted without its state, or a reorg, drops mined and pending transactions: the agent
key's nonce goes back, and a journaled transaction signed with a higher nonce waits behind a
gap forever. Re-signing it with a fresh nonce is not safe (the old signed transaction could
still be mined later, paying twice); instead, before re-sending a journaled transaction,
:func:`close_nonce_gap` re-sends the journaled transactions of the same key that hold the nonces
below it, lowest first, and fills a nonce no journal entry holds (a lost transaction that was
not a payment, or another machine's) with a zero-value transfer to the agent itself. Every
signed payment keeps its nonce, so each can be mined at most once, in any retry order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from agentwallet.chain.tx import broadcast_fault
from agentwallet.errors import PaymentOutcomeUnknownError

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet

__all__ = ["close_nonce_gap"]

#: Gas of the zero-value self-transfer that fills a nonce no journal entry holds.
FILLER_GAS = 21_000


def close_nonce_gap(wallet: AgentWallet, nonce: int) -> list[int]:
    """Make the node's pending nonce of the agent key reach ``nonce``: re-send the journaled
    transactions holding the nonces in between (lowest first), fill the others with a
    zero-value self-transfer. Return the nonces that were filled. Call under the key's nonce
    lock. Raises :class:`PaymentOutcomeUnknownError` if the node refuses one."""
    chain, address = wallet.chain, wallet.address
    pending = chain.nonce(address, "pending")
    if pending >= nonce:
        return []
    held = _journaled_by_nonce(wallet, range(pending, nonce))
    filled = []
    for n in range(pending, nonce):
        entry = held.get(n)
        if entry is not None:
            raw = bytes.fromhex(entry["raw_tx"][2:])
        else:
            filler = {
                "to": address,
                "value": 0,
                "gas": FILLER_GAS,
                "nonce": n,
                "chainId": chain.chain_id,
                **chain.fee_params(),
            }
            raw = bytes(wallet.signer.sign_transaction(cast(Any, filler)).raw_transaction)
            filled.append(n)
        try:
            chain.transactor.broadcast(raw)
        except Exception as exc:  # noqa: BLE001 - classified below
            if broadcast_fault(exc) not in ("known", "nonce"):  # in the pool, or mined since
                raise PaymentOutcomeUnknownError(
                    f"re-sending nonce {n} of agent {address} (lost by the node, before the "
                    f"payment being retried) failed ({type(exc).__name__}); the payment was not "
                    "re-sent: retry pay with the same ref"
                ) from None
    return filled


def _journaled_by_nonce(wallet: AgentWallet, wanted: range) -> dict[int, dict[str, Any]]:
    """The journal's signed transactions of this key (any vault) with a nonce in ``wanted``;
    the newest entry wins a nonce held twice."""
    found: dict[int, dict[str, Any]] = {}
    for entry in wallet.journal.entries(wallet.chain.chain_id, wallet.address):
        raw, nonce = entry.get("raw_tx"), entry.get("nonce")
        if not isinstance(raw, str) or not isinstance(nonce, int) or nonce not in wanted:
            continue
        if float(entry.get("created", 0)) >= float(found.get(nonce, {}).get("created", -1)):
            found[nonce] = entry
    return found
