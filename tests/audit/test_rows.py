"""The sync's row decoder gives exactly the rows of the event decoder, from the node's JSON and
from RawLogs, and hands anything unusual (dirty padding, odd topic counts) to eth_abi."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from agentwallet.audit.columns import event_columns
from agentwallet.audit.events import EventCodec, EventSpec, link_payments
from agentwallet.audit.logs import EmbeddedLogSource, RawLog
from agentwallet.audit.rows import RowDecoder
from agentwallet.audit.schema import event_row, row_event
from agentwallet.chain import Chain
from agentwallet.protocol.constants import ZERO_ADDRESS
from tests.audit._helpers import ETH, World
from tests.audit.test_events_and_reports import busy_history
from tests.contracts.conftest import Env


def as_json(log: RawLog, upper: bool = False) -> dict[str, Any]:
    """A RawLog as a node's eth_getLogs item (hex text), optionally in upper-case hex."""

    def h(b: bytes) -> str:
        text = b.hex()
        return "0x" + (text.upper() if upper else text)

    return {
        "address": log.address,
        "topics": [h(t) for t in log.topics],
        "data": h(log.data),
        "blockNumber": hex(log.block_number),
        "blockHash": log.block_hash,
        "transactionHash": log.tx_hash,
        "logIndex": hex(log.log_index),
        "blockTimestamp": None if log.block_time is None else hex(log.block_time),
        "removed": False,
    }


def expected_rows(codec: EventCodec, chain_id: int, logs: list[RawLog]) -> list[tuple[Any, ...]]:
    events = [e for e in (codec.decode(lg) for lg in logs) if e is not None]
    return [event_row(chain_id, e) for e in link_payments(events)]


def no_time(number: int) -> int:
    raise AssertionError(f"block {number}'s time was asked though every log carries one")


def test_rows_equal_the_event_decoder_on_every_kind_of_event(
    chain: Chain, embedded_world: World, vault_env: Env
) -> None:
    busy_history(embedded_world)
    logs = EmbeddedLogSource(chain).logs(0, chain.block_number(), None, [])
    codec = EventCodec()
    expected = expected_rows(codec, chain.chain_id, logs)
    names = {r[8] for r in expected}
    # static-only events (fast path) and dynamic ones (eth_abi), a linked request payment
    assert {"PaymentExecuted", "PaymentRequested", "LimitsChanged", "RecipientChanged"} <= names
    assert {"GovernanceProposed", "RequestExecuted", "VaultCreated"} <= names
    assert any(r[8] == "PaymentExecuted" and r[13] is not None for r in expected)
    decoder = RowDecoder(codec, chain.chain_id)
    assert decoder.rows(logs, no_time) == expected
    # rows are small (a payment's arguments all live in columns) and read back as written
    assert {r[17] for r in expected if r[8] == "PaymentExecuted" and r[9]} == {"{}"}
    events = link_payments([e for e in (codec.decode(lg) for lg in logs) if e is not None])
    assert [row_event(r) for r in expected] == events
    assert [list(row_event(r).args) for r in expected] == [sorted(e.args) for e in events]
    assert decoder.rows([as_json(lg) for lg in logs], no_time) == expected
    assert RowDecoder(codec, chain.chain_id).rows([as_json(lg, True) for lg in logs], no_time) == (
        expected
    )


def test_missing_block_times_are_asked_once_per_block_and_removed_logs_skipped(
    chain: Chain, embedded_world: World
) -> None:
    world = embedded_world
    world.pay(world.agent, ETH, world.payees[0], 10**15, b"t1")
    logs = EmbeddedLogSource(chain).logs(0, chain.block_number(), None, [])
    codec = EventCodec()
    expected = expected_rows(codec, chain.chain_id, logs)
    times = {lg.block_number: lg.block_time or 0 for lg in logs}
    asked: list[int] = []

    def block_time(number: int) -> int:
        asked.append(number)
        return times[number]

    items = [{**as_json(lg), "blockTimestamp": None} for lg in logs]
    items.insert(0, {**as_json(logs[-1]), "removed": True})
    rows = RowDecoder(codec, chain.chain_id).rows(items, block_time)
    assert rows == expected
    assert set(asked) == {r[1] for r in expected}


PAYMENT = "PaymentExecuted"


def _payment(codec: EventCodec, chain: Chain, world: World) -> RawLog:
    world.pay(world.agent, ETH, world.payees[1], 10**15, b"crafted")
    logs = EmbeddedLogSource(chain).logs(chain.block_number(), chain.block_number(), None, [])
    topic0 = codec.by_name[PAYMENT].topic0
    return next(lg for lg in logs if lg.topics[0] == topic0)


