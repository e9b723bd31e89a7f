"""AgentVault's ABI as typed Python: reads, call encoders, receipt and log decoding.

A thin wrapper over one ABI, ``IAgentVault``: a vault's five parts answer at the vault's one
address, so every function, event and error is here. It makes no policy decisions and sends
nothing (services send the encoded calls through :mod:`agentwallet.chain.tx`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD

from agentwallet.bindings.artifacts import abi_of
from agentwallet.protocol.addresses import as_checksum, checksum
from agentwallet.protocol.calls import Call, CallDecoder, canonical_type
from agentwallet.protocol.constants import ZERO_ADDRESS, AgentStatus, Reason, RequestStatus
from agentwallet.protocol.models import PolicyView
from agentwallet.protocol.requests import (
    CallRequest,
    GovernanceProposal,
    PaymentRequest,
    Request,
    request_from_event,
)
from agentwallet.protocol.typed_data import Domain

if TYPE_CHECKING:
    from agentwallet.chain import Chain

__all__ = [
    "CREATION_EVENTS",
    "LIFECYCLE_EVENTS",
    "REQUEST_CALLS",
    "AgentRecord",
    "VaultBinding",
    "event_topic",
    "vault_calls",
]

#: The vault's one ABI (the five parts' functions, events and errors), for any vault address.
ARTIFACT = "IAgentVault"
#: Events that create a request (both carry the new request's id as their first topic).
CREATION_EVENTS = ("PaymentRequested", "GovernanceProposed", "CallRequested")
#: Events that decide a request (request id as the first topic).
LIFECYCLE_EVENTS = ("RequestExecuted", "RequestRejected", "RequestCancelled", "RequestExpired")
#: What to do with a request -> (the payment request's function, the proposal's function or
#: None, the call request's function, whether the proposal's and the call request's function take
#: the call data again after the struct).
REQUEST_CALLS: dict[str, tuple[str, str | None, str, bool]] = {
    "approve": ("approvePayment", "approveProposal", "approveCall", True),
    "execute": ("executePayment", "executeProposal", "executeCall", True),
    "executeWithSignatures": (
        "executePaymentWithSignatures",
        "executeProposalWithSignatures",
        "executeCallWithSignatures",
        True,
    ),
    "reject": ("rejectPayment", "rejectProposal", "rejectCall", False),
    "expire": ("expirePayment", "expireProposal", "expireCall", False),
    "cancel": ("cancelPayment", None, "cancelCall", False),
}


@cache
def vault_calls() -> CallDecoder:
    """The decoder of AgentVault calls (governance requests' calldata)."""
    return CallDecoder(abi_of(ARTIFACT))


@cache
def event_topic(name: str) -> bytes:
    """topic0 of the vault's event ``name``."""
    entry = next(e for e in abi_of(ARTIFACT) if e.get("type") == "event" and e["name"] == name)
    types = ",".join(canonical_type(i) for i in entry["inputs"])
    return bytes(keccak(text=f"{name}({types})"))


@cache
def _codec(fn_name: str) -> tuple[bytes, tuple[str, ...]] | None:
    """(selector, argument types) of the vault function ``fn_name``; None if overloaded."""
    entries = [e for e in abi_of(ARTIFACT) if e.get("type") == "function" and e["name"] == fn_name]
    if len(entries) != 1:
        return None
    types = tuple(canonical_type(i) for i in entries[0]["inputs"])
    return bytes(keccak(text=f"{fn_name}({','.join(types)})"))[:4], types


@dataclass(frozen=True)
class AgentRecord:
    """``getAgent``: an agent key's stored settings (``parent`` the zero address for an agent
    the owners added)."""

    status: AgentStatus | int
    valid_after: int
    valid_until: int
    allowlist: bool
    open_requests: int
    lineage: int = 0
    parent: str = ZERO_ADDRESS


def _has_topic(receipt: Mapping[str, Any], events: Sequence[str]) -> bool:
    """Whether a log of ``receipt`` has the topic0 of one of ``events`` (a cheap test before
    web3 decodes the receipt against the whole ABI)."""
    wanted = {event_topic(name) for name in events}
    return any(
        log.get("topics") and bytes(HexBytes(log["topics"][0])) in wanted
        for log in receipt.get("logs", [])
    )


def _enum(kind: type[AgentStatus] | type[RequestStatus], value: Any) -> Any:
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
        status, allowlist, valid_after, valid_until, open_requests, lineage, parent = (
            self._fns.getAgent(as_checksum(agent)).call()
        )
        return AgentRecord(
            _enum(AgentStatus, status),
            int(valid_after),
            int(valid_until),
            bool(allowlist),
            int(open_requests),
            int(lineage),
            checksum(str(parent)),
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

    def payment_status(self, request: PaymentRequest) -> RequestStatus | int:
        """``paymentStatus``: the request's status now (``CLOSED`` once its slot holds a later
        request: its final status is then in its events)."""
        status: RequestStatus | int = _enum(
            RequestStatus, self._fns.paymentStatus(request.as_tuple()).call()
        )
        return status

    def proposal_status(self, proposal: GovernanceProposal) -> RequestStatus | int:
        """``proposalStatus``: the proposal's status now."""
        status: RequestStatus | int = _enum(
            RequestStatus, self._fns.proposalStatus(proposal.as_tuple()).call()
        )
        return status

    def call_status(self, request: CallRequest) -> RequestStatus | int:
        """``callStatus``: the call request's status now."""
        status: RequestStatus | int = _enum(
            RequestStatus, self._fns.callStatus(request.as_tuple()).call()
        )
        return status

    def request_status(self, request: Request) -> RequestStatus | int:
        """The status now of a request of any kind."""
        if isinstance(request, PaymentRequest):
            return self.payment_status(request)
        if isinstance(request, CallRequest):
            return self.call_status(request)
        return self.proposal_status(request)

    def has_approved(self, request_id: int, owner: str) -> bool:
        """Whether ``owner``'s on-chain approval of ``request_id`` counts now."""
        return bool(self._fns.hasApproved(request_id, as_checksum(owner)).call())

    def approval_count(self, request_id: int) -> int:
        return int(self._fns.approvalCount(request_id).call())

    def rejection_count(self, request_id: int) -> int:
        return int(self._fns.rejectionCount(request_id).call())

    def request_digest(self, request: Request) -> bytes:
        """The EIP-712 digest owners sign to approve ``request`` off-chain
        (``paymentRequestDigest`` or ``proposalDigest``)."""
        if isinstance(request, PaymentRequest):
            return bytes(self._fns.paymentRequestDigest(request.as_tuple()).call())
        if isinstance(request, CallRequest):
            return bytes(self._fns.callRequestDigest(request.as_tuple()).call())
        return bytes(self._fns.proposalDigest(request.as_tuple()).call())

    # ------------------------------------------------------------------ signed payments

    def payment_nonce_space(self) -> str:
        """The owners' payment nonce space (``paymentNonceSpace``: an address no key has)."""
        return checksum(str(self._fns.paymentNonceSpace().call()))

    def is_nonce_used(self, space: str, nonce: int) -> bool:
        return bool(self._fns.isNonceUsed(as_checksum(space), nonce).call())

    def nonce_bitmap(self, space: str, word_pos: int) -> int:
        """Permit2's ``nonceBitmap``: bit ``i`` set = nonce ``word_pos * 256 + i`` used."""
        return int(self._fns.nonceBitmap(as_checksum(space), word_pos).call())

    def signed_payment_digest(self, payment: tuple[Any, ...]) -> bytes:
        """The EIP-712 digest of a ``SignedPayment`` tuple (agent, token, to, amount, ref, nonce,
        deadline) for ``payWithSignatures``."""
        return bytes(self._fns.signedPaymentDigest(payment).call())

    # ------------------------------------------------------------------ calls

    def encode(self, fn_name: str, *args: Any) -> bytes:
        """Calldata of ``fn_name(*args)`` (selector and types looked up once per name)."""
        codec = _codec(fn_name)
        if codec is not None:
            try:
                return codec[0] + abi_encode(codec[1], args)
            except (EncodingError, TypeError, ValueError):
                pass  # web3's encoder normalises more (hex text for bytes...): let it decide
        return bytes(HexBytes(self.contract.encode_abi(fn_name, args=list(args))))

    def encode_request_call(self, action: str, request: Request, *extra: Any) -> bytes:
        """Calldata of ``action`` (a key of :data:`REQUEST_CALLS`: approve, execute,
        executeWithSignatures, reject, expire, cancel) on ``request``: the payment request's or
        the proposal's function, with the whole struct (and a proposal's call where the function
        takes it), then ``extra`` (the packed signatures)."""
        payment_fn, proposal_fn, call_fn, takes_data = REQUEST_CALLS[action]
        if isinstance(request, PaymentRequest):
            return self.encode(payment_fn, request.as_tuple(), *extra)
        if isinstance(request, CallRequest):
            data = (request.data,) if takes_data else ()
            return self.encode(call_fn, request.as_tuple(), *data, *extra)
        if proposal_fn is None:
            raise ValueError(f"a governance proposal has no {action}")
        data = (request.data,) if takes_data else ()
        return self.encode(proposal_fn, request.as_tuple(), *data, *extra)

    def decode_call(self, data: bytes) -> Call | None:
        """The vault call ``data`` makes (a governance request's), or None."""
        return vault_calls().decode(data)

    @property
    def abi(self) -> Sequence[Mapping[str, Any]]:
        return abi_of(ARTIFACT)

    # ------------------------------------------------------------------ receipts and logs

    def created_requests(self, receipt: Mapping[str, Any]) -> list[Request]:
        """The requests this vault created in ``receipt`` (``PaymentRequested``,
        ``GovernanceProposed``, ``CallRequested``), in log order."""
        if not _has_topic(receipt, CREATION_EVENTS):
            return []
        found: list[tuple[int, Request]] = []
        for name in CREATION_EVENTS:
            events = self.contract.events[name]().process_receipt(receipt, errors=DISCARD)
            found += [
                (int(e["logIndex"]), request_from_event(name, e["args"]))
                for e in events
                if e["address"] == self.address
            ]
        return [request for _, request in sorted(found, key=lambda item: item[0])]

    def executed_request_ids(self, receipt: Mapping[str, Any]) -> set[int]:
        """Ids of the requests ``receipt`` executed."""
        if not _has_topic(receipt, ("RequestExecuted",)):
            return set()
        events = self.contract.events.RequestExecuted().process_receipt(receipt, errors=DISCARD)
        return {int(e["args"]["requestId"]) for e in events if e["address"] == self.address}

    def decode_log(self, log: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
        """(event name, arguments) of one of this vault's raw logs, or None if it is none of
        the vault's events."""
        topics = log.get("topics") or []
        if not topics:
            return None
        topic0 = bytes(HexBytes(topics[0]))
        for item in self.abi:
            if item.get("type") == "event" and event_topic(str(item["name"])) == topic0:
                name = str(item["name"])
                decoded = self.contract.events[name]().process_log(log)
                return name, decoded["args"]
        return None

    def logs(self, event: str, from_block: int, **argument_filters: Any) -> list[Any]:
        """This vault's ``event`` logs from ``from_block``, filtered on indexed arguments."""
        result: list[Any] = self.contract.events[event]().get_logs(
            from_block=from_block, argument_filters=argument_filters or None
        )
        return result
