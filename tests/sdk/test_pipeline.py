"""The one transaction pipeline: everything that sends goes through the chain's broadcaster."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from eth_account import Account
from hexbytes import HexBytes

from agentwallet.agent import AgentWallet, Paid
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.watch import WatchConfig, Watcher
from agentwallet.chain import Broadcaster, Chain
from agentwallet.deployments import Deployments
from agentwallet.faucet import deploy_test_token, faucet
from agentwallet.vault import Vault

ETHER = 10**18
DAY = 86_400


class RecordingBroadcaster:
    """Passes every signed transaction on to the node and remembers its hash."""

    def __init__(self, node: Broadcaster) -> None:
        self.node = node
        self.sent: list[bytes] = []

    def broadcast(self, raw_transaction: bytes) -> bytes:
        tx_hash = self.node.broadcast(raw_transaction)
        self.sent.append(tx_hash)
        return tx_hash


def test_faucet_test_token_deploys_payments_and_auto_pause_use_the_injected_broadcaster(
    chain: Chain, tmp_path: Path
) -> None:
    recorder = RecordingBroadcaster(chain.transactor.broadcaster)
    recorded = chain.with_broadcaster(recorder)
    first_block = chain.block_number() + 1
    owner, agent = chain.dev_accounts[1], Account.create()

    deployments = Deployments(recorded, tmp_path)
    gas = faucet(recorded, agent.address, ETHER // 10)
    token = deploy_test_token(recorded, owner, deployments)
    minted = faucet(recorded, owner.address, 5 * 10**6, token)
    assert (gas.balance, minted.balance) == (ETHER // 10, 5 * 10**6)
    vault = Vault.create(recorded, owner, [owner.address], 1, deployments=deployments)
    vault.propose_add_agent(owner, agent.address)
    vault.propose_set_limits(owner, agent.address, None, ETHER, 2 * ETHER, DAY)
    vault.fund(owner, 3 * ETHER)
    paid = AgentWallet(recorded, vault, agent, journal_dir=tmp_path).pay(owner.address, ETHER // 2)
    assert isinstance(paid, Paid)

    with AuditIndex(tmp_path / "audit.sqlite") as index:
        config = WatchConfig(spike_min=Decimal("0.1"))
        alerts = Watcher(index, recorded, [vault.address], config, pauser=owner).poll()
    (spike,) = [a for a in alerts if a.kind == "spend_spike"]
    assert spike.action and spike.action.startswith(f"paused agent {agent.address}")
    assert vault.agent(agent.address).status == "paused"

    pause_hash = HexBytes(spike.action.rsplit("tx ", 1)[1].rstrip(")"))
    pause = chain.w3.eth.get_transaction(pause_hash)
    assert (pause["from"], pause["to"]) == (owner.address, vault.address)
    assert (
        pause["input"][:4] == HexBytes(vault.contract.encode_abi("pauseAgent", [agent.address]))[:4]
    )
    faucet_hashes = {bytes(HexBytes(f.tx.tx_hash)) for f in (gas, minted)}
    assert faucet_hashes | {bytes(pause_hash)} <= set(recorder.sent)
    # and nothing reached the chain any other way
    mined = [
        bytes(tx_hash)
        for number in range(first_block, chain.block_number() + 1)
        for tx_hash in chain.w3.eth.get_block(number)["transactions"]  # type: ignore[union-attr]
    ]
    assert mined == recorder.sent
