"""Finding requests: the vault stores only a hash of each request, so its contents come from
its creation event.

Every call that acts on a request (approve, execute, reject, cancel, expire, sign, status) needs
it whole. :func:`find` looks for request ``id``:

1. in this process's cache (requests this process created or found before), kept per connected
   node and checked against the chain: an entry whose creation block is no longer canonical (a
   reorg, a reverted development snapshot) is dropped;
2. else in the vault's logs: ``eth_getLogs`` for the vault's address, topic0 either creation
   event (``PaymentRequested``, ``GovernanceProposed``) and topic1 the id, from the vault's
   deployment block (from the deployment record, else found once by bisecting on the vault's
   code) to the head, in ranges the node accepts (:func:`agentwallet.chain.logs.get_logs`).

A closed payment request whose slot a later request reused reads ``Closed`` on-chain; its final
status comes from its lifecycle events (:func:`final_status`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3.exceptions import BlockNotFound

from agentwallet.bindings.vault import CREATION_EVENTS, LIFECYCLE_EVENTS, event_topic
from agentwallet.chain.logs import get_logs
from agentwallet.errors import ContractRevertError
from agentwallet.protocol.constants import RequestStatus
from agentwallet.protocol.requests import Request, request_from_event

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = ["Found", "agent_configured", "deployment_block", "final_status", "find", "remember"]


@dataclass(frozen=True)
class Found:
    """A request and where its creation event is: block number and hash, transaction."""

    request: Request
    block_number: int
    block_hash: str
    tx_hash: str


#: Per node connection (its Web3): (vault, request id) -> Found.
_FOUND: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], Found]] = weakref.WeakKeyDictionary()
#: Per node connection: vault -> (deployment block, its hash).
_DEPLOYED: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, str]]] = weakref.WeakKeyDictionary()
#: Per node connection: block hash -> timestamp.
_TIMES: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def _hex(value: Any) -> str:
    return HexBytes(value).to_0x_hex()


def _canonical(vault: Vault, number: int, block_hash: str) -> bool:
    """Whether block ``number`` still has ``block_hash``."""
    try:
        block = vault.chain.w3.eth.get_block(number)
    except BlockNotFound:
        return False
    return _hex(block["hash"]) == block_hash


def remember(vault: Vault, requests: Sequence[Request], receipt: Any) -> None:
    """Cache the requests a transaction of this process created (from its ``receipt``)."""
    cache = _FOUND.setdefault(vault.chain.w3, {})
    for request in requests:
        cache[(vault.address, request.id)] = Found(
            request,
            int(receipt["blockNumber"]),
            _hex(receipt["blockHash"]),
            _hex(receipt["transactionHash"]),
        )


def _creation_topics(request_id: int | None) -> list[Any]:
    topic0 = [event_topic(name) for name in CREATION_EVENTS]
    return [topic0] if request_id is None else [topic0, request_id.to_bytes(32, "big")]


def _read(vault: Vault, request_id: int | None) -> list[Found]:
    """Creation events of the vault (of one request, or all), oldest first; cached."""
    logs = get_logs(
        vault.chain, vault.address, _creation_topics(request_id), deployment_block(vault)
    )
    cache = _FOUND.setdefault(vault.chain.w3, {})
    out = []
    for log in logs:
        decoded = vault.bindings.decode_log(log)
        if decoded is None:  # pragma: no cover - the topics select creation events only
            continue
        request = request_from_event(*decoded)
        found = Found(
            request, int(log["blockNumber"]), _hex(log["blockHash"]), _hex(log["transactionHash"])
        )
        cache[(vault.address, request.id)] = found
        out.append(found)
    return out


def find(vault: Vault, request_id: int) -> Found:
    """Request ``request_id`` of ``vault`` as created. An id the vault never issued raises
    :class:`~agentwallet.errors.UnknownRequestError`."""
    cached = _FOUND.get(vault.chain.w3, {}).get((vault.address, request_id))
    if cached is not None and _canonical(vault, cached.block_number, cached.block_hash):
        return cached
    found = _read(vault, request_id) if 0 < request_id <= vault.request_count() else []
    if not found:
        raise ContractRevertError.from_error(
            "UnknownRequest",
            {"requestId": request_id},
            message=f"no request {request_id} in vault {vault.address}: list them with `requests`",
        )
    return found[-1]


def scan(vault: Vault) -> list[Found]:
    """Every request of ``vault``, oldest first (one log query; refreshes the cache)."""
    return sorted(_read(vault, None), key=lambda f: f.request.id)


def created_at(vault: Vault, found: Found) -> int:
    """The timestamp of the block that created the request."""
    times = _TIMES.setdefault(vault.chain.w3, {})
    if found.block_hash not in times:
        block = vault.chain.w3.eth.get_block(HexBytes(found.block_hash))
        times[found.block_hash] = int(block["timestamp"])
    return times[found.block_hash]


#: Lifecycle event -> the status it leaves a request in.
_FINAL = {
    "RequestExecuted": RequestStatus.EXECUTED,
    "RequestRejected": RequestStatus.REJECTED,
    "RequestCancelled": RequestStatus.CANCELLED,
    "RequestExpired": RequestStatus.EXPIRED,
}


def final_status(vault: Vault, found: Found) -> RequestStatus:
    """A closed request's final status, from its lifecycle events (``CLOSED`` if none is found,
    e.g. on a node that pruned them)."""
    topics = [
        [event_topic(name) for name in LIFECYCLE_EVENTS],
        found.request.id.to_bytes(32, "big"),
    ]
    status = RequestStatus.CLOSED
    for log in get_logs(vault.chain, vault.address, topics, found.block_number):
        decoded = vault.bindings.decode_log(log)
        if decoded is None:  # pragma: no cover - the topics select lifecycle events only
            continue
        name, args = decoded
        if name == "RequestRejected" and not args["closed"]:
            continue  # a proposal's rejection that did not close it
        status = _FINAL[name]
    return status


def agent_configured(vault: Vault) -> list[str]:
    """Every key ever added as an agent (its ``AgentConfigured`` events), oldest first."""
    seen: dict[str, None] = {}
    topics = [event_topic("AgentConfigured")]
    for log in get_logs(vault.chain, vault.address, topics, deployment_block(vault)):
        decoded = vault.bindings.decode_log(log)
        if decoded is not None:
            seen.setdefault(str(decoded[1]["agent"]), None)
    return list(seen)


def deployment_block(vault: Vault) -> int:
    """The block ``vault`` was created in: from the deployment record, else the first block with
    its code (bisected once per connection, then cached); 0 if the node keeps no old state."""
    recorded = vault.deployments.vault_block(vault.address)
    if recorded is not None:
        return recorded
    cache = _DEPLOYED.setdefault(vault.chain.w3, {})
    known = cache.get(vault.address)
    if known is not None and _canonical(vault, *known):
        return known[0]
    w3 = vault.chain.w3
    low, high = 0, vault.chain.block_number()
    try:
        while low < high:
            middle = (low + high) // 2
            if w3.eth.get_code(vault.contract.address, block_identifier=middle):
                high = middle
            else:
                low = middle + 1
        block_hash = _hex(w3.eth.get_block(low)["hash"])
    except Exception:  # noqa: BLE001 - no historical state: read from the start
        return 0
    cache[vault.address] = (low, block_hash)
    return low
