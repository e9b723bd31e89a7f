"""Fixtures and helpers for the AgentVault contract tests.

One deployment per chain per session (``env``, parametrized over the embedded chain and anvil
through ``any_chain``): the vault's four parts and a factory, TestUSDC, a 2-of-3 vault funded
with ETH and tUSDC, and one agent whose ETH and tUSDC limits were added through governance
(propose + approve). The root
``tests/conftest.py`` takes a snapshot before every test that uses a chain and reverts after it,
so each test starts from exactly this state.

Reverts are asserted by error *name* with :func:`expect_revert`: the selector in the revert data
is looked up among the errors of every compiled artifact, so a test fails if the vault reverts
for any other reason (including a panic).

The vault stores only a hash of each request; every call acting on one takes the whole
``PaymentRequest`` or ``GovernanceProposal``. :class:`Env` records every ``PaymentRequested`` and
``GovernanceProposed`` it sees in a receipt, so tests name requests by id: ``env.rq.approve(rid)``
is ``approvePayment(request)`` or ``approveProposal(proposal, data)`` for request ``rid``.
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
from agentwallet.protocol.signatures import OwnerSignature, pack_signatures

ETH = "0x0000000000000000000000000000000000000000"
DAY = 86_400
USDC = 10**6
ETHER = 10**18
MAX_LIMIT = (1 << 88) - 1

REASON_OVER_PER_PAYMENT = 1
REASON_OVER_ALLOWANCE = 2
REASON_RECIPIENT_NOT_ALLOWED = 4
REASON_TOKEN_NOT_IN_SCOPE = 8
MAX_PERIOD = (1 << 29) - 1

# RequestStatus / AgentStatus / RequestKind as numbered in IAgentVaultBase
NONE, PENDING, EXECUTED, REJECTED, CANCELLED, EXPIRED, AGENT_REVOKED_REQUEST, CLOSED = range(8)
AGENT_NONE, AGENT_ACTIVE, AGENT_PAUSED, AGENT_REVOKED, AGENT_ROTATED = range(5)
KIND_PAYMENT, KIND_GOVERNANCE = range(2)
EMPTY_HASH = bytes(Web3.keccak(b""))
#: the vault's parts in deployment order: each points at the next one
VAULT_PARTS = (
    "AgentVaultLens",
    "AgentVaultCalls",
    "AgentVaultConfig",
    "AgentVaultAdmin",
    "AgentVault",
)

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

PAYMENT_FIELDS = "id agent lineage slot token to amount ref reasons expiresAt".split()
PROPOSAL_FIELDS = "id proposer dataHash ref expiresAt".split()
CALL_FIELDS = (
    "id agent lineage slot target value dataHash spendToken spendAmount ref reasons expiresAt"
).split()
KIND_CALL = 2  # a test-only kind for call requests (the contract has no kind field)


@dataclass
class Stored:
    """A request as created (from its PaymentRequested or GovernanceProposed event)."""

    kind: int  # KIND_PAYMENT or KIND_GOVERNANCE
    request: tuple[Any, ...]  # the PaymentRequest or GovernanceProposal tuple
    data: bytes = b""  # a proposal's call

    @property
    def fields(self) -> list[str]:
        return {KIND_PAYMENT: PAYMENT_FIELDS, KIND_GOVERNANCE: PROPOSAL_FIELDS}.get(
            self.kind, CALL_FIELDS
        )

    def field(self, name: str) -> Any:
        return self.request[self.fields.index(name)]

    def as_dict(self) -> dict[str, Any]:
        fields = self.fields
        out = dict(zip(fields, self.request, strict=True))
        out["kind"] = self.kind
        out["data"] = self.data
        return out


class RequestCalls:
    """The request calls of one vault, naming requests by id (their contents are looked up):
    ``approve``, ``execute``, ``executeWithSignatures``, ``reject``, ``expire`` pick the payment
    or proposal variant by the request's kind."""

    def __init__(self, env: Env, vault: Contract) -> None:
        self.env = env
        self.vault = vault

    def stored(self, rid: int) -> Stored:
        stored = self.env.requests.get((self.vault.address, rid))
        if stored is None:  # a request that was never created: any contents will do
            return Stored(KIND_PAYMENT, (rid, ETH, 0, rid, ETH, ETH, 0, b"\0" * 32, 0, 0))
        return stored

    def req(self, rid: int) -> tuple[Any, ...]:
        return self.stored(rid).request

    def data(self, rid: int) -> bytes:
        return self.stored(rid).data

    def _is_payment(self, rid: int) -> bool:
        return self.stored(rid).kind == KIND_PAYMENT

    def _kind(self, rid: int) -> int:
        return self.stored(rid).kind

    def approve(self, rid: int) -> ContractFunction:
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.approvePayment(self.req(rid))
        if k == KIND_CALL:
            return f.approveCall(self.req(rid), self.data(rid))
        return f.approveProposal(self.req(rid), self.data(rid))

    def execute(self, rid: int) -> ContractFunction:
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.executePayment(self.req(rid))
        if k == KIND_CALL:
            return f.executeCall(self.req(rid), self.data(rid))
        return f.executeProposal(self.req(rid), self.data(rid))

    def executeWithSignatures(self, rid: int, signatures: bytes) -> ContractFunction:  # noqa: N802
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.executePaymentWithSignatures(self.req(rid), signatures)
        if k == KIND_CALL:
            return f.executeCallWithSignatures(self.req(rid), self.data(rid), signatures)
        return f.executeProposalWithSignatures(self.req(rid), self.data(rid), signatures)

    def reject(self, rid: int) -> ContractFunction:
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.rejectPayment(self.req(rid))
        if k == KIND_CALL:
            return f.rejectCall(self.req(rid))
        return f.rejectProposal(self.req(rid))

    def cancel(self, rid: int) -> ContractFunction:
        if self._kind(rid) == KIND_CALL:
            return self.vault.functions.cancelCall(self.req(rid))
        return self.vault.functions.cancelPayment(self.req(rid))

    def expire(self, rid: int) -> ContractFunction:
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.expirePayment(self.req(rid))
        if k == KIND_CALL:
            return f.expireCall(self.req(rid))
        return f.expireProposal(self.req(rid))

    def requestDigest(self, rid: int) -> ContractFunction:  # noqa: N802
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.paymentRequestDigest(self.req(rid))
        if k == KIND_CALL:
            return f.callRequestDigest(self.req(rid))
        return f.proposalDigest(self.req(rid))

    def requestStatus(self, rid: int) -> ContractFunction:  # noqa: N802
        f, k = self.vault.functions, self._kind(rid)
        if k == KIND_PAYMENT:
            return f.paymentStatus(self.req(rid))
        if k == KIND_CALL:
            return f.callStatus(self.req(rid))
        return f.proposalStatus(self.req(rid))


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
    parts: dict[str, str] = field(default_factory=dict)
    #: (vault address, request id) -> the request as created
    requests: dict[tuple[str, int], Stored] = field(default_factory=dict)
    decoder: Contract | None = field(default=None, repr=False)

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def rq(self) -> RequestCalls:
        """Request calls on the main vault."""
        return RequestCalls(self, self.vault)

    def rq_of(self, vault: Contract) -> RequestCalls:
        return RequestCalls(self, vault)

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
        receipt = self.chain.send_transaction(sender, tx, check=check)
        self.record_requests(receipt)
        return receipt

    def record_requests(self, receipt: TxReceipt) -> None:
        """Remember every request created in ``receipt`` (by any vault)."""
        decoder = self._decoder()
        payment = bytes(Web3.keccak(text=_event_signature(decoder, "PaymentRequested")))
        proposal = bytes(Web3.keccak(text=_event_signature(decoder, "GovernanceProposed")))
        call_topic = bytes(Web3.keccak(text=_event_signature(decoder, "CallRequested")))
        for log in receipt["logs"]:
            topic = bytes(log["topics"][0]) if log["topics"] else b""
            if topic == payment:
                ev = decoder.events.PaymentRequested().process_log(log)["args"]
                request = tuple(
                    bytes(ev[f]) if f == "ref" else ev["requestId" if f == "id" else f]
                    for f in PAYMENT_FIELDS
                )
                self.requests[(log["address"], ev["requestId"])] = Stored(KIND_PAYMENT, request)
            elif topic == call_topic:
                ev = decoder.events.CallRequested().process_log(log)["args"]
                data = bytes(ev["data"])
                values = {**dict(ev), "id": ev["requestId"], "dataHash": bytes(Web3.keccak(data))}
                values["ref"] = bytes(ev["ref"])
                request = tuple(values[f] for f in CALL_FIELDS)
                self.requests[(log["address"], ev["requestId"])] = Stored(KIND_CALL, request, data)
            elif topic == proposal:
                ev = decoder.events.GovernanceProposed().process_log(log)["args"]
                data = bytes(ev["data"])
                request = (
                    ev["requestId"],
                    ev["proposer"],
                    bytes(Web3.keccak(data)),
                    bytes(ev["ref"]),
                    ev["expiresAt"],
                )
                self.requests[(log["address"], ev["requestId"])] = Stored(
                    KIND_GOVERNANCE, request, data
                )

    def _decoder(self) -> Contract:
        """An IAgentVault contract to decode events with, built once (web3 takes ~0.2 s to
        build one from the full ABI, which every transaction would otherwise pay)."""
        if self.decoder is None:
            self.decoder = self.contract("IAgentVault", ETH)
        return self.decoder

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
        created = self.events(receipt, "PaymentRequested", v)
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
        return receipt, self.event(receipt, "GovernanceProposed", v)["requestId"]

    def govern(
        self, function: str, *args: Any, vault: Contract | None = None
    ) -> tuple[TxReceipt, int]:
        """Run a governance call on the vault: owner 0 proposes, owner 1 approves (2-of-3)."""
        v = vault if vault is not None else self.vault
        _receipt, request_id = self.propose(function, *args, vault=v)
        receipt = self.send(self.rq_of(v).approve(request_id), self.owners[1])
        assert self.event(receipt, "RequestExecuted", v)["requestId"] == request_id
        return receipt, request_id

    def govern_signed(
        self,
        calls: list[tuple[str, tuple[Any, ...]]],
        signers: list[LocalAccount] | None = None,
        *,
        nonce: int = 0,
        deadline: int | None = None,
        sender: LocalAccount | None = None,
        vault: Contract | None = None,
        gas: int | None = None,
    ) -> TxReceipt:
        """Run a batch of governance calls from owners' signatures in one transaction."""
        v = vault if vault is not None else self.vault
        data = [self.calldata(fn, *args, vault=v) for fn, args in calls]
        deadline = self.now() + DAY if deadline is None else deadline
        signers = signers if signers is not None else self.owners[:2]
        packed = self.pack(
            [
                (
                    s.address,
                    self.sign_typed(self.typed_governance(data, nonce, deadline, vault=v), s),
                )
                for s in signers
            ]
        )
        fn = v.functions.executeGovernance(data, nonce, deadline, packed)
        return self.send(fn, sender or self.outsider, gas=gas)

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
        return self.contract("IAgentVault", address)

    # ------------------------------------------------------------ reading

    def now(self) -> int:
        """The latest block's timestamp."""
        return self.chain.timestamp()

    def next_time(self) -> int:
        """At least the time the next transaction sees (the pending block's timestamp). After a
        snapshot revert the latest block can be minutes old (the snapshot's) while new blocks
        follow the wall clock: a window set from :meth:`now` may already be open on a slow run."""
        pending = int(self.w3.eth.get_block("pending")["timestamp"])
        return max(self.chain.timestamp(), pending)

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
        """The request as created (fields of its struct, ``kind``, ``data``) and its status now."""
        v = vault if vault is not None else self.vault
        out = self.requests[(v.address, request_id)].as_dict()
        out["status"] = int(self.rq_of(v).requestStatus(request_id).call())
        return out

    def status(self, request_id: int, vault: Contract | None = None) -> int:
        v = vault if vault is not None else self.vault
        return int(self.rq_of(v).requestStatus(request_id).call())

    def available(self, token: str, agent: str | None = None) -> int:
        policy = self.vault.functions.getPolicy(agent or self.agent.address, token).call()
        return int(policy[3])

    # ------------------------------------------------------------ signatures

    def typed_request(
        self, request_id: int, *, vault: Contract | None = None, chain_id: int | None = None
    ) -> dict[str, Any]:
        """The full EIP-712 message an owner signs to approve ``request_id``."""
        v = vault if vault is not None else self.vault
        stored = self.requests[(v.address, request_id)]
        r = stored.as_dict()
        if stored.kind == KIND_CALL:
            call_types = [
                ("id", "uint256"),
                ("agent", "address"),
                ("lineage", "uint32"),
                ("slot", "uint64"),
                ("target", "address"),
                ("value", "uint256"),
                ("data", "bytes"),
                ("spendToken", "address"),
                ("spendAmount", "uint256"),
                ("ref", "bytes32"),
                ("reasons", "uint32"),
                ("expiresAt", "uint40"),
            ]
            message = {n: (stored.data if n == "data" else r[n]) for n, _t in call_types}
            return self.typed_message(
                "CallRequest", call_types, message, vault=v, chain_id=chain_id
            )
        if stored.kind == KIND_GOVERNANCE:
            return self.typed_message(
                "GovernanceProposal",
                [
                    ("id", "uint256"),
                    ("proposer", "address"),
                    ("data", "bytes"),
                    ("ref", "bytes32"),
                    ("expiresAt", "uint40"),
                ],
                {
                    "id": request_id,
                    "proposer": r["proposer"],
                    "data": stored.data,
                    "ref": r["ref"],
                    "expiresAt": r["expiresAt"],
                },
                vault=v,
                chain_id=chain_id,
            )
        return self.typed_message(
            "PaymentRequest",
            [
                ("id", "uint256"),
                ("agent", "address"),
                ("lineage", "uint32"),
                ("slot", "uint64"),
                ("token", "address"),
                ("to", "address"),
                ("amount", "uint256"),
                ("ref", "bytes32"),
                ("reasons", "uint32"),
                ("expiresAt", "uint40"),
            ],
            {name: r[name] for name in PAYMENT_FIELDS},
            vault=v,
            chain_id=chain_id,
        )

    def typed_governance(
        self,
        calls: list[bytes],
        nonce: int,
        deadline: int,
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> dict[str, Any]:
        return self.typed_message(
            "Governance",
            [("calls", "bytes[]"), ("nonce", "uint256"), ("deadline", "uint256")],
            {"calls": list(calls), "nonce": nonce, "deadline": deadline},
            vault=vault,
            chain_id=chain_id,
        )

    def typed_payment(
        self,
        payment: tuple[Any, ...],
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> dict[str, Any]:
        names = ["agent", "token", "to", "amount", "ref", "nonce", "deadline"]
        kinds = ["address", "address", "address", "uint256", "bytes32", "uint256", "uint256"]
        return self.typed_message(
            "SignedPayment",
            list(zip(names, kinds, strict=True)),
            dict(zip(names, payment, strict=True)),
            vault=vault,
            chain_id=chain_id,
        )

    def typed_intent(
        self, intent: tuple[Any, ...], *, vault: Contract | None = None, chain_id: int | None = None
    ) -> dict[str, Any]:
        names = ["token", "to", "amount", "ref", "nonce", "deadline", "maxFee"]
        kinds = ["address", "address", "uint256", "bytes32", "uint256", "uint256", "uint256"]
        return self.typed_message(
            "Intent",
            list(zip(names, kinds, strict=True)),
            dict(zip(names, intent, strict=True)),
            vault=vault,
            chain_id=chain_id,
        )

    def typed_rotation(
        self,
        old: str,
        new: str,
        nonce: int,
        deadline: int,
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> dict[str, Any]:
        return self.typed_message(
            "RotateKey",
            [
                ("oldKey", "address"),
                ("newKey", "address"),
                ("nonce", "uint256"),
                ("deadline", "uint256"),
            ],
            {"oldKey": old, "newKey": new, "nonce": nonce, "deadline": deadline},
            vault=vault,
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

    @staticmethod
    def sign_typed(typed: dict[str, Any], signer: LocalAccount) -> bytes:
        """65-byte r|s|v EIP-712 signature of ``signer`` over a full typed message."""
        return bytes(signer.sign_message(encode_typed_data(full_message=typed)).signature)

    @staticmethod
    def pack(pairs: list[tuple[str, bytes]] | list[OwnerSignature]) -> bytes:
        return pack_signatures(pairs)

    def sign(
        self,
        request_id: int,
        signer: LocalAccount,
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> bytes:
        """65-byte r|s|v EIP-712 signature of ``signer`` over the request."""
        return self.sign_typed(
            self.typed_request(request_id, vault=vault, chain_id=chain_id), signer
        )

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

    def signed_payment(
        self,
        payment: tuple[Any, ...],
        signers: list[LocalAccount],
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> bytes:
        """The signers' packed signatures over a SignedPayment tuple."""
        typed = self.typed_payment(payment, vault=vault, chain_id=chain_id)
        return pack_signatures([(s.address, self.sign_typed(typed, s)) for s in signers])

    def intent(
        self,
        to: str,
        amount: int,
        *,
        token: str | None = None,
        reference: bytes = b"intent",
        nonce: int = 0,
        deadline: int | None = None,
        max_fee: int = 0,
    ) -> tuple[Any, ...]:
        deadline = self.now() + DAY if deadline is None else deadline
        return (
            token if token is not None else ETH,
            to,
            amount,
            ref_or(reference),
            nonce,
            deadline,
            max_fee,
        )

    def compact(self, signature: bytes) -> tuple[bytes, bytes]:
        """EIP-2098 (r, vs) of a 65-byte r|s|v signature, as payWithIntent takes it."""
        vs = int.from_bytes(signature[32:64], "big") | ((signature[64] - 27) << 255)
        return signature[:32], vs.to_bytes(32, "big")

    def relay_intent(
        self,
        intent: tuple[Any, ...],
        signature: bytes,
        fee: int = 0,
        sender: LocalAccount | None = None,
        *,
        vault: Contract | None = None,
    ) -> TxReceipt:
        """Submit an agent's signed intent as a relayer (``payWithIntent``)."""
        v = vault if vault is not None else self.vault
        r, vs = self.compact(signature)
        return self.send(v.functions.payWithIntent(intent, fee, r, vs), sender or self.outsider)

    def sign_intent(
        self,
        intent: tuple[Any, ...],
        signer: LocalAccount | None = None,
        *,
        vault: Contract | None = None,
        chain_id: int | None = None,
    ) -> bytes:
        typed = self.typed_intent(intent, vault=vault, chain_id=chain_id)
        return self.sign_typed(typed, signer if signer is not None else self.agent)


def _event_signature(contract: Contract, name: str) -> str:
    entry = next(e for e in contract.abi if e.get("type") == "event" and e["name"] == name)
    return f"{name}({','.join(_abi_type(i) for i in entry['inputs'])})"


def ref_or(value: bytes) -> bytes:
    return value.ljust(32, b"\0")


def sorted_accounts(accounts: list[LocalAccount]) -> list[LocalAccount]:
    return sorted(accounts, key=lambda a: int(a.address, 16))


def deploy_parts(chain: Chain, deployer: LocalAccount) -> dict[str, str]:
    """The vault's five parts, each pointing at the next, and a factory for the core."""
    parts: dict[str, str] = {}
    previous: tuple[Any, ...] = ()
    for name in VAULT_PARTS:
        contract = chain.deploy(name, *previous, sender=deployer)
        parts[name] = contract.address
        previous = (contract.address,)
    return parts


def build_env(chain: Chain, name: str) -> Env:
    dev = chain.dev_accounts
    deployer = dev[0]
    owners = [dev[1], dev[2], dev[3]]
    parts = deploy_parts(chain, deployer)
    factory = chain.deploy("AgentVaultFactory", parts["AgentVault"], sender=deployer)
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
        parts=parts,
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
