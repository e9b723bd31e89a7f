"""The SDK's results and portable messages: frozen dataclasses, no chain access.

Amounts are ``int`` base units; addresses are EIP-55 checksummed text; hashes are 0x hex.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from hexbytes import HexBytes

from agentwallet.errors import AgentWalletError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import ETH, ZERO_ADDRESS

__all__ = [
    "ETH_TOKEN",
    "AgentView",
    "ApprovalResult",
    "Escalated",
    "Paid",
    "PaymentCheck",
    "PaymentOutcome",
    "PolicyView",
    "Remaining",
    "RequestInfo",
    "RequestRef",
    "PaymentState",
    "SignedApproval",
    "SignedIntent",
    "SignedGovernance",
    "SignedPayment",
    "SignedRotation",
    "TokenInfo",
    "TxResult",
]


@dataclass(frozen=True)
class TokenInfo:
    """A token: checksummed ``address`` (the zero address for ETH), ``symbol``, ``decimals``."""

    address: str
    symbol: str
    decimals: int

    @property
    def is_eth(self) -> bool:
        return self.address == ETH


ETH_TOKEN = TokenInfo(ETH, "ETH", 18)


# ---------------------------------------------------------------------------------- transactions


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: hash (0x hex), gas used, block number."""

    tx_hash: str
    gas_used: int
    block_number: int

    @classmethod
    def from_receipt(cls, receipt: Mapping[str, Any]) -> TxResult:
        return cls(
            HexBytes(receipt["transactionHash"]).to_0x_hex(),
            int(receipt["gasUsed"]),
            int(receipt["blockNumber"]),
        )


@dataclass(frozen=True)
class ApprovalResult(TxResult):
    """An on-chain approval; ``executed`` is True when it reached the threshold and ran."""

    executed: bool = False


@dataclass(frozen=True)
class RequestRef:
    """A new governance proposal: its id, whether it executed at once (threshold 1), the tx."""

    request_id: int
    executed: bool
    tx: TxResult


# ---------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class RequestInfo:
    """A request as co-signers see it: an agent's payment request (``kind`` "payment") or an
    owner's governance proposal ("governance": ``agent`` is the proposer, ``data`` the call).
    ``status`` is the vault's ("expired" for a pending request past its expiry, "agent_revoked"
    for a revoked agent's request), a closed request's final one from its events;
    ``approvals`` are the current owners whose on-chain approval counts now."""

    id: int
    kind: str
    status: str
    agent: str
    token: TokenInfo
    to: str
    amount: int
    amount_text: str
    reasons: tuple[str, ...]
    ref: str
    created_at: int
    expires_at: int
    approvals: tuple[str, ...]
    threshold: int
    action: str
    data: str = ""


@dataclass(frozen=True)
class PolicyView:
    """An agent's limits for one token; ``available`` is spendable in one payment now
    (ignoring ``max_per_payment``)."""

    max_per_payment: int
    allowance: int
    period: int
    available: int


@dataclass(frozen=True)
class AgentView:
    """An agent's settings and its limits per token address (only tokens in scope).
    ``lineage`` survives key rotation; ``parent`` is the agent that added it as a sub-agent
    (the zero address for an agent the owners added)."""

    address: str
    status: str
    valid_after: int
    valid_until: int
    allowlist: bool
    open_requests: int
    policies: dict[str, PolicyView] = field(default_factory=dict)
    lineage: int = 0
    parent: str = ZERO_ADDRESS


# ---------------------------------------------------------------------------------- payments


@dataclass(frozen=True)
class Paid:
    """A payment that ran inside the agent's limits."""

    tx_hash: str
    gas_used: int
    token: TokenInfo
    to: str
    amount: int
    ref: str

    @property
    def status(self) -> str:
        return "paid"


@dataclass(frozen=True)
class Escalated:
    """A payment outside the limits: request ``request_id`` now waits for the owners."""

    tx_hash: str
    gas_used: int
    request_id: int
    reasons: tuple[str, ...]
    token: TokenInfo
    to: str
    amount: int
    ref: str

    @property
    def status(self) -> str:
        return "escalated"


#: What :meth:`AgentWallet.pay <agentwallet.agent.AgentWallet.pay>` returns.
PaymentOutcome = Paid | Escalated


@dataclass(frozen=True)
class PaymentCheck:
    """What :meth:`AgentWallet.pay` would do now: pay directly (``will_pay``) or escalate for
    ``reasons``; ``available`` is the budget now, ``max_per_payment`` the single-payment cap."""

    will_pay: bool
    reasons: tuple[str, ...]
    available: int
    max_per_payment: int


@dataclass(frozen=True)
class Remaining:
    """The agent's budget in one token."""

    token: TokenInfo
    available: int
    max_per_payment: int
    allowance: int
    period: int


# ---------------------------------------------------------------------------------- signatures


