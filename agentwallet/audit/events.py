"""Decode AgentVault / AgentVaultFactory events read from a chain.

Logs (read by :mod:`agentwallet.audit.logs`) are decoded straight from the artifacts' ABIs (the
vault's one ABI ``IAgentVault``, the factory's; matched by topic0) with ``eth_abi`` into frozen
:class:`AuditEvent` records; governance calls inside proposals through
:mod:`agentwallet.protocol.calls`.

``PaymentExecuted`` carries no request id: when the owners execute an agent's payment request,
the vault emits it and then ``RequestExecuted`` (with the id) as the next log of the same
transaction. :func:`link_payments` gives such a payment its request's id, so every report tells
a direct payment from an approved one by events alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from agentwallet.audit.columns import event_columns
from agentwallet.audit.errors import BlockRangeError
from agentwallet.audit.logs import LogReader, LogSource, RawLog, log_source
from agentwallet.chain import Chain
from agentwallet.protocol.calls import Call, CallDecoder, canonical_type, plain

#: The vault's one ABI (every part's events) and the factory's, as named in :class:`EventSpec`.
VAULT_ABI = "IAgentVault"
FACTORY_ABI = "AgentVaultFactory"


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

    @cached_property
    def static_words(self) -> tuple[Callable[[bytes], Any], ...] | None:
        """One converter per data word when every data argument is a static one-word type
        (the common case: addresses, uints, bytes32, bools), else None (eth_abi decodes)."""
        converters = []
        for typ in self.data_types:
            converter = _word_converter(typ)
            if converter is None:
                return None
            converters.append(converter)
        return tuple(converters)

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
    """Decodes the logs of AgentVault (its ``IAgentVault`` ABI) and AgentVaultFactory (from the
    packaged artifacts)."""

    def __init__(self, abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
        if abis is None:
            from agentwallet.bindings.artifacts import abi_of

            abis = {n: abi_of(n) for n in (VAULT_ABI, FACTORY_ABI)}
        self.specs: dict[bytes, EventSpec] = {}
        self.by_name: dict[str, EventSpec] = {}
        #: Decodes the calls governance proposals carry (the vault's functions).
        self.calls = CallDecoder(abis.get(VAULT_ABI, ()))
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
        return [s.topic0 for s in self.specs.values() if s.contract == VAULT_ABI]

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
        words = spec.static_words
        data = log.data
        values: list[Any] | None = None
        if words is not None and len(data) == 32 * len(words):
            try:
                values = [convert(data[32 * i : 32 * i + 32]) for i, convert in enumerate(words)]
            except _NotCanonical:
                values = None  # odd padding: let eth_abi judge it
        if values is None:
            types = spec.data_types
            values = [plain(t, v) for t, v in zip(types, abi_decode(types, data), strict=True)]
        data_values = iter(values)
        topics = iter(log.topics[1:])
        args: dict[str, Any] = {}
        for name, typ, indexed in spec.inputs:
            if indexed:
                args[name] = _topic_plain(typ, next(topics))
            else:
                args[name] = next(data_values)
        return self._build(spec, log, args)

    def call_agent(self, data: str) -> str | None:
        """The agent a governance proposal's call (hex ``data``) configures, or None."""
        call = self.decode_call(bytes.fromhex(data[2:]))
        return None if call is None else call.agent

    def _build(self, spec: EventSpec, log: RawLog, args: dict[str, Any]) -> AuditEvent:
        emitter = _checksum(log.address)
        c = event_columns(spec.name, args, emitter, self.call_agent)
        return AuditEvent(
            block_number=log.block_number,
            block_time=log.block_time or 0,
            block_hash=log.block_hash,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            emitter=emitter,
            vault=c.vault,
            name=spec.name,
            args=args,
            agent=c.agent,
            actor=c.actor,
            token=c.token,
            recipient=c.recipient,
            request_id=c.request_id,
            kind=c.kind,
            amount=c.amount,
            ref=c.ref,
        )


