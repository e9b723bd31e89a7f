"""The relay: submits agents' signed intents and key rotations, paying the gas from its own key.

Every submission is checked and simulated first (:func:`agentwallet.intents.check_intent`):
malformed, expired, replayed, tampered, cross-vault or out-of-policy intents are refused with a
machine code before any gas is spent. Accepted ones are signed and broadcast through the one
transaction pipeline (``chain.transactor``); a background thread waits for the receipt and
records the outcome. Records live in memory (a restarted relay forgets them; the chain and the
agent's own lookup by ref do not). The HTTP layer is :mod:`agentwallet.relay.app`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.base import BaseAccount
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentwallet import intents
from agentwallet.chain import Chain
from agentwallet.errors import AgentWalletError, IntentRefusedError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import Escalated, SignedIntent, SignedRotation
from agentwallet.protocol.refs import ref_text
from agentwallet.vault import Vault

__all__ = ["RelayService"]


def _malformed(message: str) -> IntentRefusedError:
    return IntentRefusedError(message, "malformed", 400)


class RelayService:
    """Checks and submits intents and rotations on ``chain`` from ``relayer``'s key."""

    def __init__(self, chain: Chain, relayer: BaseAccount, receipt_timeout: float = 120.0) -> None:
        self.chain = chain
        self.relayer = relayer
        self.address = checksum(str(relayer.address))
        self.receipt_timeout = receipt_timeout
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._vaults: dict[str, Vault] = {}

    def __repr__(self) -> str:
        return f"RelayService(relayer={self.address}, chain={self.chain.chain_id})"

    # ------------------------------------------------------------------ reading

    def status(self, job_id: str) -> dict[str, Any]:
        """A submission's record; :class:`IntentRefusedError` ``not_found`` (404) if unknown."""
        with self._lock:
            job = self._jobs.get(job_id.lower())
            if job is None:
                raise IntentRefusedError(f"no intent or rotation {job_id} here", "not_found", 404)
            return dict(job)

    def _vault(self, address: str) -> Vault:
        address = checksum(address, "vault address")
        vault = self._vaults.get(address)
        if vault is None:
            if not self.chain.code(address):
                raise IntentRefusedError(
                    f"no contract at {address} on chain {self.chain.chain_id}", "not_a_vault", 400
                )
            vault = Vault(self.chain, address)
            try:
                vault.bindings.eip712_domain()
            except Exception:  # noqa: BLE001 - whatever answers there, it is not a vault
                raise IntentRefusedError(
                    f"{address} is not an agentwallet vault", "not_a_vault", 400
                ) from None
            self._vaults[address] = vault
        return vault

    # ------------------------------------------------------------------ submitting

    def submit_intent(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST /intents``: (HTTP status, record). Refusals raise :class:`IntentRefusedError`."""
        if not isinstance(body, dict) or not isinstance(body.get("intent"), dict):
            raise _malformed('expected {"intent": {...signed intent...}, "fee": "0"}')
        try:
            signed = SignedIntent.from_json(body["intent"])
            fee = int(str(body.get("fee", 0)))
        except (AgentWalletError, ValueError) as exc:
            raise _malformed(str(exc)) from None
        record = {
            "kind": "intent",
            "agent": signed.agent,
            "to": signed.to,
            "token": signed.token,
            "amount": str(signed.amount),
            "fee": str(fee),
            "ref": ref_text(bytes(HexBytes(signed.ref))),
        }
        return self._submit(
            (signed.vault, signed.chain_id, signed.agent, signed.nonce),
            record,
            lambda vault: intents.check_intent(vault, signed, fee, self.address),
            lambda vault, receipt: self._intent_done(vault, signed, receipt),
        )

    def submit_rotation(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST /rotations``: as :meth:`submit_intent` for a key rotation."""
        if not isinstance(body, dict) or not isinstance(body.get("rotation"), dict):
            raise _malformed('expected {"rotation": {...signed rotation...}}')
        try:
            rotation = SignedRotation.from_json(body["rotation"])
        except AgentWalletError as exc:
            raise _malformed(str(exc)) from None
        record = {"kind": "rotation", "old_key": rotation.old_key, "new_key": rotation.new_key}
        return self._submit(
            (rotation.vault, rotation.chain_id, rotation.old_key, rotation.nonce),
            record,
            lambda vault: intents.check_rotation(vault, rotation, self.address),
            lambda vault, receipt: {"status": "done"},
        )

    def _submit(
        self,
        key: tuple[str, int, str, int],
        record: dict[str, Any],
        check: Callable[[Vault], dict[str, Any]],
        done: Callable[[Vault, Any], dict[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        """The earlier record of this (vault, chain, signer, nonce) unless it failed; else
        check (raises the refusal), sign and broadcast, and watch for the receipt."""
        vault_address, chain_id, signer, nonce = key
        encoded = abi_encode(
            ["string", "address", "uint256", "address", "uint256"],
            [record["kind"], vault_address, chain_id, signer, nonce],
        )
        job_id = "0x" + keccak(encoded).hex()
        known = self._known(job_id)
        if known is not None:
            return 200, known
        vault = self._vault(vault_address)
        record = {"id": job_id, "vault": vault.address, **record, "nonce": str(nonce)}
        with self.chain.transactor.exclusive():
            tx = check(vault)
            tx_hash = self._broadcast(tx)
        return self._started(record, tx_hash, lambda receipt: done(vault, receipt))

    # ------------------------------------------------------------------ internals

    def _known(self, job_id: str) -> dict[str, Any] | None:
        """The record of a submission already accepted (a client retrying), unless it failed."""
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job is not None and job["status"] != "failed" else None

    def _broadcast(self, tx: dict[str, Any]) -> bytes:
        try:
            return self.chain.transactor.sign_and_broadcast(self.relayer, tx)
        except Exception as exc:  # noqa: BLE001 - the node refused or timed out
            raise IntentRefusedError(
                f"the relay could not broadcast ({type(exc).__name__}); nothing was paid: "
                "retry later",
                "broadcast_failed",
                502,
            ) from None

    def _started(
        self, record: dict[str, Any], tx_hash: bytes, done: Any
    ) -> tuple[int, dict[str, Any]]:
        record.update(
            status="pending",
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
            relayer=self.address,
            submitted_at=time.time(),
        )
        with self._lock:
            self._jobs[record["id"]] = record
        thread = threading.Thread(
            target=self._watch, args=(record["id"], tx_hash, done), daemon=True
        )
        thread.start()
        return 202, dict(record)

    def _watch(self, job_id: str, tx_hash: bytes, done: Any) -> None:
        update: dict[str, Any]
        try:
            receipt = self.chain.transactor.wait(tx_hash, timeout=self.receipt_timeout, check=False)
            if receipt["status"] != 1:
                update = {"status": "failed", "error": "the transaction was mined but reverted"}
            else:
                update = {"gas_used": int(receipt["gasUsed"]), **done(receipt)}
        except Exception as exc:  # noqa: BLE001 - recorded for GET; the client can retry
            update = {"status": "failed", "error": f"no receipt: {type(exc).__name__}"}
        with self._lock:
            self._jobs[job_id].update(update)

    @staticmethod
    def _intent_done(vault: Vault, signed: SignedIntent, receipt: Any) -> dict[str, Any]:
        outcome = intents.intent_outcome(vault, receipt, signed)
        if isinstance(outcome, Escalated):
            return {
                "status": "escalated",
                "request_id": outcome.request_id,
                "reasons": list(outcome.reasons),
            }
        return {"status": "paid"}
