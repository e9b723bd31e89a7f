"""Fixtures and helpers for the AgentVault contract tests.

One deployment per chain per session (``env``, parametrized over the embedded chain and anvil
through ``any_chain``): a factory, TestUSDC, a 2-of-3 vault funded with ETH and tUSDC, and one
agent whose ETH and tUSDC limits were added through governance (propose + approve). The root
``tests/conftest.py`` takes a snapshot before every test that uses a chain and reverts after it,
so each test starts from exactly this state.

Reverts are asserted by error *name* with :func:`expect_revert`: the selector in the revert data
is looked up among the errors of every compiled artifact, so a test fails if the vault reverts
for any other reason (including a panic).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from eth_abi import abi as eth_abi
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from agentwallet.bindings.artifacts import artifact_names, load_artifact
from agentwallet.chain import Chain
from agentwallet.errors import TransactionFailedError
from agentwallet.protocol.signatures import pack_signatures

ETH = "0x0000000000000000000000000000000000000000"
DAY = 86_400
USDC = 10**6
ETHER = 10**18
MAX_LIMIT = (1 << 88) - 1

REASON_OVER_PER_PAYMENT = 1
REASON_OVER_ALLOWANCE = 2
REASON_RECIPIENT_NOT_ALLOWED = 4
REASON_TOKEN_NOT_IN_SCOPE = 8

# RequestStatus / AgentStatus / RequestKind as numbered in IAgentVault
NONE, PENDING, EXECUTED, REJECTED, CANCELLED, EXPIRED = range(6)
AGENT_NONE, AGENT_ACTIVE, AGENT_PAUSED, AGENT_REVOKED = range(4)
KIND_PAYMENT, KIND_GOVERNANCE = range(2)

# The agent's limits set up in every env.
USDC_MAX = 100 * USDC
USDC_ALLOWANCE = 1_000 * USDC
ETH_MAX = 1 * ETHER
ETH_ALLOWANCE = 5 * ETHER
PERIOD = DAY
REQUEST_EXPIRY = DAY
MAX_OPEN = 5
VAULT_ETH = 20 * ETHER
VAULT_USDC = 1_000_000 * USDC

# a fixed gas limit for transactions whose outcome depends on the exact block time (gas
# estimation may run at another timestamp and choose a limit too small for the real path)
FIXED_GAS = 1_500_000

settings.register_profile(
    "contracts",
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def ref(text: str) -> bytes:
    """A bytes32 payment reference."""
    return text.encode().ljust(32, b"\0")


def fresh_address(label: str) -> str:
    """A deterministic address with no code, no ETH and no tokens."""
    return str(Account.from_key(Web3.keccak(text=f"agentwallet-test-{label}")).address)


# ---------------------------------------------------------------------------------- reverts


@cache
def _error_registry() -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (name, input types) for every error in every compiled artifact."""
    registry: dict[bytes, tuple[str, list[str]]] = {
        bytes.fromhex("08c379a0"): ("Error", ["string"]),
        bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
    }
    for name in artifact_names():
        for entry in load_artifact(name)["abi"]:
            if entry["type"] != "error":
                continue
            types = [_abi_type(i) for i in entry["inputs"]]
            selector = Web3.keccak(text=f"{entry['name']}({','.join(types)})")[:4]
            registry[bytes(selector)] = (entry["name"], types)
    return registry


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def error_selector(name: str) -> bytes:
    for selector, (known, _types) in _error_registry().items():
        if known == name:
            return selector
    raise KeyError(f"no error named {name} in any artifact")


def decode_error(data: bytes) -> tuple[str, tuple[Any, ...]]:
    """(name, args) of ABI-encoded revert data; raises AssertionError if unknown."""
    if len(data) < 4:
        return ("<empty revert>", ())
    entry = _error_registry().get(bytes(data[:4]))
    if entry is None:
        raise AssertionError(f"revert data with unknown selector 0x{data[:4].hex()}")
    name, types = entry
    values = eth_abi.decode(types, bytes(data[4:]))
    return name, tuple(
        Web3.to_checksum_address(v) if t == "address" else v
        for t, v in zip(types, values, strict=True)
    )


@dataclass
class Reverted:
    """Filled by :func:`expect_revert` after the block: the decoded error."""

    name: str = ""
    args: tuple[Any, ...] = ()


