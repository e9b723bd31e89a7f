"""Agent-signed intents and key rotations: sign, check before spending gas, submit, read back.

An intent is a payment the agent signs (EIP-712 ``Intent`` in the vault's domain) and anyone
submits (``payWithIntent``; an ERC-7710 permission context for ``redeemDelegations``): the
agent needs no gas. Nonces are unordered (one bitmap per agent key, Permit2's
``SignatureTransfer``): many intents in flight, any order, each at most once.

Exactly once (docs/sdk.md, "Exactly once"): by default an intent takes the first free nonce of
the lowest bitmap word that has one, starting at a bit derived from its ref (:func:`ref_seed`):
a warm word, so a relayed payment stays at its measured gas. Two machines signing the same ref
before either is mined pick the same nonce, so at most one runs; once one is mined, the
caller's log lookup (made after reading the bitmap) finds it. ``exactly_once=True`` uses the
nonce derived from the ref itself (:func:`ref_nonce`): no intent with that ref can ever run
twice, whoever signs or submits it, at the cost of a fresh bitmap word (about 17,000 gas).

:func:`check_intent` is what a relayer (``agentwallet relay``) runs before spending gas; it
raises :class:`~agentwallet.errors.IntentRefusedError` with a machine-readable code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.base import BaseAccount
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.types import TxReceipt

from agentwallet import request_log
from agentwallet.errors import (
    AgentWalletError,
    ContractRevertError,
    InsufficientGasError,
    IntentRefusedError,
)
from agentwallet.protocol import nonces, typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import AgentStatus
from agentwallet.protocol.models import (
    Escalated,
    Paid,
    PaymentOutcome,
    SignedIntent,
    SignedRotation,
    TokenInfo,
    TxResult,
)
from agentwallet.protocol.refs import ref_text
from agentwallet.signing import sign_typed

if TYPE_CHECKING:
    from agentwallet.vault import Vault

__all__ = [
    "DEFAULT_DEADLINE",
    "check_intent",
    "check_rotation",
    "intent_outcome",
    "invalidate_nonces",
    "ref_nonce",
    "ref_seed",
    "sign_intent",
    "sign_rotation",
    "submit_intent",
    "submit_rotation",
]

#: Seconds an intent or a rotation stays valid by default.
DEFAULT_DEADLINE = 3600
_REF_NONCE_TAG = b"agentwallet.intent-ref:"


def ref_nonce(ref: bytes) -> int:
    """The intent nonce a ref maps to: ``keccak256("agentwallet.intent-ref:" || ref)``. Every
    intent with this ref, signed anywhere, takes this one nonce of the agent key's space, so at
    most one of them ever executes (a fresh bitmap word per ref: measured in docs/sdk.md)."""
    return int.from_bytes(keccak(_REF_NONCE_TAG + bytes(ref)), "big")


def ref_seed(ref: bytes) -> int:
    """The bit (0..255) a ref's default intent nonce search starts at."""
    return ref_nonce(ref) & 0xFF


def _free_nonce(vault: Vault, space: str, seed: int) -> int:
    return nonces.pick_nonce(lambda word: vault.bindings.nonce_bitmap(space, word), seed)


def _recover(message: dict[str, Any], signature: str) -> str:
    try:
        signer = Account.recover_message(
            encode_typed_data(full_message=message), signature=bytes(HexBytes(signature))
        )
    except Exception:  # noqa: BLE001 - any malformed signature is "does not recover"
        return ""
    return checksum(str(signer))


# ------------------------------------------------------------------------------ intents


def intent_typed_data(vault: Vault, signed: SignedIntent) -> dict[str, Any]:
    """The EIP-712 ``Intent`` of ``signed`` in ``vault``'s domain (as the vault checks it)."""
    token, to, amount, ref, nonce, deadline, max_fee = signed.intent()
    domain = vault.bindings.eip712_domain()
    return typed_data.intent_message(domain, token, to, amount, ref, nonce, deadline, max_fee)


