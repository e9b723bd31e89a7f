"""The web3.py internals the client relies on where web3 8 has no public API, in one place.

- **A receipt from a batch reply.** The receipt poll asks for many receipts in one batch
  request (:mod:`agentwallet.chain.receipts`). web3's public batch (``w3.batch_requests()``)
  raises ``TransactionNotFound`` for the whole batch when one of the transactions is not mined
  yet, which is the usual case while waiting; so the batch is sent through the provider's
  ``batch_request_func`` and each receipt found is formatted with web3's own
  ``receipt_formatter`` (the formatting ``w3.eth.get_transaction_receipt`` applies).

- **A reply as the node's bytes.** A large ``eth_getLogs`` answer is handed from the audit
  sync's reader thread to its writer unparsed (:mod:`agentwallet.audit.logs`), so the reader asks
  for the next range at once; web3's ``HTTPProvider.make_request`` parses every reply, so
  :func:`http_request_bytes` sends the request through the provider's own ``_make_request``
  (its session, headers and retries) and returns the bytes.

Nothing else in the package imports a private web3 name (``tests/sdk/test_web3_adapter.py``
checks these names on the installed web3 and fails naming its version). If a web3 release drops
one of them, :func:`batch_receipts` returns None and the poll asks receipt by receipt through
the public API: slower (one round trip per waiting payment), never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any, cast

from web3 import HTTPProvider, Web3
from web3.datastructures import AttributeDict
from web3.types import TxReceipt

__all__ = [
    "WEB3_VERSION",
    "PrivateWeb3Error",
    "batch_receipts",
    "http_request_bytes",
    "missing",
    "require",
]

logger = logging.getLogger(__name__)

#: The installed web3.py (named in every message about its internals).
WEB3_VERSION = version("web3")

_receipt_formatter: Callable[[Any], Any] | None
try:
    from web3._utils.method_formatters import receipt_formatter as _receipt_formatter
except ImportError:  # pragma: no cover - only on a web3 without it (see missing())
    _receipt_formatter = None


class PrivateWeb3Error(RuntimeError):
    """A web3.py internal this module relies on is gone (the message names the version)."""


def missing(w3: Web3 | None = None) -> list[str]:
    """The internals this module uses that the installed web3 lacks (with ``w3``, also the
    provider's ``batch_request_func``); empty when all are there."""
    gone = []
    if _receipt_formatter is None:
        gone.append("web3._utils.method_formatters.receipt_formatter")
    if w3 is not None and not callable(getattr(w3.provider, "batch_request_func", None)):
        gone.append(f"{type(w3.provider).__name__}.batch_request_func")
    if not callable(getattr(HTTPProvider, "_make_request", None)):
        gone.append("web3.HTTPProvider._make_request")
    return gone


def require(w3: Web3 | None = None) -> None:
    """Raise :class:`PrivateWeb3Error` naming the web3 version and what is gone, if anything."""
    gone = missing(w3)
    if gone:
        raise PrivateWeb3Error(
            f"web3 {WEB3_VERSION} no longer has {', '.join(gone)}, which "
            "agentwallet.chain.web3_private uses (agentwallet is tested with web3 8.0): the "
            "receipt poll falls back to one request per receipt; port the adapter to this web3"
        )


_warned: set[str] = set()


def batch_receipts(w3: Web3, hashes: Sequence[bytes]) -> dict[bytes, TxReceipt] | None:
    """The receipts of the mined ones among ``hashes`` from one batch request, formatted as
    ``w3.eth.get_transaction_receipt`` formats them; None when the node refuses batches or
    this web3 lacks the internals (the caller then asks one by one)."""
    if missing(w3):
        if WEB3_VERSION not in _warned:
            _warned.add(WEB3_VERSION)
            logger.warning("web3 %s: %s gone; receipts one by one", WEB3_VERSION, missing(w3))
        return None
    assert _receipt_formatter is not None  # missing() said so
    request = w3.provider.batch_request_func(w3, w3.middleware_onion)  # type: ignore[attr-defined]
    try:
        responses: Any = request([("eth_getTransactionReceipt", ["0x" + h.hex()]) for h in hashes])
    except Exception:  # noqa: BLE001 - a node without batch support: one by one
        return None
    if not isinstance(responses, list):
        return None
    found = {}
    for response in responses:
        result = response.get("result") if isinstance(response, dict) else None
        if result:
            receipt = cast(TxReceipt, AttributeDict.recursive(_receipt_formatter(result)))
            found[bytes(receipt["transactionHash"])] = receipt
    return found


def http_request_bytes(w3: Web3, method: str, params: list[Any]) -> bytes | None:
    """The node's reply to ``method`` as the bytes it sent, through ``w3``'s HTTP provider; None
    for another kind of provider or a web3 without ``HTTPProvider._make_request`` (the caller
    then asks through the public, parsing ``make_request``)."""
    provider = w3.provider
    make = getattr(provider, "_make_request", None)
    if not isinstance(provider, HTTPProvider) or not callable(make):
        return None
    return bytes(make(method, provider.encode_rpc_request(method, params)))  # type: ignore[arg-type]