def _exception_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, dict):  # some providers nest it
        data = data.get("data")
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return bytes.fromhex(str(data).removeprefix("0x"))


@contextmanager
def expect_revert(error_name: str, *args: Any) -> Iterator[Reverted]:
    """Assert the block reverts with the custom error ``error_name`` (and ``args``, if given).

    Works on both chains: the foundation turns embedded reverts into the same JSON-RPC error a
    node returns, so web3 raises ``ContractCustomError``/``ContractLogicError`` with ``.data``
    (at gas estimation for transactions, or from ``.call()``).
    """
    result = Reverted()
    try:
        yield result
    except ContractLogicError as exc:
        result.name, result.args = decode_error(_exception_data(exc))
    except TransactionFailedError as exc:  # mined with status 0: no revert data to check
        raise AssertionError(
            f"expected {error_name} but the transaction was mined and reverted without data "
            "(a fixed gas limit skips estimation): simulate it with .call() instead"
        ) from exc
    else:
        raise AssertionError(f"expected revert {error_name}, but the call succeeded")
    assert result.name == error_name, f"expected {error_name}, reverted with {result}"
    if args:
        assert result.args == tuple(args), f"{error_name} args {result.args} != {args}"


# ---------------------------------------------------------------------------------- env


@dataclass
class Env:
    """One chain's deployment plus the helpers the tests share."""

    name: str
    chain: Chain
    factory: Contract
    usdc: Contract
    vault: Contract
    owners: list[LocalAccount]
    agent: LocalAccount
    outsider: LocalAccount
    deployer: LocalAccount
    spare: list[LocalAccount] = field(default_factory=list)

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    # ------------------------------------------------------------ transactions

    def send(
        self,
        fn: ContractFunction,
        sender: LocalAccount,
        *,
        value: int = 0,
        gas: int | None = None,
        check: bool = True,
    ) -> TxReceipt:
        tx: dict[str, Any] = {"to": fn.address, "data": fn._encode_transaction_data()}
        tx["value"] = value
        if gas is not None:
            tx["gas"] = gas
        return self.chain.send_transaction(sender, tx, check=check)

    def send_eth(self, sender: LocalAccount, to: str, amount: int) -> TxReceipt:
        return self.chain.send_transaction(sender, {"to": to, "value": amount})

    def deploy(self, artifact: str, *args: Any) -> Contract:
        return self.chain.deploy(artifact, *args, sender=self.deployer)

    def contract(self, artifact: str, address: str) -> Contract:
        return self.chain.contract(artifact, address)

    # ------------------------------------------------------------ events

    def events(
        self, receipt: TxReceipt, name: str, contract: Contract | None = None
    ) -> list[dict[str, Any]]:
        """Decoded ``name`` events emitted by ``contract`` (default: the vault) in ``receipt``."""
        c = contract if contract is not None else self.vault
        decoded = c.events[name]().process_receipt(receipt, errors=DISCARD)
        return [dict(e["args"]) for e in decoded if e["address"] == c.address]

    def event(
        self, receipt: TxReceipt, name: str, contract: Contract | None = None
    ) -> dict[str, Any]:
        found = self.events(receipt, name, contract)
        assert len(found) == 1, f"expected one {name} event, got {found}"
        return found[0]

    def topics(self, receipt: TxReceipt, name: str, contract: Contract | None = None) -> list[Any]:
        """Raw topics of the one ``name`` log (to check what auditors can filter on)."""
        c = contract if contract is not None else self.vault
        decoded = c.events[name]().process_receipt(receipt, errors=DISCARD)
        logs = [e for e in decoded if e["address"] == c.address]
        assert len(logs) == 1
        raw = next(log for log in receipt["logs"] if log["logIndex"] == logs[0]["logIndex"])
        return list(raw["topics"])

    # ------------------------------------------------------------ vault actions

    def pay(
        self,
        token: str,
        to: str,
        amount: int,
        reference: bytes = b"",
        *,
        agent: LocalAccount | None = None,
        vault: Contract | None = None,
        gas: int | None = None,
    ) -> tuple[TxReceipt, int]:
        """Agent pays; returns (receipt, request id or 0 when paid directly)."""
        v = vault if vault is not None else self.vault
        sender = agent if agent is not None else self.agent
        receipt = self.send(v.functions.pay(token, to, amount, ref_or(reference)), sender, gas=gas)
        created = self.events(receipt, "RequestCreated", v)
        return receipt, (created[0]["requestId"] if created else 0)

    def escalate(self, amount: int = 500 * USDC, to: str | None = None) -> int:
        """An escalated tUSDC payment request (over the per-payment limit); returns its id."""
        _receipt, request_id = self.pay(
            self.usdc.address, to or fresh_address("escalated"), amount, ref("escalated")
        )
        assert request_id != 0
        return request_id

    def calldata(self, function: str, *args: Any, vault: Contract | None = None) -> bytes:
        v = vault if vault is not None else self.vault
        return bytes.fromhex(v.encode_abi(function, args=list(args))[2:])

    def propose(
        self,
        function: str,
        *args: Any,
        proposer: LocalAccount | None = None,
        vault: Contract | None = None,
    ) -> tuple[TxReceipt, int]:
        v = vault if vault is not None else self.vault
        data = self.calldata(function, *args, vault=v)
        receipt = self.send(v.functions.propose(data, ref(function)), proposer or self.owners[0])
        return receipt, self.event(receipt, "RequestCreated", v)["requestId"]

    def govern(
        self, function: str, *args: Any, vault: Contract | None = None
    ) -> tuple[TxReceipt, int]:
        """Run a governance call on the vault: owner 0 proposes, owner 1 approves (2-of-3)."""
        v = vault if vault is not None else self.vault
        _receipt, request_id = self.propose(function, *args, vault=v)
        receipt = self.send(v.functions.approve(request_id), self.owners[1])
        assert self.event(receipt, "RequestExecuted", v)["requestId"] == request_id
        return receipt, request_id

    def add_agent(
        self,
        agent: str,
        *,
        valid_after: int = 0,
        valid_until: int = 0,
        allowlist: bool = False,
        limits: dict[str, tuple[int, int, int]] | None = None,
    ) -> None:
        self.govern("addAgent", agent, valid_after, valid_until, allowlist)
        for token, (maximum, allowance, period) in (limits or {}).items():
            self.govern("setLimits", agent, token, maximum, allowance, period)

    def create_vault(
        self,
        owners: list[str],
        threshold: int,
        *,
        expiry: int = REQUEST_EXPIRY,
        max_open: int = MAX_OPEN,
        salt: bytes = b"",
    ) -> Contract:
        fn = self.factory.functions.createVault(owners, threshold, expiry, max_open, ref_or(salt))
        receipt = self.send(fn, self.deployer)
        address = self.event(receipt, "VaultCreated", self.factory)["vault"]
        return self.contract("AgentVault", address)

    # ------------------------------------------------------------ reading

    def now(self) -> int:
        return self.chain.timestamp()

    def block_time(self, receipt: TxReceipt) -> int:
        return int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    def set_next_timestamp(self, timestamp: int) -> None:
        """The next transaction's block is stamped exactly ``timestamp`` (> latest)."""
        if self.chain.is_embedded:
            self.chain._tester.time_travel(timestamp)
        else:
            self.chain._rpc("evm_setNextBlockTimestamp", [timestamp])

    def usdc_of(self, address: str) -> int:
        return int(self.usdc.functions.balanceOf(address).call())

    def eth_of(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def request(self, request_id: int, vault: Contract | None = None) -> dict[str, Any]:
        v = vault if vault is not None else self.vault
        keys = ("kind status agent createdAt expiresAt reasons token to amount ref data").split()
        return dict(zip(keys, v.functions.getRequest(request_id).call(), strict=True))

    def status(self, request_id: int) -> int:
        return int(self.request(request_id)["status"])

    def available(self, token: str, agent: str | None = None) -> int:
        policy = self.vault.functions.getPolicy(agent or self.agent.address, token).call()
        return int(policy[3])

    # ------------------------------------------------------------ signatures

    def typed_request(
        self, request_id: int, *, vault: Contract | None = None, chain_id: int | None = None
    ) -> dict[str, Any]:
        """The full EIP-712 message an owner signs to approve ``request_id``."""
        v = vault if vault is not None else self.vault
        r = self.request(request_id, v)
        return self.typed_message(
            "Request",
            [
                ("requestId", "uint256"),
                ("kind", "uint8"),
                ("agent", "address"),
                ("token", "address"),
                ("to", "address"),
                ("amount", "uint256"),
                ("ref", "bytes32"),
                ("dataHash", "bytes32"),
                ("expiresAt", "uint256"),
            ],
            {
                "requestId": request_id,
                "kind": r["kind"],
                "agent": r["agent"],
                "token": r["token"],
                "to": r["to"],
                "amount": r["amount"],
                "ref": r["ref"],
                "dataHash": Web3.keccak(r["data"]),
                "expiresAt": r["expiresAt"],
            },
            vault=v,
            chain_id=chain_id,
        )

    def typed_message(
        self,
        primary: str,
        fields: list[tuple[str, str]],
        message: dict[str, Any],
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> dict[str, Any]:
        """An EIP-712 message in the vault's domain, written out independently of the SDK."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: [{"name": name, "type": kind} for name, kind in fields],
            },
            "primaryType": primary,
            "domain": {
                "name": "AgentVault",
                "version": "1",
                "chainId": self.chain.chain_id if chain_id is None else chain_id,
                "verifyingContract": (vault if vault is not None else self.vault).address,
            },
            "message": message,
        }

    def sign(
        self,
        request_id: int,
        signer: LocalAccount,
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> bytes:
        """65-byte r|s|v EIP-712 signature of ``signer`` over the request."""
        message = encode_typed_data(
            full_message=self.typed_request(request_id, vault=vault, chain_id=chain_id)
        )
        return bytes(signer.sign_message(message).signature)

    def signatures(
        self, request_id: int, signers: list[LocalAccount], *, vault: Contract | None = None
    ) -> list[tuple[str, bytes]]:
        """(signer, signature) pairs sorted ascending by signer, as the vault requires."""
        pairs = [(s.address, self.sign(request_id, s, vault=vault)) for s in signers]
        return sorted(pairs, key=lambda p: int(p[0], 16))

    def packed(
        self, request_id: int, signers: list[LocalAccount], *, vault: Contract | None = None
    ) -> bytes:
        """The signers' signatures packed as executeWithSignatures takes them."""
        return pack_signatures(self.signatures(request_id, signers, vault=vault))


def ref_or(value: bytes) -> bytes:
    return value.ljust(32, b"\0")


def sorted_accounts(accounts: list[LocalAccount]) -> list[LocalAccount]:
    return sorted(accounts, key=lambda a: int(a.address, 16))


def build_env(chain: Chain, name: str) -> Env:
    dev = chain.dev_accounts
    deployer = dev[0]
    owners = [dev[1], dev[2], dev[3]]
    factory = chain.deploy("AgentVaultFactory", sender=deployer)
    usdc = chain.deploy("TestUSDC", sender=deployer)
    env = Env(
        name=name,
        chain=chain,
        factory=factory,
        usdc=usdc,
        vault=factory,  # replaced below
        owners=owners,
        agent=dev[4],
        outsider=dev[5],
        deployer=deployer,
        spare=[dev[6], dev[7], dev[8], dev[9]],
    )
    env.vault = env.create_vault([o.address for o in owners], 2, salt=b"main")
    env.send_eth(deployer, env.vault.address, VAULT_ETH)
    env.send(usdc.functions.mint(deployer.address, 2 * VAULT_USDC), deployer)
    env.send(usdc.functions.approve(env.vault.address, VAULT_USDC), deployer)
    env.send(env.vault.functions.deposit(usdc.address, VAULT_USDC), deployer)
    env.add_agent(
        env.agent.address,
        limits={
            usdc.address: (USDC_MAX, USDC_ALLOWANCE, PERIOD),
            ETH: (ETH_MAX, ETH_ALLOWANCE, PERIOD),
        },
    )
    return env


_ENVS: dict[int, Env] = {}


def env_for(chain: Chain, name: str) -> Env:
    """The session's deployment on ``chain`` (built once, shared by every fixture)."""
    if id(chain) not in _ENVS:
        _ENVS[id(chain)] = build_env(chain, name)
    return _ENVS[id(chain)]


@pytest.fixture(scope="session")
def env(any_chain: Chain) -> Env:
    """The deployment on each chain (tests using it run on `embedded` and `anvil`)."""
    return env_for(any_chain, "embedded" if any_chain.is_embedded else "anvil")


@pytest.fixture(scope="session")
def anvil_env(anvil_chain: Chain) -> Env:
    """The deployment on anvil only (for the heavy property-based test)."""
    return env_for(anvil_chain, "anvil")