def sign_intent(
    vault: Vault,
    signer: BaseAccount,
    to: str,
    amount: int,
    token: TokenInfo,
    ref: bytes,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
    max_fee: int = 0,
    exactly_once: bool = False,
) -> SignedIntent:
    """The agent ``signer``'s signature of a payment anyone may submit. ``nonce`` defaults to
    the first free one from :func:`ref_seed` (or :func:`ref_nonce` with ``exactly_once``);
    ``deadline`` to
    :data:`DEFAULT_DEADLINE` seconds from the chain's time. The local digest is checked against
    the vault's ``intentDigest`` before signing."""
    if isinstance(max_fee, bool) or not isinstance(max_fee, int) or max_fee < 0:
        raise AgentWalletError(f"max_fee must be an int >= 0 in base units, got {max_fee!r}")
    agent = checksum(str(signer.address))
    if nonce is None:
        nonce = ref_nonce(ref) if exactly_once else _free_nonce(vault, agent, ref_seed(ref))
    if deadline is None:
        deadline = vault.chain.timestamp() + DEFAULT_DEADLINE
    unsigned = SignedIntent(
        vault.address,
        vault.chain.chain_id,
        agent,
        token.address,
        checksum(to, "recipient address"),
        amount,
        HexBytes(ref).to_0x_hex(),
        int(nonce),
        int(deadline),
        max_fee,
        "0x" + "00" * 65,
    )
    message = intent_typed_data(vault, unsigned)
    onchain = bytes(vault.bindings.contract.functions.intentDigest(unsigned.intent()).call())
    signature = sign_typed(signer, message, onchain)
    return SignedIntent.from_json({**json.loads(unsigned.to_json()), "signature": signature})


def _refuse(code: str, message: str, status: int = 400) -> IntentRefusedError:
    return IntentRefusedError(message, code, status)


def check_intent(vault: Vault, signed: SignedIntent, fee: int, submitter: str) -> dict[str, Any]:
    """Everything a submitter checks before spending gas; returns the unsigned transaction (no
    nonce) that submits ``signed`` with ``fee`` from ``submitter``. Raises
    :class:`IntentRefusedError`: ``wrong_vault`` / ``wrong_chain``, ``expired``, ``bad_fee`` /
    ``fee_too_high``, ``bad_signature`` (it does not recover to the agent it names: a field
    was changed after signing, or it was signed for another vault or chain), ``not_agent`` (the
    key is not an active agent: revoked, rotated, paused), ``nonce_used`` (replayed or
    cancelled), ``refused`` (the vault would revert: the contract's error is in the message),
    ``relayer_gas`` (the submitter cannot pay for gas)."""
    if checksum(signed.vault) != vault.address:
        raise _refuse("wrong_vault", f"intent is for vault {signed.vault}, not {vault.address}")
    if signed.chain_id != vault.chain.chain_id:
        raise _refuse(
            "wrong_chain", f"intent is for chain {signed.chain_id}, not {vault.chain.chain_id}"
        )
    now = vault.chain.timestamp()
    if signed.deadline <= now:
        raise _refuse(
            "expired", f"intent expired at {signed.deadline} (chain time {now}): sign a new one"
        )
    if fee < 0:
        raise _refuse("bad_fee", f"fee must be >= 0, got {fee}")
    if fee > signed.max_fee:
        raise _refuse("fee_too_high", f"fee {fee} is above the intent's maxFee {signed.max_fee}")
    recovered = _recover(intent_typed_data(vault, signed), signed.signature)
    if recovered != signed.agent:
        raise _refuse(
            "bad_signature",
            f"the signature recovers to {recovered or 'nothing'}, not agent {signed.agent}: the "
            "intent was changed after signing, or signed for another vault or chain",
        )
    status = vault.bindings.agent(signed.agent).status
    if status != AgentStatus.ACTIVE:
        name = status.name.lower() if isinstance(status, AgentStatus) else str(status)
        raise _refuse(
            "not_agent",
            f"{signed.agent} is not an active agent of vault {vault.address} (status {name})",
            403,
        )
    if vault.bindings.is_nonce_used(signed.agent, signed.nonce):
        raise _refuse(
            "nonce_used",
            f"nonce {signed.nonce} of agent {signed.agent} is used: this intent (ref "
            f"{ref_text(bytes(HexBytes(signed.ref)))!r}) ran already or was cancelled",
            409,
        )
    r, vs = signed.compact()
    data = vault.bindings.encode("payWithIntent", signed.intent(), fee, r, vs)
    try:
        return vault.chain.transactor.prepare(
            submitter, vault.address, data, format_amount=vault._fmt
        )
    except InsufficientGasError as exc:
        raise _refuse("relayer_gas", f"the submitter cannot pay for gas: {exc}", 503) from None
    except ContractRevertError as exc:
        code = "nonce_used" if exc.error_name == "NonceAlreadyUsed" else "refused"
        raise _refuse(code, f"the vault would refuse this intent: {exc}", 422) from exc


