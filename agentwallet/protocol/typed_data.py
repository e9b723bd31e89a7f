"""EIP-712 messages owners sign: the vault's domain, ``Request`` and ``SignedPayment``.

The type tables mirror ``REQUEST_TYPEHASH`` and ``SIGNED_PAYMENT_TYPEHASH`` in AgentVault; the
messages are full ``eth_signTypedData_v4`` documents (types, primaryType, domain, message), so
external wallets sign exactly what is shown. Hashing is eth-account's ``encode_typed_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.crypto import keccak

__all__ = [
    "DOMAIN_FIELDS",
    "REQUEST_FIELDS",
    "SIGNED_PAYMENT_FIELDS",
    "Domain",
    "digest",
    "payment_message",
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
REQUEST_FIELDS: Fields = [
    ("requestId", "uint256"),
    ("kind", "uint8"),
    ("agent", "address"),
    ("token", "address"),
    ("to", "address"),
    ("amount", "uint256"),
    ("ref", "bytes32"),
    ("dataHash", "bytes32"),
    ("expiresAt", "uint256"),
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


def request_message(
    domain: Domain,
    request_id: int,
    *,
    kind: int,
    agent: str,
    token: str,
    to: str,
    amount: int,
    ref: bytes,
    data: bytes,
    expires_at: int,
) -> dict[str, Any]:
    """The ``Request`` owners sign to approve ``request_id`` off-chain (the call data enters
    as its keccak)."""
    return typed_message(
        domain,
        "Request",
        REQUEST_FIELDS,
        {
            "requestId": request_id,
            "kind": int(kind),
            "agent": agent,
            "token": token,
            "to": to,
            "amount": int(amount),
            "ref": bytes(ref),
            "dataHash": keccak(bytes(data)),
            "expiresAt": int(expires_at),
        },
    )


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
