"""Logs straight to index rows: the sync's decoder.

A sync does not need :class:`~agentwallet.audit.events.AuditEvent` objects, only the rows it
writes. :class:`RowDecoder` generates, once per event (by topic0), a small Python function
(:mod:`agentwallet.audit.rowcode`) that reads each argument at its fixed offset in the topics
and data hex text and writes the row. Per log it then does only string slicing,
``int(..., 16)`` and dictionary lookups (addresses are checksummed once each). Logs come as
the node's JSON (``eth_getLogs`` items, no intermediate objects) or as
:class:`~agentwallet.audit.logs.RawLog` (the embedded chain). Events with dynamic data
(arrays, ``bytes``) or data that is not in its canonical encoding go through
:meth:`EventCodec.decode <agentwallet.audit.events.EventCodec.decode>` instead, so both paths
give the same rows (a test compares them on every event kind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentwallet.audit.events import EventCodec, _checksum
from agentwallet.audit.logs import RawLog
from agentwallet.audit.rowcode import Fallback, RowCode, compile_row
from agentwallet.audit.schema import event_row

__all__ = ["Row", "RowDecoder"]

Row = tuple[Any, ...]
_Where = tuple[int, str, str, int, int]  #: block number, block hash, tx hash, log index, time
LogItem = Mapping[str, Any] | RawLog

# positions in a row (schema.EVENT_COLUMNS)
_LOG_INDEX, _TX, _EMITTER, _NAME, _REQUEST_ID = 2, 5, 6, 8, 13


class RowDecoder:
    """Decodes logs of one chain into index rows (the layout of ``schema.EVENT_COLUMNS``)."""

    def __init__(self, codec: EventCodec, chain_id: int) -> None:
        self.codec = codec
        self.chain_id = chain_id
        checksums: dict[str, str] = {}
        #: by topic0 (lowercase hex): the generated row function (None: dynamic data, eth_abi)
        #: and whether it is a RequestExecuted (its payment gets its request id)
        self._plans: dict[str, tuple[RowCode | None, bool]] = {
            "0x" + topic0.hex(): (
                compile_row(spec, chain_id, codec.call_agent, checksums),
                spec.name == "RequestExecuted",
            )
            for topic0, spec in codec.specs.items()
        }
        self._addresses: dict[str, str] = {}  #: lowercase -> checksummed
        self._numbers: dict[str, int] = {}  #: hex quantities of block numbers and times

    def rows(self, items: Sequence[LogItem], block_time: Callable[[int], int]) -> list[Row]:
        """Rows of the logs in ``items`` that are our events, in the order given, with each
        request payment linked to its request id. ``block_time(n)``: the time of block ``n``
        for logs that came without one."""
        out: list[Row] = []
        append = out.append
        plans = self._plans
        numbers, number = self._numbers, self._number
        addresses, address = self._addresses, self._address
        linked = False
        for item in items:
            if type(item) is dict:  # the node's JSON: the common case
                if item.get("removed"):
                    continue
                topics = item["topics"]
                if not topics:
                    continue
                plan = plans.get(topics[0]) or plans.get(topics[0].lower())
                if plan is None:
                    continue
                data = item["data"]
                text = item["address"]
                emitter = addresses.get(text) or address(text)
                text = item["blockNumber"]
                bn = numbers.get(text) or number(text)
                text = item["logIndex"]
                li = numbers.get(text) or number(text)
                bh, tx = item["blockHash"], item["transactionHash"]
                text = item.get("blockTimestamp")
                bt = block_time(bn) if text is None else numbers.get(text) or number(text)
            else:
                if isinstance(item, RawLog):
                    topics = ["0x" + t.hex() for t in item.topics]
                    data = "0x" + item.data.hex()
                    text = item.address
                    bn, bh, tx, li, when = (
                        item.block_number,
                        item.block_hash,
                        item.tx_hash,
                        item.log_index,
                        item.block_time,
                    )
                else:  # another mapping
                    if item.get("removed"):
                        continue
                    topics, data, text = item["topics"], item["data"], item["address"]
                    bn = number(item["blockNumber"])
                    bh, tx = item["blockHash"], item["transactionHash"]
                    li = number(item["logIndex"])
                    ts = item.get("blockTimestamp")
                    when = None if ts is None else number(ts)
                if not topics:
                    continue
                plan = plans.get(topics[0].lower())
                if plan is None:
                    continue
                bt = block_time(bn) if when is None else when
                emitter = address(text)
            code, is_linked = plan
            row = None
            if code is not None:
                try:
                    row = code(topics, data, emitter, bn, bh, tx, li, bt)
                except (Fallback, ValueError, IndexError):
                    row = None
            if row is None:
                row = self._slow(topics, data, emitter, (bn, bh, tx, li, bt))
                if row is None:
                    continue
            if is_linked:
                linked = True
            append(row)
        return _link(out) if linked else out

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
