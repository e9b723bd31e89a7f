"""Logs straight to index rows: the sync's decoder.

A sync does not need :class:`~agentwallet.audit.events.AuditEvent` objects, only the rows it
writes. :class:`RowDecoder` compiles, once per event (by topic0), a plan: which topic or data
word each argument comes from and how to read it from its hex text, and how to render the
arguments as the row's JSON. Per log it then does only string slicing, ``int(..., 16)`` and
dictionary lookups (addresses are checksummed once each). Logs come as the node's JSON
(``eth_getLogs`` items, no intermediate objects) or as :class:`~agentwallet.audit.logs.RawLog`
(the embedded chain). Events with dynamic data (arrays, ``bytes``) or data that is not in its
canonical encoding go through :meth:`EventCodec.decode <agentwallet.audit.events.EventCodec.
decode>` instead, so both paths give the same rows (a test compares them on every event kind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentwallet.audit.columns import event_columns
from agentwallet.audit.events import EventCodec, EventSpec, _checksum, _topic_plain
from agentwallet.audit.logs import RawLog
from agentwallet.audit.schema import DERIVED_ARGS, column_value, event_row

__all__ = ["Row", "RowDecoder"]

Row = tuple[Any, ...]
_Where = tuple[int, str, str, int, int]  #: block number, block hash, tx hash, log index, time
LogItem = Mapping[str, Any] | RawLog

# positions in a row (schema.EVENT_COLUMNS)
_LOG_INDEX, _TX, _EMITTER, _NAME, _REQUEST_ID = 2, 5, 6, 8, 13

_ZERO24 = "0" * 24


class _Fallback(Exception):
    """Not the canonical encoding: let eth_abi judge it (EventCodec.decode)."""


def _word_reader(typ: str) -> Callable[[str], Any] | None:
    """How to read one static ABI word from its 64 hex digits as :func:`plain` gives it; None
    if ``typ`` is not a one-word static type."""
    if typ == "address":

        def address(word: str) -> str:
            if word[:24] != _ZERO24:
                raise _Fallback
            return _checksum("0x" + word[24:])

        return address
    if typ == "bool":

        def boolean(word: str) -> bool:
            value = int(word, 16)
            if value > 1:
                raise _Fallback
            return value == 1

        return boolean
    if typ.startswith(("uint", "int")) and typ[-1].isdigit():
        signed = typ.startswith("int")
        bits = int(typ[4 if not signed else 3 :] or 256)
        if not signed:

            def unsigned(word: str) -> int:
                value = int(word, 16)
                if value >> bits:
                    raise _Fallback
                return value

            return unsigned

        def integer(word: str) -> int:
            value = int(word, 16)
            if value >> 255:
                value -= 1 << 256
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise _Fallback
            return value

        return integer
    if typ.startswith("bytes") and typ[5:].isdigit():
        digits = 2 * int(typ[5:])
        padding = "0" * (64 - digits)

        def fixed_bytes(word: str) -> str:
            if word[digits:] != padding:
                raise _Fallback
            return "0x" + word[:digits]

        return fixed_bytes
    return None


def _topic_reader(typ: str) -> Callable[[str], Any]:
    """How to read an indexed argument from its topic's hex text (as ``_topic_plain``)."""
    if typ == "address":
        return lambda topic: _checksum("0x" + topic[26:])
    if typ.startswith("uint"):
        return lambda topic: int(topic, 16)
    return lambda topic: _topic_plain(typ, bytes.fromhex(topic[2:]))


def _json_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'  # checksummed addresses and 0x-hex only: nothing to escape


@dataclass(frozen=True)
class _Plan:
    spec: EventSpec
    topics: tuple[tuple[str, Callable[[str], Any]], ...]  #: (arg, reader) per topic 1..
    words: tuple[tuple[str, Callable[[str], Any]], ...] | None  #: per data word; None: dynamic
    data_length: int  #: length of the data's hex text, with its 0x
    json_keys: tuple[str, ...]  #: arguments no column can hold, in the JSON's (sorted) order
    derived: tuple[tuple[str, int], ...]  #: (argument, row position of the column that may hold it)


def _plan(spec: EventSpec) -> _Plan:
    topics = tuple((name, _topic_reader(typ)) for name, typ, indexed in spec.inputs if indexed)
    words: list[tuple[str, Callable[[str], Any]]] | None = []
    for name, typ, indexed in spec.inputs:
        if indexed:
            continue
        reader = _word_reader(typ)
        if reader is None or words is None:
            words = None
            continue
        words.append((name, reader))
    return _Plan(
        spec,
        topics,
        None if words is None else tuple(words),
        2 + 64 * len(words or ()),
        tuple(sorted(name for name, _, _ in spec.inputs if name not in DERIVED_ARGS)),
        tuple((name, DERIVED_ARGS[name]) for name, _, _ in spec.inputs if name in DERIVED_ARGS),
    )


