"""Owners' side of a vault: create, fund, propose/approve/reject governance and payment requests,
co-sign off-chain (EIP-712), and instant risk-reducing actions.

Every transaction is signed locally by an eth-account ``BaseAccount`` (a
:class:`~agentwallet.keys.Signer`, a ``LocalAccount``) and sent through the chain's one
transaction pipeline (:mod:`agentwallet.chain.tx`): simulated first (a revert raises the typed
:class:`~agentwallet.errors.ContractRevertError` subclass and nothing is sent), with a nonce
from a per-(chain, address) lock so threads never collide. Off-chain signatures are
:mod:`agentwallet.signing`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes
from web3.contract import Contract
from web3.types import TxReceipt

from agentwallet import request_log, signing, views
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.bindings.factory import ARTIFACT as FACTORY_ARTIFACT
from agentwallet.bindings.factory import VAULT_PARTS, FactoryBinding, creation_code
from agentwallet.bindings.vault import VaultBinding
from agentwallet.chain import Chain
from agentwallet.deployments import Deployments
from agentwallet.errors import (
    AgentWalletError,
    ContractRevertError,
    InsufficientFundsError,
    NotAVaultError,
    RequestMismatchError,
    RequestNotPendingError,
    TransactionFailedError,
)
from agentwallet.governance import GovernanceMixin
from agentwallet.protocol import typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.calls import Call
from agentwallet.protocol.constants import ETH, PER_WORD_GAS, ZERO_ADDRESS, RequestStatus
from agentwallet.protocol.models import (
    AgentView,
    ApprovalResult,
    PolicyView,
    RequestInfo,
    RequestRef,
    SignedApproval,
    SignedGovernance,
    SignedPayment,
    TokenInfo,
    TxResult,
)
from agentwallet.protocol.refs import to_ref
from agentwallet.protocol.requests import Request
from agentwallet.units import format_amount

__all__ = [
    "ETH",
    "AgentView",
    "ApprovalResult",
    "PolicyView",
    "RequestInfo",
    "RequestRef",
    "SignedApproval",
    "SignedGovernance",
    "SignedPayment",
    "TokenInfo",
    "TxResult",
    "Vault",
    "deploy_factory",
]


def _deploy(chain: Chain, sender: BaseAccount, artifact: str, *args: Any) -> TxReceipt:
    receipt = chain.transactor.send(sender, None, creation_code(artifact, *args))
    if receipt["contractAddress"] is None:  # pragma: no cover - a creation has an address
        raise TransactionFailedError(f"deploying {artifact} produced no address", receipt=receipt)
    return receipt


def deploy_factory(
    chain: Chain, sender: BaseAccount, deployments: Deployments | None = None
) -> str:
    """Deploy the vault's five parts (lens, calls, config, admin, core: each constructor takes the
    previous part's address) and an AgentVaultFactory for the core; return the factory's
    address. With ``deployments``, record the factory, its parts and the artifacts' hashes."""
    parts: dict[str, str] = {}
    previous: tuple[str, ...] = ()
    for name in VAULT_PARTS:
        receipt = _deploy(chain, sender, name, *previous)
        parts[name] = checksum(str(receipt["contractAddress"]))
        previous = (parts[name],)
    receipt = _deploy(chain, sender, FACTORY_ARTIFACT, parts["AgentVault"])
    address = checksum(str(receipt["contractAddress"]))
    if deployments is not None:
        deployments.record_factory(
            address,
            tx=HexBytes(receipt["transactionHash"]).to_0x_hex(),
            block=int(receipt["blockNumber"]),
            parts=parts,
        )
    return address


