"""A vault's two kinds of request, as the contract takes them: an agent's escalated payment
(``PaymentRequest``) and an owner's governance proposal (``GovernanceProposal``).

The vault stores only a hash of each request; every call that acts on one (approve, execute,
reject, cancel, expire, the status and digest views) takes it whole, as its creation event
(``PaymentRequested``, ``GovernanceProposed``) gave it. These frozen records are built from those
events' arguments and give back the ABI tuples. Pure: no chain access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import ETH, Reason, RequestKind

__all__ = ["GovernanceProposal", "PaymentRequest", "Request", "request_from_event"]


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


#: Either kind of request.
Request = PaymentRequest | GovernanceProposal


def request_from_event(name: str, args: Mapping[str, Any]) -> Request:
    """The request a ``PaymentRequested`` or ``GovernanceProposed`` event created."""
    if name == "PaymentRequested":
        return PaymentRequest.from_event(args)
    if name == "GovernanceProposed":
        return GovernanceProposal.from_event(args)
    raise ValueError(f"{name} does not create a request")