class RowDecoder:
    """Decodes logs of one chain into index rows (the layout of ``schema.EVENT_COLUMNS``)."""

    def __init__(self, codec: EventCodec, chain_id: int) -> None:
        self.codec = codec
        self.chain_id = chain_id
        self._plans = {"0x" + topic0.hex(): _plan(spec) for topic0, spec in codec.specs.items()}
        self._addresses: dict[str, str] = {}  #: lowercase -> checksummed
        self._numbers: dict[str, int] = {}  #: hex quantities of block numbers and times

    def rows(self, items: Sequence[LogItem], block_time: Callable[[int], int]) -> list[Row]:
        """Rows of the logs in ``items`` that are our events, in the order given, with each
        request payment linked to its request id. ``block_time(n)``: the time of block ``n``
        for logs that came without one."""
        out: list[Row] = []
        plans = self._plans
        number = self._number
        address = self._address
        linked = False
        for item in items:
            if isinstance(item, RawLog):
                topics = ["0x" + t.hex() for t in item.topics]
                data = "0x" + item.data.hex()
                emitter = item.address
                bn, bh, tx, li, bt = (
                    item.block_number,
                    item.block_hash,
                    item.tx_hash,
                    item.log_index,
                    item.block_time,
                )
            else:
                if item.get("removed"):
                    continue
                topics = item["topics"]
                data = item["data"]
                emitter = item["address"]
                bn = number(item["blockNumber"])
                bh, tx = item["blockHash"], item["transactionHash"]
                li = int(item["logIndex"], 16)
                ts = item.get("blockTimestamp")
                bt = None if ts is None else number(ts)
            if not topics:
                continue
            plan = plans.get(topics[0].lower())
            if plan is None:
                continue
            if bt is None:
                bt = block_time(bn)
            emitter = address(emitter)
            where = (bn, bh, tx, li, bt)
            row = None
            if plan.words is not None and len(data) == plan.data_length:
                try:
                    row = self._fast(plan, topics, data.lower(), emitter, where)
                except (_Fallback, ValueError, IndexError):
                    row = None
            if row is None:
                row = self._slow(topics, data, emitter, where)
                if row is None:
                    continue
            if plan.spec.name == "RequestExecuted":
                linked = True
            out.append(row)
        return _link(out) if linked else out

    def _fast(
        self, plan: _Plan, topics: Sequence[str], data: str, emitter: str, where: _Where
    ) -> Row:
        if len(topics) != len(plan.topics) + 1:
            raise _Fallback
        args: dict[str, Any] = {}
        for (name, read), topic in zip(plan.topics, topics[1:], strict=True):
            args[name] = read(topic)
        position = 2
        for name, read in plan.words or ():
            args[name] = read(data[position : position + 64])
            position += 64
        name = plan.spec.name
        c = event_columns(name, args, emitter, self.codec.call_agent)
        bn, bh, tx, li, bt = where
        row = (
            self.chain_id,
            bn,
            li,
            bt,
            bh,
            tx,
            emitter,
            c.vault,
            name,
            c.agent,
            c.actor,
            c.token,
            c.recipient,
            c.request_id,
            c.kind,
            None if c.amount is None else str(c.amount),
            c.ref,
        )
        keys = plan.json_keys
        # an argument whose column holds something else (e.g. a payment by no agent) stays
        extra = [k for k, at in plan.derived if row[at] != column_value(at, args[k])]
        if extra:
            keys = tuple(sorted((*keys, *extra)))
        return (*row, "{" + ",".join(f'"{k}":{_json_value(args[k])}' for k in keys) + "}")

    def _slow(self, topics: Sequence[str], data: str, emitter: str, where: _Where) -> Row | None:
        bn, bh, tx, li, bt = where
        raw = RawLog(
            address=emitter,
            topics=tuple(bytes.fromhex(t[2:]) for t in topics),
            data=bytes.fromhex(data[2:]),
            block_number=bn,
            block_hash=bh,
            tx_hash=tx,
            log_index=li,
            block_time=bt,
        )
        event = self.codec.decode(raw)
        return None if event is None else event_row(self.chain_id, event)

    def _number(self, text: str) -> int:
        found = self._numbers.get(text)
        if found is None:
            if len(self._numbers) > 100_000:
                self._numbers.clear()
            found = self._numbers[text] = int(text, 16)
        return found

    def _address(self, text: str) -> str:
        found = self._addresses.get(text)
        if found is None:
            found = self._addresses[text] = _checksum(text.lower())
        return found


def _link(rows: list[Row]) -> list[Row]:
    """The rule of :func:`~agentwallet.audit.events.link_payments`, on rows: a
    PaymentExecuted followed by its vault's RequestExecuted in the same transaction carries
    that request's id."""
    executed = {
        (r[_TX], r[_EMITTER], r[_LOG_INDEX]): r[_REQUEST_ID]
        for r in rows
        if r[_NAME] == "RequestExecuted"
    }
    out = []
    for r in rows:
        if r[_NAME] == "PaymentExecuted" and r[_REQUEST_ID] is None:
            request_id = executed.get((r[_TX], r[_EMITTER], r[_LOG_INDEX] + 1))
            if request_id is not None:
                r = (*r[:_REQUEST_ID], request_id, *r[_REQUEST_ID + 1 :])
        out.append(r)
    return out
