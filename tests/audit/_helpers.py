"""Raw web3 helpers for the audit tests: a vault with owners, an agent, limits and payments.

They use the artifacts' ABIs directly (not the SDK) so the audit tests do not depend on it. The
vault stores only a hash of each request, so :class:`World` remembers every request it saw
created (from ``PaymentRequested``/``GovernanceProposed`` in its receipts) to pass it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract
from web3.logs import DISCARD

from agentwallet.chain import Chain

ETH = "0x0000000000000000000000000000000000000000"
DAY = 86_400


@dataclass
class World:
    """A deployed factory + vault (owners 0..2, threshold 2), agent = dev 4, USDC token."""

    chain: Chain
    factory: Contract
    vault: Contract
    usdc: Contract
    owners: list[LocalAccount]
    agent: LocalAccount
    agent2: LocalAccount
    payees: list[str]

    #: request id -> (struct tuple, the proposal's call or None for a payment request)
    requests: dict[int, tuple[tuple[Any, ...], bytes | None]] = field(default_factory=dict)
    #: the id of the request created last (by this world)
    last_request: int = 0

    def send(self, account: LocalAccount, fn: Any, value: int = 0) -> Any:
        receipt = self.chain.transact(fn, account, value=value)
        self.record(receipt)
        return receipt

    def record(self, receipt: Any) -> None:
        """Remember the requests this vault created in ``receipt``."""
        for e in self.vault.events.PaymentRequested().process_receipt(receipt, errors=DISCARD):
            a = e["args"]
            fields = ("agent", "lineage", "slot", "token", "to", "amount", "ref", "reasons")
            self.requests[a["requestId"]] = (
                (a["requestId"], *(a[f] for f in fields), a["expiresAt"]),
                None,
            )
            self.last_request = a["requestId"]
        for e in self.vault.events.GovernanceProposed().process_receipt(receipt, errors=DISCARD):
            a = e["args"]
            data = bytes(a["data"])
            struct = (a["requestId"], a["proposer"], keccak(data), a["ref"], a["expiresAt"])
            self.requests[a["requestId"]] = (struct, data)
            self.last_request = a["requestId"]

    def _request_fn(self, payment_fn: str, proposal_fn: str, request_id: int) -> Any:
        struct, data = self.requests[request_id]
        if data is None:
            return self.vault.functions[payment_fn](struct)
        if proposal_fn in ("approveProposal", "executeProposal"):
            return self.vault.functions[proposal_fn](struct, data)
        return self.vault.functions[proposal_fn](struct)

    def approve(self, owner: LocalAccount, request_id: int) -> Any:
        return self.send(owner, self._request_fn("approvePayment", "approveProposal", request_id))

    def reject(self, owner: LocalAccount, request_id: int) -> Any:
        return self.send(owner, self._request_fn("rejectPayment", "rejectProposal", request_id))

    def cancel(self, agent: LocalAccount, request_id: int) -> Any:
        return self.send(agent, self.vault.functions.cancelPayment(self.requests[request_id][0]))

    def govern(self, fn_name: str, *args: Any, ref: bytes = b"") -> int:
        """Owner 0 proposes, owner 1 approves (threshold 2): the call runs. Returns request id."""
        data = self.vault.encode_abi(fn_name, list(args))
        ref32 = ref.ljust(32, b"\0")
        self.send(self.owners[0], self.vault.functions.propose(data, ref32))
        request_id = self.last_request
        self.approve(self.owners[1], request_id)
        return request_id

    def pay(self, agent: LocalAccount, token: str, to: str, amount: int, ref: bytes = b"") -> Any:
        return self.send(agent, self.vault.functions.pay(token, to, amount, ref.ljust(32, b"\0")))


def deploy_factory(chain: Chain, deployer: LocalAccount) -> Contract:
    """The vault's four parts (each pointing at the previous one) and a factory for the core."""
    previous: tuple[Any, ...] = ()
    for name in ("AgentVaultLens", "AgentVaultConfig", "AgentVaultAdmin", "AgentVault"):
        previous = (chain.deploy(name, *previous, sender=deployer).address,)
    return chain.deploy("AgentVaultFactory", *previous, sender=deployer)


def build_world(chain: Chain) -> World:
    dev = chain.dev_accounts
    owners = dev[:3]
    factory = deploy_factory(chain, dev[0])
    receipt = chain.transact(
        factory.functions.createVault([o.address for o in owners], 2, DAY, 10, b"\x01" * 32),
        dev[0],
    )
    created = factory.events.VaultCreated().process_receipt(receipt, errors=DISCARD)[0]
    vault = chain.contract("IAgentVault", created["args"]["vault"])
    usdc = chain.deploy("TestUSDC", sender=dev[0])
    world = World(
        chain,
        factory,
        vault,
        usdc,
        owners,
        dev[4],
        dev[5],
        [a.address for a in dev[6:9]],
    )
    # funds: 50 ETH and 1,000,000 USDC
    chain.send_transaction(dev[3], {"to": vault.address, "value": 50 * 10**18})
    chain.transact(usdc.functions.mint(dev[3].address, 10**12), dev[0])
    chain.transact(usdc.functions.approve(vault.address, 10**12), dev[3])
    chain.transact(vault.functions.deposit(usdc.address, 10**12), dev[3])
    world.govern("addAgent", world.agent.address, 0, 0, False, ref=b"add agent")
    world.govern("setLimits", world.agent.address, ETH, 10**18, 5 * 10**18, DAY)
    world.govern("setLimits", world.agent.address, usdc.address, 100 * 10**6, 1000 * 10**6, DAY)
    return world


def blast_payments(world: World, agent: LocalAccount, n: int, per_block: int = 200) -> None:
    """Send ``n`` direct ETH payments from ``agent`` without waiting (anvil only): automine off,
    raw transactions in JSON-RPC batches, one block mined per ``per_block`` transactions (a
    30M-gas block holds 250 of them at their 120k gas limit: more would stay pending)."""
    from eth_abi import encode
    from eth_utils import keccak

    chain = world.chain
    selector = keccak(text="pay(address,address,uint256,bytes32)")[:4]
    nonce = chain.w3.eth.get_transaction_count(agent.address)
    provider: Any = chain.w3.provider
    chain._rpc("evm_setAutomine", [False])
    try:
        for first in range(0, n, per_block):
            batch = []
            for i in range(first, min(n, first + per_block)):
                data = selector + encode(
                    ["address", "address", "uint256", "bytes32"],
                    [ETH, world.payees[i % 3], 1000 + i, i.to_bytes(32, "big")],
                )
                signed = agent.sign_transaction(
                    {
                        "to": world.vault.address,
                        "data": data,
                        "nonce": nonce + i,
                        "gas": 120_000,
                        "chainId": chain.chain_id,
                        "maxFeePerGas": 10**11,
                        "maxPriorityFeePerGas": 10**9,
                    }
                )
                batch.append(("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]))
            provider.make_batch_request(batch)
            chain._rpc("evm_mine", [])
    finally:
        chain._rpc("evm_setAutomine", [True])
    if chain.w3.eth.get_transaction_count(agent.address) != nonce + n:
        raise AssertionError("not every payment was mined")


def rotate_key(env: Any, old: LocalAccount, new: LocalAccount) -> None:
    """``old`` moves its rights to ``new`` (signed by both keys), on the contract tests' Env."""
    deadline = env.now() + DAY
    typed = env.typed_rotation(old.address, new.address, 1, deadline)
    env.send(
        env.vault.functions.rotateAgentKey(
            old.address, new.address, 1, deadline, b"", env.sign_typed(typed, new)
        ),
        old,
    )
