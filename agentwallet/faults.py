"""Node faults on the pay path as typed errors that say whether the payment may have been sent.

A raw library error reaching the caller of ``pay`` (requests' ``ConnectionError`` when the node
died or the port is closed, an HTTP 500, a JSON-RPC error, a reply that is not JSON) leaves it
not knowing whether to retry or wait. :func:`node_fault` turns it into:

- :class:`~agentwallet.errors.NodeUnavailableError` when this call journaled nothing, so it
  broadcast nothing (every payment is journaled before it is handed to the node): retry with
  the same ref once the node answers;
- :class:`~agentwallet.errors.PaymentOutcomeUnknownError` when this call journaled a signed
  payment (it may have reached the node), or an earlier attempt of the ref is journaled: retry
  with the same ref (never a new one) or ask ``payment_state(ref)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from web3.exceptions import Web3Exception

from agentwallet.errors import AgentWalletError, NodeUnavailableError, PaymentOutcomeUnknownError
from agentwallet.protocol.refs import ref_text, to_ref

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet

__all__ = ["NODE_ERRORS", "guard_pay", "node_fault"]

#: What a failing node raises through web3.py: requests' errors are OSErrors; RPC errors,
#: RPC errors and timeouts are Web3Exceptions; a reply that is not JSON is a JSONDecodeError.
NODE_ERRORS: tuple[type[BaseException], ...] = (OSError, Web3Exception, json.JSONDecodeError)


@contextmanager
def guard_pay(wallet: AgentWallet, ref: str | bytes | None) -> Iterator[None]:
    """Run a payment; a node fault inside becomes :func:`node_fault`'s typed error."""
    written_before = wallet.journal.last_written()[0]
    try:
        yield
    except AgentWalletError:
        raise
    except NODE_ERRORS as exc:
        raise node_fault(wallet, exc, ref, written_before) from exc


def node_fault(
    wallet: AgentWallet, exc: BaseException, ref: str | bytes | None, written_before: int
) -> AgentWalletError:
    """The typed error for ``exc`` raised while paying ``ref`` (see the module docstring)."""
    node = wallet.chain.url or "the embedded chain"
    what = f"{type(exc).__name__}: {_short(exc)}"
    count, entry = wallet.journal.last_written()
    if count > written_before and entry is not None:
        text = ref_text(bytes.fromhex(str(entry["ref"])[2:]))
        tx_hash = str(entry.get("tx_hash", ""))
        signed = f"payment {tx_hash}" if tx_hash else "the payment's intent"
        return PaymentOutcomeUnknownError(
            f"the node ({node}) failed after {signed} (ref {text!r}) was signed and "
            f"journaled ({what}); it MAY have been sent: retry pay with the same ref (never a "
            f"new one) or check AgentWallet.payment_state({text!r})",
            ref=text,
            tx_hash=tx_hash,
        )
    earlier = _journaled(wallet, ref)
    if earlier is not None:
        text = ref_text(to_ref(ref)) if ref is not None else ""
        return PaymentOutcomeUnknownError(
            f"the node ({node}) failed ({what}); this call sent nothing, but an earlier attempt "
            f"of ref {text!r} is journaled ({earlier}) and MAY be pending: retry pay with the "
            f"same ref once the node answers, or check AgentWallet.payment_state({text!r})",
            ref=text,
            tx_hash=earlier if earlier.startswith("0x") else "",
        )
    retry = "retry pay with the same ref" if ref is not None else "retry pay"
    return NodeUnavailableError(
        f"the node ({node}) failed before the payment was sent ({what}); nothing was sent: "
        f"check that the node is running and reachable, then {retry}"
    )


def _journaled(wallet: AgentWallet, ref: str | bytes | None) -> str | None:
    """An earlier journaled attempt of ``ref``: its tx hash (or "an intent"), else None."""
    if ref is None:
        return None
    try:
        chain_id = wallet.chain.chain_id
        entry = wallet.journal.get(chain_id, wallet.vault.address, wallet.address, to_ref(ref))
    except Exception:  # noqa: BLE001 - the chain id is unknown or the entry unreadable
        return None
    if entry is None:
        return None
    return str(entry.get("tx_hash") or "a signed intent")


def _short(exc: BaseException) -> str:
    """The first line of ``exc``, at most 160 characters (no request bodies or keys)."""
    text = str(exc).splitlines()[0] if str(exc) else "no message"
    return text if len(text) <= 160 else text[:157] + "..."
