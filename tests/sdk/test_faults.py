"""The agent client at the faults it can hit (issue 17): a receipt that never comes, a node that
dies after the broadcast, a node refusing a re-sent transaction, a journal that cannot be
written. Each gives a typed error that says whether anything may have been sent, and a retry
with the same ref pays exactly once."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from web3.exceptions import TimeExhausted

from agentwallet.agent import AgentWallet
from agentwallet.chain import Chain, connect
from agentwallet.chain.node import free_port, start_anvil
from agentwallet.chain.tx import Broadcaster, Transactor, broadcast_fault
from agentwallet.errors import (
    JournalError,
    NodeUnavailableError,
    NonceConflictError,
    PaymentOutcomeUnknownError,
    PaymentPendingError,
    RefReusedError,
)
from agentwallet.faults import guard_pay
from agentwallet.protocol.models import Paid
from agentwallet.protocol.refs import to_ref
from agentwallet.vault import Vault

from .conftest import USDC, World, build_world


class FaultyBroadcaster:
    """Forwards to the node (or not), then raises ``error``."""

    def __init__(self, node: Broadcaster, error: Exception, forward: bool) -> None:
        self.node, self.error, self.forward = node, error, forward
        self.calls = 0

    def broadcast(self, raw_transaction: bytes) -> bytes:
        self.calls += 1
        if self.forward:
            self.node.broadcast(raw_transaction)
        raise self.error


def faulty(world: World, error: Exception, *, forward: bool) -> Chain:
    return world.chain.with_broadcaster(
        FaultyBroadcaster(world.chain.transactor.broadcaster, error, forward)
    )


def paid_once(world: World, before: int, amount: int) -> None:
    assert world.vault.balance("tUSDC") == before - amount


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(
    ("message", "fault"),
    [
        ("already known", "known"),
        ("Known transaction: 0xabc", "known"),
        ("nonce too low: next nonce 5, tx nonce 4", "nonce"),
        ("replacement transaction underpriced", "underpriced"),
        ("insufficient funds for gas * price + value", None),
    ],
)
def test_broadcast_faults_are_classified(message: str, fault: str | None) -> None:
    assert broadcast_fault(ValueError({"code": -32000, "message": message})) == fault


# ------------------------------------------------------------------ broadcast faults


def test_already_known_on_broadcast_counts_as_sent(world: World, tmp_path: Path) -> None:
    """A node answering "already known" has the transaction: the payment completes."""
    before = world.vault.balance("tUSDC")
    chain = faulty(world, ValueError("already known"), forward=True)
    wallet = AgentWallet(chain, world.vault, world.agent, journal_dir=tmp_path)
    result = wallet.pay(world.payee, 3 * USDC, "tUSDC", ref="known-1")
    assert isinstance(result, Paid)
    paid_once(world, before, 3 * USDC)


def test_nonce_too_low_on_first_broadcast_is_a_conflict_and_sends_nothing(
    world: World, tmp_path: Path
) -> None:
    before = world.vault.balance("tUSDC")
    nonce = world.chain.nonce(world.agent.address)
    chain = faulty(world, ValueError("nonce too low"), forward=False)
    wallet = AgentWallet(chain, world.vault, world.agent, journal_dir=tmp_path)
    with pytest.raises(NonceConflictError, match="nothing was sent: retry pay with the same ref"):
        wallet.pay(world.payee, 2 * USDC, "tUSDC", ref="nonce-1")
    assert world.chain.nonce(world.agent.address) == nonce
    assert wallet.payment_state("nonce-1").state == "unknown"  # the dead tx left the journal
    retry = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(retry.pay(world.payee, 2 * USDC, "tUSDC", ref="nonce-1"), Paid)
    paid_once(world, before, 2 * USDC)


def test_underpriced_rebroadcast_says_it_may_have_been_sent(world: World, tmp_path: Path) -> None:
    """The journaled tx never reached the node; re-sending it hits "replacement transaction
    underpriced": the client cannot know, so it says so, and a later retry still pays once."""
    before = world.vault.balance("tUSDC")
    lost = faulty(world, TimeoutError("no answer"), forward=False)
    wallet = AgentWallet(lost, world.vault, world.agent, journal_dir=tmp_path)
    with pytest.raises(PaymentOutcomeUnknownError) as first:
        wallet.pay(world.payee, 4 * USDC, "tUSDC", ref="under-1")
    assert first.value.ref == "under-1" and first.value.tx_hash.startswith("0x")
    assert "MAY have been sent" in str(first.value)
    assert "payment_state('under-1')" in str(first.value)
    assert wallet.payment_state("under-1").state == "pending"

    underpriced = faulty(world, ValueError("replacement transaction underpriced"), forward=False)
    again = AgentWallet(underpriced, world.vault, world.agent, journal_dir=tmp_path)
    with pytest.raises(PaymentOutcomeUnknownError, match="nonce .* is pending"):
        again.pay(world.payee, 4 * USDC, "tUSDC", ref="under-1")
    assert world.vault.balance("tUSDC") == before

    retry = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    result = retry.pay(world.payee, 4 * USDC, "tUSDC", ref="under-1")
    assert isinstance(result, Paid) and result.tx_hash == first.value.tx_hash
    paid_once(world, before, 4 * USDC)


