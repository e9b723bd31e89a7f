"""Owners' signatures: approve a request or sign a payment off-chain (EIP-712), and submit the
threshold's worth of them in one transaction.

Signing checks the locally built digest against the vault's own (``requestDigest``,
``signedPaymentDigest``) and refuses on a mismatch; submitting picks the current owners'
signatures the vault will read and checks each is by its claimed signer, before anything is
sent. :class:`~agentwallet.vault.Vault` exposes these as methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data
from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes

from agentwallet import views
from agentwallet.errors import AgentWalletError, SignatureMismatchError
from agentwallet.protocol import signatures, typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import ZERO_ADDRESS
from agentwallet.protocol.models import SignedApproval, SignedPayment, TxResult
from agentwallet.protocol.refs import to_ref

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = [
    "execute_with_signatures",
    "pay_with_signatures",
    "payment_typed_data",
    "request_typed_data",
    "sign",
    "sign_payment",
    "sign_typed",
]


def sign_typed(signer: BaseAccount, message: dict[str, Any], onchain: bytes) -> str:
    """Sign the EIP-712 ``message`` after checking its digest equals the vault's ``onchain``
    one; return the signature as 0x hex."""
    local = typed_data.digest(message)
    if local != bytes(onchain):
        raise SignatureMismatchError(
            f"local EIP-712 digest 0x{local.hex()} differs from the vault's "
            f"0x{bytes(onchain).hex()}: refusing to sign"
        )
    signed = signer.sign_message(encode_typed_data(full_message=message))
    return HexBytes(signed.signature).to_0x_hex()


# ------------------------------------------------------------------------------ requests


def request_typed_data(vault: Vault, request_id: int) -> dict[str, Any]:
    """The full EIP-712 message owners sign to approve ``request_id`` off-chain."""
    r = views.stored_request(vault, request_id)
    return typed_data.request_message(
        vault.bindings.eip712_domain(),
        request_id,
        kind=r.kind,
        agent=r.agent,
        token=r.token,
        to=r.to,
        amount=r.amount,
        ref=r.ref,
        data=r.data,
        expires_at=r.expires_at,
    )


def sign(vault: Vault, signer: BaseAccount, request_id: int) -> SignedApproval:
    """An off-chain approval of ``request_id`` by ``signer``."""
    onchain = vault.bindings.request_digest(request_id)
    signature = sign_typed(signer, request_typed_data(vault, request_id), onchain)
    return SignedApproval(
        vault.address, vault.chain.chain_id, request_id, checksum(str(signer.address)), signature
    )


def execute_with_signatures(
    vault: Vault, sender: BaseAccount, request_id: int, approvals: Sequence[SignedApproval]
) -> TxResult:
    """Execute ``request_id`` with off-chain approvals (any ``sender`` may submit them)."""
    for a in approvals:
        if (a.vault, a.chain_id, a.request_id) != (vault.address, vault.chain.chain_id, request_id):
            raise AgentWalletError(
                f"approval by {a.signer} is for vault {a.vault} chain {a.chain_id} request "
                f"{a.request_id}, not vault {vault.address} chain {vault.chain.chain_id} "
                f"request {request_id}"
            )
    chosen = signatures.select_current_signers(approvals, vault.owners(), vault.threshold())
    signatures.verify_claimed(vault.bindings.request_digest(request_id), chosen)
    receipt = vault._send(sender, "executeWithSignatures", request_id, signatures.packed(chosen))
    return TxResult.from_receipt(receipt)


# ------------------------------------------------------------------------------ payments


def payment_typed_data(
    vault: Vault,
    agent: str,
    token: str,
    to: str,
    amount: int,
    ref: bytes,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The full EIP-712 ``SignedPayment`` message owners sign for ``payWithSignatures``."""
    domain = vault.bindings.eip712_domain()
    return typed_data.payment_message(domain, agent, token, to, amount, ref, nonce, deadline)


def sign_payment(
    vault: Vault,
    signer: BaseAccount,
    to: str,
    amount: int,
    token: str | None = None,
    *,
    agent: str = ZERO_ADDRESS,
    ref: str | bytes | None = None,
    deadline: int | None = None,
) -> SignedPayment:
    """An owner's signature of a payment that runs at once with the threshold's signatures
    (``payWithSignatures``), no stored request. ``deadline`` defaults to one hour from the
    chain's time; the nonce is the vault's current one."""
    if amount <= 0:
        raise AgentWalletError(f"amount must be positive, got {amount}")
    tok = vault.token(token)
    to_address = checksum(to, "recipient address")
    agent_address = checksum(agent, "agent address")
    raw_ref = to_ref(ref)
    deadline = vault.chain.timestamp() + 3600 if deadline is None else int(deadline)
    nonce = vault.bindings.signed_payment_nonce()
    message = payment_typed_data(
        vault, agent_address, tok.address, to_address, amount, raw_ref, nonce, deadline
    )
    onchain = vault.bindings.signed_payment_digest(
        agent_address, tok.address, to_address, amount, raw_ref, deadline
    )
    return SignedPayment(
        vault.address,
        vault.chain.chain_id,
        agent_address,
        tok.address,
        to_address,
        amount,
        HexBytes(raw_ref).to_0x_hex(),
        nonce,
        deadline,
        checksum(str(signer.address)),
        sign_typed(signer, message, onchain),
    )


def pay_with_signatures(
    vault: Vault, sender: BaseAccount, signed: Sequence[SignedPayment]
) -> TxResult:
    """Submit owners' signatures of one payment. All must sign the same payment, for this vault
    and chain, at the vault's current nonce, before the deadline; each ECDSA signature must be
    by its claimed signer."""
    if not signed:
        raise AgentWalletError("no signatures: collect them with Vault.sign_payment")
    first = signed[0]
    for s in signed:
        if s.payment() != first.payment():
            raise AgentWalletError(
                f"signature by {s.signer} is for a different payment than {first.signer}'s: "
                "every owner must sign the same vault, chain, agent, token, recipient, "
                "amount, ref, nonce and deadline"
            )
    if (first.vault, first.chain_id) != (vault.address, vault.chain.chain_id):
        raise AgentWalletError(
            f"signatures are for vault {first.vault} on chain {first.chain_id}, not "
            f"{vault.address} on chain {vault.chain.chain_id}"
        )
    chosen = signatures.select_current_signers(signed, vault.owners(), vault.threshold())
    nonce = vault.bindings.signed_payment_nonce()
    if first.nonce != nonce:
        raise AgentWalletError(
            f"signatures are for signed-payment nonce {first.nonce} but the vault is at "
            f"{nonce}: {'another signed payment ran since; ' if first.nonce < nonce else ''}"
            "ask the owners to sign again"
        )
    now = vault.chain.timestamp()
    if now > first.deadline:
        raise AgentWalletError(
            f"signatures expired at {first.deadline} (chain time {now}): "
            "ask the owners to sign again"
        )
    raw_ref = bytes(HexBytes(first.ref))
    digest = vault.bindings.signed_payment_digest(
        first.agent, first.token, first.to, first.amount, raw_ref, first.deadline
    )
    signatures.verify_claimed(digest, chosen)
    receipt = vault._send(
        sender,
        "payWithSignatures",
        first.agent,
        first.token,
        first.to,
        first.amount,
        raw_ref,
        first.deadline,
        signatures.packed(chosen),
    )
    return TxResult.from_receipt(receipt)
