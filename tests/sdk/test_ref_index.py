"""The ref index: whether a ref already paid, read incrementally instead of from the agent's
whole history on every ``pay`` (issue 17)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentwallet import ref_index
from agentwallet.agent import AgentWallet
from agentwallet.chain import Chain
from agentwallet.protocol.models import Escalated, Paid
from agentwallet.protocol.refs import to_ref
from agentwallet.ref_index import RefIndex, RefIndexError
from agentwallet.request_log import deployment_block

from .conftest import USDC, World
from .test_hotpath import counting


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The block ranges the index asks the node for."""
    seen: list[tuple[int, int]] = []
    real = ref_index.LogReader.chunks

    def spy(self: Any, start: int, end: int, *args: Any) -> Any:
        seen.append((start, end))
        return real(self, start, end, *args)

    monkeypatch.setattr(ref_index.LogReader, "chunks", spy)
    return seen


def test_a_ref_is_found_with_what_it_paid_and_an_unknown_ref_is_not(
    world: World, tmp_path: Path
) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "j")
    paid = agent.pay(world.payee, 7 * USDC, "tUSDC", ref="invoice-7")
    over = agent.pay(world.payee, 150 * USDC, "tUSDC", ref="invoice-150")
    assert isinstance(paid, Paid) and isinstance(over, Escalated)
    index = RefIndex(tmp_path / "refs.sqlite")
    start = deployment_block(world.vault)
    args = (world.chain, world.vault.address, world.agent.address)

    [hit] = index.find(*args, to_ref("invoice-7"), start)
    assert (hit.event, hit.token, hit.to, hit.amount) == (
        "PaymentExecuted",
        world.usdc.address,
        world.payee,
        7 * USDC,
    )
    assert "0x" + hit.tx_hash.hex() == paid.tx_hash
    [request] = index.find(*args, to_ref("invoice-150"), start)
    assert (request.event, request.amount, request.to) == (
        "PaymentRequested",
        150 * USDC,
        world.payee,
    )
    assert index.find(*args, to_ref("never-used"), start) == []
    # another agent's lookup of the same ref finds nothing: refs are per agent
    assert index.find(world.chain, world.vault.address, world.outsider.address,
                      to_ref("invoice-7"), start) == []  # fmt: skip


def test_a_second_lookup_reads_only_the_recent_blocks(
    world: World, tmp_path: Path, reads: list[tuple[int, int]]
) -> None:
    agent = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "j")
    index = RefIndex(tmp_path / "refs.sqlite", reorg_depth=2)
    start = deployment_block(world.vault)
    args = (world.chain, world.vault.address, world.agent.address)
    assert index.find(*args, to_ref("later"), start) == []
    assert reads and all(begin == start for begin, _ in reads)  # the first look: from creation
    agent.pay(world.payee, 3 * USDC, "tUSDC", ref="later")  # (pay reads through its own index)
    reads.clear()
    head = world.chain.block_number()
    [hit] = index.find(*args, to_ref("later"), start)
    assert hit.amount == 3 * USDC
    assert reads and all(begin >= head - 2 for begin, _ in reads)  # only the new blocks
    # a fresh process (a new RefIndex on the same file) also starts from the cursor
    reads.clear()
    again = RefIndex(tmp_path / "refs.sqlite", reorg_depth=2)
    assert [h.tx_hash for h in again.find(*args, to_ref("later"), start)] == [hit.tx_hash]
    assert all(begin >= head - 2 for begin, _ in reads)


def test_a_payment_undone_by_a_reorg_is_forgotten(world: World, tmp_path: Path) -> None:
    """The chain goes back (a reorg, or a node reverted) and grows past where the index had
    read: the payment that is gone is no longer answered, the one that replaced it is."""
    chain = world.chain
    agent = AgentWallet(chain, world.vault, world.agent, journal_dir=tmp_path / "j")
    index = RefIndex(tmp_path / "refs.sqlite")
    start = deployment_block(world.vault)
    args = (chain, world.vault.address, world.agent.address)
    snapshot = chain.snapshot()
    agent.pay(world.payee, 5 * USDC, "tUSDC", ref="undone")
    assert len(index.find(*args, to_ref("undone"), start)) == 1
    chain.revert(snapshot)
    assert index.find(*args, to_ref("undone"), start) == []  # shorter chain
    chain.mine(3)
    assert index.find(*args, to_ref("undone"), start) == []  # longer again, other blocks