def test_receipt_timeout_is_a_pending_error_and_the_retry_finishes_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = world.vault.balance("tUSDC")
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)

    def no_receipt(self: Transactor, tx_hash: bytes, **kwargs: Any) -> Any:
        raise TimeExhausted("no receipt in 120 s")

    with monkeypatch.context() as patch:
        patch.setattr(Transactor, "wait", no_receipt)
        with pytest.raises(PaymentPendingError, match="not mined yet; it MAY have been sent"):
            wallet.pay(world.payee, 5 * USDC, "tUSDC", ref="slow-1")
    result = wallet.pay(world.payee, 5 * USDC, "tUSDC", ref="slow-1")
    assert isinstance(result, Paid)
    assert wallet.payment_state("slow-1").state == "paid"
    paid_once(world, before, 5 * USDC)


# ------------------------------------------------------------------ journal faults


def test_journal_write_failure_is_typed_before_any_broadcast(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full while journaling: JournalError, nothing broadcast, no temp file left."""
    before = world.vault.balance("tUSDC")
    nonce = world.chain.nonce(world.agent.address)
    spy = FaultyBroadcaster(world.chain.transactor.broadcaster, AssertionError(), forward=True)
    wallet = AgentWallet(
        world.chain.with_broadcaster(spy), world.vault, world.agent, journal_dir=tmp_path
    )

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        with pytest.raises(JournalError, match="nothing was sent") as caught:
            wallet.pay(world.payee, 6 * USDC, "tUSDC", ref="full-1")
    assert "No space left on device" in str(caught.value)
    assert spy.calls == 0
    assert world.chain.nonce(world.agent.address) == nonce
    journal = [p for p in tmp_path.rglob("*") if p.is_file() and "refs.sqlite" not in p.name]
    assert journal == []  # (refs.sqlite: the ref index, a cache of the chain's logs)

    retry = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    assert isinstance(retry.pay(world.payee, 6 * USDC, "tUSDC", ref="full-1"), Paid)
    paid_once(world, before, 6 * USDC)


FSIZE_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from agentwallet.errors import JournalError
from agentwallet.journal import Journal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
try:
    Journal(Path(sys.argv[1])).put(1, "0xV", "0xA", b"r" * 32, {"raw_tx": "0x" + "ab" * 500})
except JournalError as exc:
    print("JournalError:", exc)
"""


def test_journal_hits_the_file_size_limit(tmp_path: Path) -> None:
    """A real EFBIG (RLIMIT_FSIZE in a child process): typed error, no ``.tmp`` left."""
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.startswith("JournalError: cannot write the payment journal"), done
    assert "File too large" in done.stdout
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# ------------------------------------------------------------------ the node dies


@pytest.mark.anvil
def test_node_dies_after_broadcast(tmp_path: Path) -> None:
    """The node stops between broadcast and receipt: PaymentOutcomeUnknownError; once it is
    back (same state), the retry with the same ref answers the mined payment, paying once."""
    port, state = free_port(), tmp_path / "anvil.json"
    node = start_anvil(port=port, state=state)
    try:
        chain = connect(node.url)
        world = build_world(chain, tmp_path / "deployments")
        before = world.vault.balance("tUSDC")

        class DyingBroadcaster:
            def broadcast(self, raw_transaction: bytes) -> bytes:
                tx_hash = chain.transactor.broadcaster.broadcast(raw_transaction)
                node.stop()  # automine has mined it; the node writes its state and exits
                return tx_hash

        dying = chain.with_broadcaster(DyingBroadcaster())
        wallet = AgentWallet(dying, world.vault, world.agent, journal_dir=tmp_path / "j")
        with pytest.raises(PaymentOutcomeUnknownError, match="node stopped answering"):
            wallet.pay(world.payee, 7 * USDC, "tUSDC", ref="dead-1")
    finally:
        node.stop()
    node = start_anvil(port=port, state=state)
    try:
        chain = connect(node.url)
        vault = Vault.at(chain, world.vault.address, world.deployments)
        retry = AgentWallet(chain, vault, world.agent, journal_dir=tmp_path / "j")
        result = retry.pay(world.payee, 7 * USDC, "tUSDC", ref="dead-1")
        assert isinstance(result, Paid)
        assert vault.balance("tUSDC") == before - 7 * USDC
    finally:
        node.stop()


# ------------------------------------------------------------------ journal pruning


def test_pruned_ref_reused_for_the_same_payment_is_answered_from_the_logs(
    world: World, tmp_path: Path
) -> None:
    before = world.vault.balance("tUSDC")
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    paid = wallet.pay(world.payee, 8 * USDC, "tUSDC", ref="old-1")
    lost = faulty(world, TimeoutError("no answer"), forward=False)
    with pytest.raises(PaymentOutcomeUnknownError):  # journaled, never reached the node
        AgentWallet(lost, world.vault, world.agent, journal_dir=tmp_path).pay(
            world.payee, 1 * USDC, "tUSDC", ref="pending-1"
        )
    journal = wallet.journal
    key = (world.chain.chain_id, world.vault.address, world.agent.address)

    assert journal.prune(world.chain, older_than=3600) == 0  # too recent
    assert journal.prune(world.chain, older_than=0, now=10**10) == 1
    assert journal.get(*key, to_ref("old-1")) is None
    assert journal.get(*key, to_ref("pending-1")) is not None  # pending: kept

    again = wallet.pay(world.payee, 8 * USDC, "tUSDC", ref="old-1")
    assert isinstance(paid, Paid) and again == paid
    assert world.vault.balance("tUSDC") == before - 8 * USDC
    with pytest.raises(RefReusedError):  # still one payment per ref after pruning
        wallet.pay(world.payee, 9 * USDC, "tUSDC", ref="old-1")


def test_prune_removes_old_crash_leftovers_only(world: World, tmp_path: Path) -> None:
    folder = tmp_path / f"{world.chain.chain_id}-x-y"
    folder.mkdir()
    old, new = folder / ".a.json.1.tmp", folder / ".b.json.2.tmp"
    old.write_text("{")
    new.write_text("{")
    os.utime(old, (1000, 1000))
    AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path).journal.prune(
        world.chain, older_than=3600
    )
    assert not old.exists() and new.exists()


