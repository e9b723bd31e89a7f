"""What a :class:`~agentwallet.chain.Chain` asks its node once instead of per call.

- **Chain id.** web3's ``validation`` middleware asks ``eth_chainId`` before every
  ``eth_call``/``eth_estimateGas`` (ten round trips per payment). The id of a connection never
  changes, so :func:`pin_chain_id` replaces that middleware with the same check against the id
  read once at connect time. (web3's provider request cache, ``cache_allowed_requests``, also
  caches ``eth_chainId`` but per thread and below the middleware, so each thread still pays
  one call and a per-request cost; the pinned validator costs nothing.)
- **Fees.** :class:`FeeCache` keeps the last ``Chain.fee_params()`` for ``ttl`` seconds; the max
  fee (2 x base fee + tip) already covers a base fee that doubles meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from web3 import Web3
from web3.middleware import FormattingMiddlewareBuilder
from web3.middleware.validation import (
    METHODS_TO_VALIDATE,
    _build_formatters_dict,
    _chain_id_validator,
)
from web3.types import RPCEndpoint

__all__ = ["FEE_TTL", "FeeCache", "pin_chain_id"]

#: Seconds a fee quote is reused (about a block on an L2, a third of one on mainnet).
FEE_TTL = 2.0


def pin_chain_id(w3: Web3, chain_id: int) -> None:
    """Validate transactions' ``chainId`` against ``chain_id`` without asking the node."""

    def formatters(_w3: Any, method: RPCEndpoint) -> Any:
        request = {}
        if method in METHODS_TO_VALIDATE:
            request = {m: _chain_id_validator(chain_id) for m in METHODS_TO_VALIDATE}
        return _build_formatters_dict(request)

    async def async_formatters(_w3: Any, method: RPCEndpoint) -> Any:
        return formatters(_w3, method)

    middleware = FormattingMiddlewareBuilder.build(
        sync_formatters_builder=formatters, async_formatters_builder=async_formatters
    )
    if "validation" in {name for _, name in w3.middleware_onion.middleware}:
        w3.middleware_onion.replace("validation", middleware)


class FeeCache:
    """The last fee quote of ``fetch`` for ``ttl`` seconds, shared by threads."""

    def __init__(self, fetch: Callable[[], dict[str, int]], ttl: float = FEE_TTL) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._lock = threading.Lock()
        self._quote: tuple[float, dict[str, int]] | None = None

    def get(self) -> dict[str, int]:
        """A fee quote no older than ``ttl`` seconds (fetched by one thread if needed; the
        others wait for it instead of asking too)."""
        with self._lock:
            now = time.monotonic()
            if self._quote is not None and now - self._quote[0] < self.ttl:
                return dict(self._quote[1])
            quote = self._fetch()
            self._quote = (now, quote)
            return dict(quote)

    def clear(self) -> None:
        """Fetch a fresh quote next time (a replacement needs the current base fee)."""
        with self._lock:
            self._quote = None
