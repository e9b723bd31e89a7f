"""The ref index: whether a ref already paid, read incrementally instead of from the agent's
whole history on every ``pay`` (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentwallet import ref_index
from agentwallet.agent import AgentWallet
from agentwallet.protocol.models import Escalated, Paid
from agentwallet.protocol.refs import to_ref
from agentwallet.ref_index import RefIndex, RefIndexError
from agentwallet.request_log import deployment_block

from .conftest import USDC, World


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