def test_a_damaged_index_is_moved_aside_and_rebuilt(world: World, tmp_path: Path) -> None:
    path = tmp_path / "refs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    index = RefIndex(path)
    start = deployment_block(world.vault)
    args = (world.chain, world.vault.address, world.agent.address)
    assert index.find(*args, to_ref("x"), start) == []
    [aside] = tmp_path.glob("refs.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"this is not a database")  # kept for a look


def test_an_index_that_cannot_be_opened_says_what_to_do(world: World, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where the index's folder should be")
    index = RefIndex(tmp_path / "file" / "refs.sqlite")
    start = deployment_block(world.vault)
    with pytest.raises(RefIndexError, match="delete it"):
        index.find(world.chain, world.vault.address, world.agent.address, to_ref("x"), start)


# ---------------------------------------------------------------- one log read per payment


def _paid_with(world: World, ref: str) -> list[Any]:
    """Every PaymentExecuted of the vault with ``ref`` (the on-chain totals check)."""
    logs = world.vault.contract.events.PaymentExecuted().get_logs(from_block=0)
    return [log for log in logs if bytes(log["args"]["ref"]) == to_ref(ref)]


def _warm(world: World, directory: Path) -> AgentWallet:
    """A wallet whose ref index has a cursor and whose policy cache is filled (the state in
    which a lookup's log read also serves the cache)."""
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=directory)
    for i in range(2):
        assert isinstance(wallet.pay(world.payee, USDC, "tUSDC", ref=f"warm-{i}"), Paid)
    assert wallet.policy_cache.stats()["fresh"]
    return wallet


def test_a_ref_paid_by_another_process_is_answered_through_the_shared_read(
    world: World, tmp_path: Path
) -> None:
    """Machine B (its own journal, index file and cache) is warm; machine A pays ref R. B's
    next lookup reads the vault's logs once: the index finds A's payment (B sends nothing)
    and B's cache counts it against the budget (this agent paid from elsewhere)."""
    b = _warm(world, tmp_path / "b")
    cached = b.policy_cache._tokens[world.usdc.address]
    budget = cached.available
    a = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    paid = a.pay(world.payee, 30 * USDC, "tUSDC", ref="elsewhere")
    before = world.vault.balance("tUSDC")
    assert b.pay(world.payee, 30 * USDC, "tUSDC", ref="elsewhere") == paid
    assert world.vault.balance("tUSDC") == before
    assert len(_paid_with(world, "elsewhere")) == 1
    # B's cache took A's payment from that read (this agent paid from elsewhere)
    cache = b.policy_cache
    assert cache.stats()["fresh"] and cache.stats()["scanned"] >= world.chain.block_number()
    assert cached.available == budget - 30 * USDC


def test_a_payment_undone_by_a_revert_is_paid_again_once_through_pay(
    world: World, tmp_path: Path
) -> None:
    """A's payment, seen by B's index and cache, is undone by a revert: B's next pay with the
    ref finds nothing and pays it (once: after it, the chain holds one payment with the ref).
    The same key re-signs the same nonce and fields, so the hash may well be A's again."""
    chain = world.chain
    b = _warm(world, tmp_path / "b")
    snapshot = chain.snapshot()
    before = world.vault.balance("tUSDC")
    a = AgentWallet(chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    paid = a.pay(world.payee, 4 * USDC, "tUSDC", ref="undone-pay")
    assert b.pay(world.payee, 4 * USDC, "tUSDC", ref="undone-pay") == paid
    chain.revert(snapshot)  # A's payment is gone; B's index and cache had seen it
    chain.mine(2)
    assert _paid_with(world, "undone-pay") == []
    again = b.pay(world.payee, 4 * USDC, "tUSDC", ref="undone-pay")
    assert isinstance(again, Paid)
    assert world.vault.balance("tUSDC") == before - 4 * USDC
    [event] = _paid_with(world, "undone-pay")
    assert "0x" + bytes(event["transactionHash"]).hex() == again.tx_hash
    assert b.pay(world.payee, 4 * USDC, "tUSDC", ref="undone-pay") == again


def test_a_damaged_index_file_is_rebuilt_and_still_answers_pay(
    world: World, tmp_path: Path
) -> None:
    b = _warm(world, tmp_path / "b")
    b.refs.close()
    (tmp_path / "b" / "refs.sqlite").write_bytes(b"not a database" * 200)
    for extra in ("-wal", "-shm"):
        (tmp_path / "b" / f"refs.sqlite{extra}").unlink(missing_ok=True)
    a = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    paid = a.pay(world.payee, 6 * USDC, "tUSDC", ref="after-damage")
    before = world.vault.balance("tUSDC")
    assert b.pay(world.payee, 6 * USDC, "tUSDC", ref="after-damage") == paid
    assert world.vault.balance("tUSDC") == before
    assert list((tmp_path / "b").glob("refs.sqlite.damaged-*"))


@contextmanager
def _every_call(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count every JSON-RPC method ``chain`` sends: through web3 (test_hotpath's middleware)
    and past it (``Chain.raw_request`` and ``Chain.raw_request_bytes``: the ref index reads raw
    logs)."""
    raw, raw_bytes, lock = chain.raw_request, chain.raw_request_bytes, threading.Lock()
    with counting(chain) as counts:

        def counted_raw(method: str, params: Any) -> Any:
            with lock:
                counts[method] += 1
            return raw(method, params)

        def counted_bytes(method: str, params: Any) -> bytes | None:
            with lock:
                counts[method] += 1
            return raw_bytes(method, params)

        monkeypatch.setattr(chain, "raw_request", counted_raw)
        monkeypatch.setattr(chain, "raw_request_bytes", counted_bytes)
        try:
            yield counts
        finally:
            monkeypatch.undo()


def test_a_payment_with_a_ref_reads_the_vaults_logs_once(
    aworld: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ref index's read also refreshes the policy cache: one eth_getLogs per payment (it
    was three: the index's two and the cache's own)."""
    wallet = _warm(aworld, tmp_path)
    n = 5
    with _every_call(aworld.chain, monkeypatch) as counts:
        results = [wallet.pay(aworld.payee, USDC, "tUSDC", ref=f"one-read-{i}") for i in range(n)]
    assert all(isinstance(r, Paid) for r in results)
    assert counts["eth_getLogs"] == n
    assert counts["eth_blockNumber"] == n  # the head the index reads to
    assert counts["eth_sendRawTransaction"] == n
    assert not {m: counts[m] for m in ("eth_call", "eth_estimateGas", "eth_chainId") if counts[m]}


def test_a_look_after_a_long_pause_reads_only_the_agents_events(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared read (every log of the vault) is for short ranges; a longer one, as after a
    pause, is read filtered to the agent's two events, and still answers."""
    monkeypatch.setattr(ref_index, "SHARED_READ_MAX", 5)
    filters: list[int] = []  # per read: how many topic filters it had
    real = ref_index.LogReader.chunks

    def spy(self: Any, start: int, end: int, addresses: Any, topics: Any) -> Any:
        filters.append(len(topics or []))
        return real(self, start, end, addresses, topics)

    monkeypatch.setattr(ref_index.LogReader, "chunks", spy)
    wallet = _warm(world, tmp_path)
    wallet.refs.reorg_depth = 2  # a window shorter than the shared read's bound
    paid = wallet.pay(world.payee, 2 * USDC, "tUSDC", ref="before-pause")
    filters.clear()
    wallet.pay(world.payee, 2 * USDC, "tUSDC", ref="short-range")
    assert filters == [0]  # one unfiltered read, shared with the cache
    world.chain.mine(8)
    filters.clear()
    assert isinstance(wallet.pay(world.payee, 2 * USDC, "tUSDC", ref="after-pause"), Paid)
    assert filters and all(n > 0 for n in filters)  # the agent's events only
    start = deployment_block(world.vault)
    args = (world.chain, world.vault.address, world.agent.address)
    [hit] = wallet.refs.find(*args, to_ref("before-pause"), start)
    assert "0x" + hit.tx_hash.hex() == paid.tx_hash
