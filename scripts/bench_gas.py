"""Gas of AgentVault's paths, measured from receipts on anvil (Prague rules).

Usage:  python scripts/bench_gas.py [--rpc URL] [--markdown]

Without --rpc it starts its own anvil on a free loopback port. Steady state: recipients already
hold a balance, one payment per block, the agent's budget already touched once. Prints a table
with the reference figures from issue 3 and the command that made it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentwallet.chain import Chain, connect
from agentwallet.chain.node import free_port, start_anvil
from agentwallet.protocol.signatures import pack_signatures

ETH = "0x0000000000000000000000000000000000000000"
DAY = 86_400

# (label, figure, target or None): the reference figures quoted in issue 3, measured on anvil.
REFERENCES = {
    "direct ETH payment": [
        ("Safe AllowanceModule", 60_444),
        ("Coinbase SpendPermissionManager", 67_379),
        ("floor: 1 packed slot + 1 value call + event", 39_531),
    ],
    "direct ERC-20 payment": [
        ("Safe AllowanceModule", 67_307),
        ("Coinbase SpendPermissionManager", 75_716),
        ("floor: 1 packed slot + 1 transfer + event", 45_962),
    ],
    "ETH payment with 2 owner signatures (payWithSignatures)": [
        ("Safe 2-of-3 multisig ETH transfer", 65_794),
    ],
    "vault creation 2-of-3 (factory clone)": [("Safe 2-of-3 proxy creation", 283_416)],
}
TARGETS = {
    "direct ETH payment": 45_000,
    "direct ERC-20 payment": 55_000,
    "ETH payment with 2 owner signatures (payWithSignatures)": 65_000,
    "vault creation 2-of-3 (factory clone)": 200_000,
}


def measure(chain: Chain, hashes: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """Runs every path once; fills `hashes` (label -> transaction hash) when given."""
    accounts = chain.dev_accounts
    deployer, o1, o2, o3, agent, relayer = accounts[:6]
    recipient = accounts[6]
    fresh = [Account.create() for _ in range(2)]
    rows: list[tuple[str, int]] = []

    def gas(label: str, fn: Any, sender: LocalAccount, value: int = 0) -> int:
        receipt = chain.transact(fn, sender, value=value)
        used = int(receipt["gasUsed"])
        if label:
            rows.append((label, used))
            if hashes is not None:
                hashes[label] = receipt["transactionHash"].to_0x_hex()
        return used

    factory = chain.deploy("AgentVaultFactory", sender=deployer)
    usdc = chain.deploy("TestUSDC", sender=deployer)
    owners = sorted([o1.address, o2.address, o3.address], key=lambda a: int(a, 16))
    create = factory.functions.createVault(owners, 2, 3 * DAY, 10, b"\x00" * 32)
    gas("vault creation 2-of-3 (factory clone)", create, deployer)
    vault_address = factory.functions.predictVaultAddress(
        owners, 2, 3 * DAY, 10, b"\x00" * 32
    ).call()
    vault = chain.contract("AgentVault", vault_address)
    chain.send_transaction(deployer, {"to": vault_address, "value": 50 * 10**18})
    chain.transact(usdc.functions.mint(vault_address, 10**12), deployer)
    # recipients already hold balances (steady state)
    chain.send_transaction(deployer, {"to": recipient.address, "value": 1})
    chain.transact(usdc.functions.mint(recipient.address, 1), deployer)

    def govern(label: str, fn_name: str, *args: Any) -> None:
        data = vault.encode_abi(fn_name, list(args))
        request_id = vault.functions.requestCount().call() + 1
        propose_gas = gas("", vault.functions.propose(data, b"\x01" * 32), o1)
        approve_gas = gas("", vault.functions.approve(request_id), o2)
        if label:
            rows.append((f"{label}: propose (owner 1)", propose_gas))
            rows.append((f"{label}: approve + execute (owner 2)", approve_gas))

    govern("add an agent (2-of-3)", "addAgent", agent.address, 0, 0, False)
    govern(
        "set an agent's ETH limits (2-of-3)",
        "setLimits",
        agent.address,
        ETH,
        10**18,
        5 * 10**18,
        DAY,
    )
    govern("", "setLimits", agent.address, usdc.address, 100 * 10**6, 500 * 10**6, DAY)
    chain.send_transaction(deployer, {"to": agent.address, "value": 10**18})

    pay = vault.functions.pay
    gas("", pay(ETH, recipient.address, 10**15, b"\x02" * 32), agent)  # touch the budget once
    gas("", pay(usdc.address, recipient.address, 10**6, b"\x02" * 32), agent)
    gas("direct ETH payment", pay(ETH, recipient.address, 10**15, b"\x03" * 32), agent)
    gas("direct ERC-20 payment", pay(usdc.address, recipient.address, 10**6, b"\x03" * 32), agent)
    gas(
        "direct ETH payment, first to a new recipient",
        pay(ETH, fresh[0].address, 10**15, b"\x04" * 32),
        agent,
    )
    gas(
        "direct ERC-20 payment, first to a new recipient",
        pay(usdc.address, fresh[1].address, 10**6, b"\x04" * 32),
        agent,
    )

    # escalation, then two on-chain approvals
    escalate = gas(
        "escalated ETH payment: request created by pay()",
        pay(ETH, recipient.address, 2 * 10**18, b"\x05" * 32),
        agent,
    )
    request_id = vault.functions.requestCount().call()
    a1 = gas("escalated: approval 1 (owner)", vault.functions.approve(request_id), o1)
    a2 = gas("escalated: approval 2 executes the payment", vault.functions.approve(request_id), o2)
    rows.append(("escalated ETH payment end to end (pay + 2 approvals)", escalate + a1 + a2))

    # escalation executed with 2 off-chain signatures
    gas("", pay(ETH, recipient.address, 2 * 10**18, b"\x06" * 32), agent)
    request_id = vault.functions.requestCount().call()
    digest = vault.functions.requestDigest(request_id).call()
    signers = sorted([o1, o2], key=lambda a: int(a.address, 16))
    sigs = pack_signatures((s.address, s.unsafe_sign_hash(digest).signature) for s in signers)
    gas(
        "escalated request executed with 2 off-chain signatures",
        vault.functions.executeWithSignatures(request_id, sigs),
        relayer,
    )

    # owners' signed payment, no stored request
    for i in range(2):
        deadline = chain.timestamp() + 3600
        ref = bytes([7 + i]) * 32
        digest = vault.functions.signedPaymentDigest(
            agent.address, ETH, recipient.address, 10**15, ref, deadline
        ).call()
        sigs = pack_signatures((s.address, s.unsafe_sign_hash(digest).signature) for s in signers)
        gas(
            "ETH payment with 2 owner signatures (payWithSignatures)" if i == 1 else "",
            vault.functions.payWithSignatures(
                agent.address, ETH, recipient.address, 10**15, ref, deadline, sigs
            ),
            relayer,
        )
    # an agent with a validity end takes the full checks on every payment
    govern("", "addAgent", agent.address, 0, chain.timestamp() + 30 * DAY, False)
    gas(
        "direct ETH payment, agent with a validity end (full checks)",
        pay(ETH, recipient.address, 10**15, b"\x0a" * 32),
        agent,
    )
    govern("", "addAgent", agent.address, 0, 0, False)
    gas("pause the vault (one owner; 1 agent, 2 tokens)", vault.functions.pause(), o3)
    govern("", "unpause")
    gas("pause an agent (one owner; 2 tokens)", vault.functions.pauseAgent(agent.address), o3)
    return rows


def measure_pause_worst_case(chain: Chain) -> list[tuple[str, int]]:
    """pause() with MAX_AGENTS agents holding MAX_TOKENS_PER_AGENT tokens each (1-of-1 vault so
    that every governance call executes as it is proposed)."""
    deployer, owner = chain.dev_accounts[:2]
    factory = chain.deploy("AgentVaultFactory", sender=deployer)
    create = factory.functions.createVault([owner.address], 1, 3 * DAY, 10, b"\x01" * 32)
    chain.transact(create, deployer)
    address = factory.functions.predictVaultAddress(
        [owner.address], 1, 3 * DAY, 10, b"\x01" * 32
    ).call()
    vault = chain.contract("AgentVault", address)
    max_agents = vault.functions.MAX_AGENTS().call()
    max_tokens = vault.functions.MAX_TOKENS_PER_AGENT().call()
    tokens = [Account.create().address for _ in range(max_tokens)]

    def govern(fn_name: str, *args: Any) -> None:
        chain.transact(
            vault.functions.propose(vault.encode_abi(fn_name, list(args)), b"\x00" * 32), owner
        )

    for _ in range(max_agents):
        agent = Account.create().address
        govern("addAgent", agent, 0, 0, False)
        for token in tokens:
            govern("setLimits", agent, token, 10**18, 5 * 10**18, DAY)
    size = f"{max_agents} agents x {max_tokens} tokens"
    paused = chain.transact(vault.functions.pause(), owner)
    unpause = vault.functions.propose(vault.encode_abi("unpause", []), b"\x00" * 32)
    unpaused = chain.transact(unpause, owner)
    return [
        (f"pause the vault, worst case ({size})", int(paused["gasUsed"])),
        (f"unpause (governance, executes at once in a 1-of-1 vault), worst case ({size})",
         int(unpaused["gasUsed"])),
    ]  # fmt: skip


def render(rows: list[tuple[str, int]], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| path | gas | target | reference |",
        "|---|---:|---:|---|",
    ]
    for label, used in rows:
        target = TARGETS.get(label)
        refs = "; ".join(f"{name} {value:,}" for name, value in REFERENCES.get(label, []))
        lines.append(f"| {label} | {used:,} | {f'{target:,}' if target else ''} | {refs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", help="JSON-RPC URL of an anvil node (default: start one)")
    args = parser.parse_args(argv)
    command = "python scripts/bench_gas.py" + (f" --rpc {args.rpc}" if args.rpc else "")
    run: Callable[[Chain], list[tuple[str, int]]] = measure
    if args.rpc:
        chain = connect(args.rpc)
        rows = run(chain) + measure_pause_worst_case(chain)
    else:
        with start_anvil(port=free_port()) as node:
            chain = connect(node.url)
            rows = run(chain) + measure_pause_worst_case(chain)
    print(render(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
