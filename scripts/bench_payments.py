"""Benchmark the agent client: N agents paying M within-limit ETH payments each through
``AgentWallet.pay`` from one process (a thread and an ``AgentWallet`` per agent), against the
ceiling of the same number of senders doing plain ETH transfers (``Chain.send_transaction``,
the same transaction pipeline without the vault or the journal).

    python scripts/bench_payments.py [--agents 10] [--payments 20] [--block-time S] [--embedded]
                                     [--breakdown 30] [--refs]

Starts its own anvil (automine unless ``--block-time``); ``--embedded`` uses the in-process
chain instead. Prints a table (payments/s confirmed and the ratio, latency p50/p90/p99,
JSON-RPC round trips and client CPU seconds per payment) and the command that made it;
numbers go to BENCHMARKS.md, not assertions. ``--breakdown N`` then makes N more payments from
one warm wallet under cProfile and splits the time of a payment into encoding, signing, JSON-RPC
(HTTP round trips), waiting (sleeps between receipt polls, lock waits) and the rest of the client.
``--refs`` gives every payment a caller's ref (an invoice id: the ref index is asked whether it
paid before, ``agentwallet.ref_index``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3.middleware import Web3Middleware  # noqa: E402

from agentwallet.agent import AgentWallet  # noqa: E402
from agentwallet.chain import Chain, connect  # noqa: E402
from agentwallet.chain.node import free_port, start_anvil  # noqa: E402
from agentwallet.deployments import Deployments  # noqa: E402
from agentwallet.protocol.models import Paid  # noqa: E402
from agentwallet.vault import Vault  # noqa: E402

ETHER = 10**18
DAY = 86_400
#: Each payment: 0.000001 ETH (well inside the 0.01 ETH per-payment limit).
AMOUNT = 10**12


class RpcCounter:
    """Counts JSON-RPC round trips made through ``chain`` (a batch counts as one),
    thread-safely: a web3 middleware placed outermost, and ``Chain.raw_request`` and
    ``Chain.raw_request_bytes`` (what the ref index and the audit read raw logs with, past web3's
    middleware)."""

    def __init__(self, chain: Chain) -> None:
        w3 = chain.w3
        self.count = 0
        self.by_method: Counter[str] = Counter()
        lock = threading.Lock()
        counter = self

        class Counting(Web3Middleware):
            def wrap_make_request(self, make_request: Any) -> Any:
                def middleware(method: Any, params: Any) -> Any:
                    with lock:
                        counter.count += 1
                        counter.by_method[str(method)] += 1
                    return make_request(method, params)

                return middleware

            def wrap_make_batch_request(self, make_batch_request: Any) -> Any:
                def middleware(requests: Any) -> Any:
                    with lock:
                        counter.count += 1
                        counter.by_method["(batch)"] += 1
                    return make_batch_request(requests)

                return middleware

        w3.middleware_onion.add(Counting, name="bench-rpc-counter")
        raw = chain.raw_request

        def counted_raw(method: str, params: Any) -> Any:
            with lock:
                counter.count += 1
                counter.by_method[method] += 1
            return raw(method, params)

        chain.raw_request = counted_raw  # type: ignore[method-assign]
        raw_bytes = chain.raw_request_bytes

        def counted_bytes(method: str, params: Any) -> bytes | None:
            with lock:
                counter.count += 1
                counter.by_method[method] += 1
            return raw_bytes(method, params)

        chain.raw_request_bytes = counted_bytes  # type: ignore[method-assign]


@dataclass
class Run:
    name: str
    count: int
    seconds: float
    latencies: list[float]
    rpc: int
    cpu: float
    methods: Counter[str]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fresh_accounts(chain: Chain, n: int, eth_each: int) -> list[LocalAccount]:
    """``n`` new keys, each sent ``eth_each`` wei for gas by a development account."""
    funder = chain.dev_accounts[9]
    accounts: list[LocalAccount] = [Account.create() for _ in range(n)]
    for account in accounts:
        chain.send_transaction(funder, {"to": account.address, "value": eth_each})
    return accounts


def setup_vault(chain: Chain, agents: list[LocalAccount], directory: Path) -> Vault:
    """A 2-of-3 vault with 50 ETH; each agent added with 0.01 ETH per payment, 10 ETH a day."""
    owners = chain.dev_accounts[:3]
    vault = Vault.create(
        chain,
        owners[0],
        [o.address for o in owners],
        2,
        name="bench",
        deployments=Deployments(chain, directory),
    )
    vault.fund(owners[0], 50 * ETHER)
    for agent in agents:
        request = vault.propose_add_agent(owners[0], agent.address)
        vault.approve(owners[1], request.request_id)
        request = vault.propose_set_limits(
            owners[0], agent.address, None, ETHER // 100, 10 * ETHER, DAY
        )
        vault.approve(owners[1], request.request_id)
    return vault


def timed(
    name: str, chain: Chain, counter: RpcCounter, workers: list[Callable[[], list[float]]]
) -> Run:
    """Run each worker in its own thread; collect per-operation latencies."""
    methods0 = Counter(counter.by_method)
    rpc0, cpu0, t0 = counter.count, time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        results = list(pool.map(lambda work: work(), workers))
    seconds = time.perf_counter() - t0
    latencies = [latency for result in results for latency in result]
    return Run(
        name,
        len(latencies),
        seconds,
        latencies,
        counter.count - rpc0,
        time.process_time() - cpu0,
        counter.by_method - methods0,
    )


def bench(chain: Chain, n_agents: int, n_payments: int, tmp: Path, refs: bool) -> list[Run]:
    counter = RpcCounter(chain)
    agents = fresh_accounts(chain, n_agents, ETHER)
    senders = fresh_accounts(chain, n_agents, ETHER)
    vault = setup_vault(chain, agents, tmp / "deployments")
    payee = chain.dev_accounts[7].address

    def agent_worker(i: int) -> Callable[[], list[float]]:
        wallet = AgentWallet(chain, vault, agents[i], journal_dir=tmp / "journal")

        def work() -> list[float]:
            latencies = []
            for k in range(n_payments):
                ref = f"invoice-{i}-{k}" if refs else None
                t = time.perf_counter()
                outcome = wallet.pay(payee, AMOUNT, ref=ref)
                latencies.append(time.perf_counter() - t)
                assert isinstance(outcome, Paid), outcome
            return latencies

        return work

    def transfer_worker(i: int) -> Callable[[], list[float]]:
        def work() -> list[float]:
            latencies = []
            for _ in range(n_payments):
                t = time.perf_counter()
                chain.send_transaction(senders[i], {"to": payee, "value": AMOUNT})
                latencies.append(time.perf_counter() - t)
            return latencies

        return work

    transfers = timed(
        "plain ETH transfer", chain, counter, [transfer_worker(i) for i in range(n_agents)]
    )
    name = "AgentWallet.pay, refs" if refs else "AgentWallet.pay (ETH)"
    payments = timed(name, chain, counter, [agent_worker(i) for i in range(n_agents)])
    return [payments, transfers]


#: (label, predicate on cProfile's (file, line, function) key): disjoint parts of a payment
PARTS: list[tuple[str, Callable[[tuple[str, int, str]], bool]]] = [
    ("encoding (ABI)", lambda k: k[0].endswith("bindings/vault.py") and k[2] == "encode"),
    ("signing", lambda k: k[2] == "sign_transaction" and "eth_account" in k[0]),
    ("JSON-RPC round trips (HTTP)", lambda k: k[2] == "request" and "requests/sessions" in k[0]),
    (
        "waiting (sleeps, lock waits)",
        lambda k: k[0] == "~" and ("sleep" in k[2] or "acquire" in k[2]),
    ),  # noqa: E501
]


def breakdown(chain: Chain, vault: Vault, agent: LocalAccount, n: int, tmp: Path) -> str:
    """Wall time of one payment split into PARTS (cProfile, one thread, a warm wallet)."""
    wallet = AgentWallet(chain, vault, agent, journal_dir=tmp / "journal-profile")
    payee = chain.dev_accounts[7].address
    wallet.pay(payee, AMOUNT)  # warm: the first payment to a recipient takes the full check
    profile = cProfile.Profile()
    t0, cpu0 = time.perf_counter(), time.process_time()
    profile.enable()
    for _ in range(n):
        wallet.pay(payee, AMOUNT)
    profile.disable()
    wall, cpu = (time.perf_counter() - t0) / n * 1000, (time.process_time() - cpu0) / n * 1000
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    lines = [f"one warm wallet, {n} payments under cProfile: {wall:.1f} ms wall, {cpu:.1f} ms CPU "
             "per payment (profiling adds overhead)"]  # fmt: skip
    rest = wall
    for label, match in PARTS:
        ms = sum(v[3] for k, v in stats.items() if match(k)) / n * 1000
        rest -= ms
        lines.append(f"  {label:32} {ms:7.2f} ms")
    lines.append(f"  {'the rest of the client':32} {rest:7.2f} ms")
    return "\n".join(lines)


def table(runs: list[Run]) -> str:
    head = (
        f"{'':24} {'tx/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'RPC/tx':>7} {'CPU ms/tx':>9}"
    )
    lines = [head, "-" * len(head)]
    for run in runs:
        lat = [x * 1000 for x in run.latencies]
        lines.append(
            f"{run.name:24} {run.count / run.seconds:8.1f} {statistics.median(lat):8.1f} "
            f"{percentile(lat, 90):8.1f} {percentile(lat, 99):8.1f} "
            f"{run.rpc / run.count:7.1f} {run.cpu / run.count * 1000:9.2f}"
        )
    payments, transfers = runs
    ratio = (payments.count / payments.seconds) / (transfers.count / transfers.seconds)
    lines.append(f"ratio pay/transfer (tx/s): {ratio:.2f}")
    for run in runs:
        top = ", ".join(
            f"{m} {c / run.count:.1f}" for m, c in run.methods.most_common() if c >= run.count / 2
        )
        lines.append(f"RPC per tx, {run.name}: {top}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10, help="agents (threads); default 10")
    parser.add_argument("--payments", type=int, default=20, help="payments per agent")
    parser.add_argument(
        "--block-time", type=float, default=None, help="anvil interval mining (seconds)"
    )
    parser.add_argument("--embedded", action="store_true", help="the embedded chain, not anvil")
    parser.add_argument(
        "--breakdown", type=int, default=0, help="then N profiled payments, time split by part"
    )
    parser.add_argument("--refs", action="store_true", help="every payment with a caller's ref")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.embedded:
            chain = connect("embedded")
            where = "embedded chain (py-evm)"
        else:
            node = stack.enter_context(start_anvil(port=free_port(), block_time=args.block_time))
            chain = connect(node.url)
            mining = f"block time {args.block_time}s" if args.block_time else "automine"
            where = f"anvil ({mining})"
        runs = bench(chain, args.agents, args.payments, tmp, args.refs)
        parts = ""
        if args.breakdown:
            [agent] = fresh_accounts(chain, 1, ETHER)
            parts = breakdown(chain, setup_vault(chain, [agent], tmp / "d2"), agent,
                              args.breakdown, tmp)  # fmt: skip
    print(f"{args.agents} senders x {args.payments} each on {where}, one process\n")
    print(table(runs))
    if parts:
        print("\n" + parts)
    print("\ncommand: python " + " ".join(["scripts/bench_payments.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