class Vault(GovernanceMixin):
    """An AgentVault on a chain. Build it with :meth:`create` or :meth:`at`."""

    def __init__(self, chain: Chain, address: str, deployments: Deployments | None = None) -> None:
        self.chain = chain
        self.address = checksum(address, "vault address")
        self.deployments = deployments or Deployments(chain)
        #: Typed reads, encoders and receipt decoding of AgentVault's ABI.
        self.bindings = VaultBinding(chain, self.address)
        #: The web3 contract object (for event queries beyond this class).
        self.contract: Contract = self.bindings.contract
        self._token_cache: dict[str, TokenInfo] = {}

    def __repr__(self) -> str:
        return f"Vault({self.address}, chain_id={self.chain.chain_id})"

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        chain: Chain,
        sender: BaseAccount,
        owners: Sequence[str],
        threshold: int,
        request_expiry: int = 3 * 86400,
        max_open_requests: int = 10,
        name: str = "main",
        salt: bytes | None = None,
        deployments: Deployments | None = None,
    ) -> Vault:
        """Create a vault through the chain's factory (deployed first if none is recorded)
        and record it under ``name``."""
        deployments = deployments or Deployments(chain)
        factory_address = deployments.factory()
        if factory_address is None:
            factory_address = deploy_factory(chain, sender, deployments)
        factory = FactoryBinding(chain, factory_address)
        owner_list = [checksum(o, "owner address") for o in owners]
        salt_bytes = to_ref(salt) if salt is not None else secrets.token_bytes(32)
        data = factory.encode_create_vault(
            owner_list, threshold, request_expiry, max_open_requests, salt_bytes
        )
        receipt = chain.transactor.send(sender, factory_address, data)
        created = factory.created_vaults(receipt)
        if not created:  # pragma: no cover - createVault always emits
            raise TransactionFailedError("createVault emitted no VaultCreated", receipt=receipt)
        address = created[0]
        deployments.record_vault(
            name,
            address,
            tx=HexBytes(receipt["transactionHash"]).to_0x_hex(),
            block=int(receipt["blockNumber"]),
            owners=owner_list,
            threshold=threshold,
            factory=factory_address,
        )
        return cls(chain, address, deployments)

    @classmethod
    def at(
        cls, chain: Chain, name_or_address: str, deployments: Deployments | None = None
    ) -> Vault:
        """The vault recorded as ``name_or_address`` (or at that address). Raises
        :class:`NotAVaultError` if no AgentVault answers there."""
        deployments = deployments or Deployments(chain)
        address = deployments.vault_address(name_or_address)
        vault = cls(chain, address, deployments)
        if not chain.code(address):
            raise NotAVaultError(
                f"no contract at {address} on chain {chain.chain_id}: wrong address or chain?"
            )
        try:
            vault.bindings.threshold()
            vault.bindings.owners()
        except Exception:  # noqa: BLE001 - anything else is not a vault
            raise NotAVaultError(
                f"the contract at {address} does not answer threshold()/getOwners(): "
                "it is not an AgentVault"
            ) from None
        return vault

    # ------------------------------------------------------------------ views

    def owners(self) -> list[str]:
        """Current owners, checksummed."""
        return self.bindings.owners()

    def threshold(self) -> int:
        """Approvals needed to execute a request."""
        return self.bindings.threshold()

    def paused(self) -> bool:
        """Whether the vault is paused."""
        return self.bindings.paused()

    def token(self, symbol_or_address: str | None = None) -> TokenInfo:
        """None/"ETH" -> ETH (18 decimals); a recorded symbol; or an address (read on-chain)."""
        key = symbol_or_address or "ETH"
        cached = self._token_cache.get(key)
        if cached is None:
            cached = self.deployments.token(symbol_or_address)
            self._token_cache[key] = cached
        return cached

    def balance(self, token: str | TokenInfo | None = None) -> int:
        """The vault's balance of ``token`` (default ETH) in base units."""
        info = token if isinstance(token, TokenInfo) else self.token(token)
        if info.is_eth:
            return self.chain.balance(self.address)
        return Erc20Binding(self.chain, info.address).balance_of(self.address)

    def format(self, token: str | None, amount: int) -> str:
        """``amount`` of ``token`` as "1.5 tUSDC"."""
        info = self.token(token)
        return f"{format_amount(amount, info.decimals)} {info.symbol}"

    def _fmt(self, token: str, amount: int) -> str:
        try:
            return self.format(token, amount)
        except AgentWalletError:
            return f"{amount} base units of {token}"

    def _send(
        self, sender: BaseAccount, fn_name: str, *args: Any, value: int = 0, extra_gas: int = 0
    ) -> TxReceipt:
        return self.chain.transactor.send(
            sender,
            self.address,
            self.bindings.encode(fn_name, *args),
            value,
            format_amount=self._fmt,
            extra_gas=extra_gas,
        )

    def _tx(self, sender: BaseAccount, fn_name: str, *args: Any, extra_gas: int = 0) -> TxResult:
        return TxResult.from_receipt(self._send(sender, fn_name, *args, extra_gas=extra_gas))

    def _flag_rewrite_margin(self, agents: Sequence[str]) -> int:
        """Gas an emergency action may need beyond its estimate: an agent can arm its fast path
        (a payment that sets FAST on a policy word) between the estimate and the block, and
        each such word then costs the action one more storage write."""
        words = sum(len(self.bindings.agent_tokens(a)) for a in agents)
        return PER_WORD_GAS * words

    def payment_nonce(
        self, agent: str, token: str, to: str, amount: int, ref: bytes, deadline: int
    ) -> int:
        """The unused nonce of the owners' payment space a signed payment gets (derived from the
        payment, so co-signers agree: :mod:`agentwallet.protocol.nonces`)."""
        return signing.payment_nonce(self, agent, token, to, amount, ref, deadline)

    def request_count(self) -> int:
        """Number of requests ever created (ids are 1..count)."""
        return self.bindings.request_count()

    # ------------------------------------------------------------------ funding

    def fund(self, sender: BaseAccount, amount: int, token: str | None = None) -> TxResult:
        """Deposit ``amount`` base units: ETH by transfer, an ERC-20 by approve + deposit.
        Raises :class:`InsufficientFundsError` (nothing sent) if the sender holds less."""
        if amount <= 0:
            raise InsufficientFundsError(f"fund amount must be > 0, not {amount}")
        info = self.token(token)
        erc20 = None if info.is_eth else Erc20Binding(self.chain, info.address)
        who = str(sender.address)
        held = self.chain.balance(who) if erc20 is None else erc20.balance_of(who)
        if held < amount:
            have, want = (format_amount(v, info.decimals) for v in (held, amount))
            raise InsufficientFundsError(
                f"{who} holds {have} {info.symbol}, less than the {want} {info.symbol} to "
                f"deposit into vault {self.address}: fund it with less, or top up {who} first"
            )
        if erc20 is None:
            receipt = self.chain.transactor.send(sender, self.address, b"", amount)
            return TxResult.from_receipt(receipt)
        self.chain.transactor.send(sender, info.address, erc20.encode_approve(self.address, amount))
        return TxResult.from_receipt(self._send(sender, "deposit", info.address, amount))

    # ------------------------------------------------------------------ one-owner actions

    def pause(self, sender: BaseAccount) -> TxResult:
        """Pause the vault (one owner; unpausing needs the threshold)."""
        return self._tx(
            sender, "pause", extra_gas=self._flag_rewrite_margin(self.bindings.agents())
        )

    def pause_agent(self, sender: BaseAccount, agent: str) -> TxResult:
        """Pause an agent (one owner)."""
        address = checksum(agent)
        return self._tx(
            sender, "pauseAgent", address, extra_gas=self._flag_rewrite_margin([address])
        )

    def revoke_agent(self, sender: BaseAccount, agent: str) -> TxResult:
        """Revoke an agent for good (one owner)."""
        address = checksum(agent)
        margin = self._flag_rewrite_margin([address])
        return self._tx(sender, "revokeAgent", address, extra_gas=margin)

    def reduce_limits(
        self,
        sender: BaseAccount,
        agent: str,
        token: str | None,
        max_per_payment: int,
        allowance: int,
    ) -> TxResult:
        """Lower an agent's limits for ``token`` (one owner; each value <= the current)."""
        address, token_address = checksum(agent), self.token(token).address
        return self._tx(sender, "reduceLimits", address, token_address, max_per_payment, allowance)

    def remove_token(self, sender: BaseAccount, agent: str, token: str | None) -> TxResult:
        """Take ``token`` out of the agent's scope (one owner)."""
        return self._tx(sender, "removeToken", checksum(agent), self.token(token).address)

    def remove_recipient(self, sender: BaseAccount, agent: str, recipient: str) -> TxResult:
        """Remove ``recipient`` from the agent's allowlist (one owner)."""
        return self._tx(sender, "removeRecipient", checksum(agent), checksum(recipient))

    def enforce_allowlist(self, sender: BaseAccount, agent: str) -> TxResult:
        """Switch the agent's recipient allowlist on (one owner)."""
        return self._tx(sender, "enforceAllowlist", checksum(agent))

    # ------------------------------------------------------------------ co-signing

    def find_request(self, request_id: int) -> Request:
        """Request ``request_id`` whole, as its creation event gave it (the vault stores only
        its hash): a :class:`~agentwallet.protocol.requests.PaymentRequest` or a
        :class:`~agentwallet.protocol.requests.GovernanceProposal`."""
        return request_log.find(self, request_id).request

    def request_call(
        self, sender: BaseAccount, action: str, request_id: int, *extra: Any
    ) -> TxReceipt:
        """Send ``action`` (approve, execute, executeWithSignatures, reject, expire, cancel) on
        request ``request_id``, as the payment request's or the proposal's function. A closed
        request whose slot a later request reuses reports its final status (from its events):
        the vault itself can only say "closed", or that the slot holds another request."""
        found = request_log.find(self, request_id)
        data = self.bindings.encode_request_call(action, found.request, *extra)
        try:
            return self.chain.transactor.send(sender, self.address, data, format_amount=self._fmt)
        except (RequestNotPendingError, RequestMismatchError) as exc:
            if exc.args_by_name.get("status", RequestStatus.CLOSED) != RequestStatus.CLOSED:
                raise
            final = views.request_status(self, found)
            if final == RequestStatus.PENDING:  # pragma: no cover - the vault said otherwise
                raise
            raise ContractRevertError.from_error(
                "RequestNotPending", {"requestId": request_id, "status": int(final)}
            ) from None

    def approve(self, sender: BaseAccount, request_id: int) -> ApprovalResult:
        """Approve a pending request on-chain (``approvePayment`` or ``approveProposal``);
        ``executed`` says whether it reached the threshold and ran."""
        receipt = self.request_call(sender, "approve", request_id)
        base = TxResult.from_receipt(receipt)
        return ApprovalResult(
            base.tx_hash, base.gas_used, base.block_number, self._executed_in(receipt, request_id)
        )

    def reject(self, sender: BaseAccount, request_id: int) -> TxResult:
        """Reject a pending request. An agent's payment request closes at one owner's no; a
        governance proposal closes once more than owners - threshold owners rejected it (one
        vote per owner: a later approval replaces the rejection)."""
        return TxResult.from_receipt(self.request_call(sender, "reject", request_id))

    def execute(self, sender: BaseAccount, request_id: int) -> TxResult:
        """Execute a request whose on-chain approvals already meet the threshold."""
        return TxResult.from_receipt(self.request_call(sender, "execute", request_id))

    def expire(self, sender: BaseAccount, request_id: int) -> TxResult:
        """Mark a pending request past its expiry as expired."""
        return TxResult.from_receipt(self.request_call(sender, "expire", request_id))

    def typed_data(self, request_id: int, *, wallet: bool = False) -> dict[str, Any]:
        """The full EIP-712 message owners sign to approve ``request_id`` off-chain
        (``PaymentRequest``, ``GovernanceProposal`` or ``CallRequest``); with ``wallet``, as
        standard ``eth_signTypedData_v4`` JSON for any wallet (hex strings, decimal strings)."""
        message = signing.request_typed_data(self, request_id)
        return typed_data.wallet_json(message) if wallet else message

    def signature_from_wallet(
        self, typed: dict[str, Any], signer: str, signature: str
    ) -> signing.Signed:
        """Any wallet's raw 0x signature over the wallet JSON ``typed`` (from
        :meth:`typed_data`, :meth:`payment_typed_data` or :meth:`governance_typed_data` with
        ``wallet=True``) as the signed object :meth:`execute_with_signatures`,
        :meth:`pay_with_signatures` or :meth:`execute_governance` take. A ``signer`` with code
        (a Safe) is an ERC-1271 owner: ``signature`` is what its ``isValidSignature`` takes."""
        return signing.signed_from_wallet(self, typed, signer, signature)

    def sign(self, signer: BaseAccount, request_id: int) -> SignedApproval:
        """Sign an off-chain EIP-712 approval of ``request_id`` with ``signer`` (any
        eth-account ``BaseAccount``, e.g. a :class:`~agentwallet.keys.Signer`); checks the
        digest equals the vault's (``paymentRequestDigest``/``proposalDigest``)."""
        return signing.sign(self, signer, request_id)

    def execute_with_signatures(
        self, sender: BaseAccount, request_id: int, approvals: Sequence[SignedApproval]
    ) -> TxResult:
        """Execute ``request_id`` with off-chain approvals (sorted by signer here)."""
        return signing.execute_with_signatures(self, sender, request_id, approvals)

    # ------------------------------------------------------------ signed payments

    def sign_payment(
        self,
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
        """Sign, as an owner, a payment of ``amount`` base units of ``token`` to ``to`` that
        runs at once with the threshold's signatures (``payWithSignatures``), no stored
        request. ``deadline`` defaults to one hour from the chain's time; ``nonce`` to an unused
        nonce derived from the payment (:meth:`payment_nonce`: co-signers of the same payment
        agree, parallel payments do not collide). Checks the digest equals the vault's
        ``signedPaymentDigest``."""
        return signing.sign_payment(
            self, signer, to, amount, token, agent=agent, ref=ref, deadline=deadline, nonce=nonce
        )

    def payment_typed_data(
        self,
        agent: str,
        token: str,
        to: str,
        amount: int,
        ref: bytes,
        nonce: int,
        deadline: int,
        *,
        wallet: bool = False,
    ) -> dict[str, Any]:
        """The full EIP-712 ``SignedPayment`` message owners sign for ``payWithSignatures``
        (``wallet``: as ``eth_signTypedData_v4`` JSON)."""
        message = signing.payment_typed_data(self, agent, token, to, amount, ref, nonce, deadline)
        return typed_data.wallet_json(message) if wallet else message

    def pay_with_signatures(self, sender: BaseAccount, signed: Sequence[SignedPayment]) -> TxResult:
        """Submit owners' signatures of one payment (anyone may send it). All must sign the
        same payment, for this vault and chain, with a nonce not used yet, before the deadline;
        each ECDSA signature must be by its claimed signer."""
        return signing.pay_with_signatures(self, sender, signed)

    # ------------------------------------------------------------------ requests and agents

    def request(self, request_id: int) -> RequestInfo:
        """One request, decoded for humans."""
        return views.request_info(self, request_id)

    def requests(self, status: str | None = "pending") -> list[RequestInfo]:
        """Requests with ``status`` ("pending", "executed", "rejected", "cancelled",
        "expired", "agent_revoked"; None or "all" for every request), oldest first."""
        return views.requests(self, status)

    def decode_call(self, data: bytes) -> Call | None:
        """The vault call a governance request carries, or None if ``data`` is none."""
        return self.bindings.decode_call(data)

    def describe_call(self, data: bytes) -> str:
        """A governance call as text, e.g. ``setLimits(agent=0xab.., token=tUSDC, ...)``."""
        return views.describe_call(self, data)

    def agents(self) -> list[AgentView]:
        """Every agent ever added, with its settings: the vault's list of active and paused
        agents, then the others (revoked, rotated away; found in its AgentConfigured events)."""
        return views.agents(self)

    def agent(self, address: str) -> AgentView:
        """An agent's settings and its limits for every token in scope."""
        return views.agent_view(self, address)

    def policy(self, agent: str, token: str | None = None) -> PolicyView:
        """The agent's limits for ``token`` now."""
        return self.bindings.policy(agent, self.token(token).address)
