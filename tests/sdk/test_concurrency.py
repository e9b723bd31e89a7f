"""Many threads paying at once (issue 16): from one ``AgentWallet`` and from several agents'
wallets, on anvil with interval mining (``--block-time 1``) and on the embedded chain. No nonce
gap or collision, and the totals check: what the client reports paid equals the vault's
``PaymentExecuted`` events and the balance changes, payment by payment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentwallet.agent import AgentWallet
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain
from agentwallet.protocol.models import Paid

from .conftest import DAY, ETHER, USDC, World


@contextmanager
def interval_mining(chain: Chain, seconds: int = 1) -> Iterator[None]:
    """Anvil mines a block every ``seconds`` (as ``anvil --block-time``), then automines again;
    the embedded chain keeps mining each transaction."""
    if chain.is_embedded:
        yield
        return
    chain.raw_request("evm_setIntervalMining", [seconds])
    chain.raw_request("evm_setAutomine", [False])
    try:
        yield
    finally:
        chain.raw_request("evm_setIntervalMining", [0])
        chain.raw_request("evm_setAutomine", [True])


def run_threads(jobs: list[Callable[[], Paid]]) -> list[Paid]:
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result(timeout=180) for f in futures]


def check_totals(world: World, first_block: int, results: list[Paid], before: int) -> None:
    """Client-reported payments == the vault's PaymentExecuted events == the balance change."""
    events = world.vault.bindings.logs("PaymentExecuted", first_block)
    on_chain = {bytes(e["transactionHash"]): int(e["args"]["amount"]) for e in events}
    reported = {bytes.fromhex(r.tx_hash[2:]): r.amount for r in results}
    assert len(reported) == len(results)  # no payment reported twice
    assert on_chain == reported
    assert world.vault.balance("tUSDC") == before - sum(reported.values())


def sender(chain: Chain, result: Paid) -> str:
    return str(chain.w3.eth.get_transaction(result.tx_hash)["from"])


def check_nonces(chain: Chain, address: str, nonce0: int, results: list[Paid]) -> None:
    nonces = sorted(
        chain.w3.eth.get_transaction(r.tx_hash)["nonce"]
        for r in results
        if sender(chain, r) == address
    )
    assert nonces == list(range(nonce0, nonce0 + len(nonces)))  # no gap, no collision
    assert chain.nonce(address) == nonce0 + len(nonces)


def test_threads_paying_from_one_wallet_leave_no_nonce_gap_and_every_payment_counted(
    world: World, tmp_path: Path
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    token = Erc20Binding(world.chain, world.usdc.address)
    before, payee_before = world.vault.balance("tUSDC"), token.balance_of(world.payee)
    nonce0, first_block = world.chain.nonce(world.agent.address), world.chain.block_number() + 1

    def job(i: int) -> Callable[[], Paid]:
        def pay() -> Paid:
            result = wallet.pay(world.payee, (i % 3 + 1) * USDC, "tUSDC")
            assert isinstance(result, Paid)
            return result

        return pay

    with interval_mining(world.chain):
        results = run_threads([job(i) for i in range(24)])
    check_totals(world, first_block, results, before)
    check_nonces(world.chain, world.agent.address, nonce0, results)
    assert token.balance_of(world.payee) == payee_before + sum(r.amount for r in results)


def _add_agents(world: World, n: int) -> list[LocalAccount]:
    owners, funder = world.owners, world.chain.dev_accounts[9]
    agents: list[LocalAccount] = [Account.create() for _ in range(n)]
    for agent in agents:
        world.chain.send_transaction(funder, {"to": agent.address, "value": ETHER})
        request = world.vault.propose_add_agent(owners[0], agent.address)
        world.vault.approve(owners[1], request.request_id)
        request = world.vault.propose_set_limits(
            owners[0], agent.address, "tUSDC", 50 * USDC, 400 * USDC, DAY
        )
        world.vault.approve(owners[1], request.request_id)
    return agents


@pytest.mark.anvil
def test_many_agents_with_threads_each_pay_exactly_what_they_report(
    aworld: World, tmp_path: Path
) -> None:
    agents = _add_agents(aworld, 3)
    wallets = [
        AgentWallet(aworld.chain, aworld.vault, agent, journal_dir=tmp_path) for agent in agents
    ]
    before = aworld.vault.balance("tUSDC")
    nonces = [aworld.chain.nonce(a.address) for a in agents]
    first_block = aworld.chain.block_number() + 1

    def job(wallet: AgentWallet, amount: int) -> Callable[[], Paid]:
        def pay() -> Paid:
            result = wallet.pay(aworld.payee, amount, "tUSDC")
            assert isinstance(result, Paid)
            return result

        return pay

    jobs = [job(w, (k + 1) * USDC) for w in wallets for k in range(8)]
    with interval_mining(aworld.chain):
        results = run_threads(jobs)
    check_totals(aworld, first_block, results, before)
    for agent, nonce0 in zip(agents, nonces, strict=True):
        mine = [
            r
            for r in results
            if aworld.chain.w3.eth.get_transaction(r.tx_hash)["from"] == agent.address
        ]
        assert len(mine) == 8
        check_nonces(aworld.chain, agent.address, nonce0, mine)