# ------------------------------------------------------------------ the node lost its state


def executed(world: World, ref: str) -> int:
    """How many PaymentExecuted events the vault has for ``ref`` (the on-chain totals check)."""
    logs = world.vault.contract.events.PaymentExecuted().get_logs(from_block=0)
    return sum(1 for log in logs if bytes(log["args"]["ref"]) == to_ref(ref))


@pytest.mark.parametrize("order", [("lost-1", "lost-2"), ("lost-2", "lost-1")])
@pytest.mark.parametrize("strict", [False, True], ids=["direct", "exactly-once"])
def test_retry_after_the_node_lost_two_payments_pays_each_once_in_any_order(
    world: World, tmp_path: Path, order: tuple[str, str], strict: bool
) -> None:
    """Two refs journaled and mined, then the node forgets both (a revert to before them, as
    a restart without state or a reorg does); retrying the LATER one first used to wait
    forever behind the nonce gap. Now the earlier journaled transaction is re-sent first (or,
    exactly once, the intent goes out in a fresh transaction): each ref pays once."""
    amounts = {"lost-1": 2 * USDC, "lost-2": 3 * USDC}
    before = world.vault.balance("tUSDC")
    nonce = world.chain.nonce(world.agent.address)
    snapshot = world.chain.snapshot()
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    first = {r: wallet.pay(world.payee, amounts[r], "tUSDC", ref=r, exactly_once=strict)
             for r in ("lost-1", "lost-2")}  # fmt: skip
    world.chain.revert(snapshot)  # the node lost both
    assert world.vault.balance("tUSDC") == before
    assert world.chain.nonce(world.agent.address) == nonce

    retry = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    for ref in order:
        result = retry.pay(world.payee, amounts[ref], "tUSDC", ref=ref, exactly_once=strict)
        assert isinstance(result, Paid) and result.ref == ref
        if not strict:  # the journaled transactions themselves, re-sent
            assert result.tx_hash == first[ref].tx_hash
        else:  # a fresh outer transaction; the journal records its hash
            entry = retry.journal.get(
                world.chain.chain_id, world.vault.address, world.agent.address, to_ref(ref)
            )
            assert entry is not None and entry["tx_hash"] == result.tx_hash
    for ref in order:  # and once more: answered, nothing sent
        assert retry.pay(world.payee, amounts[ref], "tUSDC", ref=ref, exactly_once=strict)
        assert executed(world, ref) == 1
    assert world.vault.balance("tUSDC") == before - 5 * USDC


