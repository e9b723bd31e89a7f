"""Where a path's gas goes: opcode-level breakdown of the bench_gas.py transactions on anvil.

Usage:  python scripts/gas_profile.py [--lines] [PATH-LABEL-SUBSTRING ...]

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

from bench_gas import Bench  # noqa: E402

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
        bench = Bench(chain)
        rows = dict(bench.measure())
        hashes = bench.hashes
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
            by_depth: Counter[int] = Counter()
            for k, step in enumerate(logs):
                if (
                    step["op"] not in NAMED
                    and step["op"] not in CALLS
                    and not step["op"].startswith("LOG")
                ):
                    nxt = logs[k + 1] if k + 1 < len(logs) else None
                    if nxt is not None and nxt["depth"] == step["depth"]:
                        by_depth[step["depth"]] += step["gas"] - nxt["gas"]
            print(f"\n## {label}: {rows[label]:,} gas")
            print(f"  intrinsic 21,000 + calldata {calldata:,} ({len(data)} bytes)")
            other = 0
            for op, cost in costs.most_common():
                if op in NAMED or op in CALLS or op.startswith("LOG"):
                    print(f"  {op:<14}{cost:>8,}")
                else:
                    other += cost
            print(
                f"  {'other ops':<14}{other:>8,}  by call depth: {dict(sorted(by_depth.items()))}"
            )
            print(f"  {'sum':<14}{21_000 + calldata + sum(costs.values()):>8,}")
    return 0


# ---------------------------------------------------------------------------------- by line


def _instruction_index(code: bytes) -> dict[int, int]:
    """pc -> instruction index (PUSH1..PUSH32 carry immediates)."""
    index: dict[int, int] = {}
    pc = i = 0
    while pc < len(code):
        index[pc] = i
        op = code[pc]
        pc += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
        i += 1
    return index


def _decompress(source_map: str) -> list[tuple[int, int, int]]:
    entries: list[tuple[int, int, int]] = []
    s = length = f = -1
    for item in source_map.split(";"):
        parts = item.split(":")
        if len(parts) > 0 and parts[0]:
            s = int(parts[0])
        if len(parts) > 1 and parts[1]:
            length = int(parts[1])
        if len(parts) > 2 and parts[2]:
            f = int(parts[2])
        entries.append((s, length, f))
    return entries


OPS_FOR = ""


def line_costs(chain: Any, tx_hash: str, parts: dict[str, str]) -> Counter[str]:
    """Execution gas per Solidity source line, for code of the vault's parts (by address)."""
    import json

    info = json.loads(
        (Path(__file__).resolve().parents[1] / "build/build-info/agentwallet.json").read_text()
    )
    out = info["output"]
    names = {v["id"]: k for k, v in out["sources"].items()}
    texts = {k: v["content"] for k, v in info["input"]["sources"].items()}
    maps: dict[str, tuple[dict[int, int], list[tuple[int, int, int]]]] = {}
    for contracts in out["contracts"].values():
        for name, c in contracts.items():
            if name in parts.values():
                code = bytes.fromhex(c["evm"]["deployedBytecode"]["object"])
                maps[name] = (
                    _instruction_index(code),
                    _decompress(c["evm"]["deployedBytecode"]["sourceMap"]),
                )
    by_address = {address.lower(): name for name, address in ((v, k) for k, v in parts.items())}
    trace = chain.w3.manager.request_blocking(
        "debug_traceTransaction", [tx_hash, {"enableMemory": False, "disableStorage": True}]
    )
    logs = [dict(s) for s in trace["structLogs"]]
    costs: Counter[str] = Counter()
    frames: list[str | None] = []
    for k, step in enumerate(logs):
        depth = step["depth"]
        while len(frames) < depth:
            frames.append(None)
        del frames[depth:]
        if k > 0 and logs[k - 1]["depth"] == depth - 1 and logs[k - 1]["op"] in CALLS:
            stack = logs[k - 1]["stack"]
            target = "0x" + stack[-2][2:].rjust(40, "0")[-40:]
            previous = frames[depth - 2] if depth >= 2 else None
            frames[depth - 1] = by_address.get(
                target.lower(), previous if logs[k - 1]["op"] == "DELEGATECALL" else None
            )
        contract = frames[depth - 1]
        nxt = logs[k + 1] if k + 1 < len(logs) else None
        cost = (
            step["gas"] - nxt["gas"]
            if nxt is not None and nxt["depth"] == depth
            else step["gasCost"]
        )
        if contract is None or contract not in maps or step["op"] in CALLS:
            costs["(other code, calls)"] += cost
            continue
        if step["op"] in NAMED or step["op"].startswith("LOG"):
            costs[f"({step['op']})"] += cost
            continue
        index, entries = maps[contract]
        s, length, f = entries[index[step["pc"]]]
        unit = names.get(f)
        if unit is None:
            costs[f"{contract}: (compiler-generated)"] += cost
            continue
        line = texts[unit].count("\n", 0, s) + 1
        snippet = texts[unit][s : s + min(length, 60)].split("\n")[0]
        costs[f"{unit.split('/')[-1]}:{line} {snippet}"] += cost
        if OPS_FOR and OPS_FOR in snippet:
            costs[f"    op {step['op']}"] += cost
    return costs


def main_lines(argv: list[str]) -> int:
    with start_anvil(port=free_port(), extra_args=["--steps-tracing"]) as node:
        chain = connect(node.url)
        bench = Bench(chain)
        rows = dict(bench.measure())
        parts = {address: name for name, address in bench.part_addresses.items()}
        for label, tx_hash in bench.hashes.items():
            if not any(w in label for w in argv):
                continue
            print(f"\n## {label}: {rows[label]:,} gas (execution by source line, top 40)")
            for where, cost in line_costs(chain, tx_hash, parts).most_common(40):
                print(f"  {cost:>7,}  {where}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--lines"]:
        sys.exit(main_lines(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
