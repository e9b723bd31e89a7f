"""Nonces: one lock and local counter per (chain, address), so threads never collide."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_typing import HexStr
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from agentwallet.protocol.addresses import as_checksum

if TYPE_CHECKING:
    from agentwallet.chain.connection import Chain

__all__ = ["NONCES", "NonceManager", "NonceSlot"]


@dataclass
class NonceSlot:
    """A reserved nonce; set ``tx_hash`` after broadcasting it."""

    nonce: int
    tx_hash: bytes | None = None


class NonceManager:
    """One lock and local nonce counter per (chain, address).

    Inside :meth:`reserve` the caller signs and broadcasts with the yielded nonce; the counter
    advances only if the block exits without an error. The next nonce is the node's pending
    count, or the local counter if that is ahead and its last transaction is still known to the
    node (a dropped transaction, or a reverted dev-chain snapshot, resets the counter).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[int, str, str], threading.RLock] = {}
        self._next: dict[tuple[int, str, str], tuple[int, bytes]] = {}

    def _key(self, chain: Chain, address: str) -> tuple[int, str, str]:
        return (id(chain.w3), chain.url or "embedded", address)

    def chain_lock(self, chain: Chain) -> threading.RLock:
        """One lock per embedded chain: eth-tester is not thread-safe, so every agentwallet
        transaction on it (simulate, sign, send, receipt) runs under this lock."""
        key = (id(chain.w3), "embedded-chain", "")
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())

    @contextmanager
    def exclusive(self, chain: Chain) -> Iterator[None]:
        """Hold :meth:`chain_lock` on the embedded chain; a no-op on JSON-RPC chains."""
        if chain.is_embedded:
            with self.chain_lock(chain):
                yield
        else:
            yield

    def lock(self, chain: Chain, address: str) -> threading.RLock:
        """The lock serialising signing+broadcast for ``address`` on ``chain``."""
        key = self._key(chain, address)
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())

    @contextmanager
    def reserve(self, chain: Chain, address: str) -> Iterator[NonceSlot]:
        """Hold the address's lock and yield a :class:`NonceSlot` with the next nonce; set
        ``slot.tx_hash`` once broadcast so the counter advances."""
        key = self._key(chain, address)
        with self.lock(chain, address):
            pending = int(chain.w3.eth.get_transaction_count(as_checksum(address), "pending"))
            nonce = pending
            local = self._next.get(key)
            if local is not None and local[0] > pending:
                try:
                    chain.w3.eth.get_transaction(HexStr(HexBytes(local[1]).to_0x_hex()))
                    nonce = local[0]
                except (TransactionNotFound, ValueError):
                    nonce = pending
            slot = NonceSlot(nonce)
            yield slot
            if slot.tx_hash is not None:
                self._next[key] = (nonce + 1, slot.tx_hash)


#: The process-wide nonce manager every transaction goes through.
NONCES = NonceManager()
