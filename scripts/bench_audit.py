"""Benchmark the audit index: sync throughput from anvil (and its ratio to a raw eth_getLogs of
the same range) and the embedded chain, and the latency of one agent's trail among 100,000 (and
1,000,000) indexed events.

    python scripts/bench_audit.py [--events 10000] [--synthetic 100000 1000000] [--embedded 60]
        [--anvil-state FILE] [--profile] [--parts]

``--anvil-state FILE`` keeps the generated chain in FILE (``anvil_dumpState``; the vault's
address in FILE.vault) and loads it on the next run instead of sending the payments again;
``--profile`` also runs one full sync under cProfile and prints where its time goes;
``--parts`` times each part of a sync alone (CPU per 1,000 rows, medians): the node's HTTP
answer, parsing its JSON, decoding rows, inserting them, committing, the secondary indexes.

The trail benchmark inserts synthetic decoded events directly into the index (copies of a real
PaymentExecuted: the agent's own 1,000, the rest spread over 99 other agents); the sync
benchmarks read real events.
Prints a table and the command that made it; numbers go to BENCHMARKS.md, not assertions.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

try:
    import orjson
except ImportError:  # optional: only timed when installed
    orjson = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_utils.address import to_checksum_address  # noqa: E402

from agentwallet.audit.events import (  # noqa: E402
    AuditEvent,
    EventCodec,
    EventFilter,
    read_events,
)
from agentwallet.audit.index import AuditIndex  # noqa: E402
from agentwallet.audit.logs import RpcLogSource, log_source  # noqa: E402
from agentwallet.audit.rows import RowDecoder  # noqa: E402
from agentwallet.audit.spend import spend_report  # noqa: E402
from agentwallet.audit.sync import INSERT_EVENTS  # noqa: E402
from agentwallet.audit.trail import trail  # noqa: E402
from agentwallet.chain import Chain, connect  # noqa: E402
from agentwallet.chain.node import free_port, start_anvil  # noqa: E402
from tests.audit._helpers import ETH, blast_payments, build_world  # noqa: E402


def _cpu(fn: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    """The median CPU seconds of ``fn()`` over ``runs`` calls, and its last result."""
    times, out = [], None
    for _ in range(runs):
        c = time.process_time()
        out = fn()
        times.append(time.process_time() - c)
    return statistics.median(times), out


def _insert_cpu(rows: list[Any], tmp: Path, indexes: bool, chunk: int = 5_000) -> list[float]:
    """CPU seconds to insert ``rows`` into a fresh index in transactions of ``chunk`` rows:
    [inserts, commits, building the secondary indexes afterwards (0 if kept throughout)]."""
    path = tmp / f"parts-{time.monotonic_ns()}.sqlite"
    with AuditIndex(path) as index:
        db = index.db
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'events_%'"
            )
        ]
        sql = {n: s for n, s in db.execute("SELECT name, sql FROM sqlite_master")}
        if not indexes:
            for name in names:
                db.execute(f"DROP INDEX {name}")
        parts = [0.0, 0.0, 0.0]
        for i in range(0, len(rows), chunk):
            c = time.process_time()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(INSERT_EVENTS, rows[i : i + chunk])
            parts[0] += time.process_time() - c
            c = time.process_time()
            db.execute("COMMIT")
            parts[1] += time.process_time() - c
        if not indexes:
            c = time.process_time()
            with index._tx():
                for name in names:
                    db.execute(sql[name])
            parts[2] = time.process_time() - c
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return parts


def bench_parts(chain: Chain, vault: str, head: int, tmp: Path) -> list[tuple[str, str]]:
    """Each part of a full sync alone, in CPU ms per 1,000 rows (medians of 5)."""
    query = {"fromBlock": "0x0", "toBlock": hex(head), "address": vault}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]})
    session = requests.Session()
    url = str(chain.url)

    def answer() -> bytes:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"})
        return bytes(response.content)

    waits = []
    for _ in range(5):
        t = time.perf_counter()
        content = answer()
        waits.append(time.perf_counter() - t)
    json_s, parsed = _cpu(lambda: json.loads(content))
    items = parsed["result"]
    n = len(items)
    per_k = 1e6 / n  # seconds -> ms per 1,000 rows
    codec = EventCodec()
    decode_s, rows = _cpu(lambda: RowDecoder(codec, chain.chain_id).rows(items, lambda b: 0))
    kept = [_insert_cpu(rows, tmp, True) for _ in range(5)]
    deferred = [_insert_cpu(rows, tmp, False) for _ in range(5)]

    def median(parts: list[list[float]], i: int) -> float:
        return statistics.median(p[i] for p in parts) * per_k

    out = [
        (
            f"parts of a sync of {n} logs ({len(content) // n} bytes of JSON each)",
            "ms per 1,000 rows (CPU unless said; medians of 5)",
        ),
        (
            "  HTTP: the node's answer (wall: the node works)",
            f"{statistics.median(waits) * per_k:.1f}",
        ),
        ("  JSON parse (json)", f"{json_s * per_k:.1f}"),
    ]
    if orjson is not None:
        orjson_s, _ = _cpu(lambda: orjson.loads(content))
        out.append(("  JSON parse (orjson)", f"{orjson_s * per_k:.1f}"))
    out += [
        ("  decode into rows", f"{decode_s * per_k:.1f}"),
        (
            "  insert with the 5 secondary indexes / commit",
            f"{median(kept, 0):.1f} / {median(kept, 1):.1f}",
        ),
        (
            "  insert without them / commit / build them after",
            f"{median(deferred, 0):.1f} / {median(deferred, 1):.1f} / {median(deferred, 2):.1f}",
        ),
    ]
    return out


def bench_anvil(
    n: int,
    tmp: Path,
    runs: int = 3,
    state: Path | None = None,
    profile: bool = False,
    parts: bool = False,
) -> list[tuple[str, str]]:
    rows = []
    saved = state.with_name(state.name + ".vault") if state else None
    reuse = saved is not None and saved.exists()
    with start_anvil(port=free_port()) as node:
        chain = connect(node.url, timeout=600)  # one eth_getLogs of 100k logs takes seconds
        if reuse and saved is not None and state is not None:
            loaded = chain.raw_request("anvil_loadState", [json.loads(state.read_text())])
            if "error" in loaded:
                raise SystemExit(f"anvil could not load {state}: {loaded['error']}")
            vault = json.loads(saved.read_text())["vault"]
            rows.append(("anvil: payments", f"reused the chain in {state}"))
        else:
            world = build_world(chain)
            world.govern("setLimits", world.agent.address, ETH, 10**18, 10**24, 86_400)
            t = time.perf_counter()
            blast_payments(world, world.agent, n)
            rows.append(
                (
                    "anvil: generate payments (signed+sent, batched)",
                    f"{n} tx in {time.perf_counter() - t:.1f}s",
                )
            )
            vault = world.vault.address
            if saved is not None and state is not None:
                state.write_text(json.dumps(chain.raw_request("anvil_dumpState", [])["result"]))
                saved.write_text(json.dumps({"vault": vault}))
        head = chain.block_number()
        query = {"fromBlock": "0x0", "toBlock": hex(head), "address": vault}
        raw_times, sync_times = [], []
        parsers: dict[str, Callable[[bytes], Any]] = {"json": json.loads}
        if orjson is not None:
            parsers["orjson"] = orjson.loads
        as_sync: dict[str, list[float]] = {name: [] for name in parsers}
        source = log_source(chain)
        if not isinstance(source, RpcLogSource) or source.raw is None:
            raise SystemExit("the sync does not read anvil's answers as bytes: nothing to compare")
        raw = source.raw
        events = 0
        for run in range(runs):
            t = time.perf_counter()
            logs = chain.raw_request("eth_getLogs", [query])["result"]
            raw_times.append(time.perf_counter() - t)
            for name, parse in parsers.items():  # the node's bytes, then one parser
                t = time.perf_counter()
                parse(raw("eth_getLogs", [query]))["result"]
                as_sync[name].append(time.perf_counter() - t)
            with AuditIndex(tmp / f"anvil-{run}.sqlite") as index:
                result = index.sync(chain, [vault], to_block=head)
                sync_times.append(result.seconds)
                events = result.events
        if parts:
            rows += bench_parts(chain, vault, head, tmp)
        if profile:
            profiler = cProfile.Profile()
            with AuditIndex(tmp / "anvil-profiled.sqlite") as index:
                profiler.enable()
                index.sync(chain, [vault], to_block=head)
                profiler.disable()
            print(f"profile of a full sync of {events} events (cumulative):", file=sys.stderr)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
        raw_s, sync_s = statistics.median(raw_times), statistics.median(sync_times)
        rows.append(
            (
                "anvil: raw eth_getLogs of the same range",
                f"{len(logs)} logs in {raw_s:.2f}s = {len(logs) / raw_s:,.0f} logs/s "
                f"(median of {runs})",
            )
        )
        for name, times in as_sync.items():
            parsed_s = statistics.median(times)
            rows.append(
                (
                    f"anvil: the same read as the sync reads it, parsed by {name}"
                    + (" (the sync's parser)" if name == "json" else ""),
                    f"{len(logs) / parsed_s:,.0f} logs/s (median of {runs}); "
                    f"the sync is {parsed_s / statistics.median(sync_times):.2f} of it",
                )
            )
        rows.append(
            (
                "anvil: full sync into a fresh index",
                f"{events} events in {sync_s:.2f}s = {events / sync_s:,.0f} events/s "
                f"(median of {runs}); {raw_s / sync_s:.2f} of the raw read",
            )
        )
        with AuditIndex(tmp / "anvil-0.sqlite") as index:
            if reuse:
                rows.append(("anvil: incremental sync, spend report", "skipped (reused chain)"))
                return rows
            chain.increase_time(2 * 86_400)  # the blast used the day's budget: refill it
            for _ in range(3):
                world.pay(world.agent, ETH, world.payees[0], 1)
            t = time.perf_counter()
            inc = index.sync(chain, [world.vault.address])
            rows.append(
                (
                    "anvil: incremental sync (3 new blocks)",
                    f"{inc.events} events in {(time.perf_counter() - t) * 1000:.1f} ms",
                )
            )
            t = time.perf_counter()
            spend = spend_report(index, chain.chain_id, world.vault.address)
            rows.append(
                (
                    "anvil: spend report over the synced history",
                    f"{sum(r.payments for r in spend)} payments in "
                    f"{(time.perf_counter() - t) * 1000:.0f} ms",
                )
            )
    return rows


def bench_embedded(n: int, tmp: Path) -> list[tuple[str, str]]:
    chain = connect("embedded")
    world = build_world(chain)
    for i in range(n):
        world.pay(world.agent, ETH, world.payees[i % 3], 1000 + i)
    rows = []
    with AuditIndex(tmp / "embedded.sqlite") as index:
        result = index.sync(chain, [world.vault.address])
        rows.append(
            (
                "embedded: sync via py-evm receipts",
                f"{result.events} events / {chain.block_number()} blocks in "
                f"{result.seconds * 1000:.0f} ms",
            )
        )
    t = time.perf_counter()
    logs = chain.w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": world.vault.address}
    )
    rows.append(
        (
            "embedded: same range via eth_getLogs (eth-tester)",
            f"{len(logs)} logs in {(time.perf_counter() - t) * 1000:.0f} ms",
        )
    )
    return rows


def base_events() -> tuple[list[AuditEvent], AuditEvent, str, str]:
    """A real vault's history on the embedded chain (its agent added, limits set, one
    payment): (events, the payment, vault, agent)."""
    chain = connect("embedded")
    world = build_world(chain)
    world.pay(world.agent, ETH, world.payees[0], 10**15, b"inv-1")
    base = read_events(chain, EventFilter(vaults=(world.vault.address,)))
    payment = next(e for e in base if e.name == "PaymentExecuted")
    return base, payment, world.vault.address, world.agent.address


def bench_trail(
    totals: list[int], tmp: Path, own: int = 1000, runs: int = 20
) -> list[tuple[str, str]]:
    """One agent's trail among ``total`` indexed events. The agent has the real history plus
    ``own`` synthetic payments whatever the total; the rest are other agents' payments (99
    others), so the figure shows how the query grows with the *history*, not with the
    agent's own trail."""
    base, payment, vault, agent = base_events()
    chain_id = 31337
    others = [to_checksum_address(f"0x{i:040x}") for i in range(1, 100)]
    rows = []
    for total in totals:
        with AuditIndex(tmp / f"trail-{total}.sqlite") as index:
            index.insert_events(chain_id, base)
            t = time.perf_counter()
            block = payment.block_number + 1
            pending: list[AuditEvent] = []
            fill = total - len(base)
            every = max(1, fill // own)
            for i in range(fill):
                who = agent if i % every == 0 and i // every < own else others[i % len(others)]
                pending.append(
                    dataclasses.replace(
                        payment,
                        block_number=block + i // 50,
                        log_index=i % 50,
                        block_time=payment.block_time + i,
                        agent=who,
                        amount=1000 + i,
                        ref=None,
                        args={**payment.args, "agent": who, "amount": 1000 + i},
                    )
                )
                if len(pending) == 100_000:
                    index.insert_events(chain_id, pending)
                    pending = []
            index.insert_events(chain_id, pending)
            insert_s = time.perf_counter() - t
            count = index.count(chain_id)
            timings, cpu = [], []
            entries: list[Any] = []
            for _ in range(runs):
                t, c = time.perf_counter(), time.process_time()
                entries = trail(index, chain_id, vault, agent)
                timings.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
        rows += [
            (
                f"index: insert {fill:,} synthetic decoded events",
                f"{insert_s:.1f}s = {fill / insert_s:,.0f} events/s",
            ),
            (
                f"trail of one agent among {count:,} events",
                f"{len(entries)} entries: median {statistics.median(timings) * 1000:.1f} ms "
                f"(CPU {statistics.median(cpu) * 1000:.1f} ms), max "
                f"{max(timings) * 1000:.1f} ms ({runs} runs)",
            ),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="payments on anvil (0: skip)")
    parser.add_argument(
        "--synthetic",
        type=int,
        nargs="+",
        default=[100_000],
        help="events in the index for the trail benchmark (several: one index each), e.g. "
        "--synthetic 100000 1000000",
    )
    parser.add_argument("--embedded", type=int, default=60, help="payments on embedded chain")
    parser.add_argument(
        "--anvil-state", type=Path, help="keep the generated chain here and reuse it next time"
    )
    parser.add_argument("--profile", action="store_true", help="profile one full sync")
    parser.add_argument("--parts", action="store_true", help="time each part of a sync alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = (
            bench_anvil(
                args.events, tmp, state=args.anvil_state, profile=args.profile, parts=args.parts
            )
            if args.events
            else []
        )
        rows += bench_trail(args.synthetic, tmp)
        if args.embedded:
            rows += bench_embedded(args.embedded, tmp)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 60}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    synthetic = " ".join(str(n) for n in args.synthetic)
    print(
        f"\ncommand: python scripts/bench_audit.py --events {args.events} "
        f"--synthetic {synthetic} --embedded {args.embedded}"
    )


if __name__ == "__main__":
    main()
