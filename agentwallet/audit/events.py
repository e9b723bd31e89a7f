"""Read and decode AgentVault / AgentVaultFactory events from a chain.

Logs are decoded straight from the artifacts' ABIs (matched by topic0) with ``eth_abi`` into
frozen :class:`AuditEvent` records. :class:`LogReader` reads block ranges sized to what the node
accepts: it starts large and halves the range on the standard "too many results / range too
large" provider errors. On the embedded chain it reads receipts straight from py-evm, which is
orders of magnitude faster than eth-tester's ``eth_getLogs``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from agentwallet.audit.errors import BlockRangeError, LogReadError
from agentwallet.chain import Chain
from agentwallet.protocol.calls import Call, CallDecoder, canonical_type, plain
from agentwallet.protocol.constants import ZERO_ADDRESS, RequestKind

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


@dataclass(frozen=True)
class EventSpec:
    """One event of an ABI: its name, topic0 and how to decode it."""

    contract: str
    name: str
    topic0: bytes
    inputs: tuple[tuple[str, str, bool], ...]  # (name, abi type, indexed)

    @property
    def data_types(self) -> list[str]:
        return [t for _, t, indexed in self.inputs if not indexed]

    def indexed_position(self, arg: str) -> int | None:
        """Topic index (1..3) of an indexed argument, or None."""
        position = 0
        for name, _, indexed in self.inputs:
            if indexed:
                position += 1
                if name == arg:
                    return position
        return None


class EventCodec:
    """Decodes the logs of AgentVault and AgentVaultFactory (from the packaged artifacts)."""

    def __init__(self, abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
        if abis is None:
            from agentwallet.bindings.artifacts import abi_of

            abis = {n: abi_of(n) for n in ("AgentVault", "AgentVaultFactory")}
        self.specs: dict[bytes, EventSpec] = {}
        self.by_name: dict[str, EventSpec] = {}
        #: Decodes the calls governance requests carry (the vault's functions).
        self.calls = CallDecoder(abis.get("AgentVault", ()))
        for contract, abi in abis.items():
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    inputs = tuple(
                        (str(i["name"]), canonical_type(i), bool(i.get("indexed")))
                        for i in item["inputs"]
                    )
                    signature = f"{item['name']}({','.join(t for _, t, _ in inputs)})"
                    spec = EventSpec(contract, str(item["name"]), keccak(text=signature), inputs)
                    self.specs[spec.topic0] = spec
                    self.by_name[spec.name] = spec

    @property
    def vault_topics(self) -> list[bytes]:
        return [s.topic0 for s in self.specs.values() if s.contract == "AgentVault"]

    def decode_call(self, data: bytes) -> Call | None:
        """The vault call a governance request carries, or None."""
        return self.calls.decode(data)

    def decode(self, log: RawLog) -> AuditEvent | None:
        """Decode one log, or None for a log that is not one of our events."""
        if not log.topics:
            return None
        spec = self.specs.get(log.topics[0])
        if spec is None:
            return None
        data_values = iter(abi_decode(spec.data_types, log.data)) if spec.data_types else iter(())
        topics = iter(log.topics[1:])
        args: dict[str, Any] = {}
        for name, typ, indexed in spec.inputs:
            if indexed:
                args[name] = _topic_plain(typ, next(topics))
            else:
                args[name] = plain(typ, next(data_values))
        return self._build(spec, log, args)

    def _build(self, spec: EventSpec, log: RawLog, args: dict[str, Any]) -> AuditEvent:
        name = spec.name
        agent = args.get("agent")
        actor: str | None = None
        recipient: str | None = None
        kind: str | None = None
        vault = plain("address", log.address)
        if name == "RequestCreated":
            kind = RequestKind.text_of(args["kind"])
            actor = agent
            if kind == "payment":
                recipient = args["to"]
            else:
                agent = None
                call = self.decode_call(bytes.fromhex(args["data"][2:]))
                if call is not None:
                    agent = call.agent
        elif name == "PaymentExecuted":
            recipient = args["to"]
        elif name == "SignedPaymentExecuted":
            recipient = args["to"]
            if agent == ZERO_ADDRESS:  # the owners paid without naming an agent
                agent = None
        elif name == "RecipientChanged":
            recipient = args["recipient"]
        elif name in ("RequestApproved", "RequestRejected", "OwnerAdded", "OwnerRemoved"):
            actor = args["owner"]
        elif name == "RequestExecuted":
            actor = args["executor"]
        elif name in ("AgentStatusChanged", "LimitsChanged", "RecipientChanged", "VaultPaused"):
            actor = args["by"]
        elif name == "Deposited":
            actor = args["from"]
        elif name == "RequestCancelled":
            actor = agent
        elif name == "VaultCreated":
            vault = args["vault"]
            actor = args["creator"]
        request_id = args.get("requestId")
        amount = args.get("amount")
        return AuditEvent(
            block_number=log.block_number,
            block_time=log.block_time or 0,
            block_hash=log.block_hash,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            emitter=plain("address", log.address),
            vault=vault,
            name=name,
            args=args,
            agent=agent,
            actor=actor,
            token=args.get("token"),
            recipient=recipient,
            request_id=None if request_id is None else int(request_id),
            kind=kind,
            amount=None if amount is None else int(amount),
            ref=args.get("ref"),
        )


@cache
def _topic_plain(typ: str, topic: bytes) -> Any:
    """An indexed value from its topic (static types only; cached: topics repeat a lot)."""
    if typ == "address":
        return plain("address", "0x" + topic[12:].hex())
    if typ.startswith("uint"):
        return int.from_bytes(topic, "big")
    if typ == "bool":
        return topic[-1] == 1
    return plain(typ, abi_decode([typ], topic)[0])


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


@dataclass(frozen=True)
class AuditEvent:
    """One decoded vault or factory event.

    ``vault`` is the vault the event is about (for VaultCreated the new vault, else the emitter).
    ``agent`` is the agent it concerns (for governance RequestCreated: the agent the call
    configures, if any); ``actor`` who acted (owner, executor, ``by``, depositor, proposer).
    ``recipient`` is the payee (PaymentExecuted / payment RequestCreated ``to``) or the allowlist
    entry (RecipientChanged). ``request_id`` 0 means "not through a request".
    """

    block_number: int
    block_time: int
    block_hash: str
    tx_hash: str
    log_index: int
    emitter: str
    vault: str
    name: str
    args: Mapping[str, Any] = field(hash=False, compare=True)
    agent: str | None = None
    actor: str | None = None
    token: str | None = None
    recipient: str | None = None
    request_id: int | None = None
    kind: str | None = None
    amount: int | None = None
    ref: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)

    def args_json(self) -> str:
        return json.dumps(dict(self.args), sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "block_time": self.block_time,
            "block_hash": self.block_hash,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "emitter": self.emitter,
            "vault": self.vault,
            "name": self.name,
            "args": {
                k: str(v)
                if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53
                else v
                for k, v in self.args.items()
            },
            "agent": self.agent,
            "actor": self.actor,
            "token": self.token,
            "recipient": self.recipient,
            "request_id": self.request_id,
            "kind": self.kind,
            "amount": None if self.amount is None else str(self.amount),
            "ref": self.ref,
        }


@dataclass(frozen=True)
class EventFilter:
    """What to select. Every set field must match; None means any."""

    vaults: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    agent: str | None = None
    token: str | None = None
    recipient: str | None = None
    request_id: int | None = None
    kind: str | None = None
    from_block: int | None = None
    to_block: int | None = None
    since: int | None = None  #: block time, inclusive
    until: int | None = None  #: block time, inclusive

    def matches(self, e: AuditEvent) -> bool:
        if self.vaults is not None and e.vault.lower() not in {v.lower() for v in self.vaults}:
            return False
        if self.names is not None and e.name not in self.names:
            return False
        for want, got in (
            (self.agent, e.agent),
            (self.token, e.token),
            (self.recipient, e.recipient),
        ):
            if want is not None and (got is None or got.lower() != want.lower()):
                return False
        if self.request_id is not None and e.request_id != self.request_id:
            return False
        if self.kind is not None and e.kind != self.kind:
            return False
        if self.from_block is not None and e.block_number < self.from_block:
            return False
        if self.to_block is not None and e.block_number > self.to_block:
            return False
        if self.since is not None and e.block_time < self.since:
            return False
        return self.until is None or e.block_time <= self.until


# ------------------------------------------------------------------------------------ sources

RpcFn = Callable[[str, list[Any]], Any]


def is_range_error(error: Any) -> bool:
    """True for the provider errors that mean "ask for a smaller block range"."""
    if isinstance(error, Mapping):
        code = error.get("code")
        message = str(error.get("message", "")) + " " + str(error.get("data", ""))
    else:
        code = getattr(error, "code", None)
        message = str(error)
    if code in RANGE_ERROR_CODES:
        return True
    lowered = message.lower()
    return any(marker in lowered for marker in RANGE_ERROR_MARKERS)


class _RangeTooLarge(Exception):
    pass


def _hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


class RpcLogSource:
    """``eth_getLogs`` over raw JSON-RPC (no web3 formatting: it is the hot path)."""

    def __init__(self, rpc: RpcFn, url: str | None = None) -> None:
        self.rpc = rpc
        self.url = url or "the node"

    def call(self, method: str, params: list[Any]) -> Any:
        try:
            response = self.rpc(method, params)
        except Exception as exc:  # noqa: BLE001 - connection-level failure of any kind
            if is_range_error(exc):
                raise _RangeTooLarge(str(exc)) from None
            raise LogReadError(
                f"{method} failed on {self.url} ({type(exc).__name__}: {exc}); is the node "
                "running? The index was left as it was before this batch: run sync again"
            ) from None
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

    def logs(
        self, from_block: int, to_block: int, addresses: Sequence[str] | None, topics: list[Any]
    ) -> list[RawLog]:
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
        result = self.call("eth_getLogs", [params])
        out = []
        for item in result:
            if item.get("removed"):
                continue
            ts = item.get("blockTimestamp")
            out.append(
                RawLog(
                    address=str(item["address"]),
                    topics=tuple(_hex_to_bytes(t) for t in item["topics"]),
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
        tester = getattr(chain, "_tester", None)
        if tester is None:
            raise LogReadError("EmbeddedLogSource needs the embedded chain")
        self._evm = tester.backend.chain
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
    return RpcLogSource(
        lambda method, params: chain.w3.provider.make_request(method, params),  # type: ignore[arg-type]
        chain.url,
    )


class LogReader:
    """Reads logs in block ranges the node accepts: starts at ``max_range`` blocks, halves on a
    range error and retries, and grows back (doubling) after successes."""

    def __init__(self, source: LogSource, max_range: int = 100_000, min_range: int = 1) -> None:
        self.source = source
        self.max_range = max_range
        self.min_range = min_range
        self.range = max_range
        self.halvings = 0  #: how often a range error made the reader halve (for tests/benchmarks)

    def chunks(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[str] | None = None,
        topics: list[Any] | None = None,
    ) -> Iterator[tuple[int, int, list[RawLog]]]:
        """Yield (start, end, logs) for consecutive sub-ranges covering [from_block, to_block]."""
        if from_block > to_block:
            raise BlockRangeError(
                f"block range {from_block}..{to_block} is reversed: give from <= to"
            )
        start = from_block
        while start <= to_block:
            end = min(to_block, start + self.range - 1)
            try:
                logs = self.source.logs(start, end, addresses, topics or [])
            except _RangeTooLarge as exc:
                if self.range <= self.min_range:
                    raise LogReadError(
                        f"{self.source.url} refuses even a {self.range}-block log query ({exc}); "
                        "filter by vault or use a node without log limits"
                    ) from None
                self.range = max(self.min_range, self.range // 2)
                self.halvings += 1
                continue
            yield start, end, logs
            start = end + 1
            if self.range < self.max_range:
                self.range = min(self.max_range, self.range * 2)


def topic_queries(codec: EventCodec, flt: EventFilter) -> list[list[Any]]:
    """Topic patterns covering the events ``flt`` can match, one per indexed-position layout,
    with the filter's indexed values (agent, token, recipient, request id) as topic filters."""
    names = flt.names or tuple(s.name for s in codec.specs.values())
    wanted = {
        ("agent",): flt.agent,
        ("token",): flt.token,
        ("to", "recipient"): flt.recipient,
        ("requestId",): flt.request_id,
    }
    groups: dict[tuple[Any, ...], list[bytes]] = {}
    for name in names:
        spec = codec.by_name.get(name)
        if spec is None:
            raise BlockRangeError(f"unknown event name {name!r}: known: {sorted(codec.by_name)}")
        arg_names = {a for a, _, _ in spec.inputs}
        layout: list[bytes | None] = [None, None, None]
        possible = True
        for keys, value in wanted.items():
            if value is None:
                continue
            present = [k for k in keys if k in arg_names]
            if not present:
                # the agent of a governance RequestCreated lives in its data: keep it
                if not (name == "RequestCreated" and keys == ("agent",)):
                    possible = False
                continue
            position = spec.indexed_position(present[0])
            if position is not None and not (name == "RequestCreated" and keys == ("agent",)):
                layout[position - 1] = _topic_value(value)
        if possible:
            groups.setdefault(tuple(layout), []).append(spec.topic0)
    queries = []
    for shape, topic0s in groups.items():
        pattern: list[Any] = [topic0s, *shape]
        while pattern and pattern[-1] is None:
            pattern.pop()
        queries.append(pattern)
    return queries


