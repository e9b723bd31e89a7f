"""Benchmark "did this ref already pay?" for an agent with a long history: the full scan of the
agent's payment logs since the vault was created (what ``pay`` with a caller's ref did before
the ref index) against :class:`agentwallet.ref_index.RefIndex` (first look, then each later look).

    python scripts/bench_ref_lookup.py [--payments 1000] [--lookups 20]

Starts its own anvil (automine: one payment per block), makes ``--payments`` within-limit
payments from one agent with distinct refs (raw transactions, so setup takes seconds), then
times each way of answering for a ref paid early on. Prints a table and the command; numbers
go to BENCHMARKS.md, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_payments import ETHER, RpcCounter, fresh_accounts, setup_vault  # noqa: E402

from agentwallet.bindings.vault import event_topic  # noqa: E402
from agentwallet.chain import Chain, connect  # noqa: E402
from agentwallet.chain.logs import get_logs  # noqa: E402
from agentwallet.chain.node import free_port, start_anvil  # noqa: E402
from agentwallet.protocol.models import ETH_TOKEN  # noqa: E402
from agentwallet.protocol.refs import to_ref  # noqa: E402
from agentwallet.ref_index import RefIndex  # noqa: E402
from agentwallet.request_log import deployment_block  # noqa: E402
from agentwallet.vault import Vault  # noqa: E402


def make_payments(chain: Chain, vault: Vault, agent: Any, n: int) -> None:
    """``n`` payments of 1 gwei with refs ``ref-0`` .. ``ref-{n-1}``, sent as raw transactions
    in nonce order, then the last one waited for."""
    w3 = chain.w3
    nonce = int(w3.eth.get_transaction_count(agent.address))
    fee = int(w3.eth.gas_price) * 2
    payee = chain.dev_accounts[7].address
    last = b""
    for i in range(n):
        data = vault.bindings.encode("pay", ETH_TOKEN.address, payee, 10**9, to_ref(f"ref-{i}"))
        tx = {"to": vault.address, "data": data, "gas": 120_000, "nonce": nonce + i,
              "chainId": chain.chain_id, "maxFeePerGas": fee,
              "maxPriorityFeePerGas": 1}  # fmt: skip
        last = bytes(w3.eth.send_raw_transaction(agent.sign_transaction(tx).raw_transaction))
    receipt = w3.eth.wait_for_transaction_receipt(last, timeout=300)  # type: ignore[arg-type]
    assert receipt["status"] == 1


def full_scan(chain: Chain, vault: Vault, agent: str, ref: bytes) -> bool:
    """The lookup ``pay`` made before the index: every payment log of the agent, decoded."""
    start = deployment_block(vault)
    agent_topic = bytes(12) + bytes.fromhex(agent[2:])
    for topics in (
        [event_topic("PaymentExecuted"), agent_topic],
        [event_topic("PaymentRequested"), None, agent_topic],
    ):
        for log in get_logs(chain, vault.address, topics, start):
            decoded = vault.bindings.decode_log(log)
            if decoded is not None and bytes(decoded[1]["ref"]) == ref:
                return True
    return False


def timed(call: Callable[[], Any], times: int, counter: RpcCounter) -> tuple[float, float, float]:
    """(median ms, max ms, JSON-RPC round trips per call)."""
    seen, before = [], counter.count
    for _ in range(times):
        t0 = time.perf_counter()
        assert call()
        seen.append((time.perf_counter() - t0) * 1000)
    return statistics.median(seen), max(seen), (counter.count - before) / times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000, help="earlier payments (1000)")
    parser.add_argument("--lookups", type=int, default=20, help="timed lookups per row (20)")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        node = stack.enter_context(start_anvil(port=free_port()))
        chain = connect(node.url)
        [agent] = fresh_accounts(chain, 1, ETHER)
        vault = setup_vault(chain, [agent], tmp)
        t0 = time.perf_counter()
        make_payments(chain, vault, agent, args.payments)
        setup = time.perf_counter() - t0
        counter = RpcCounter(chain)  # also the index's raw JSON-RPC calls
        ref = to_ref("ref-3")
        deployment_block(vault)  # cached per connection, as in pay
        rows = [("full scan of the agent's logs (before)", timed(
            lambda: full_scan(chain, vault, agent.address, ref), max(3, args.lookups // 5),
            counter))]  # fmt: skip
        index = RefIndex(tmp / "refs.sqlite")
        start = deployment_block(vault)
        rows.append(("RefIndex, first look (reads the history once)",
                     timed(lambda: index.find(chain, vault.address, agent.address, ref, start),
                           1, counter)))  # fmt: skip
        rows.append(("RefIndex, each later look (last 64 blocks)",
                     timed(lambda: index.find(chain, vault.address, agent.address, ref, start),
                           args.lookups, counter)))  # fmt: skip
    print(f"one agent with {args.payments} earlier payments on anvil (automine), "
          f"setup {setup:.1f} s\n")  # fmt: skip
    print("| lookup for a ref paid early | median ms | max ms | RPC per lookup |")
    print("|---|---:|---:|---:|")
    for name, (median, worst, rpc) in rows:
        print(f"| {name} | {median:,.1f} | {worst:,.1f} | {rpc:.1f} |")
    print(f"\ncommand: python scripts/bench_ref_lookup.py --payments {args.payments} "
          f"--lookups {args.lookups}")  # fmt: skip


if __name__ == "__main__":
    main()
