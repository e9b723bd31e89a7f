"""Benchmark the audit index: sync throughput from anvil and the embedded chain, and the latency
of one agent's trail among 100,000 indexed events.

    python scripts/bench_audit.py [--events 10000] [--synthetic 100000] [--embedded 60]

The 100k trail benchmark inserts synthetic decoded events directly into the index (copies of
real PaymentExecuted events spread over 100 agents); the sync benchmarks read real events.
Prints a table and the command that made it; numbers go to BENCHMARKS.md, not assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentwallet.audit.events import EventFilter, read_events  # noqa: E402
from agentwallet.audit.index import AuditIndex  # noqa: E402
from agentwallet.audit.reports import spend_report, trail  # noqa: E402
from agentwallet.chain import connect  # noqa: E402
from agentwallet.chain.node import free_port, start_anvil  # noqa: E402
from tests.audit._helpers import ETH, blast_payments, build_world  # noqa: E402


def bench_anvil(n: int, tmp: Path) -> list[tuple[str, str]]:
    rows = []
    with start_anvil(port=free_port()) as node:
        chain = connect(node.url)
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
        with AuditIndex(tmp / "anvil.sqlite") as index:
            result = index.sync(chain, [world.vault.address])
            rows.append(
                (
                    "anvil: full sync into a fresh index",
                    f"{result.events} events in {result.seconds:.2f}s = "
                    f"{result.events / result.seconds:,.0f} events/s",
                )
            )
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


def bench_trail(total: int, tmp: Path) -> list[tuple[str, str]]:
    with start_anvil(port=free_port()) as node:
        chain = connect(node.url)
        world = build_world(chain)
        world.pay(world.agent, ETH, world.payees[0], 10**15)
        base = read_events(chain, EventFilter(vaults=(world.vault.address,)))
    payment = next(e for e in base if e.name == "PaymentExecuted")
    agents = [f"0x{i:040x}" for i in range(1, 101)]
    from eth_utils import to_checksum_address

    agents = [to_checksum_address(a) for a in agents]
    agents[0] = world.agent.address
    synthetic = []
    for i in range(total - len(base)):
        agent = agents[i % len(agents)]
        synthetic.append(
            dataclasses.replace(
                payment,
                block_number=payment.block_number + 1 + i // 50,
                log_index=i % 50,
                block_time=payment.block_time + i,
                agent=agent,
                amount=1000 + i,
                args={**payment.args, "agent": agent, "amount": 1000 + i},
            )
        )
    with AuditIndex(tmp / "trail.sqlite") as index:
        index.insert_events(chain.chain_id, base)
        t = time.perf_counter()
        index.insert_events(chain.chain_id, synthetic)
        insert_s = time.perf_counter() - t
        count = index.count(chain.chain_id)
        timings = []
        for _ in range(20):
            t = time.perf_counter()
            entries = trail(index, chain.chain_id, world.vault.address, world.agent.address)
            timings.append(time.perf_counter() - t)
    return [
        ("index: insert synthetic decoded events", f"{len(synthetic)} in {insert_s:.2f}s"),
        (
            f"trail of one agent among {count:,} events",
            f"{len(entries)} entries: median {statistics.median(timings) * 1000:.1f} ms, "
            f"max {max(timings) * 1000:.1f} ms (20 runs)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="payments on anvil")
    parser.add_argument("--synthetic", type=int, default=100_000, help="events in the index")
    parser.add_argument("--embedded", type=int, default=60, help="payments on embedded chain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = bench_anvil(args.events, tmp)
        rows += bench_trail(args.synthetic, tmp)
        if args.embedded:
            rows += bench_embedded(args.embedded, tmp)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 60}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print(
        f"\ncommand: python scripts/bench_audit.py --events {args.events} "
        f"--synthetic {args.synthetic} --embedded {args.embedded}"
    )


if __name__ == "__main__":
    main()