class _Portable:
    """A signed message that travels as one line of JSON between owners and whoever submits."""

    _what: ClassVar[str]

    def to_json(self) -> str:
        """One-line JSON with every field."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> Self:
        """Parse :meth:`to_json` output (text or an already parsed dict). A missing or malformed
        field is one clear error naming the fields the message requires."""
        try:
            return cls._from_dict(json.loads(text) if isinstance(text, str) else dict(text))
        except (KeyError, TypeError, ValueError) as exc:
            required = ", ".join(
                f.name
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING
            )
            raise AgentWalletError(
                f"not a {cls._what} ({exc}): expected JSON with {required}"
            ) from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError


@dataclass(frozen=True)
class SignedApproval(_Portable):
    """An owner's off-chain EIP-712 approval of one request, portable as JSON.

    ``signature`` is 65 bytes r|s|v for an EOA owner; with ``contract`` the owner is a contract
    (ERC-1271, e.g. a Safe) and ``signature`` is whatever its ``isValidSignature`` accepts."""

    vault: str
    chain_id: int
    request_id: int
    signer: str
    signature: str  #: 0x hex
    contract: bool = False
    _what: ClassVar[str] = "signed approval"

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            vault=checksum(data["vault"], "vault address"),
            chain_id=int(data["chain_id"]),
            request_id=int(data["request_id"]),
            signer=checksum(data["signer"], "signer address"),
            signature=str(data["signature"]),
            contract=bool(data.get("contract", False)),
        )


@dataclass(frozen=True)
class SignedPayment(_Portable):
    """One owner's EIP-712 signature of a payment that needs no stored request
    (``payWithSignatures``), portable as JSON. Anyone holding the threshold's worth of them for
    the same payment can submit it (a relayer, an agent, an owner). ``nonce`` is an unused
    nonce of the owners' payment space (unordered, Permit2-style): the set pays at most once,
    whatever other signed payments run before it; one owner can cancel it by invalidating the
    nonce. ``agent`` is the attribution recorded in the event (may be the zero address)."""

    vault: str
    chain_id: int
    agent: str
    token: str
    to: str
    amount: int
    ref: str  #: 0x hex, 32 bytes
    nonce: int
    deadline: int
    signer: str
    signature: str  #: 0x hex
    contract: bool = False
    _what: ClassVar[str] = "signed payment"

    def payment(self) -> tuple[str, int, str, str, str, int, str, int, int]:
        """Everything the owners signed, to check that several signatures agree."""
        return (
            self.vault,
            self.chain_id,
            self.agent,
            self.token,
            self.to,
            self.amount,
            self.ref,
            self.nonce,
            self.deadline,
        )

    def message(self) -> tuple[Any, ...]:
        """What every signature of one payment shares (:meth:`payment`)."""
        return self.payment()

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            vault=checksum(data["vault"], "vault address"),
            chain_id=int(data["chain_id"]),
            agent=checksum(data["agent"], "agent address"),
            token=checksum(data["token"], "token address"),
            to=checksum(data["to"], "recipient address"),
            amount=int(data["amount"]),
            ref=HexBytes(data["ref"]).to_0x_hex(),
            nonce=int(data["nonce"]),
            deadline=int(data["deadline"]),
            signer=checksum(data["signer"], "signer address"),
            signature=str(data["signature"]),
            contract=bool(data.get("contract", False)),
        )


def _signature_bytes(signature: str) -> bytes:
    raw = bytes(HexBytes(signature))
    if len(raw) != 65:
        raise ValueError(f"signature must be 65 bytes r|s|v, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class SignedIntent(_Portable):
    """An agent's EIP-712 ``Intent``: a payment anyone may submit (``payWithIntent``, or as an
    ERC-7710 permission context to ``redeemDelegations``), portable as JSON. ``nonce`` is from
    the agent key's unordered space; ``max_fee`` the most the submitter may take in the same
    token (counted with ``amount`` against the agent's limits). ``signature`` is 65 bytes
    r|s|v; :meth:`compact` gives EIP-2098's ``(r, vs)`` for ``payWithIntent``."""

    vault: str
    chain_id: int
    agent: str
    token: str
    to: str
    amount: int
    ref: str  #: 0x hex, 32 bytes
    nonce: int
    deadline: int
    max_fee: int
    signature: str  #: 0x hex, 65 bytes
    _what: ClassVar[str] = "signed intent"

    def intent(self) -> tuple[str, str, int, bytes, int, int, int]:
        """The ``Intent`` struct as the ABI takes it."""
        ref = bytes(HexBytes(self.ref))
        return (self.token, self.to, self.amount, ref, self.nonce, self.deadline, self.max_fee)

    def compact(self) -> tuple[bytes, bytes]:
        """EIP-2098 ``(r, vs)``: ``s`` with the parity of ``v`` in its top bit."""
        raw = _signature_bytes(self.signature)
        r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
        parity = (v - 27) if v >= 27 else v
        return r, ((parity << 255) | s).to_bytes(32, "big")

    def permission_context(self) -> bytes:
        """``abi.encode(Intent, bytes signature)``: the ERC-7710 permission context."""
        from eth_abi.abi import encode

        return encode(
            ["(address,address,uint256,bytes32,uint256,uint256,uint256)", "bytes"],
            [self.intent(), _signature_bytes(self.signature)],
        )

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        ref = bytes(HexBytes(data["ref"]))
        if len(ref) != 32:
            raise ValueError(f"ref must be 32 bytes, got {len(ref)}")
        values = [int(data[k]) for k in ("chain_id", "amount", "nonce", "deadline", "max_fee")]
        if any(v < 0 or v >= 2**256 for v in values):
            raise ValueError("amounts, nonce and deadline must be uint256")
        _signature_bytes(str(data["signature"]))
        return cls(
            vault=checksum(data["vault"], "vault address"),
            chain_id=values[0],
            agent=checksum(data["agent"], "agent address"),
            token=checksum(data["token"], "token address"),
            to=checksum(data["to"], "recipient address"),
            amount=values[1],
            ref=HexBytes(ref).to_0x_hex(),
            nonce=values[2],
            deadline=values[3],
            max_fee=values[4],
            signature=HexBytes(data["signature"]).to_0x_hex(),
        )


@dataclass(frozen=True)
class SignedRotation(_Portable):
    """Both keys' EIP-712 ``RotateKey`` signatures: the agent ``old_key`` hands its rights to
    ``new_key`` (whose signature proves it is held). Anyone may submit (``rotateAgentKey``)."""

    vault: str
    chain_id: int
    old_key: str
    new_key: str
    nonce: int
    deadline: int
    old_signature: str  #: 0x hex, 65 bytes
    new_signature: str  #: 0x hex, 65 bytes
    _what: ClassVar[str] = "signed rotation"

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        for key in ("old_signature", "new_signature"):
            _signature_bytes(str(data[key]))
        return cls(
            vault=checksum(data["vault"], "vault address"),
            chain_id=int(data["chain_id"]),
            old_key=checksum(data["old_key"], "old key address"),
            new_key=checksum(data["new_key"], "new key address"),
            nonce=int(data["nonce"]),
            deadline=int(data["deadline"]),
            old_signature=HexBytes(data["old_signature"]).to_0x_hex(),
            new_signature=HexBytes(data["new_signature"]).to_0x_hex(),
        )


@dataclass(frozen=True)
class PaymentState:
    """What became of a payment ref of one agent (:meth:`AgentWallet.payment_state`).

    ``state``: ``"paid"`` or ``"escalated"`` (``outcome`` holds the result); ``"pending"``
    (journaled or relayed, not mined yet: retry with the same ref); ``"pending_elsewhere"``
    (another machine's exactly-once payment of it is in the node's pool: wait); ``"cancelled"``
    (the ref-derived intent nonce was invalidated or spent without a payment: it can never pay);
    ``"unknown"`` (nothing for this ref: nothing was paid with it). ``guarantee`` says how far
    the answer holds: ``"chain"`` (the ref-derived intent nonce is spent: no one can pay this
    ref again through an intent), ``"logs"`` (from the vault's events: every SDK retry, on any
    machine, gets this answer), ``"pool"`` (from the node's pending block), ``"journal"`` (only
    this machine's journal knows)."""

    ref: str
    state: str
    guarantee: str
    outcome: Paid | Escalated | None = None
    tx_hash: str | None = None
    nonce: int | None = None


@dataclass(frozen=True)
class SignedGovernance(_Portable):
    """One owner's EIP-712 signature of a batch of governance calls
    (``Governance(bytes[] calls,uint256 nonce,uint256 deadline)``, run by ``executeGovernance``),
    portable as JSON. Anyone holding the threshold's worth of them for the same batch can submit
    it: no request is stored, so no owner can reject, expire or front-run it away. ``nonce`` is
    an unused nonce of the governance space (unordered: independent batches never cancel each
    other); ``calls`` are the vault calls' ABI-encoded data, 0x hex, run in order."""

    vault: str
    chain_id: int
    calls: tuple[str, ...]  #: 0x hex calldata of each vault call
    nonce: int
    deadline: int
    signer: str
    signature: str  #: 0x hex
    contract: bool = False
    _what: ClassVar[str] = "signed governance batch"

    def batch(self) -> tuple[str, int, tuple[str, ...], int, int]:
        """Everything the owners signed, to check that several signatures agree."""
        return (self.vault, self.chain_id, self.calls, self.nonce, self.deadline)

    def message(self) -> tuple[Any, ...]:
        """What every signature of one batch shares (:meth:`batch`)."""
        return self.batch()

    def call_data(self) -> list[bytes]:
        """The calls as bytes, as ``executeGovernance`` takes them."""
        return [bytes(HexBytes(c)) for c in self.calls]

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Self:
        raw_calls = data["calls"]
        if isinstance(raw_calls, str) or not list(raw_calls):
            raise ValueError("calls must be a non-empty list of 0x hex strings")
        return cls(
            vault=checksum(data["vault"], "vault address"),
            chain_id=int(data["chain_id"]),
            calls=tuple(HexBytes(c).to_0x_hex() for c in raw_calls),
            nonce=int(data["nonce"]),
            deadline=int(data["deadline"]),
            signer=checksum(data["signer"], "signer address"),
            signature=str(data["signature"]),
            contract=bool(data.get("contract", False)),
        )