def submit_intent(
    vault: Vault, sender: BaseAccount, signed: SignedIntent, fee: int = 0
) -> PaymentOutcome:
    """Check (:func:`check_intent`) and submit ``signed`` from ``sender``, who takes ``fee``;
    wait and return what happened (:class:`Paid` or :class:`Escalated`)."""
    transactor = vault.chain.transactor
    with transactor.exclusive():
        tx = check_intent(vault, signed, fee, str(sender.address))
        tx_hash = transactor.sign_and_broadcast(sender, tx)
    return intent_outcome(vault, transactor.wait(tx_hash), signed)


def intent_outcome(vault: Vault, receipt: TxReceipt, signed: SignedIntent) -> PaymentOutcome:
    """The :class:`Paid` / :class:`Escalated` of a mined ``payWithIntent`` of ``signed``."""
    return outcome(vault, receipt, vault.token(signed.token), signed.to, signed.amount,
                   bytes(HexBytes(signed.ref)))  # fmt: skip


def outcome(
    vault: Vault, receipt: TxReceipt, info: TokenInfo, to: str, amount: int, ref: bytes
) -> PaymentOutcome:
    """A mined payment's result: :class:`Escalated` if it created a request, else
    :class:`Paid` (the caller checked the status)."""
    tx = TxResult.from_receipt(receipt)
    created = vault.bindings.created_requests(receipt)
    request_log.remember(vault, created, receipt)
    for request in created:
        return Escalated(
            tx.tx_hash,
            tx.gas_used,
            request.id,
            request.reasons.texts,
            info,
            to,
            amount,
            ref_text(ref),
        )
    return Paid(tx.tx_hash, tx.gas_used, info, to, amount, ref_text(ref))


def invalidate_nonces(
    vault: Vault, sender: BaseAccount, space: str, nonce_list: Iterable[int]
) -> list[TxResult]:
    """Mark ``nonce_list`` of ``space`` (an agent key) used, one transaction per bitmap word, so
    intents signed over them can never run. The agent itself or any owner may."""
    words: dict[int, int] = {}
    for n in nonce_list:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 2**256:
            raise AgentWalletError(f"nonce {n!r} must be an int in 0..2**256-1")
        words[n >> 8] = words.get(n >> 8, 0) | (1 << (n & 0xFF))
    if not words:
        raise AgentWalletError("no nonces given: name at least one nonce to invalidate")
    space = checksum(space, "nonce space (agent address)")
    results = []
    for word_pos, mask in sorted(words.items()):
        receipt = vault._send(sender, "invalidateNonces", space, word_pos, mask)
        results.append(TxResult.from_receipt(receipt))
    return results


# ------------------------------------------------------------------------------ rotation


