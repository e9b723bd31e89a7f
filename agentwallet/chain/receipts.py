"""Waiting for receipts: many in-flight transactions confirmed with one round trip per poll.

Every thread waiting on a :class:`ReceiptWaiter` registers its hashes; whichever thread polls
next asks the node for *all* registered receipts in one batch JSON-RPC request
(``eth_getTransactionReceipt`` x N, one HTTP round trip) and wakes the threads whose receipts
came. Polls are ``interval`` seconds apart per chain, however many payments are waiting,
backing off to :data:`MAX_POLL_INTERVAL` while no receipt comes (a block is being waited for). The
embedded chain (no batches) is asked hash by hash.

:class:`StuckPolicy` says when a transaction that sits pending is sent again (the same signed
bytes: a node that dropped it gets it back) and when it is replaced (same nonce, same calldata,
higher fees); the agent's payments apply it (:mod:`agentwallet.paysend`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from agentwallet.chain.web3_private import batch_receipts

if TYPE_CHECKING:
    from agentwallet.chain.connection import Chain

__all__ = ["MAX_POLL_INTERVAL", "POLL_INTERVAL", "ReceiptWaiter", "StuckPolicy"]

#: Seconds between two receipt polls of one chain, while they find receipts...
POLL_INTERVAL = 0.05
#: ...doubling after each poll that finds none, up to this (a block time of 1 s: ~6 polls per
#: block for all waiting threads together, each receipt seen within 0.2 s of its block).
MAX_POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class StuckPolicy:
    """When a pending transaction is helped along: sent again (same bytes) after
    ``rebroadcast_after`` seconds without a receipt, replaced after ``replace_after`` seconds
    (same nonce and calldata; both fees times ``bump``, at least the current quote). Nodes
    accept a replacement only if it pays at least 10 % more."""

    rebroadcast_after: float = 12.0
    replace_after: float = 36.0
    bump: float = 1.25


class ReceiptWaiter:
    """Receipts of ``chain``'s transactions, polled in batches shared by waiting threads."""

    def __init__(self, chain: Chain, interval: float = POLL_INTERVAL) -> None:
        self.chain = chain
        self.interval = interval
        self._cv = threading.Condition()
        self._waiting: dict[bytes, int] = {}  # hash -> number of waiters
        self._found: dict[bytes, TxReceipt] = {}
        self._polling = False
        self._last_poll = 0.0
        self._misses = 0  # polls in a row that found nothing

    def fetch(self, hashes: Sequence[bytes]) -> dict[bytes, TxReceipt]:
        """The receipts of the mined ones among ``hashes``: one batch request (one per hash on
        the embedded chain or a node without batches)."""
        if len(hashes) > 1 and not self.chain.is_embedded:
            batched = self._fetch_batch(hashes)
            if batched is not None:
                return batched
        found = {}
        for tx_hash in hashes:
            try:
                found[tx_hash] = self.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                continue
        return found

    def _fetch_batch(self, hashes: Sequence[bytes]) -> dict[bytes, TxReceipt] | None:
        return batch_receipts(self.chain.w3, hashes)  # web3 8 has no public way: the adapter

    def wait_any(self, hashes: Sequence[bytes], timeout: float) -> TxReceipt | None:
        """The receipt of the first of ``hashes`` to be mined, or None after ``timeout``
        seconds (a replaced transaction is waited for together with its replacement)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            for tx_hash in hashes:
                self._waiting[tx_hash] = self._waiting.get(tx_hash, 0) + 1
        first = True
        try:
            while True:
                with self._cv:
                    for tx_hash in hashes:
                        if tx_hash in self._found:
                            return self._found[tx_hash]
                    now = time.monotonic()
                    if now >= deadline:
                        return None
                    backoff = min(self.interval * 2**self._misses, MAX_POLL_INTERVAL)
                    due = self._last_poll + backoff
                    # a new hash is looked up at once while polls keep finding receipts
                    # (automine); while they do not (a block is awaited), it joins the schedule
                    if self._polling or (now < due and not (first and self._misses == 0)):
                        self._cv.wait(min(max(due - now, 0.005), deadline - now))
                        continue
                    self._polling, first = True, False
                    wanted = [h for h in self._waiting if h not in self._found]
                found: dict[bytes, TxReceipt] = {}
                try:
                    found = self.fetch(wanted)
                finally:
                    with self._cv:
                        self._found.update(found)
                        self._misses = 0 if found else min(self._misses + 1, 8)
                        self._polling = False
                        self._last_poll = time.monotonic()
                        self._cv.notify_all()
        finally:
            with self._cv:
                for tx_hash in hashes:
                    left = self._waiting.get(tx_hash, 1) - 1
                    if left <= 0:
                        self._waiting.pop(tx_hash, None)
                        self._found.pop(tx_hash, None)
                    else:
                        self._waiting[tx_hash] = left
