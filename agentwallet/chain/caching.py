"""What a :class:`~agentwallet.chain.Chain` asks its node once instead of per call.

- **Chain id.** web3's ``validation`` middleware asks ``eth_chainId`` before every
  ``eth_call``/``eth_estimateGas`` (ten round trips per payment). The id of a connection never
  changes, so :func:`pin_chain_id` replaces that middleware with the same checks
  (:class:`PinnedChainIdValidation`, built on web3's public ``Web3Middleware``) against the id
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
from typing import Any, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ExtraDataLengthError, Web3ValidationError
from web3.middleware import Web3Middleware
from web3.types import RPCEndpoint, RPCResponse

__all__ = ["FEE_TTL", "FeeCache", "PinnedChainIdValidation", "pin_chain_id"]

#: Seconds a fee quote is reused (about a block on an L2, a third of one on mainnet).
FEE_TTL = 2.0

#: The calls whose transaction's ``chainId`` web3's ``validation`` middleware checks.
TRANSACTION_METHODS = frozenset(
    {"eth_sendTransaction", "eth_estimateGas", "eth_call", "eth_createAccessList"}
)
#: The replies whose block's ``extraData`` it checks (longer than 32 bytes: a POA chain).
BLOCK_METHODS = frozenset({"eth_getBlockByHash", "eth_getBlockByNumber"})
MAX_EXTRADATA_LENGTH = 32


def _check_chain_id(tx: Any, chain_id: int) -> Any:
    """``tx`` without its ``chainId``, after checking it against ``chain_id``."""
    if not isinstance(tx, dict) or "chainId" not in tx:
        return tx
    declared = tx["chainId"]
    declared = int(declared, 16) if isinstance(declared, str) else declared
    if declared != chain_id:
        raise Web3ValidationError(
            f"The transaction declared chain ID {declared!r}, "
            f"but the connected node is on {chain_id!r}"
        )
    return {k: v for k, v in tx.items() if k != "chainId"}


class PinnedChainIdValidation(Web3Middleware):
    """web3's ``validation`` middleware (what it checks, in its place in the onion) with the
    chain id given instead of asked for: a transaction's ``chainId`` must be ``chain_id`` (and is
    not sent on), a block's ``extraData`` must be at most 32 bytes. Built by
    :func:`pin_chain_id` (web3's public middleware API only)."""

    chain_id = 0

    def request_processor(self, method: RPCEndpoint, params: Any) -> Any:
        if method in TRANSACTION_METHODS and params:
            first = _check_chain_id(params[0], self.chain_id)
            params = type(params)([first, *params[1:]])  # a list stays a list, a tuple a tuple
        return method, params

    def response_processor(self, method: RPCEndpoint, response: RPCResponse) -> RPCResponse:
        block = response.get("result") if method in BLOCK_METHODS else None
        extra = block.get("extraData") if isinstance(block, dict) else None
        if isinstance(extra, str | int | bytes) and len(HexBytes(extra)) > MAX_EXTRADATA_LENGTH:
            raise ExtraDataLengthError(
                f"The field extraData is {len(HexBytes(extra))} bytes, but should be "
                f"{MAX_EXTRADATA_LENGTH}. It is quite likely that you are connected to a POA "
                "chain: add web3's ExtraDataToPOAMiddleware. The full extraData is: "
                f"{HexBytes(extra)!r}"
            )
        return response

    async def async_request_processor(self, method: RPCEndpoint, params: Any) -> Any:
        return self.request_processor(method, params)

    async def async_response_processor(
        self, method: RPCEndpoint, response: RPCResponse
    ) -> RPCResponse:
        return self.response_processor(method, response)


def pin_chain_id(w3: Web3, chain_id: int) -> None:
    """Validate transactions' ``chainId`` against ``chain_id`` without asking the node."""
    pinned = type("PinnedChainId", (PinnedChainIdValidation,), {"chain_id": chain_id})
    if "validation" in {name for _, name in w3.middleware_onion.middleware}:
        w3.middleware_onion.replace("validation", cast(Any, pinned))


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
