"""Reading logs through the node's ``eth_getLogs`` in block ranges it accepts.

Nodes limit log queries (by block range or by result count) and say so in their own words;
:func:`is_range_error` recognises those answers, and :func:`get_logs` halves the range until the
node answers. The audit's bulk reader (:mod:`agentwallet.audit.logs`) uses the same recognition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from agentwallet.errors import ChainConnectionError
from agentwallet.protocol.addresses import as_checksum

if TYPE_CHECKING:
    from web3.types import LogReceipt

    from agentwallet.chain.connection import Chain

__all__ = ["RANGE_ERROR_CODES", "RANGE_ERROR_MARKERS", "get_logs", "is_range_error"]

RANGE_ERROR_MARKERS = (
    "query returned more than",
    "more than 10000 results",
    "block range too large",
    "range is too large",
    "range too large",
    "limit exceeded",
    "exceed maximum block range",
    "block range",
    "too many results",
    "response size exceeded",
    "query timeout",
    "log response size",
)
RANGE_ERROR_CODES = (-32005,)


def is_range_error(error: Any) -> bool:
    """True for the provider errors that mean "ask for a smaller block range"."""
    if isinstance(error, Mapping):
        code = error.get("code")
        message = str(error.get("message", "")) + " " + str(error.get("data", ""))
    else:
        code = getattr(error, "code", None)
        message = str(error)
        args = getattr(error, "args", ())
        if args and isinstance(args[0], Mapping):  # web3 raises with the RPC error as its arg
            return is_range_error(args[0])
    if code in RANGE_ERROR_CODES:
        return True
    lowered = message.lower()
    return any(marker in lowered for marker in RANGE_ERROR_MARKERS)


def get_logs(
    chain: Chain,
    address: str,
    topics: Sequence[Any],
    from_block: int,
    to_block: int | None = None,
) -> list[LogReceipt]:
    """``address``'s logs matching ``topics`` (web3's topic filter: bytes, lists of bytes for
    "any of", None for "anything") from ``from_block`` to ``to_block`` (default: the head),
    oldest first; the range is halved while the node refuses it as too large."""
    end = chain.block_number() if to_block is None else to_block
    out: list[LogReceipt] = []
    start, span = from_block, max(1, end - from_block + 1)
    while start <= end:
        stop = min(end, start + span - 1)
        try:
            out += chain.w3.eth.get_logs(
                cast(
                    Any,
                    {
                        "address": as_checksum(address),
                        "topics": list(topics),
                        "fromBlock": start,
                        "toBlock": stop,
                    },
                )
            )
        except Exception as exc:  # noqa: BLE001 - providers raise several types
            if not is_range_error(exc):
                raise
            if span == 1:
                raise ChainConnectionError(
                    f"the node refuses even a one-block log query ({exc}): use a node "
                    "without log limits"
                ) from None
            span //= 2
            continue
        start = stop + 1
    return out