def _topic_value(value: str | int) -> bytes:
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    return bytes(12) + bytes.fromhex(value[2:].lower())


def read_events(
    chain: Chain,
    flt: EventFilter,
    *,
    codec: EventCodec | None = None,
    reader: LogReader | None = None,
) -> list[AuditEvent]:
    """Read and decode the events matching ``flt`` straight from the chain, oldest first.

    Indexed fields become topic filters; the rest is filtered after decoding. Events whose
    node logs lack a block timestamp get it from their block header.
    """
    codec = codec or EventCodec()
    source = reader.source if reader else log_source(chain)
    reader = reader or LogReader(source)
    head = source.head()
    start = flt.from_block or 0
    end = head if flt.to_block is None else flt.to_block
    check_range(start, end, head)
    found: dict[tuple[int, int], AuditEvent] = {}
    times: dict[int, int] = {}
    for pattern in topic_queries(codec, flt):
        for _, _, logs in reader.chunks(start, end, flt.vaults, pattern):
            for event in decode_all(codec, logs, source, times):
                if flt.matches(event):
                    found[event.key] = event
    return [found[k] for k in sorted(found)]


def check_range(start: int, end: int, head: int) -> None:
    if start < 0 or end < 0:
        raise BlockRangeError(f"block numbers must be >= 0, got {start}..{end}")
    if start > end:
        raise BlockRangeError(f"block range {start}..{end} is reversed: give from <= to")
    if end > head:
        raise BlockRangeError(
            f"block range {start}..{end} goes beyond the chain head {head}: use to <= {head}"
        )


def decode_all(
    codec: EventCodec, logs: Iterable[RawLog], source: LogSource, times: dict[int, int]
) -> list[AuditEvent]:
    """Decode logs, filling missing block timestamps from headers (cached in ``times``)."""
    out = []
    for log in logs:
        if log.block_time is None:
            if log.block_number not in times:
                times[log.block_number] = source.block_header(log.block_number)[2]
            log = RawLog(**{**log.__dict__, "block_time": times[log.block_number]})
        event = codec.decode(log)
        if event is not None:
            out.append(event)
    return out
