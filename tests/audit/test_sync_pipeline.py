"""The sync pipeline: reads on a thread sized to the log density, a transaction per range,
and a sync killed at any moment leaves the index consistent at its last commit (also a first
sync, which writes without the secondary indexes and builds them at its end)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentwallet.audit import logs as audit_logs
from agentwallet.audit.errors import LogReadError
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.logs import LogAnswer, LogReader, RpcLogSource, log_source
from agentwallet.audit.schema import EVENT_COLUMNS, INDEXES, missing_indexes
from agentwallet.chain import Chain
from tests.audit._helpers import World
from tests.audit.test_index import fresh_read, snapshot_of, some_payments

ROOT = Path(__file__).resolve().parents[2]


class RecordingSource(RpcLogSource):
    """Records each eth_getLogs range, how many logs came back and on which thread; after
    ``fail_after`` reads the node "goes away"."""

    def __init__(self, chain: Chain, fail_after: int | None = None) -> None:
        super().__init__(lambda m, p: chain.w3.provider.make_request(m, p), chain.url)  # type: ignore[arg-type]
        self.reads: list[tuple[int, int, int, str]] = []
        self.fail_after = fail_after

    def log_items(self, *args: Any) -> Any:
        if self.fail_after is not None and len(self.reads) >= self.fail_after:
            raise LogReadError("eth_getLogs failed on the node (ConnectionError); is it running?")
        items = super().log_items(*args)
        self.reads.append((args[0], args[1], len(items), threading.current_thread().name))
        return items


def test_reads_follow_the_log_density_on_a_reader_thread(
    anvil_world: World, index: AuditIndex
) -> None:
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    index.sync(chain, [vault])
    start = chain.block_number() + 1
    some_payments(world, 6)  # one payment a block: reads of ~2 logs (the target)
    dense_end = chain.block_number()
    chain._rpc("anvil_mine", [hex(600)])  # an empty stretch: the range grows 8x per read
    source = RecordingSource(chain)
    reader = LogReader(source, first_range=2, target_logs=2)
    result = index.sync(chain, [vault], reader=reader)
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)
    assert result.events >= 6 and result.from_block == start
    assert result.to_block == chain.block_number()
    reads = source.reads
    per_block = max(n for *_, n, _ in reads[:1]) // 2 or 1  # logs of one payment
    assert all(b - a + 1 <= 2 for a, b, _, _ in reads if a <= dense_end)
    assert max(n for *_, n, _ in reads) <= 2 * per_block
    empty = [b - a + 1 for a, b, _, _ in reads if a > dense_end]
    assert any(later == 8 * earlier for earlier, later in zip(empty, empty[1:], strict=False))
    assert len(reads) < 14  # 600 empty blocks in a few reads, not 300
    assert {name for *_, name in reads} == {"audit-sync-reader"}
    assert result.batches == len(source.reads)  # a transaction per range read


def test_node_lost_mid_sync_keeps_the_ranges_committed_and_resumes(
    anvil_world: World, index: AuditIndex
) -> None:
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    index.sync(chain, [vault])
    before = index.state(chain.chain_id, [vault])
    assert before is not None
    some_payments(world, 5)
    source = RecordingSource(chain, fail_after=2)
    with pytest.raises(LogReadError, match="is it running"):
        index.sync(chain, [vault], reader=LogReader(source, first_range=1, max_range=1))
    kept = index.state(chain.chain_id, [vault])
    assert kept is not None and kept.last_block == before.last_block + 2
    expected = [e for e in fresh_read(chain, vault) if e[0] <= kept.last_block]
    assert snapshot_of(index, chain.chain_id) == expected
    index.sync(chain, [vault])
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)


SLOW_SYNC = """
import sys, time
sys.path.insert(0, sys.argv[1])
from agentwallet.audit.index import AuditIndex
from agentwallet.audit import logs as audit_logs
from agentwallet.audit.logs import LogAnswer, LogReader, RpcLogSource, log_source
from agentwallet.chain import connect

chain = connect(sys.argv[2])

class Slow(RpcLogSource):
    def log_items(self, *args):
        time.sleep(0.15)
        return super().log_items(*args)

