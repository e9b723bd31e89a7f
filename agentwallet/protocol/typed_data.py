"""EIP-712 messages owners sign: the vault's domain, ``PaymentRequest``, ``GovernanceProposal``
and ``SignedPayment``.

The type tables mirror the typehashes in ``contracts/base/AgentVaultStorage.sol``; the messages
are full ``eth_signTypedData_v4`` documents (types, primaryType, domain, message), so external
wallets sign exactly what is shown. Hashing is eth-account's ``encode_typed_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data

from agentwallet.protocol.requests import CallRequest, GovernanceProposal, PaymentRequest, Request

__all__ = [
    "DOMAIN_FIELDS",
    "CALL_REQUEST_FIELDS",
    "GOVERNANCE_FIELDS",
    "GOVERNANCE_PROPOSAL_FIELDS",
    "INTENT_FIELDS",
    "ROTATE_KEY_FIELDS",
    "call_request_message",
    "governance_message",
    "intent_message",
    "rotation_message",
    "wallet_json",
    "PAYMENT_REQUEST_FIELDS",
    "SIGNED_PAYMENT_FIELDS",
    "Domain",
    "digest",
    "payment_message",
    "payment_request_message",
    "proposal_message",
    "request_message",
    "typed_message",
]

Fields = list[tuple[str, str]]

DOMAIN_FIELDS: Fields = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
]
PAYMENT_REQUEST_FIELDS: Fields = [
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
]
GOVERNANCE_PROPOSAL_FIELDS: Fields = [
    ("id", "uint256"),
    ("proposer", "address"),
    ("data", "bytes"),
    ("ref", "bytes32"),
    ("expiresAt", "uint40"),
]
CALL_REQUEST_FIELDS: Fields = [
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
#: A batch of governance calls the owners sign for ``executeGovernance``.
GOVERNANCE_FIELDS: Fields = [("calls", "bytes[]"), ("nonce", "uint256"), ("deadline", "uint256")]
#: A payment an agent signs for anyone to submit (``payWithIntent``, ``redeemDelegations``).
INTENT_FIELDS: Fields = [
    ("token", "address"),
    ("to", "address"),
    ("amount", "uint256"),
    ("ref", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
    ("maxFee", "uint256"),
]
#: What both of an agent's keys sign to move its rights to the new key (``rotateAgentKey``).
ROTATE_KEY_FIELDS: Fields = [
    ("oldKey", "address"),
    ("newKey", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]
SIGNED_PAYMENT_FIELDS: Fields = [
    ("agent", "address"),
    ("token", "address"),
    ("to", "address"),
    ("amount", "uint256"),
    ("ref", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]


@dataclass(frozen=True)
class Domain:
    """A vault's EIP-712 domain (``eip712Domain``)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str


def typed_message(
    domain: Domain, primary: str, fields: Fields, message: dict[str, Any]
) -> dict[str, Any]:
    """A full EIP-712 document of type ``primary`` in ``domain``."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
            primary: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary,
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": message,
    }


def payment_request_message(domain: Domain, request: PaymentRequest) -> dict[str, Any]:
    """The ``PaymentRequest`` owners sign to approve an agent's payment request off-chain."""
    names = [name for name, _ in PAYMENT_REQUEST_FIELDS]
    values = list(request.as_tuple())
    return typed_message(
        domain,
        "PaymentRequest",
        PAYMENT_REQUEST_FIELDS,
        dict(zip(names, values, strict=True)),
    )


def proposal_message(domain: Domain, proposal: GovernanceProposal) -> dict[str, Any]:
    """The ``GovernanceProposal`` owners sign to approve a proposal off-chain (the call itself,
    not its hash: a wallet shows what is signed)."""
    message = {
        "id": proposal.id,
        "proposer": proposal.proposer,
        "data": bytes(proposal.data),
        "ref": bytes(proposal.ref),
        "expiresAt": proposal.expires_at,
    }
    return typed_message(domain, "GovernanceProposal", GOVERNANCE_PROPOSAL_FIELDS, message)