def test_a_lost_nonce_the_journal_does_not_hold_is_filled_not_waited_on(
    world: World, tmp_path: Path
) -> None:
    """The agent key's lost transaction before the payment was not a payment (a nonce
    invalidation): the retry fills its nonce with a zero-value self-transfer, then pays."""
    before = world.vault.balance("tUSDC")
    snapshot = world.chain.snapshot()
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    wallet.invalidate_nonces([12345])  # not journaled
    paid = wallet.pay(world.payee, 4 * USDC, "tUSDC", ref="gap-1")
    world.chain.revert(snapshot)
    nonce = world.chain.nonce(world.agent.address)
    result = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path).pay(
        world.payee, 4 * USDC, "tUSDC", ref="gap-1"
    )
    assert isinstance(result, Paid) and result.tx_hash == paid.tx_hash
    assert world.chain.nonce(world.agent.address) == nonce + 2  # the filler and the payment
    assert executed(world, "gap-1") == 1
    assert world.vault.balance("tUSDC") == before - 4 * USDC


# ------------------------------------------------------------------ node faults: the verdict


def test_node_fault_verdict_follows_what_the_call_journaled(eworld: World, tmp_path: Path) -> None:
    """NodeUnavailableError only when this call journaled nothing and no earlier attempt of
    the ref is journaled; a programming error is not disguised as a node fault."""
    wallet = AgentWallet(eworld.chain, eworld.vault, eworld.agent, journal_dir=tmp_path)
    key = (eworld.chain.chain_id, eworld.vault.address, eworld.agent.address)
    entry = {"kind": "intent", "ref": "0x" + to_ref("v-1").hex(), "token": "0x0",
             "to": eworld.payee, "amount": "1"}  # fmt: skip
    with pytest.raises(PaymentOutcomeUnknownError, match="after the payment's intent") as one:
        with guard_pay(wallet, "v-1"):
            wallet.journal.put(*key, to_ref("v-1"), entry)
            raise requests.ConnectionError("connection reset by peer")
    assert (one.value.ref, one.value.tx_hash) == ("v-1", "")
    with pytest.raises(PaymentOutcomeUnknownError, match="earlier attempt of ref 'v-1'"):
        with guard_pay(wallet, "v-1"):
            raise requests.HTTPError("502 Bad Gateway")
    with pytest.raises(NodeUnavailableError, match="nothing was sent.*retry pay$"):
        with guard_pay(wallet, None):
            raise requests.ConnectionError("connection refused")
    with pytest.raises(KeyError):
        with guard_pay(wallet, "v-2"):
            raise KeyError("a bug, not the node")