source = Slow(chain.raw_request, chain.url)
with AuditIndex(sys.argv[3]) as index:
    index.sync(
        chain,
        [sys.argv[4]],
        from_block=int(sys.argv[5]),
        reader=LogReader(source, first_range=1, max_range=1),
    )
print("finished")
"""


def _last_block(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT max(last_block) FROM sync_state").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return -1
    return -1 if row is None or row[0] is None else int(row[0])


def test_a_sync_killed_mid_way_leaves_a_consistent_index_at_its_last_commit(
    anvil_world: World, tmp_path: Path
) -> None:
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    db = tmp_path / "audit.sqlite"
    with AuditIndex(db) as index:
        index.sync(chain, [vault])
        first = index.state(chain.chain_id, [vault])
    assert first is not None
    some_payments(world, 12)
    head = chain.block_number()
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_SYNC, str(ROOT), chain.url, str(db), vault, "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _last_block(db) < first.last_block + 4 and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # no cleanup, no rollback: a crash
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with AuditIndex(db) as index:
        kept = index.state(chain.chain_id, [vault])
        assert kept is not None and first.last_block + 4 <= kept.last_block < head
        expected = [e for e in fresh_read(chain, vault) if e[0] <= kept.last_block]
        assert snapshot_of(index, chain.chain_id) == expected
        stored = index.db.execute(
            "SELECT max(number) FROM blocks WHERE chain_id = ?", (chain.chain_id,)
        ).fetchone()[0]
        assert stored == kept.last_block  # the state and the rows are from one commit
        result = index.sync(chain, [vault])
        assert result.from_block == kept.last_block + 1
        assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)


def _index_names(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def _event_count(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_a_first_sync_killed_mid_way_keeps_its_last_commit_and_gets_its_indexes_back(
    anvil_world: World, tmp_path: Path
) -> None:
    """A sync into an empty index drops the secondary indexes and builds them at its end:
    killed before that, the rows and state of its last commit are there, and the next open
    builds the indexes (the queries then use them)."""
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    db = tmp_path / "audit.sqlite"
    start = chain.block_number() + 1
    some_payments(world, 12)
    head = chain.block_number()
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_SYNC, str(ROOT), chain.url, str(db), vault, str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _event_count(db) < 8 and time.monotonic() < deadline:  # 4 payments (2 logs each)
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not _index_names(db) & set(INDEXES)  # killed while writing without them
    with AuditIndex(db) as index:
        assert missing_indexes(index.db) == []  # built on open
        kept = index.state(chain.chain_id, [vault])
        assert kept is not None and start + 3 <= kept.last_block < head
        expected = [e for e in fresh_read(chain, vault) if start <= e[0] <= kept.last_block]
        assert snapshot_of(index, chain.chain_id) == expected
        stored = index.db.execute(
            "SELECT max(number) FROM blocks WHERE chain_id = ?", (chain.chain_id,)
        ).fetchone()[0]
        assert stored == kept.last_block
        plan = " ".join(
            r[3]
            for r in index.db.execute(
                f"EXPLAIN QUERY PLAN SELECT {EVENT_COLUMNS} FROM events "
                "WHERE chain_id = ? AND vault IN (?) AND agent = ?",
                (chain.chain_id, vault, world.agent.address),
            )
        )
        assert "USING INDEX events_agent " in plan, plan
        result = index.sync(chain, [vault], from_block=start)
        assert result.from_block == kept.last_block + 1
        expected = [e for e in fresh_read(chain, vault) if e[0] >= start]
        assert snapshot_of(index, chain.chain_id) == expected


def _new_payments(world: World, n: int) -> tuple[Chain, str, int]:
    """``n`` more payments: (chain, vault, the block of the first)."""
    start = world.chain.block_number() + 1
    some_payments(world, n)
    return world.chain, world.vault.address, start


def test_a_first_sync_builds_its_indexes_at_the_end_even_when_the_node_goes_away(
    anvil_world: World, index: AuditIndex
) -> None:
    world = anvil_world
    chain, vault, start = _new_payments(world, 4)
    source = RecordingSource(chain, fail_after=2)
    with pytest.raises(LogReadError, match="is it running"):
        index.sync(
            chain, [vault], from_block=start, reader=LogReader(source, first_range=1, max_range=1)
        )
    assert missing_indexes(index.db) == []
    assert index.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # restored
    kept = index.state(chain.chain_id, [vault])
    assert kept is not None and kept.last_block == start + 1
    expected = [e for e in fresh_read(chain, vault) if start <= e[0] <= kept.last_block]
    assert snapshot_of(index, chain.chain_id) == expected and expected
    # a sync into an index that already holds events keeps its indexes throughout
    dropped: list[str] = []
    index.db.set_trace_callback(lambda sql: dropped.append(sql) if "DROP INDEX" in sql else None)
    index.sync(chain, [vault], from_block=start)
    index.db.set_trace_callback(None)
    assert dropped == [] and missing_indexes(index.db) == []
    assert snapshot_of(index, chain.chain_id) == [
        e for e in fresh_read(chain, vault) if e[0] >= start
    ]


def test_large_answers_come_as_bytes_and_are_parsed_by_the_writer(
    anvil_world: World, index: AuditIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP the reader thread hands on eth_getLogs answers unparsed (so it can ask for the
    next range at once); the writer parses them, and the index is the chain's."""
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    some_payments(world, 4)
    source = log_source(chain)
    assert isinstance(source, RpcLogSource) and source.raw is not None
    monkeypatch.setattr(audit_logs, "LAZY_BYTES", 0)  # every answer is "large" here
    parsed_on: list[str] = []
    items = LogAnswer.items

    def recording(self: LogAnswer) -> Any:
        parsed_on.append(threading.current_thread().name)
        return items(self)

    monkeypatch.setattr(LogAnswer, "items", recording)
    result = index.sync(chain, [vault], reader=LogReader(source, first_range=2, target_logs=4))
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)
    assert result.batches >= 2 and len(parsed_on) >= result.batches
    assert set(parsed_on) == {threading.main_thread().name}  # the writer, not the reader


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"<html>502 Bad Gateway</html>" + b" " * 100, "not JSON"),
        (b'{"jsonrpc":"2.0","id":1,"result":{"logs":[]}}', "not a list of logs"),
    ],
)
def test_a_large_answer_that_is_not_logs_is_a_typed_error_and_keeps_the_index(
    anvil_world: World,
    index: AuditIndex,
    monkeypatch: pytest.MonkeyPatch,
    answer: bytes,
    error: str,
) -> None:
    world, chain = anvil_world, anvil_world.chain
    vault = world.vault.address
    index.sync(chain, [vault])
    before = snapshot_of(index, chain.chain_id)
    kept = index.state(chain.chain_id, [vault])
    some_payments(world, 2)
    monkeypatch.setattr(audit_logs, "LAZY_BYTES", 0)
    source = RpcLogSource(chain.raw_request, chain.url, lambda m, p: answer)
    with pytest.raises(LogReadError, match=error):
        index.sync(chain, [vault], reader=LogReader(source))
    assert snapshot_of(index, chain.chain_id) == before
    assert index.state(chain.chain_id, [vault]) == kept


def test_a_range_error_through_the_byte_transport_still_halves_the_range(
    anvil_world: World, index: AuditIndex
) -> None:
    world = anvil_world
    chain, vault, start = _new_payments(world, 4)
    real = log_source(chain)
    assert isinstance(real, RpcLogSource) and real.raw is not None
    refusal = (
        b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,'
        b'"message":"query returned more than 10000 results"}}'
    )

    def raw(method: str, params: list[Any]) -> bytes:
        query = params[0]
        span = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
        assert real.raw is not None
        return refusal if span > 2 else real.raw(method, params)

    source = RpcLogSource(chain.raw_request, chain.url, raw)
    reader = LogReader(source, first_range=8)
    index.sync(chain, [vault], from_block=start, reader=reader)
    assert reader.halvings >= 2
    assert snapshot_of(index, chain.chain_id) == [
        e for e in fresh_read(chain, vault) if e[0] >= start
    ]
