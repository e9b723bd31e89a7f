"""Owners' signatures: approve a request or sign a payment off-chain (EIP-712), and submit the
threshold's worth of them in one transaction.

Signing checks the locally built digest against the vault's own (``paymentRequestDigest``,
``proposalDigest``, ``signedPaymentDigest``) and refuses on a mismatch; submitting picks the
current owners' signatures the vault will read and checks each is by its claimed signer, before
anything is sent. A signed payment's nonce is an unused nonce of the owners' payment space,
derived from the payment (:mod:`agentwallet.protocol.nonces`). :class:`~agentwallet.vault.Vault`
exposes these as methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from eth_account.messages import encode_typed_data
from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes

from agentwallet import request_log
from agentwallet.errors import AgentWalletError, ContractRevertError, SignatureMismatchError
from agentwallet.protocol import nonces, signatures, typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import ZERO_ADDRESS
from agentwallet.protocol.models import (
    SignedApproval,
    SignedGovernance,
    SignedPayment,
    TxResult,
)
from agentwallet.protocol.refs import to_ref

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = [
    "execute_with_signatures",
    "pay_with_signatures",
    "payment_nonce",
    "payment_typed_data",
    "request_typed_data",
    "sign",
    "sign_payment",
    "sign_typed",
    "signed_from_wallet",
]

#: Any owner's signature the vault takes, portable as JSON.
Signed = SignedApproval | SignedPayment | SignedGovernance
_REQUEST_TYPES = ("PaymentRequest", "GovernanceProposal", "CallRequest")


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
    """The full EIP-712 message owners sign to approve ``request_id`` off-chain: the
    ``PaymentRequest`` or the ``GovernanceProposal`` (with its call), whole."""
    request = request_log.find(vault, request_id).request
    return typed_data.request_message(vault.bindings.eip712_domain(), request)


def sign(vault: Vault, signer: BaseAccount, request_id: int) -> SignedApproval:
    """An off-chain approval of ``request_id`` by ``signer``."""
    request = request_log.find(vault, request_id).request
    onchain = vault.bindings.request_digest(request)
    signature = sign_typed(signer, request_typed_data(vault, request_id), onchain)
    return SignedApproval(
        vault.address, vault.chain.chain_id, request_id, checksum(str(signer.address)), signature
    )


def execute_with_signatures(
    vault: Vault, sender: BaseAccount, request_id: int, approvals: Sequence[SignedApproval]
) -> TxResult:
    """Execute ``request_id`` with off-chain approvals (any ``sender`` may submit them):
    ``executePaymentWithSignatures``, ``executeProposalWithSignatures`` or
    ``executeCallWithSignatures``. Owners whose on-chain approval of the request counts fill the
    gap as ``v == 1`` entries, so one owner may approve on-chain and another sign."""
    for a in approvals:
        if (a.vault, a.chain_id, a.request_id) != (vault.address, vault.chain.chain_id, request_id):
            raise AgentWalletError(
                f"approval by {a.signer} is for vault {a.vault} chain {a.chain_id} request "
                f"{a.request_id}, not vault {vault.address} chain {vault.chain.chain_id} "
                f"request {request_id}"
            )
    request = request_log.find(vault, request_id).request
    owners, threshold = vault.owners(), vault.threshold()
    # owners whose on-chain approval counts stand in as v == 1 entries: owners may mix
    on_chain = [o for o in owners if vault.bindings.has_approved(request_id, o)][:threshold]
    chosen = signatures.choose_mixed(on_chain, approvals, owners, threshold)
    signatures.verify_claimed(vault.bindings.request_digest(request), chosen)
    packed = signatures.pack_mixed(on_chain, chosen)
    receipt = vault.request_call(sender, "executeWithSignatures", request_id, packed)
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


def payment_nonce(
    vault: Vault, agent: str, token: str, to: str, amount: int, ref: bytes, deadline: int
) -> int:
    """An unused nonce of the owners' payment space for this payment: derived from the payment,
    so owners who sign it independently agree, and different payments signed in parallel do not
    collide (:mod:`agentwallet.protocol.nonces`)."""
    space = vault.bindings.payment_nonce_space()
    seed = nonces.payment_seed(agent, token, to, amount, ref, deadline)
    return nonces.pick_nonce(lambda word: vault.bindings.nonce_bitmap(space, word), seed)


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
    nonce: int | None = None,
) -> SignedPayment:
    """An owner's signature of a payment that runs at once with the threshold's signatures
    (``payWithSignatures``), no stored request. ``deadline`` defaults to one hour from the
    chain's time; ``nonce`` to :func:`payment_nonce`."""
    if amount <= 0:
        raise AgentWalletError(f"amount must be positive, got {amount}")
    tok = vault.token(token)
    to_address = checksum(to, "recipient address")
    agent_address = checksum(agent, "agent address")
    raw_ref = to_ref(ref)
    deadline = vault.chain.timestamp() + 3600 if deadline is None else int(deadline)
    if nonce is None:
        nonce = payment_nonce(
            vault, agent_address, tok.address, to_address, amount, raw_ref, deadline
        )
    payment = (agent_address, tok.address, to_address, amount, raw_ref, nonce, deadline)
    message = payment_typed_data(vault, *payment)
    onchain = vault.bindings.signed_payment_digest(payment)
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