def rotation_typed_data(vault: Vault, rotation: SignedRotation) -> dict[str, Any]:
    domain = vault.bindings.eip712_domain()
    return typed_data.rotation_message(
        domain, rotation.old_key, rotation.new_key, rotation.nonce, rotation.deadline
    )


def sign_rotation(
    vault: Vault,
    old: BaseAccount,
    new: BaseAccount,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
) -> SignedRotation:
    """Both keys' signatures of ``RotateKey(old, new, nonce, deadline)``; the nonce is a free
    one of the old key's space, checked against the vault's ``rotationDigest``."""
    old_key, new_key = checksum(str(old.address)), checksum(str(new.address))
    if nonce is None:
        nonce = _free_nonce(vault, old_key, secrets.randbelow(256))
    if deadline is None:
        deadline = vault.chain.timestamp() + DEFAULT_DEADLINE
    unsigned = SignedRotation(
        vault.address, vault.chain.chain_id, old_key, new_key, int(nonce), int(deadline), "", ""
    )
    message = rotation_typed_data(vault, unsigned)
    onchain = bytes(
        vault.bindings.contract.functions.rotationDigest(
            old_key, new_key, unsigned.nonce, unsigned.deadline
        ).call()
    )
    return SignedRotation.from_json(
        {
            **json.loads(unsigned.to_json()),
            "old_signature": sign_typed(old, message, onchain),
            "new_signature": sign_typed(new, message, onchain),
        }
    )


def check_rotation(vault: Vault, rotation: SignedRotation, submitter: str) -> dict[str, Any]:
    """What a submitter checks before spending gas on a rotation (codes as in
    :func:`check_intent`); returns the unsigned transaction."""
    if checksum(rotation.vault) != vault.address or rotation.chain_id != vault.chain.chain_id:
        raise _refuse(
            "wrong_vault",
            f"rotation is for vault {rotation.vault} on chain {rotation.chain_id}, not "
            f"{vault.address} on chain {vault.chain.chain_id}",
        )
    now = vault.chain.timestamp()
    if rotation.deadline <= now:
        raise _refuse("expired", f"rotation expired at {rotation.deadline} (chain time {now})")
    message = rotation_typed_data(vault, rotation)
    for who, key, signature in (
        ("old", rotation.old_key, rotation.old_signature),
        ("new", rotation.new_key, rotation.new_signature),
    ):
        if _recover(message, signature) != key:
            raise _refuse("bad_signature", f"the {who} key's signature is not by {key}")
    if vault.bindings.is_nonce_used(rotation.old_key, rotation.nonce):
        raise _refuse(
            "nonce_used", f"rotation nonce {rotation.nonce} of {rotation.old_key} is used", 409
        )
    data = vault.bindings.encode(
        "rotateAgentKey",
        rotation.old_key,
        rotation.new_key,
        rotation.nonce,
        rotation.deadline,
        bytes(HexBytes(rotation.old_signature)),
        bytes(HexBytes(rotation.new_signature)),
    )
    try:
        return vault.chain.transactor.prepare(submitter, vault.address, data)
    except InsufficientGasError as exc:
        raise _refuse("relayer_gas", f"the submitter cannot pay for gas: {exc}", 503) from None
    except ContractRevertError as exc:
        code = "nonce_used" if exc.error_name == "NonceAlreadyUsed" else "refused"
        raise _refuse(code, f"the vault would refuse this rotation: {exc}", 422) from exc


def submit_rotation(vault: Vault, sender: BaseAccount, rotation: SignedRotation) -> TxResult:
    """Check (:func:`check_rotation`) and submit ``rotation`` from ``sender``; wait for it."""
    transactor = vault.chain.transactor
    with transactor.exclusive():
        tx = check_rotation(vault, rotation, str(sender.address))
        tx_hash = transactor.sign_and_broadcast(sender, tx)
    return TxResult.from_receipt(transactor.wait(tx_hash))