def test_crafted_logs_go_to_eth_abi_and_get_its_answer(chain: Chain, embedded_world: World) -> None:
    """A log a hostile contract at the vault's address cannot emit, but a lying node can send:
    dirty padding, a value too wide, a missing topic, foreign events. The row decoder never
    makes up a value eth_abi would refuse: it gives eth_abi's answer or eth_abi's error."""
    codec = EventCodec()
    log = _payment(codec, chain, embedded_world)
    decoder = RowDecoder(codec, chain.chain_id)
    # amount with bits above 256? not possible in one word; a dirty ref is fine (bytes32), so
    # make the data one word short and one word long (eth_abi: too short fails, extra ignored)
    long = RawLog(**{**log.__dict__, "data": log.data + bytes(32)})
    assert decoder.rows([long], no_time) == expected_rows(codec, chain.chain_id, [long])
    short = RawLog(**{**log.__dict__, "data": log.data[:32]})
    with pytest.raises(Exception) as slow:
        codec.decode(short)
    with pytest.raises(type(slow.value)):
        decoder.rows([short], no_time)
    # a missing topic: eth_abi's path fails the same way
    cut = RawLog(**{**log.__dict__, "topics": log.topics[:3]})
    with pytest.raises(Exception) as slow_cut:
        codec.decode(cut)
    with pytest.raises(type(slow_cut.value)):
        decoder.rows([cut], no_time)
    # an unknown event and a log without topics are not ours
    foreign = RawLog(**{**log.__dict__, "topics": (bytes(32), *log.topics[1:])})
    bare = RawLog(**{**log.__dict__, "topics": ()})
    assert decoder.rows([foreign, bare], no_time) == []


def test_dirty_words_fall_back_to_eth_abi(chain: Chain, embedded_world: World) -> None:
    """RecipientChanged(agent, recipient, bool allowed, address by, uint256 requestId): a bool
    word of 2 and an address word with high bits set are not canonical; a bool of 1 is."""
    world = embedded_world
    world.govern("allowRecipient", world.agent.address, world.payees[2])
    codec = EventCodec()
    logs = EmbeddedLogSource(chain).logs(0, chain.block_number(), None, [])
    topic0 = codec.by_name["RecipientChanged"].topic0
    log = next(lg for lg in logs if lg.topics[0] == topic0)
    decoder = RowDecoder(codec, chain.chain_id)
    assert decoder.rows([log], no_time) == expected_rows(codec, chain.chain_id, [log])
    words = [log.data[i : i + 32] for i in range(0, len(log.data), 32)]
    for position, dirty in ((0, (2).to_bytes(32, "big")), (1, b"\x01" + words[1][1:])):
        bad = RawLog(
            **{
                **log.__dict__,
                "data": b"".join(dirty if i == position else w for i, w in enumerate(words)),
            }
        )
        try:
            slow: Any = expected_rows(codec, chain.chain_id, [bad])
        except Exception as exc:  # noqa: BLE001 - eth_abi refuses it: so must the decoder
            with pytest.raises(type(exc)):
                decoder.rows([bad], no_time)
        else:
            assert decoder.rows([bad], no_time) == slow


def test_an_argument_its_column_does_not_hold_stays_in_the_row() -> None:
    """The owners' payment names no agent: the agent column is empty, so the zero address
    stays in ``args``; every other argument of a payment lives in its column."""
    from agentwallet.audit.events import AuditEvent
    from agentwallet.protocol.constants import ZERO_ADDRESS

    payee = "0x" + "ab" * 20
    args = {"agent": ZERO_ADDRESS, "token": ETH, "to": payee, "amount": 5, "ref": "0x" + "00" * 32}
    event = AuditEvent(
        block_number=7,
        block_time=70,
        block_hash="0x" + "11" * 32,
        tx_hash="0x" + "22" * 32,
        log_index=0,
        emitter=payee,
        vault=payee,
        name="PaymentExecuted",
        args=args,
        agent=None,
        token=ETH,
        recipient=payee,
        amount=5,
        ref=args["ref"],
    )
    row = event_row(1, event)
    assert row[17] == f'{{"agent":"{ZERO_ADDRESS}"}}'
    assert row_event(row) == event


