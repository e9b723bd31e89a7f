"""Reading raw logs from a chain, in block ranges the node accepts.

:class:`LogReader` reads block ranges sized to what the node accepts: it starts large and halves
the range on the standard "too many results / range too large" provider errors. On the embedded
chain logs are read from py-evm's receipts directly (:class:`EmbeddedLogSource`), orders of
magnitude faster than eth-tester's ``eth_getLogs``. Which node answers mean "too large" is
:func:`agentwallet.chain.logs.is_range_error`. Decoding is :mod:`agentwallet.audit.events`.

Over HTTP, a large ``eth_getLogs`` answer is handed on as the node's bytes
(:class:`LogAnswer`), parsed where it is first used: a sync's reader thread then asks for the
next range as soon as the last one arrived, and the node prepares it while the writer parses,
decodes and writes (parsing on the reader thread left the node idle for that time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from agentwallet.audit.errors import BlockRangeError, LogReadError
from agentwallet.chain import Chain
from agentwallet.chain.logs import is_range_error

__all__ = [
    "EmbeddedLogSource",
    "LogAnswer",
    "LogReader",
    "LogSource",
    "RawLog",
    "RpcLogSource",
    "is_range_error",
    "log_source",
]


@dataclass(frozen=True)
class RawLog:
    """A log as read from the node, before decoding."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    block_time: int | None = None


# ------------------------------------------------------------------------------------ sources

RpcFn = Callable[[str, list[Any]], Any]
RawRpcFn = Callable[[str, list[Any]], bytes]  #: the node's answer as the bytes it sent
#: Answers at least this long are passed on unparsed (an error answer is parsed at once).
LAZY_BYTES = 65_536


class LogAnswer(Sequence[Mapping[str, Any]]):
    """An ``eth_getLogs`` answer kept as the node's bytes until first used: its length is the
    number of logs (counted in the bytes, for sizing the next read), indexing or iterating
    parses it (:class:`LogReadError` if it is not a JSON-RPC list of logs)."""

    def __init__(self, content: bytes, url: str) -> None:
        self.content = content
        self.url = url
        self.counted = content.count(b'"logIndex"')
        self._items: list[Mapping[str, Any]] | None = None

    def items(self) -> list[Mapping[str, Any]]:
        if self._items is None:
            try:
                answer = json.loads(self.content)
            except ValueError as exc:
                raise LogReadError(
                    f"eth_getLogs on {self.url} answered something that is not JSON ({exc}): "
                    "is it an Ethereum JSON-RPC node?"
                ) from None
            result = answer.get("result") if isinstance(answer, dict) else None
            if not isinstance(result, list):
                raise LogReadError(
                    f"eth_getLogs on {self.url} answered {str(answer)[:200]}, not a list of "
                    "logs: is it an Ethereum JSON-RPC node?"
                )
            self._items = result
        return self._items

    def __len__(self) -> int:
        return self.counted if self._items is None else len(self._items)

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self.items()[index]

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.items())


class _RangeTooLarge(Exception):
    pass


def _hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


