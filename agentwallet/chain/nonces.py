"""Nonces: one lock and local counter per (chain, address), so threads never collide."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentwallet.protocol.addresses import as_checksum

if TYPE_CHECKING:
    from agentwallet.chain.connection import Chain
    from agentwallet.chain.devchain import DevelopmentChain

__all__ = ["NONCES", "NonceManager", "NonceSlot"]


@dataclass
class NonceSlot:
    """A reserved nonce; set ``tx_hash`` after broadcasting it."""

    nonce: int
    tx_hash: bytes | None = None


class NonceManager:
    """One lock and local nonce counter per (chain, address).

    Inside :meth:`reserve` the caller signs and broadcasts with the yielded nonce; the counter
    advances only if the block sets ``slot.tx_hash``. The node is asked (its pending count) only
    the first time an address sends and after :meth:`resync` (a nonce error, a broadcast whose
    outcome is unknown) or :meth:`forget_chain` (a dev-chain revert or time travel); otherwise
    the next nonce is the local counter, so the hot path makes no nonce round trip.

    :meth:`epoch` counts the chain-state resets of a chain: caches of chain state (an agent's
    policy) compare it to know when to throw themselves away.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[int, str, str], threading.RLock] = {}
        self._next: dict[tuple[int, str, str], int] = {}
        self._epochs: dict[int, int] = {}

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

    def epoch(self, chain: DevelopmentChain) -> int:
        """How many times ``chain``'s state was reset under this process (reverts, time travel)."""
        return self._epochs.get(id(chain.w3), 0)

    def resync(self, chain: Chain, address: str) -> None:
        """Forget the local counter of ``address``: the next :meth:`reserve` asks the node."""
        with self._guard:
            self._next.pop(self._key(chain, address), None)

    def forget_chain(self, chain: DevelopmentChain) -> None:
        """Forget every local counter on ``chain`` and start a new :meth:`epoch` (its state
        was reverted or moved in time)."""
        with self._guard:
            w3_id = id(chain.w3)
            for key in [k for k in self._next if k[0] == w3_id]:
                del self._next[key]
            self._epochs[w3_id] = self._epochs.get(w3_id, 0) + 1

    @contextmanager
    def reserve(self, chain: Chain, address: str) -> Iterator[NonceSlot]:
        """Hold the address's lock and yield a :class:`NonceSlot` with the next nonce; set
        ``slot.tx_hash`` once broadcast so the counter advances."""
        key = self._key(chain, address)
        with self.lock(chain, address):
            nonce = self._next.get(key)
            if nonce is None:
                nonce = int(chain.w3.eth.get_transaction_count(as_checksum(address), "pending"))
            slot = NonceSlot(nonce)
            yield slot
            if slot.tx_hash is not None:
                with self._guard:
                    self._next[key] = nonce + 1


#: The process-wide nonce manager every transaction goes through.
NONCES = NonceManager()