def call_request_message(domain: Domain, request: CallRequest) -> dict[str, Any]:
    """The ``CallRequest`` owners sign to approve an agent's scoped call off-chain (the call data
    itself, not its hash)."""
    message = {
        "id": request.id,
        "agent": request.agent,
        "lineage": request.lineage,
        "slot": request.slot,
        "target": request.target,
        "value": request.value,
        "data": bytes(request.data),
        "spendToken": request.spend_token,
        "spendAmount": request.spend_amount,
        "ref": bytes(request.ref),
        "reasons": int(request.reasons),
        "expiresAt": request.expires_at,
    }
    return typed_message(domain, "CallRequest", CALL_REQUEST_FIELDS, message)


def request_message(domain: Domain, request: Request) -> dict[str, Any]:
    """The message owners sign to approve ``request`` off-chain, of any kind."""
    if isinstance(request, PaymentRequest):
        return payment_request_message(domain, request)
    if isinstance(request, CallRequest):
        return call_request_message(domain, request)
    return proposal_message(domain, request)


def payment_message(
    domain: Domain,
    agent: str,
    token: str,
    to: str,
    amount: int,
    ref: bytes,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The ``SignedPayment`` owners sign for ``payWithSignatures``."""
    return typed_message(
        domain,
        "SignedPayment",
        SIGNED_PAYMENT_FIELDS,
        {
            "agent": agent,
            "token": token,
            "to": to,
            "amount": int(amount),
            "ref": bytes(ref),
            "nonce": int(nonce),
            "deadline": int(deadline),
        },
    )


def digest(message: dict[str, Any]) -> bytes:
    """The EIP-712 digest of a full message (what an ECDSA signature signs)."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=message)))


def governance_message(
    domain: Domain, calls: list[bytes], nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``Governance`` batch owners sign for ``executeGovernance`` (the calls themselves)."""
    return typed_message(
        domain,
        "Governance",
        GOVERNANCE_FIELDS,
        {"calls": [bytes(c) for c in calls], "nonce": nonce, "deadline": deadline},
    )


def intent_message(
    domain: Domain,
    token: str,
    to: str,
    amount: int,
    ref: bytes,
    nonce: int,
    deadline: int,
    max_fee: int = 0,
) -> dict[str, Any]:
    """The ``Intent`` an agent signs for a relayer to submit (``payWithIntent``)."""
    return typed_message(
        domain,
        "Intent",
        INTENT_FIELDS,
        {
            "token": token,
            "to": to,
            "amount": amount,
            "ref": bytes(ref),
            "nonce": nonce,
            "deadline": deadline,
            "maxFee": max_fee,
        },
    )


def rotation_message(
    domain: Domain, old_key: str, new_key: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The ``RotateKey`` both keys sign for ``rotateAgentKey``."""
    return typed_message(
        domain,
        "RotateKey",
        ROTATE_KEY_FIELDS,
        {"oldKey": old_key, "newKey": new_key, "nonce": nonce, "deadline": deadline},
    )


def wallet_json(typed: dict[str, Any]) -> dict[str, Any]:
    """``typed`` as standard ``eth_signTypedData_v4`` JSON, what any wallet takes (MetaMask and
    other browser wallets, hardware wallets, ``cast wallet sign --data``, a Safe's message flow):
    bytes as ``0x`` hex strings, integers as decimal strings (the domain's ``chainId`` stays a
    number), addresses checksummed. ``eth_account.messages.encode_typed_data(full_message=...)``
    gives the same digest for both forms."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return "0x" + bytes(value).hex()
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return str(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    domain = dict(typed["domain"])
    return {
        "types": typed["types"],
        "primaryType": typed["primaryType"],
        "domain": {**plain(domain), "chainId": int(domain["chainId"])},
        "message": plain(typed["message"]),
    }
