"""A vault's three kinds of request, as the contract takes them: an agent's escalated payment
(``PaymentRequest``), an owner's governance proposal (``GovernanceProposal``) and an agent's
scoped contract call outside its grants (``CallRequest``).

The vault stores only a hash of each request; every call that acts on one (approve, execute,
reject, cancel, expire, the status and digest views) takes it whole, as its creation event
(``PaymentRequested``, ``GovernanceProposed``, ``CallRequested``) gave it. These frozen records
are built from those events' arguments and give back the ABI tuples. Pure: no chain access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import ETH, Reason, RequestKind

__all__ = ["CallRequest", "GovernanceProposal", "PaymentRequest", "Request", "request_from_event"]


def _bytes(value: Any) -> bytes:
    return bytes(HexBytes(value))


@dataclass(frozen=True)
class PaymentRequest:
    """An agent's payment outside its limits, waiting for the owners (``PaymentRequested``).

    ``slot`` is where the vault keeps its hash (a place the agent's ``lineage`` reuses once a
    request there closes); ``ref`` is the raw bytes32."""

    id: int
    agent: str
    lineage: int
    slot: int
    token: str
    to: str
    amount: int
    ref: bytes
    reasons: Reason
    expires_at: int

    kind = RequestKind.PAYMENT

    @property
    def proposer(self) -> str:
        """Who created the request: the agent."""
        return self.agent

    @property
    def data(self) -> bytes:
        """A payment request carries no call."""
        return b""

    def as_tuple(self) -> tuple[Any, ...]:
        """The ``PaymentRequest`` struct as the ABI takes it."""
        return (
            self.id,
            self.agent,
            self.lineage,
            self.slot,
            self.token,
            self.to,
            self.amount,
            self.ref,
            int(self.reasons),
            self.expires_at,
        )

    @classmethod
    def from_event(cls, args: Mapping[str, Any]) -> PaymentRequest:
        """From a ``PaymentRequested`` event's arguments (web3's or the audit's plain ones)."""
        return cls(
            id=int(args["requestId"]),
            agent=checksum(str(args["agent"])),
            lineage=int(args["lineage"]),
            slot=int(args["slot"]),
            token=checksum(str(args["token"])),
            to=checksum(str(args["to"])),
            amount=int(args["amount"]),
            ref=_bytes(args["ref"]),
            reasons=Reason(int(args["reasons"])),
            expires_at=int(args["expiresAt"]),
        )


@dataclass(frozen=True)
class GovernanceProposal:
    """An owner's proposed call on the vault itself (``GovernanceProposed``). The contract's
    struct holds ``keccak256(data)``; ``data`` itself must be passed again to approve or
    execute, and owners sign it whole (EIP-712 ``bytes data``)."""

    id: int
    proposer: str
    data: bytes
    ref: bytes
    expires_at: int

    kind = RequestKind.GOVERNANCE

    @property
    def agent(self) -> str:
        """Who created the request: the proposing owner (``RequestInfo.agent`` shows it)."""
        return self.proposer

    token = ETH
    to = ETH
    amount = 0
    reasons = Reason(0)

    @property
    def data_hash(self) -> bytes:
        return keccak(self.data)

    def as_tuple(self) -> tuple[Any, ...]:
        """The ``GovernanceProposal`` struct as the ABI takes it (with the call's hash)."""
        return (self.id, self.proposer, self.data_hash, self.ref, self.expires_at)

    @classmethod
    def from_event(cls, args: Mapping[str, Any]) -> GovernanceProposal:
        """From a ``GovernanceProposed`` event's arguments."""
        return cls(
            id=int(args["requestId"]),
            proposer=checksum(str(args["proposer"])),
            data=_bytes(args["data"]),
            ref=_bytes(args["ref"]),
            expires_at=int(args["expiresAt"]),
        )


@dataclass(frozen=True)
class CallRequest:
    """An agent's scoped call outside its grants (``CallRequested``): the vault would call
    ``target`` with ``value`` wei and ``data``, approving ``spend_amount`` of ``spend_token``
    for the call only. The struct holds ``keccak256(data)``; ``data`` is passed again to approve
    or execute, and owners sign it whole (EIP-712 ``bytes data``)."""

    id: int
    agent: str
    lineage: int
    slot: int
    target: str
    value: int
    data: bytes
    spend_token: str
    spend_amount: int
    ref: bytes
    reasons: Reason
    expires_at: int

    kind = RequestKind.CALL

    @property
    def proposer(self) -> str:
        return self.agent

    @property
    def to(self) -> str:
        """Where the call goes (shown as the request's recipient)."""
        return self.target

    @property
    def token(self) -> str:
        """The token the call spends (ETH when it spends none)."""
        return self.spend_token

    @property
    def amount(self) -> int:
        """What the call may spend of :attr:`token`."""
        return self.spend_amount

    @property
    def data_hash(self) -> bytes:
        return keccak(self.data)

    def as_tuple(self) -> tuple[Any, ...]:
        """The ``CallRequest`` struct as the ABI takes it (with the call data's hash)."""
        return (
            self.id,
            self.agent,
            self.lineage,
            self.slot,
            self.target,
            self.value,
            self.data_hash,
            self.spend_token,
            self.spend_amount,
            self.ref,
            int(self.reasons),
            self.expires_at,
        )

    @classmethod
    def from_event(cls, args: Mapping[str, Any]) -> CallRequest:
        """From a ``CallRequested`` event's arguments."""
        return cls(
            id=int(args["requestId"]),
            agent=checksum(str(args["agent"])),
            lineage=int(args["lineage"]),
            slot=int(args["slot"]),
            target=checksum(str(args["target"])),
            value=int(args["value"]),
            data=_bytes(args["data"]),
            spend_token=checksum(str(args["spendToken"])),
            spend_amount=int(args["spendAmount"]),
            ref=_bytes(args["ref"]),
            reasons=Reason(int(args["reasons"])),
            expires_at=int(args["expiresAt"]),
        )


#: Any kind of request.
Request = PaymentRequest | GovernanceProposal | CallRequest


def request_from_event(name: str, args: Mapping[str, Any]) -> Request:
    """The request a ``PaymentRequested``, ``GovernanceProposed`` or ``CallRequested`` event
    created."""
    if name == "PaymentRequested":
        return PaymentRequest.from_event(args)
    if name == "GovernanceProposed":
        return GovernanceProposal.from_event(args)
    if name == "CallRequested":
        return CallRequest.from_event(args)
    raise ValueError(f"{name} does not create a request")
