"""The SQLite audit index: incremental sync, reorgs, restarts, failures, bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentwallet.audit.errors import (
    AuditIndexError,
    BlockRangeError,
    LogReadError,
    NotAVaultAddressError,
)
from agentwallet.audit.events import EventFilter, read_events
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.logs import LogReader, RpcLogSource, log_source
from agentwallet.audit.reports import spend_report, trail
from agentwallet.chain import Chain, connect
from agentwallet.chain.node import free_port, start_anvil
from tests.audit._helpers import ETH, World, blast_payments, build_world


def snapshot_of(index: AuditIndex, chain_id: int) -> list[tuple[Any, ...]]:
    return [
        (e.block_number, e.log_index, e.block_hash, e.name, e.args_json())
        for e in index.events(chain_id)
    ]


def fresh_read(chain: Chain, vault: str) -> list[tuple[Any, ...]]:
    return [
        (e.block_number, e.log_index, e.block_hash, e.name, e.args_json())
        for e in read_events(chain, EventFilter(vaults=(vault,)))
    ]


def some_payments(world: World, n: int = 3) -> None:
    for i in range(n):
        world.pay(world.agent, ETH, world.payees[i % 3], 10**15 * (i + 1), f"p{i}".encode())


def test_incremental_sync_equals_a_fresh_full_read(anvil_world: World, index: AuditIndex) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    first = index.sync(chain, [vault])
    assert first.events > 0
    some_payments(anvil_world)
    second = index.sync(chain, [vault])
    assert second.from_block == first.to_block + 1
    assert second.events == 3
    assert index.sync(chain, [vault]).events == 0
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)


def test_reorg_between_syncs_rolls_back_to_the_common_ancestor(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    some_payments(anvil_world, 4)  # 4 blocks with one payment each
    index.sync(chain, [vault])
    before = index.count(chain.chain_id)
    # replace the last 3 blocks: one new payment in the first replacement block
    agent = anvil_world.agent
    data = anvil_world.vault.encode_abi("pay", [ETH, anvil_world.payees[2], 7, b"r" * 32])
    nonce = chain.w3.eth.get_transaction_count(agent.address) - 3
    signed = agent.sign_transaction(
        {
            "to": vault,
            "data": data,
            "nonce": nonce,
            "gas": 300_000,
            "chainId": chain.chain_id,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    assert chain._rpc("anvil_reorg", [3, [["0x" + signed.raw_transaction.hex(), 0]]]) is None
    result = index.sync(chain, [vault])
    assert result.reorgs == 1 and result.rolled_back_blocks >= 3
    assert index.count(chain.chain_id) == before - 3 + 1
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)
    amounts = [
        e.amount for e in index.events(chain.chain_id, EventFilter(names=("PaymentExecuted",)))
    ]
    assert amounts[-1] == 7


class ReorgingSource(RpcLogSource):
    """Reorgs the chain (empty replacement blocks) right after the first eth_getLogs."""

    def __init__(self, chain: Chain, depth: int) -> None:
        super().__init__(lambda m, p: chain.w3.provider.make_request(m, p), chain.url)  # type: ignore[arg-type]
        self.chain = chain
        self.depth = depth
        self.done = False

    def log_items(self, *args: Any) -> Any:  # what logs() and the sync read through
        result = super().log_items(*args)
        if not self.done:
            self.done = True
            self.chain._rpc("anvil_reorg", [self.depth, []])
        return result


def test_reorg_during_sync_discards_the_batch_and_rereads(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    some_payments(anvil_world, 3)
    source = ReorgingSource(chain, 2)
    result = index.sync(chain, [vault], reader=LogReader(source))
    assert source.done
    assert snapshot_of(index, chain.chain_id) == fresh_read(chain, vault)
    assert len(index.events(chain.chain_id, EventFilter(names=("PaymentExecuted",)))) == 1
    assert result.to_block == chain.block_number()


class DroppingSource(RpcLogSource):
    """Works for ``calls`` RPC calls, then behaves like a node that went away."""

    def __init__(self, chain: Chain, calls: int) -> None:
        super().__init__(lambda m, p: chain.w3.provider.make_request(m, p), chain.url)  # type: ignore[arg-type]
        self.left = calls

    def call(self, method: str, params: list[Any]) -> Any:
        self.left -= 1
        if self.left < 0:
            self.rpc = _refuse
        return super().call(method, params)


def _refuse(method: str, params: list[Any]) -> Any:
    raise ConnectionError("Connection refused")


def test_node_dropping_mid_sync_is_a_clear_error_and_leaves_the_index_unchanged(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    index.sync(chain, [vault])
    before = snapshot_of(index, chain.chain_id)
    state = index.state(chain.chain_id, [vault])
    some_payments(anvil_world, 3)
    # head + batch end header + one log query, then the node disappears
    reader = LogReader(DroppingSource(chain, 3), max_range=2)
    with pytest.raises(LogReadError, match="is the node running"):
        index.sync(chain, [vault], reader=reader, batch_blocks=10)
    assert snapshot_of(index, chain.chain_id) == before
    assert index.state(chain.chain_id, [vault]) == state


def test_node_restart_mid_sync_resumes(tmp_path: Path) -> None:
    state_file = tmp_path / "anvil-state.json"
    port = free_port()
    node = start_anvil(port=port, state=state_file)
    try:
        chain = connect(node.url)
        world = build_world(chain)
        some_payments(world, 4)
        vault = world.vault.address
        index = AuditIndex(tmp_path / "audit.sqlite")
        middle = chain.block_number() - 2
        index.sync(chain, [vault], to_block=middle)
    finally:
        node.stop()
    with start_anvil(port=port, state=state_file) as node2:
        chain2 = connect(node2.url)
        world.chain = chain2
        some_payments(world, 2)
        result = index.sync(chain2, [vault])
        assert result.from_block == middle + 1 and result.reorgs == 0
        assert snapshot_of(index, chain2.chain_id) == fresh_read(chain2, vault)
        assert len(index.events(chain2.chain_id, EventFilter(names=("PaymentExecuted",)))) == 6
    index.close()


def test_larger_history_syncs_fast_and_reports_match_raw_events(
    anvil_world: World, index: AuditIndex
) -> None:
    """~3000 direct payments sent without waiting, mined in big blocks."""
    chain, world = anvil_world.chain, anvil_world
    vault, agent = world.vault.address, world.agent
    world.govern("setLimits", agent.address, ETH, 10**18, 10**21, 86_400)
    n = 3000
    blast_payments(world, agent, n)
    result = index.sync(chain, [vault])
    assert result.events >= n
    raw = read_events(chain, EventFilter(vaults=(vault,), names=("PaymentExecuted",)))
    assert len(raw) == n
    spend = spend_report(index, chain.chain_id, vault, agent=agent.address, token=ETH)
    assert sum(r.total_base_units for r in spend) == sum(e.amount or 0 for e in raw)
    assert sum(r.payments for r in spend) == n
    assert len(trail(index, chain.chain_id, vault, agent.address)) >= n


def test_embedded_chain_sync_and_trail(embedded_world: World, index: AuditIndex) -> None:
    chain, world = embedded_world.chain, embedded_world
    world.pay(world.agent, ETH, world.payees[0], 10**17, b"inv-1")
    world.pay(world.agent, ETH, world.payees[1], 2 * 10**18, b"too-big")  # escalates
    result = index.sync(chain, [world.vault.address])
    assert result.events == len(fresh_read(chain, world.vault.address))
    entries = trail(index, chain.chain_id, world.vault.address, world.agent.address)
    texts = [e.what for e in entries]
    assert any("agent added" in t for t in texts)
    assert any("paid 0.1 ETH" in t and "directly" in t for t in texts)
    assert any("escalated 2 ETH" in t and "over per-payment limit" in t for t in texts)


def test_an_address_that_is_not_a_vault_is_refused(anvil_world: World, index: AuditIndex) -> None:
    chain = anvil_world.chain
    with pytest.raises(NotAVaultAddressError, match="no code"):
        index.sync(chain, [anvil_world.payees[0]])
    with pytest.raises(NotAVaultAddressError, match="not a vault"):
        index.sync(chain, [anvil_world.usdc.address])
    assert index.count() == 0


def test_reversed_range_or_beyond_head_is_refused(anvil_world: World, index: AuditIndex) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    head = chain.block_number()
    with pytest.raises(BlockRangeError, match="reversed"):
        index.sync(chain, [vault], from_block=5, to_block=3)
    with pytest.raises(BlockRangeError, match="beyond the chain head"):
        index.sync(chain, [vault], to_block=head + 10)
    with pytest.raises(BlockRangeError, match="beyond the chain head"):
        read_events(chain, EventFilter(from_block=0, to_block=head + 1))
    assert index.count() == 0


def test_corrupt_or_foreign_index_files_are_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(AuditIndexError, match="not a readable SQLite"):
        AuditIndex(corrupt)
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(AuditIndexError, match="not an agentwallet audit index"):
        AuditIndex(foreign)
    old = tmp_path / "old.sqlite"
    AuditIndex(old).close()
    con = sqlite3.connect(old)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    con.commit()
    con.close()
    with pytest.raises(AuditIndexError, match="schema version 99"):
        AuditIndex(old)
    assert corrupt.read_bytes().startswith(b"this is not a database")  # never overwritten


def test_confirmations_keep_the_index_behind_the_head(
    anvil_world: World, index: AuditIndex
) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    some_payments(anvil_world, 3)
    result = index.sync(chain, [vault], confirmations=2)
    assert result.to_block == chain.block_number() - 2
    assert len(index.events(chain.chain_id, EventFilter(names=("PaymentExecuted",)))) == 1
    assert log_source(chain).head() == chain.block_number()
