"""What the console shows and what it asks wallets to sign, built with the SDK.

The server never holds a key: for an on-chain action it builds the transaction (``to``,
``data``, ``gas`` from a simulation that raises the typed revert before any wallet is asked)
that the owner's wallet sends with ``eth_sendTransaction``; for an off-chain approval it gives
the ``eth_signTypedData_v4`` JSON of :func:`agentwallet.protocol.typed_data.wallet_json`, after
checking that its digest is the vault's, and verifies the signature that comes back before it
keeps it (:mod:`agentwallet.console.signatures`). Every action refuses a request that is no
longer pending, and a sender who is not an owner, before anything is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hexbytes import HexBytes

from agentwallet import request_log, views
from agentwallet.chain import Chain
from agentwallet.chain.tx import gas_limit
from agentwallet.console.rows import Labels, agent_rows, delegation, request_rows
from agentwallet.console.signatures import SignatureStore
from agentwallet.errors import (
    AgentWalletError,
    ContractRevertError,
    NotOwnerError,
    SignatureMismatchError,
    UnknownVaultError,
)
from agentwallet.protocol import signatures, typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import PER_WORD_GAS, RequestStatus
from agentwallet.protocol.models import RequestInfo, SignedApproval
from agentwallet.units import format_amount, parse_amount
from agentwallet.vault import Vault

__all__ = ["REQUEST_ACTIONS", "VAULT_ACTIONS", "Console", "ConsoleError", "PreparedTx"]

#: What an owner can do to a pending request from the page (the binding's request calls).
REQUEST_ACTIONS = {
    "approve": "approve it on-chain (the threshold-th approval executes it)",
    "reject": "reject it",
    "execute": "execute it with the on-chain approvals it has",
    "executeWithSignatures": "execute it with the owners' collected signatures",
}
#: One-owner risk reduction (the vault's functions).
VAULT_ACTIONS = {
    "pause": "pause the whole vault: no agent can pay until the owners unpause it",
    "pauseAgent": "pause this agent: it cannot pay until the owners unpause it",
    "revokeAgent": "revoke this agent for good",
    "reduceLimits": "lower this agent's limits for one token",
}


class ConsoleError(AgentWalletError):
    """A console request the server cannot act on (unknown action, missing field)."""


@dataclass(frozen=True)
class PreparedTx:
    """A transaction for the owner's wallet (``eth_sendTransaction`` parameters) and the table
    of what it does."""

    tx: dict[str, str]
    summary: str
    table: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tx": self.tx, "summary": self.summary, "table": self.table}


class Console:
    """The console's vaults on one chain, their signature store and names for addresses."""

    def __init__(
        self,
        chain: Chain,
        vaults: dict[str, Vault],
        home: Path,
        names: dict[str, str] | None = None,
    ) -> None:
        if not vaults:
            raise ConsoleError("no vault to show: deploy one or pass --vault NAME_OR_ADDRESS")
        self.chain = chain
        self.vaults = vaults
        self.home = home
        self.store = SignatureStore(home / "console" / f"signatures-{chain.chain_id}.json")
        book = dict(names or {})
        for name, vault in vaults.items():
            book.setdefault(vault.address, f"vault {name}")
        self.labels = Labels(book)

    # ------------------------------------------------------------------------- lookups

    def vault(self, name: str) -> Vault:
        try:
            return self.vaults[name]
        except KeyError:
            known = ", ".join(sorted(self.vaults))
            raise UnknownVaultError(
                f"the console serves no vault named {name!r} (it serves: {known}); restart it "
                "with --vault NAME"
            ) from None

    def context(self, name: str) -> dict[str, Any]:
        """What the page's script needs before it asks a wallet: the chain and the owners."""
        vault = self.vault(name)
        return {
            "vault": vault.address,
            "name": name,
            "chainId": self.chain.chain_id,
            "chainIdHex": hex(self.chain.chain_id),
            "owners": vault.owners(),
            "threshold": vault.threshold(),
        }

    # ------------------------------------------------------------------------- requests

    def _collected(self, vault: Vault, request_id: int) -> tuple[bytes, dict[str, str]]:
        found = request_log.find(vault, request_id)
        digest = vault.bindings.request_digest(found.request)
        kept = self.store.signatures(vault.address, request_id, digest)
        owners = set(vault.owners())
        return digest, {s: sig for s, sig in kept.items() if s in owners}

    def request_card(self, vault: Vault, r: RequestInfo, now: int) -> dict[str, Any]:
        """One request as the requests page shows it."""
        _, collected = (
            self._collected(vault, r.id) if r.status == RequestStatus.PENDING.text else (b"", {})
        )
        label = self.labels.label
        return {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "title": self._title(vault, r),
            "table": request_rows(vault, r, self.chain.chain_id, self.labels, now),
            "delegation": [label(a) for a in delegation(vault, r.agent)]
            if r.kind != "governance"
            else [],
            "approvals": [label(a) for a in r.approvals],
            "signatures": [label(s) for s in sorted(collected)],
            "threshold": r.threshold,
            "can_execute": len(r.approvals) >= r.threshold,
            "can_execute_signed": len(set(r.approvals) | set(collected)) >= r.threshold,
            "age": now - r.created_at,
            "expires_in": r.expires_at - now,
        }

    def _title(self, vault: Vault, r: RequestInfo) -> str:
        label = self.labels.label
        if r.kind == "payment":
            return f"{label(r.agent)} wants to pay {r.amount_text} to {label(r.to)}"
        if r.kind == "governance":
            return f"{label(r.agent)} proposes {self.labels.describe(vault, r)}"
        return f"{label(r.agent)} wants to {r.action}"

    def requests(self, name: str, status: str = "pending") -> list[dict[str, Any]]:
        vault = self.vault(name)
        now = self.chain.timestamp()
        return [self.request_card(vault, r, now) for r in vault.requests(status)]

    def _pending(self, vault: Vault, request_id: int) -> RequestInfo:
        r = vault.request(request_id)
        if r.status != RequestStatus.PENDING.text:
            raise ContractRevertError.from_error(
                "RequestNotPending",
                {"requestId": request_id, "status": int(RequestStatus[r.status.upper()])},
                message=f"request {request_id} is {r.status}, not pending: it was decided "
                "since the page was loaded; nothing was signed (reload the page)",
            )
        return r

    @staticmethod
    def _owner(vault: Vault, sender: str) -> str:
        address = checksum(sender, "wallet account")
        if address not in vault.owners():
            raise NotOwnerError(
                f"the wallet's account {address} is not an owner of vault {vault.address}: "
                "switch the wallet to an owner's account"
            )
        return address

    def typed_data(self, name: str, request_id: int, signer: str) -> dict[str, Any]:
        """The ``eth_signTypedData_v4`` JSON an owner signs to approve ``request_id``, and the
        table of what it approves; refused for a request no longer pending or a non-owner."""
        vault = self.vault(name)
        self._owner(vault, signer)
        r = self._pending(vault, request_id)
        request = request_log.find(vault, request_id).request
        message = typed_data.request_message(vault.bindings.eip712_domain(), request)
        onchain = vault.bindings.request_digest(request)
        local = typed_data.digest(message)
        if local != onchain:
            raise SignatureMismatchError(
                f"the typed data's digest 0x{local.hex()} differs from the vault's "
                f"0x{onchain.hex()}: refusing to ask for a signature"
            )
        now = self.chain.timestamp()
        return {
            "typedData": typed_data.wallet_json(message),
            "digest": "0x" + onchain.hex(),
            "summary": f"sign an off-chain approval of request {request_id}: "
            + self._title(vault, r),
            "table": request_rows(vault, r, self.chain.chain_id, self.labels, now),
        }

    def add_signature(
        self, name: str, request_id: int, signature: str, signer: str | None = None
    ) -> dict[str, Any]:
        """Verify and keep an owner's signature of request ``request_id``; what is collected."""
        vault = self.vault(name)
        r = self._pending(vault, request_id)
        digest, _ = self._collected(vault, request_id)
        by = self.store.add(vault.address, request_id, digest, vault.owners(), signature)
        if signer is not None and checksum(signer, "signer") != by:
            raise SignatureMismatchError(
                f"the signature is by {by}, not by the wallet's account {checksum(signer)}"
            )
        _, collected = self._collected(vault, request_id)
        return {
            "request_id": request_id,
            "signer": by,
            "signatures": sorted(collected),
            "threshold": r.threshold,
        }

    def request_tx(self, name: str, request_id: int, action: str, sender: str) -> PreparedTx:
        """The transaction that does ``action`` (a key of :data:`REQUEST_ACTIONS`) on request
        ``request_id``, sent by ``sender``; simulated first."""
        if action not in REQUEST_ACTIONS:
            raise ConsoleError(f"unknown action {action!r}: one of {', '.join(REQUEST_ACTIONS)}")
        vault = self.vault(name)
        address = checksum(sender, "wallet account")
        if action != "executeWithSignatures":
            self._owner(vault, address)
        r = self._pending(vault, request_id)
        extra: tuple[Any, ...] = ()
        if action == "executeWithSignatures":
            digest, collected = self._collected(vault, request_id)
            approvals = [
                SignedApproval(vault.address, self.chain.chain_id, request_id, s, sig)
                for s, sig in collected.items()
            ]
            on_chain = list(r.approvals)[: r.threshold]  # they count as v == 1 entries
            chosen = signatures.choose_mixed(on_chain, approvals, vault.owners(), r.threshold)
            signatures.verify_claimed(digest, chosen)
            extra = (signatures.pack_mixed(on_chain, chosen),)
        request = request_log.find(vault, request_id).request
        data = vault.bindings.encode_request_call(action, request, *extra)
        now = self.chain.timestamp()
        return PreparedTx(
            self._tx(vault, address, data),
            f"{REQUEST_ACTIONS[action]}: request {request_id}, " + self._title(vault, r),
            request_rows(vault, r, self.chain.chain_id, self.labels, now),
        )

    # ------------------------------------------------------------------------- risk reduction

    def vault_tx(
        self,
        name: str,
        action: str,
        sender: str,
        agent: str | None = None,
        token: str | None = None,
        max_per_payment: str | None = None,
        allowance: str | None = None,
    ) -> PreparedTx:
        """The transaction of a one-owner risk reduction (a key of :data:`VAULT_ACTIONS`)."""
        if action not in VAULT_ACTIONS:
            raise ConsoleError(f"unknown action {action!r}: one of {', '.join(VAULT_ACTIONS)}")
        vault = self.vault(name)
        address = self._owner(vault, sender)
        rows: list[tuple[str, str]] = [
            ("vault", vault.address),
            ("chain id", str(self.chain.chain_id)),
            ("action", VAULT_ACTIONS[action]),
        ]
        if action == "pause":
            margin = self._margin(vault, vault.bindings.agents())
            return PreparedTx(
                self._tx(vault, address, vault.bindings.encode("pause"), margin),
                "pause the vault",
                rows,
            )
        if not agent:
            raise ConsoleError(f"{action} needs the agent's address")
        who = checksum(agent, "agent address")
        rows.append(("agent", f"{self.labels.label(who)}  {who}"))
        if action in ("pauseAgent", "revokeAgent"):
            data = vault.bindings.encode(action, who)
            verb = "pause" if action == "pauseAgent" else "revoke"
            return PreparedTx(
                self._tx(vault, address, data, self._margin(vault, [who])),
                f"{verb} agent {self.labels.label(who)}",
                rows,
            )
        info = vault.token(token)
        if max_per_payment is None or allowance is None:
            raise ConsoleError("reduceLimits needs the new max per payment and allowance")
        new_max = parse_amount(max_per_payment, info.decimals)
        new_allowance = parse_amount(allowance, info.decimals)
        old = vault.policy(who, info.address)
        rows += [
            ("token", f"{info.symbol} {info.address}"),
            (
                "max per payment",
                f"{format_amount(old.max_per_payment, info.decimals)} → "
                f"{format_amount(new_max, info.decimals)} {info.symbol}",
            ),
            (
                "allowance",
                f"{format_amount(old.allowance, info.decimals)} → "
                f"{format_amount(new_allowance, info.decimals)} {info.symbol}",
            ),
        ]
        data = vault.bindings.encode("reduceLimits", who, info.address, new_max, new_allowance)
        return PreparedTx(
            self._tx(vault, address, data),
            f"lower the {info.symbol} limits of agent {self.labels.label(who)}",
            rows,
        )

    @staticmethod
    def _margin(vault: Vault, agents: Sequence[str]) -> int:
        """An emergency action's gas beyond its estimate (as :class:`Vault` adds): one storage
        write per policy word an agent may arm between the estimate and the block."""
        return PER_WORD_GAS * sum(len(vault.bindings.agent_tokens(a)) for a in agents)

    def _tx(self, vault: Vault, sender: str, data: bytes, extra_gas: int = 0) -> dict[str, str]:
        estimate = self.chain.transactor.simulate(sender, vault.address, data)
        return {
            "from": sender,
            "to": vault.address,
            "data": HexBytes(data).to_0x_hex(),
            "value": "0x0",
            "gas": hex(gas_limit(estimate, extra_gas)),
        }

    # ------------------------------------------------------------------------- the vault

    def state(self, name: str) -> dict[str, Any]:
        """Balances, owners and threshold, and each agent with its limits and what it can
        still spend now."""
        vault = self.vault(name)
        tokens = [vault.token(None), *vault.deployments.tokens().values()]
        balances = [
            {
                "symbol": t.symbol,
                "address": t.address,
                "amount": format_amount(vault.balance(t), t.decimals),
            }
            for t in tokens
        ]
        agents = [agent_rows(vault, view, self.labels) for view in views.agents(vault)]
        return {
            "name": name,
            "address": vault.address,
            "chain_id": self.chain.chain_id,
            "paused": vault.paused(),
            "threshold": vault.threshold(),
            "owners": [self.labels.label(o) for o in vault.owners()],
            "balances": balances,
            "agents": agents,
        }

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """A mined transaction's status, or None while it is pending."""
        found = self.chain.transactor.receipt(bytes(HexBytes(tx_hash)))
        if found is None:
            return None
        return {"status": int(found["status"]), "block": int(found["blockNumber"])}