class RpcLogSource:
    """``eth_getLogs`` over raw JSON-RPC (no web3 formatting: it is the hot path)."""

    def __init__(self, rpc: RpcFn, url: str | None = None, raw: RawRpcFn | None = None) -> None:
        self.rpc = rpc
        self.url = url or "the node"
        self.raw = raw  #: the same calls answering the node's bytes (eth_getLogs uses it)

    def call(self, method: str, params: list[Any]) -> Any:
        return self._checked(method, self._ask(self.rpc, method, params))

    def _ask(self, rpc: Callable[[str, list[Any]], Any], method: str, params: list[Any]) -> Any:
        try:
            return rpc(method, params)
        except Exception as exc:  # noqa: BLE001 - connection-level failure of any kind
            if is_range_error(exc):
                raise _RangeTooLarge(str(exc)) from None
            raise LogReadError(
                f"{method} failed on {self.url} ({type(exc).__name__}: {exc}); is the node "
                "running? The index was left as it was before this batch: run sync again"
            ) from None

    def _checked(self, method: str, response: Any) -> Any:
        if isinstance(response, Mapping) and "error" in response:
            if is_range_error(response["error"]):
                raise _RangeTooLarge(str(response["error"]))
            raise LogReadError(f"{method} failed on {self.url}: {response['error']}")
        return response.get("result") if isinstance(response, Mapping) else response

    def head(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def block_header(self, number: int) -> tuple[str, str, int]:
        """(hash, parent hash, timestamp) of the canonical block ``number``."""
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise BlockRangeError(f"block {number} does not exist on {self.url}")
        return str(block["hash"]), str(block["parentHash"]), int(block["timestamp"], 16)

    def log_items(
        self, from_block: int, to_block: int, addresses: Sequence[str] | None, topics: list[Any]
    ) -> Sequence[Mapping[str, Any]]:
        """The node's ``eth_getLogs`` answer as it came (JSON objects with hex fields): what a
        sync decodes straight into rows (:mod:`agentwallet.audit.rows`). A large answer comes
        unparsed (:class:`LogAnswer`) when the source has a ``raw`` transport."""
        params: dict[str, Any] = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if addresses:
            params["address"] = list(addresses)
        if topics:
            params["topics"] = [
                None
                if t is None
                else ["0x" + x.hex() for x in t]
                if isinstance(t, list)
                else "0x" + t.hex()
                for t in topics
            ]
        if self.raw is not None:
            content = self._ask(self.raw, "eth_getLogs", [params])
            if len(content) >= LAZY_BYTES and b'"error"' not in content[:256]:
                return LogAnswer(content, self.url)
            try:
                response = json.loads(content)
            except ValueError:
                response = {"error": f"not JSON: {content[:200]!r}"}
            result = self._checked("eth_getLogs", response)
        else:
            result = self.call("eth_getLogs", [params])
        if not isinstance(result, list):
            raise LogReadError(
                f"eth_getLogs on {self.url} answered {type(result).__name__}, not a list of "
                "logs: is it an Ethereum JSON-RPC node?"
            )
        return result

    def logs(
        self, from_block: int, to_block: int, addresses: Sequence[str] | None, topics: list[Any]
    ) -> list[RawLog]:
        result = self.log_items(from_block, to_block, addresses, topics)
        out = []
        topic_bytes: dict[str, bytes] = {}  # topics repeat (event ids, agents, tokens)

        def topic(value: str) -> bytes:
            found = topic_bytes.get(value)
            if found is None:
                found = topic_bytes[value] = _hex_to_bytes(value)
            return found

        for item in result:
            if item.get("removed"):
                continue
            ts = item.get("blockTimestamp")
            out.append(
                RawLog(
                    address=str(item["address"]),
                    topics=tuple(topic(t) for t in item["topics"]),
                    data=_hex_to_bytes(item["data"]),
                    block_number=int(item["blockNumber"], 16),
                    block_hash=str(item["blockHash"]),
                    tx_hash=str(item["transactionHash"]),
                    log_index=int(item["logIndex"], 16),
                    block_time=None if ts is None else int(ts, 16),
                )
            )
        return out


class EmbeddedLogSource:
    """Logs of the embedded chain read from py-evm receipts directly.

    eth-tester's ``eth_getLogs`` serialises every block and receipt through several layers
    (~1000x slower); here only blocks that have transactions are opened.
    """

    def __init__(self, chain: Chain) -> None:
        evm = chain.embedded_evm
        if evm is None:
            raise LogReadError("EmbeddedLogSource needs the embedded chain")
        self._evm = evm
        self.url = "the embedded chain"

    def head(self) -> int:
        return int(self._evm.get_canonical_head().block_number)

    def block_header(self, number: int) -> tuple[str, str, int]:
        try:
            header = self._evm.chaindb.get_canonical_block_header_by_number(number)
        except Exception:  # noqa: BLE001 - py-evm HeaderNotFound
            raise BlockRangeError(f"block {number} does not exist on the embedded chain") from None
        return "0x" + header.hash.hex(), "0x" + header.parent_hash.hex(), int(header.timestamp)

    def logs(
        self, from_block: int, to_block: int, addresses: Sequence[str] | None, topics: list[Any]
    ) -> list[RawLog]:
        from eth.constants import BLANK_ROOT_HASH

        wanted = {bytes.fromhex(a[2:].lower()) for a in addresses} if addresses else None
        chaindb = self._evm.chaindb
        out: list[RawLog] = []
        for number in range(from_block, to_block + 1):
            header = chaindb.get_canonical_block_header_by_number(number)
            if header.transaction_root == BLANK_ROOT_HASH:
                continue
            block = self._evm.get_canonical_block_by_number(number)
            receipts = block.get_receipts(chaindb)
            block_hash = "0x" + header.hash.hex()
            index = 0
            for tx, receipt in zip(block.transactions, receipts, strict=True):
                for log in receipt.logs:
                    log_index = index
                    index += 1
                    if wanted is not None and log.address not in wanted:
                        continue
                    log_topics = tuple(t.to_bytes(32, "big") for t in log.topics)
                    if not _topics_match(log_topics, topics):
                        continue
                    out.append(
                        RawLog(
                            address="0x" + log.address.hex(),
                            topics=log_topics,
                            data=bytes(log.data),
                            block_number=number,
                            block_hash=block_hash,
                            tx_hash="0x" + tx.hash.hex(),
                            log_index=log_index,
                            block_time=int(header.timestamp),
                        )
                    )
        return out

    log_items = logs  #: the same RawLogs (no JSON here)


def _topics_match(log_topics: tuple[bytes, ...], pattern: list[Any]) -> bool:
    for i, want in enumerate(pattern):
        if want is None:
            continue
        if i >= len(log_topics):
            return False
        options = want if isinstance(want, list) else [want]
        if log_topics[i] not in options:
            return False
    return True


LogSource = RpcLogSource | EmbeddedLogSource


def log_source(chain: Chain) -> LogSource:
    """The fastest log source for ``chain``."""
    if chain.is_embedded:
        return EmbeddedLogSource(chain)

    def rpc(method: str, params: list[Any]) -> Any:
        return chain.raw_request(method, params)  # looked up per call (see _raw_transport)

    return RpcLogSource(rpc, chain.url, _raw_transport(chain))


def _raw_transport(chain: Chain) -> RawRpcFn | None:
    """JSON-RPC calls answering the node's bytes (:meth:`Chain.raw_request_bytes`, through
    web3's own HTTP provider: its session, headers and retries), or None for another kind of
    provider. The method is looked up on every call, so whoever wraps it (a call counter) sees
    every read."""
    from web3 import HTTPProvider

    if not isinstance(chain.w3.provider, HTTPProvider):
        return None

    def raw(method: str, params: list[Any]) -> bytes:
        answer = chain.raw_request_bytes(method, params)
        if answer is None:  # this web3 cannot give the bytes: the parsing path, re-encoded
            return json.dumps(chain.raw_request(method, params)).encode()
        return answer

    return raw


class LogReader:
    """Reads logs in block ranges the node accepts: starts at ``first_range`` blocks (default
    ``max_range``), halves on a range error and retries, and grows back after successes:
    doubling, or, with ``target_logs``, to the range that should hold about that many logs at
    the density just seen (at most 8x per read; 2x once the node refused a range). A sync uses
    the target so that each read is big enough to amortise the round trip and small enough to
    overlap with decoding and writing the previous one."""

    def __init__(
        self,
        source: LogSource,
        max_range: int = 100_000,
        min_range: int = 1,
        *,
        first_range: int | None = None,
        target_logs: int | None = None,
    ) -> None:
        self.source = source
        self.max_range = max_range
        self.min_range = min_range
        self.range = max(min_range, min(max_range, first_range or max_range))
        self.target_logs = target_logs
        self.halvings = 0  #: how often a range error made the reader halve (for tests/benchmarks)

    def read(
        self,
        start: int,
        limit: int,
        addresses: Sequence[str] | None = None,
        topics: list[Any] | None = None,
        *,
        items: bool = False,
        before: Callable[[int], object] | None = None,
    ) -> tuple[int, Any]:
        """One successful log query from ``start``: (end, logs) with ``end <= limit``, the
        logs as RawLogs, or with ``items`` as the source gives them (``log_items``: the node's
        JSON objects, or RawLogs from the embedded chain). ``before(end)`` runs before each
        attempt (a sync reads the end block's hash there)."""
        while True:
            end = min(limit, start + self.range - 1)
            if before is not None:
                before(end)
            read = self.source.log_items if items else self.source.logs
            try:
                logs = read(start, end, addresses, topics or [])
            except _RangeTooLarge as exc:
                if self.range <= self.min_range:
                    raise LogReadError(
                        f"{self.source.url} refuses even a {self.range}-block log query ({exc}); "
                        "filter by vault or use a node without log limits"
                    ) from None
                self.range = max(self.min_range, self.range // 2)
                self.halvings += 1
                continue
            self._grow(end - start + 1, len(logs))
            return end, logs

    def _grow(self, span: int, found: int) -> None:
        if self.target_logs is None:
            wanted = self.range * 2
        else:
            wanted = self.range * (2 if self.halvings else 8)
            if found:
                wanted = min(wanted, span * self.target_logs // found)
        self.range = max(self.min_range, min(self.max_range, wanted))

    def chunks(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[str] | None = None,
        topics: list[Any] | None = None,
    ) -> Iterator[tuple[int, int, list[RawLog]]]:
        """Yield (start, end, logs) for consecutive sub-ranges covering [from_block, to_block]."""
        yield from self._chunks(from_block, to_block, addresses, topics, False)

    def item_chunks(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[str] | None = None,
        topics: list[Any] | None = None,
    ) -> Iterator[tuple[int, int, Sequence[Mapping[str, Any] | RawLog]]]:
        """As :meth:`chunks`, with the logs as :meth:`read` gives them with ``items``."""
        yield from self._chunks(from_block, to_block, addresses, topics, True)

    def _chunks(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[str] | None,
        topics: list[Any] | None,
        items: bool,
    ) -> Iterator[tuple[int, int, Any]]:
        if from_block > to_block:
            raise BlockRangeError(
                f"block range {from_block}..{to_block} is reversed: give from <= to"
            )
        start = from_block
        while start <= to_block:
            end, logs = self.read(start, to_block, addresses, topics, items=items)
            yield start, end, logs
            start = end + 1