def test_static_events_are_decoded_by_generated_code_and_only_dynamic_ones_by_eth_abi(
    chain: Chain, embedded_world: World, vault_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentwallet.audit.rowcode import compile_row

    busy_history(embedded_world)
    logs = EmbeddedLogSource(chain).logs(0, chain.block_number(), None, [])
    codec = EventCodec()
    expected = expected_rows(codec, chain.chain_id, logs)
    dynamic = {
        name
        for name, spec in codec.by_name.items()
        if compile_row(spec, chain.chain_id, codec.call_agent, {}) is None
    }
    assert "GovernanceProposed" in dynamic and not dynamic & {"PaymentExecuted", "LimitsChanged"}
    asked: list[str] = []
    decode = codec.decode

    def counting(log: RawLog) -> Any:
        event = decode(log)
        asked.append(event.name if event is not None else "?")
        return event

    monkeypatch.setattr(codec, "decode", counting)
    assert RowDecoder(codec, chain.chain_id).rows([as_json(lg) for lg in logs], no_time) == expected
    assert asked and set(asked) <= dynamic
    assert len(asked) == sum(1 for r in expected if r[8] in dynamic)


def _value(typ: str, rng: random.Random, zero: bool) -> Any:
    """A canonical value of ABI type ``typ`` (random, or zero/empty)."""
    if typ.endswith("[]"):
        return [] if zero else [_value(typ[:-2], rng, zero) for _ in range(2)]
    if typ == "address":
        return ZERO_ADDRESS if zero else to_checksum_address(rng.randbytes(20))
    if typ == "bool":
        return False if zero else True
    if typ.startswith("uint"):
        return 0 if zero else rng.getrandbits(int(typ[4:] or 256))
    if typ == "bytes":
        return b"" if zero else rng.randbytes(40)
    assert typ.startswith("bytes"), typ
    return bytes(int(typ[5:])) if zero else rng.randbytes(int(typ[5:]))


def _log(spec: EventSpec, values: dict[str, Any], index: int) -> RawLog:
    topics = [spec.topic0] + [
        abi_encode([typ], [values[name]]) for name, typ, indexed in spec.inputs if indexed
    ]
    data = abi_encode(spec.data_types, [values[n] for n, _, indexed in spec.inputs if not indexed])
    return RawLog(
        address="0x" + "ab" * 20,
        topics=tuple(topics),
        data=data,
        block_number=7,
        block_hash="0x" + "11" * 32,
        tx_hash="0x" + "22" * 32,
        log_index=index,
        block_time=70,
    )


def test_generated_code_gives_the_rows_of_event_columns_for_every_event_of_the_abi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The generated code asks event_columns once, when it is written, which value feeds which
    column: for every event of the ABI (static ones through the generated code, dynamic ones
    through eth_abi), random values, zeros (the owners' payment by no agent: event_columns
    treats it apart) and each address alone zero, it gives the rows of the event decoder,
    which asks event_columns for each log. Only the special values ask event_columns again."""
    from agentwallet.audit import rowcode

    codec = EventCodec()
    asked: list[str] = []

    def counting(name: str, *rest: Any) -> Any:
        asked.append(name)
        return event_columns(name, *rest)

    monkeypatch.setattr(rowcode, "event_columns", counting)
    decoder = RowDecoder(codec, 31337)
    static = {
        n for n, s in codec.by_name.items() if rowcode.compile_row(s, 1, codec.call_agent, {})
    }
    assert "PaymentExecuted" in static and "GovernanceProposed" not in static
    rng = random.Random(17)
    checked = set()
    for spec in codec.specs.values():
        variants = [
            {n: _value(t, rng, False) for n, t, _ in spec.inputs},
            {n: _value(t, rng, True) for n, t, _ in spec.inputs},
        ]
        for zero, typ, _ in spec.inputs:
            if typ == "address":
                variants.append({n: _value(t, rng, n == zero) for n, t, _ in spec.inputs})
        for i, values in enumerate(variants):
            log = _log(spec, values, i)
            expected = expected_rows(codec, 31337, [log])
            asked.clear()
            assert decoder.rows([log], no_time) == expected, (spec.name, values)
            assert decoder.rows([as_json(log)], no_time) == expected, (spec.name, values)
            if spec.name in static and i == 0:
                assert asked == [], spec.name  # random values: the baked columns
            checked.add(spec.name)
    assert checked == set(codec.by_name)
    owners_pay = {"agent": ZERO_ADDRESS, "token": ETH, "to": "0x" + "Ab" * 20, "amount": 5}
    zero_payment = _log(codec.by_name[PAYMENT], {**owners_pay, "ref": bytes(32)}, 0)
    asked.clear()
    assert decoder.rows([zero_payment], no_time) == expected_rows(codec, 31337, [zero_payment])
    assert asked == [PAYMENT]