def link_payments(events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """``events`` with each ``PaymentExecuted`` that an execution of a payment request made
    (the same vault's ``RequestExecuted`` is the next log of its transaction) carrying that
    request's id; direct payments keep ``request_id`` None."""
    executed = {
        (e.tx_hash, e.emitter, e.log_index): e.request_id
        for e in events
        if e.name == "RequestExecuted"
    }
    out = []
    for e in events:
        if e.name == "PaymentExecuted" and e.request_id is None:
            request_id = executed.get((e.tx_hash, e.emitter, e.log_index + 1))
            if request_id is not None:
                e = replace(e, request_id=request_id)
        out.append(e)
    return out


class _NotCanonical(Exception):
    """A data word with non-zero padding (eth_abi decides whether it is valid)."""


_ZERO12 = bytes(12)


def _word_converter(typ: str) -> Callable[[bytes], Any] | None:
    """How to read one static ABI word as :func:`plain` would give it; None if not a one-word
    static type."""
    if typ == "address":

        def address(word: bytes) -> str:
            if word[:12] != _ZERO12:
                raise _NotCanonical
            return _checksum("0x" + word[12:].hex())

        return address
    if typ == "bool":

        def boolean(word: bytes) -> bool:
            if word[-1] > 1 or any(word[:-1]):
                raise _NotCanonical
            return word[-1] == 1

        return boolean
    if typ.startswith(("uint", "int")) and typ[-1].isdigit():
        bits = int(typ.lstrip("uint") or 256)
        signed = typ.startswith("int")

        def integer(word: bytes) -> int:
            value = int.from_bytes(word, "big", signed=signed)
            if not signed and value >> bits:
                raise _NotCanonical
            if signed and not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise _NotCanonical
            return value

        return integer
    if typ.startswith("bytes") and typ[5:].isdigit():
        size = int(typ[5:])

        def fixed_bytes(word: bytes) -> str:
            if any(word[size:]):
                raise _NotCanonical
            return "0x" + word[:size].hex()

        return fixed_bytes
    return None


@cache
def _checksum(address: str) -> str:
    return str(plain("address", address))


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


_ARGS_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class AuditEvent:
    """One decoded vault or factory event.

    ``vault`` is the vault the event is about (for VaultCreated the new vault, else the emitter).
    ``agent`` is the agent it concerns (for GovernanceProposed: the agent the call configures,
    if any; for AgentRotated the old key, for SubAgentAdded the child); ``actor`` who acted
    (owner, executor, ``by``, depositor, proposer, relayer). ``recipient`` is the payee
    (PaymentExecuted, PaymentRequested ``to``; RelayFeePaid's relayer) or the allowlist or
    budget entry (RecipientChanged, RecipientBudgetChanged). ``request_id`` 0 means "not
    through a request"; a PaymentExecuted that executed a request carries its id (linked from
    the RequestExecuted after it, :func:`link_payments`), a direct one None. ``amount`` is what
    left or entered the vault (RelayFeePaid: the fee).
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
        return _ARGS_ENCODER.encode(dict(self.args))

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


#: (event, filter keys) matched after decoding, not by topic: a proposal's agent (in its call),
#: a request payment's id (linked from the RequestExecuted that follows it).
_POST_FILTERED = {("GovernanceProposed", ("agent",)), ("PaymentExecuted", ("requestId",))}


def topic_queries(codec: EventCodec, flt: EventFilter) -> list[list[Any]]:
    """Topic patterns covering the events ``flt`` can match, one per indexed-position layout,
    with the filter's indexed values (agent, token, recipient, request id) as topic filters."""
    names = flt.names or tuple(s.name for s in codec.specs.values())
    wanted = {
        ("agent",): flt.agent,
        ("token", "spendToken"): flt.token,
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
                # the agent of a proposal lives in its call, a request payment's id in the
                # RequestExecuted after it: keep them, filtered after decoding
                if (name, keys) not in _POST_FILTERED:
                    possible = False
                continue
            position = spec.indexed_position(present[0])
            if position is not None and (name, keys) not in _POST_FILTERED:
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
    executions = _executions(codec, flt)
    for pattern in [*topic_queries(codec, flt), *executions]:
        for _, _, logs in reader.chunks(start, end, flt.vaults, pattern):
            for event in decode_all(codec, logs, source, times):
                found[event.key] = event
    linked = link_payments([found[k] for k in sorted(found)])
    return [e for e in linked if flt.matches(e)]


def _executions(codec: EventCodec, flt: EventFilter) -> list[list[Any]]:
    """The extra query that finds the RequestExecuted after each PaymentExecuted (to link it)
    when the filter selects PaymentExecuted but not RequestExecuted itself."""
    names = flt.names or tuple(s.name for s in codec.specs.values())
    if "PaymentExecuted" not in names or (flt.names and "RequestExecuted" in names):
        return []
    return [[codec.by_name["RequestExecuted"].topic0]]


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
    """Decode logs, filling missing block timestamps from headers (cached in ``times``), and
    :func:`link_payments`."""
    out = []
    for log in logs:
        if log.block_time is None:
            if log.block_number not in times:
                times[log.block_number] = source.block_header(log.block_number)[2]
            log = RawLog(**{**log.__dict__, "block_time": times[log.block_number]})
        event = codec.decode(log)
        if event is not None:
            out.append(event)
    return link_payments(out)
