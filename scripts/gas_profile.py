"""Where a path's gas goes: opcode-level breakdown of the bench_gas.py transactions on anvil.

Usage:  python scripts/gas_profile.py [PATH-LABEL-SUBSTRING ...]

Runs scripts/bench_gas.py's scenario on a fresh anvil, traces the chosen transactions with
debug_traceTransaction and prints, per transaction, the intrinsic cost (21,000 + calldata) and the
execution gas grouped by opcode (calls counted without the gas their callee used).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gas import measure  # noqa: E402

from agentwallet.chain import connect  # noqa: E402
from agentwallet.chain.node import free_port, start_anvil  # noqa: E402

NAMED = {"SLOAD", "SSTORE", "TLOAD", "TSTORE", "EXTCODESIZE", "EXTCODEHASH", "BALANCE", "KECCAK256"}
CALLS = {"CALL", "DELEGATECALL", "STATICCALL", "CALLCODE", "CREATE", "CREATE2"}


def self_costs(logs: list[dict[str, Any]]) -> Counter[str]:
    """Gas per opcode; a call's own cost excludes what its callee used."""
    costs: Counter[str] = Counter()
    for i, step in enumerate(logs):
        op, depth, gas = step["op"], step["depth"], step["gas"]
        nxt = logs[i + 1] if i + 1 < len(logs) else None
        if nxt is None or nxt["depth"] < depth:
            costs[op] += step["gasCost"]
        elif nxt["depth"] == depth:
            costs[op] += gas - nxt["gas"]
        else:  # entered a callee: find where it returns and what it used
            j = i + 1
            while j < len(logs) and logs[j]["depth"] > depth:
                j += 1
            last = logs[j - 1]
            used_by_callee = nxt["gas"] - (last["gas"] - last["gasCost"])
            after = logs[j]["gas"] if j < len(logs) else gas - step["gasCost"]
            costs[op] += gas - after - used_by_callee
    return costs


def main(argv: list[str]) -> int:
    wanted = argv or ["direct ETH payment", "direct ERC-20 payment", "payWithSignatures"]
    with start_anvil(port=free_port(), extra_args=["--steps-tracing"]) as node:
        chain = connect(node.url)
        hashes: dict[str, str] = {}
        rows = dict(measure(chain, hashes))
        w3 = chain.w3
        for label, tx_hash in hashes.items():
            if not any(label == w or (w not in rows and w in label) for w in wanted):
                continue
            tx = w3.eth.get_transaction(tx_hash)
            data = bytes(tx["input"])
            calldata = sum(16 if b else 4 for b in data)
            trace = w3.manager.request_blocking(
                "debug_traceTransaction",
                [tx_hash, {"enableMemory": False, "disableStack": True, "disableStorage": True}],
            )
            logs = [dict(s) for s in trace["structLogs"]]
            costs = self_costs(logs)
            print(f"\n## {label}: {rows[label]:,} gas")
            print(f"  intrinsic 21,000 + calldata {calldata:,} ({len(data)} bytes)")
            other = 0
            for op, cost in costs.most_common():
                if op in NAMED or op in CALLS or op.startswith("LOG"):
                    print(f"  {op:<14}{cost:>8,}")
                else:
                    other += cost
            print(f"  {'other ops':<14}{other:>8,}")
            print(f"  {'sum':<14}{21_000 + calldata + sum(costs.values()):>8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