class SignedSet(Protocol):
    """A signed payment or governance batch: one message, a nonce, a deadline, a signer."""

    @property
    def vault(self) -> str: ...
    @property
    def chain_id(self) -> int: ...
    @property
    def nonce(self) -> int: ...
    @property
    def deadline(self) -> int: ...
    @property
    def signer(self) -> str: ...
    @property
    def signature(self) -> str: ...
    @property
    def contract(self) -> bool: ...
    def message(self) -> tuple[Any, ...]: ...


_S = TypeVar("_S", bound=SignedSet)


def checked_set(
    vault: Vault,
    signed: Sequence[_S],
    *,
    what: str,
    fields: str,
    space: str,
    used: str,
    how: str,
) -> list[_S]:
    """The threshold's worth of ``signed`` the vault will read, after the checks made before
    anything is sent: all sign the same ``what`` (its ``message()``) for this vault and chain,
    by current owners, with a nonce of ``space`` not used yet (``used`` says why, with
    ``{nonce}``), before the deadline."""
    if not signed:
        raise AgentWalletError(f"no signatures: collect them with {how}")
    first = signed[0]
    for s in signed:
        if s.message() != first.message():
            raise AgentWalletError(
                f"signature by {s.signer} is for a different {what} than {first.signer}'s: "
                f"every owner must sign the same vault, chain, {fields}, nonce and deadline"
            )
    if (first.vault, first.chain_id) != (vault.address, vault.chain.chain_id):
        raise AgentWalletError(
            f"signatures are for vault {first.vault} on chain {first.chain_id}, not "
            f"{vault.address} on chain {vault.chain.chain_id}"
        )
    chosen = signatures.select_current_signers(signed, vault.owners(), vault.threshold())
    if vault.bindings.is_nonce_used(space, first.nonce):
        raise ContractRevertError.from_error(
            "NonceAlreadyUsed",
            {"space": space, "nonce": first.nonce},
            message=used.format(nonce=first.nonce) + "; ask the owners to sign again",
        )
    now = vault.chain.timestamp()
    if now > first.deadline:
        raise AgentWalletError(
            f"signatures expired at {first.deadline} (chain time {now}): "
            "ask the owners to sign again"
        )
    return chosen


def pay_with_signatures(
    vault: Vault, sender: BaseAccount, signed: Sequence[SignedPayment]
) -> TxResult:
    """Submit owners' signatures of one payment. All must sign the same payment, for this vault
    and chain, with a nonce not used yet, before the deadline; each ECDSA signature must be by
    its claimed signer."""
    chosen = checked_set(
        vault,
        signed,
        what="payment",
        fields="agent, token, recipient, amount, ref",
        space=vault.bindings.payment_nonce_space(),
        used="signed-payment nonce {nonce} is already used: this payment ran already, or an "
        "owner cancelled it",
        how="Vault.sign_payment",
    )
    first = signed[0]
    raw_ref = bytes(HexBytes(first.ref))
    payment = (
        first.agent,
        first.token,
        first.to,
        first.amount,
        raw_ref,
        first.nonce,
        first.deadline,
    )
    signatures.verify_claimed(vault.bindings.signed_payment_digest(payment), chosen)
    receipt = vault._send(sender, "payWithSignatures", payment, signatures.packed(chosen))
    return TxResult.from_receipt(receipt)


# ------------------------------------------------------------------------------ any wallet


def signed_from_wallet(vault: Vault, typed: dict[str, Any], signer: str, signature: str) -> Signed:
    """An owner's signature made by any wallet over ``typed`` (the ``eth_signTypedData_v4``
    JSON of :func:`agentwallet.protocol.typed_data.wallet_json`: a request approval, a signed
    payment or a governance batch), as the portable object the vault's submit methods take.
    ``signature`` is the wallet's raw 0x hex; an owner with code at ``signer`` (a Safe, any
    ERC-1271 contract) is marked ``contract`` and its bytes go to its ``isValidSignature``.
    Raises :class:`AgentWalletError` for JSON of another vault, chain or kind."""
    try:
        domain, message, primary = typed["domain"], typed["message"], str(typed["primaryType"])
        verifying, chain_id = checksum(domain["verifyingContract"]), int(domain["chainId"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AgentWalletError(
            f"not eth_signTypedData_v4 JSON ({exc}): expected types, domain, primaryType and "
            "message, as `agentwallet typed-data` writes"
        ) from None
    if (verifying, chain_id) != (vault.address, vault.chain.chain_id):
        raise AgentWalletError(
            f"the typed data is for vault {verifying} on chain {chain_id}, not "
            f"{vault.address} on chain {vault.chain.chain_id}"
        )
    who = checksum(signer, "signer address")
    try:
        raw = HexBytes(signature).to_0x_hex()
    except ValueError:
        raise AgentWalletError(
            f"signature {signature!r} by {who} is not 0x hex: pass the wallet's output as is"
        ) from None
    contract = bool(vault.chain.code(who))
    common = {"vault": vault.address, "chain_id": chain_id, "signer": who, "signature": raw}
    if primary in _REQUEST_TYPES:
        request_id = int(message["id"])
        return SignedApproval(vault.address, chain_id, request_id, who, raw, contract)
    if primary == "SignedPayment":
        return dataclasses.replace(
            SignedPayment.from_json({**message, **common}), contract=contract
        )
    if primary == "Governance":
        return dataclasses.replace(
            SignedGovernance.from_json({**message, **common}), contract=contract
        )
    raise AgentWalletError(
        f"primaryType {primary!r} is not something owners sign: expected one of "
        f"{', '.join((*_REQUEST_TYPES, 'SignedPayment', 'Governance'))}"
    )
