"""AgentVault's ABI as typed Python: reads, call encoders, receipt and log decoding.

A thin wrapper over one ABI; it makes no policy decisions and sends nothing (services send the
encoded calls through :mod:`agentwallet.chain.tx`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD

from agentwallet.bindings.artifacts import abi_of
from agentwallet.protocol.addresses import as_checksum, checksum
from agentwallet.protocol.calls import Call, CallDecoder
from agentwallet.protocol.constants import AgentStatus, Reason, RequestKind, RequestStatus
from agentwallet.protocol.models import PolicyView
from agentwallet.protocol.typed_data import Domain

if TYPE_CHECKING:
    from agentwallet.chain import Chain

__all__ = ["AgentRecord", "CreatedRequest", "StoredRequest", "VaultBinding", "vault_calls"]

ARTIFACT = "AgentVault"


@cache
def vault_calls() -> CallDecoder:
    """The decoder of AgentVault calls (governance requests' calldata)."""
    return CallDecoder(abi_of(ARTIFACT))


@dataclass(frozen=True)
class AgentRecord:
    """``getAgent``: an agent's stored settings."""

    status: AgentStatus | int
    valid_after: int
    valid_until: int
    allowlist: bool
    open_requests: int


@dataclass(frozen=True)
class StoredRequest:
    """``getRequest``: a request as stored (status NONE: no such request)."""

    kind: RequestKind | int
    status: RequestStatus | int
    agent: str
    created_at: int
    expires_at: int
    reasons: Reason
    token: str
    to: str
    amount: int
    ref: bytes
    data: bytes


@dataclass(frozen=True)
class CreatedRequest:
    """A ``RequestCreated`` event: the new request's id and why a payment escalated."""

    request_id: int
    agent: str
    reasons: Reason


def _enum(kind: type[AgentStatus] | type[RequestStatus] | type[RequestKind], value: Any) -> Any:
    try:
        return kind(int(value))
    except ValueError:  # a value a newer contract added
        return int(value)


class VaultBinding:
    """AgentVault at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = checksum(address, "vault address")
        #: The web3 contract object (the raw escape hatch: logs, tests).
        self.contract: Contract = chain.w3.eth.contract(
            address=as_checksum(self.address), abi=list(abi_of(ARTIFACT))
        )
        self._fns = self.contract.functions

    def __repr__(self) -> str:
        return f"VaultBinding({self.address})"

    # ------------------------------------------------------------------ configuration

    def owners(self) -> list[str]:
        """Current owners, checksummed."""
        return [checksum(str(o)) for o in self._fns.getOwners().call()]

    def threshold(self) -> int:
        return int(self._fns.threshold().call())

    def paused(self) -> bool:
        return bool(self._fns.paused().call())

    def request_count(self) -> int:
        """Requests ever created (ids are 1..count)."""
        return int(self._fns.requestCount().call())

    def eip712_domain(self) -> Domain:
        """The vault's EIP-712 signing domain (``eip712Domain``)."""
        _, name, version, chain_id, verifying, _, _ = self._fns.eip712Domain().call()
        return Domain(str(name), str(version), int(chain_id), checksum(str(verifying)))

    # ------------------------------------------------------------------ agents and limits

    def agents(self) -> list[str]:
        """Listed agents (active and paused; revoked ones leave the list)."""
        return [checksum(str(a)) for a in self._fns.getAgents().call()]

    def agent(self, agent: str) -> AgentRecord:
        status, valid_after, valid_until, allowlist, open_requests = self._fns.getAgent(
            as_checksum(agent)
        ).call()
        return AgentRecord(
            _enum(AgentStatus, status),
            int(valid_after),
            int(valid_until),
            bool(allowlist),
            int(open_requests),
        )

    def agent_tokens(self, agent: str) -> list[str]:
        """Tokens the agent has limits for."""
        return [checksum(str(t)) for t in self._fns.getAgentTokens(as_checksum(agent)).call()]

    def policy(self, agent: str, token: str) -> PolicyView:
        p = self._fns.getPolicy(as_checksum(agent), as_checksum(token)).call()
        return PolicyView(int(p[0]), int(p[1]), int(p[2]), int(p[3]))

    def check_payment(self, agent: str, token: str, to: str, amount: int) -> Reason:
        """The contract's dry run of ``pay``: the escalation reasons (0: would pay directly).
        Pause, status, validity and balance are not checked."""
        bits = self._fns.checkPayment(
            as_checksum(agent), as_checksum(token), as_checksum(to), amount
        ).call()
        return Reason(int(bits))

    # ------------------------------------------------------------------ requests

    def request(self, request_id: int) -> StoredRequest:
        r = self._fns.getRequest(request_id).call()
        return StoredRequest(
            kind=_enum(RequestKind, r[0]),
            status=_enum(RequestStatus, r[1]),
            agent=checksum(str(r[2])),
            created_at=int(r[3]),
            expires_at=int(r[4]),
            reasons=Reason(int(r[5])),
            token=checksum(str(r[6])),
            to=checksum(str(r[7])),
            amount=int(r[8]),
            ref=bytes(r[9]),
            data=bytes(r[10]),
        )

    def has_approved(self, request_id: int, owner: str) -> bool:
        return bool(self._fns.hasApproved(request_id, as_checksum(owner)).call())

    def request_digest(self, request_id: int) -> bytes:
        """The EIP-712 digest owners sign to approve ``request_id`` off-chain."""
        return bytes(self._fns.requestDigest(request_id).call())

    # ------------------------------------------------------------------ signed payments

    def signed_payment_nonce(self) -> int:
        return int(self._fns.signedPaymentNonce().call())

    def signed_payment_digest(
        self, agent: str, token: str, to: str, amount: int, ref: bytes, deadline: int
    ) -> bytes:
        """The EIP-712 digest of a ``payWithSignatures`` payment at the current nonce."""
        return bytes(
            self._fns.signedPaymentDigest(
                as_checksum(agent), as_checksum(token), as_checksum(to), amount, ref, deadline
            ).call()
        )

    # ------------------------------------------------------------------ calls

    def encode(self, fn_name: str, *args: Any) -> bytes:
        """Calldata of ``fn_name(*args)``."""
        return bytes(HexBytes(self.contract.encode_abi(fn_name, args=list(args))))

    def decode_call(self, data: bytes) -> Call | None:
        """The vault call ``data`` makes (a governance request's), or None."""
        return vault_calls().decode(data)

    @property
    def abi(self) -> Sequence[Mapping[str, Any]]:
        return abi_of(ARTIFACT)

    # ------------------------------------------------------------------ receipts and logs

    def created_requests(self, receipt: Mapping[str, Any]) -> list[CreatedRequest]:
        """The ``RequestCreated`` events of this vault in ``receipt``."""
        events = self.contract.events.RequestCreated().process_receipt(receipt, errors=DISCARD)
        return [
            CreatedRequest(
                int(e["args"]["requestId"]),
                checksum(str(e["args"]["agent"])),
                Reason(int(e["args"]["reasons"])),
            )
            for e in events
            if e["address"] == self.address
        ]

    def executed_request_ids(self, receipt: Mapping[str, Any]) -> set[int]:
        """Ids of the requests ``receipt`` executed."""
        events = self.contract.events.RequestExecuted().process_receipt(receipt, errors=DISCARD)
        return {int(e["args"]["requestId"]) for e in events if e["address"] == self.address}

    def logs(self, event: str, from_block: int, **argument_filters: Any) -> list[Any]:
        """This vault's ``event`` logs from ``from_block``, filtered on indexed arguments."""
        result: list[Any] = self.contract.events[event]().get_logs(
            from_block=from_block, argument_filters=argument_filters or None
        )
        return result
