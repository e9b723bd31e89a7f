"""Owners' governance: propose a vault call on-chain (a stored request the threshold approves),
or sign a batch of calls off-chain that runs in one transaction on the threshold's signatures
(``executeGovernance``: no stored request, so no single owner can reject, expire or front-run
it; the way honest owners recover from a compromised one).

:class:`GovernanceMixin` gives :class:`~agentwallet.vault.Vault` these methods. A signed batch's
nonce is an unused nonce of the vault's governance space derived from the batch
(:mod:`agentwallet.protocol.nonces`), so owners who sign the same batch independently agree, and
different batches signed in parallel do not collide. The default deadline is rounded up to a
whole hour for the same reason (owners signing within the same hour agree on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes
from web3.types import TxReceipt

from agentwallet import request_log
from agentwallet.errors import AgentWalletError
from agentwallet.protocol import nonces, signatures, typed_data
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import RequestRef, SignedGovernance, TxResult
from agentwallet.protocol.refs import to_ref

if TYPE_CHECKING:
    from web3.contract import Contract

    from agentwallet.bindings.vault import VaultBinding
    from agentwallet.chain import Chain
    from agentwallet.protocol.models import TokenInfo
    from agentwallet.vault import Vault

__all__ = ["DEFAULT_VALIDITY", "GOVERNANCE_FUNCTIONS", "GovernanceMixin", "default_deadline"]

#: The vault functions governance runs (a proposal or a signed batch); anything else reverts
#: with ``NotGovernanceCall``.
GOVERNANCE_FUNCTIONS = frozenset(
    {
        "addAgent",
        "unpauseAgent",
        "setLimits",
        "allowRecipient",
        "unpause",
        "addOwner",
        "removeOwner",
        "swapOwner",
        "changeThreshold",
        "setRequestExpiry",
        "setMaxOpenRequests",
        "replaceAgentKey",
        "invalidateNonces",
        "addSubAgent",
        "setSubAgentLimits",
        "allowSubAgentRecipient",
        "setRecipientBudget",
        "removeRecipientBudget",
        "grantCall",
        "grantSubAgentCall",
    }
)
#: How long a signed batch stays usable by default (seconds, before rounding up to the hour).
DEFAULT_VALIDITY = 86400
_HOUR = 3600
#: Calls after which the vault rewrites agents' fast-path flags (gas margin, as for pause).
_FLAG_CALLS = ("unpause", "unpauseAgent")


def default_deadline(now: int, valid_for: int = DEFAULT_VALIDITY) -> int:
    """``now + valid_for`` rounded up to a whole hour: owners who sign the same batch within
    the same hour pick the same deadline, hence the same message and nonce."""
    return -(-(now + valid_for) // _HOUR) * _HOUR


class GovernanceMixin:
    """Governance methods of :class:`~agentwallet.vault.Vault` (proposals and signed batches)."""

    if TYPE_CHECKING:  # what the mixin uses of Vault
        chain: Chain
        address: str
        bindings: VaultBinding
        contract: Contract

        def token(self, symbol_or_address: str | None = None) -> TokenInfo: ...
        def owners(self) -> list[str]: ...
        def threshold(self) -> int: ...
        def _flag_rewrite_margin(self, agents: Sequence[str]) -> int: ...
        def _send(
            self,
            sender: BaseAccount,
            fn_name: str,
            *args: Any,
            value: int = 0,
            extra_gas: int = 0,
        ) -> TxReceipt: ...

    # ------------------------------------------------------------------ calls

    def governance_call(self, fn_name: str, *args: Any) -> bytes:
        """The calldata of the vault's governance function ``fn_name(*args)`` (through the
        binding's encoder), e.g. ``governance_call("swapOwner", old, new)``. Raises
        :class:`AgentWalletError` for a function governance cannot run or wrong arguments."""
        if fn_name not in GOVERNANCE_FUNCTIONS:
            raise AgentWalletError(
                f"{fn_name!r} is not a governance call: use one of "
                f"{', '.join(sorted(GOVERNANCE_FUNCTIONS))}"
            )
        try:
            return self.bindings.encode(fn_name, *args)
        except Exception as exc:  # noqa: BLE001 - web3 raises several types for bad arguments
            raise AgentWalletError(f"cannot encode {fn_name}{tuple(args)!r}: {exc}") from None

    # ------------------------------------------------------------------ on-chain proposals

    def propose(
        self, sender: BaseAccount, fn_name: str, *args: Any, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose the vault call ``fn_name(*args)`` (the proposer's approval counts; with
        threshold 1 it executes at once)."""
        data = self.bindings.encode(fn_name, *args)
        receipt = self._send(sender, "propose", data, to_ref(ref))
        created = self.bindings.created_requests(receipt)
        request_log.remember(cast("Vault", self), created, receipt)
        request_id = created[0].id
        return RequestRef(
            request_id, self._executed_in(receipt, request_id), TxResult.from_receipt(receipt)
        )

    def _executed_in(self, receipt: TxReceipt, request_id: int) -> bool:
        return request_id in self.bindings.executed_request_ids(receipt)

    def propose_add_agent(
        self,
        sender: BaseAccount,
        agent: str,
        valid_after: int = 0,
        valid_until: int = 0,
        allowlist: bool = False,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose adding ``agent`` (validity window in unix seconds, 0 = open)."""
        address = checksum(agent, "agent address")
        return self.propose(
            sender, "addAgent", address, valid_after, valid_until, allowlist, ref=ref
        )

    def propose_set_limits(
        self,
        sender: BaseAccount,
        agent: str,
        token: str | None,
        max_per_payment: int,
        allowance: int,
        period: int,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose the agent's limits for ``token`` (base units; ``period`` seconds)."""
        address, token_address = checksum(agent, "agent address"), self.token(token).address
        limits = (max_per_payment, allowance, period)
        return self.propose(sender, "setLimits", address, token_address, *limits, ref=ref)

    def propose_allow_recipient(
        self, sender: BaseAccount, agent: str, recipient: str, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose adding ``recipient`` to the agent's allowlist."""
        address, to = checksum(agent, "agent address"), checksum(recipient, "recipient address")
        return self.propose(sender, "allowRecipient", address, to, ref=ref)

    def propose_unpause(self, sender: BaseAccount, ref: str | bytes | None = None) -> RequestRef:
        """Propose unpausing the vault."""
        return self.propose(sender, "unpause", ref=ref)

    def propose_unpause_agent(
        self, sender: BaseAccount, agent: str, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose unpausing a paused agent."""
        return self.propose(sender, "unpauseAgent", checksum(agent, "agent address"), ref=ref)

    def propose_add_owner(
        self, sender: BaseAccount, owner: str, threshold: int, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose adding ``owner`` and setting the threshold."""
        return self.propose(
            sender, "addOwner", checksum(owner, "owner address"), threshold, ref=ref
        )

    def propose_remove_owner(
        self, sender: BaseAccount, owner: str, threshold: int, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose removing ``owner`` and setting the threshold."""
        return self.propose(
            sender, "removeOwner", checksum(owner, "owner address"), threshold, ref=ref
        )

    def propose_swap_owner(
        self, sender: BaseAccount, old: str, new: str, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose replacing owner ``old`` by ``new`` at the same place (the threshold stays;
        ``old``'s approvals stop counting)."""
        pair = (checksum(old, "old owner address"), checksum(new, "new owner address"))
        return self.propose(sender, "swapOwner", *pair, ref=ref)

    def propose_change_threshold(
        self, sender: BaseAccount, threshold: int, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose a new threshold."""
        return self.propose(sender, "changeThreshold", threshold, ref=ref)

    def propose_replace_agent_key(
        self, sender: BaseAccount, old: str, new: str, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose moving an agent's rights from key ``old`` (lost or leaked) to ``new``: the
        owners' rotation, for when the old key cannot sign a ``rotateAgentKey`` itself."""
        pair = (checksum(old, "old agent key"), checksum(new, "new agent key"))
        return self.propose(sender, "replaceAgentKey", *pair, ref=ref)

    # ------------------------------------------------------------------ signed batches

    def governance_nonce_space(self) -> str:
        """The nonce space of signed governance batches (``governanceNonceSpace``)."""
        return checksum(str(self.contract.functions.governanceNonceSpace().call()))

    def governance_nonce(self, calls: Sequence[bytes], deadline: int) -> int:
        """The unused governance nonce a batch gets: derived from the batch (co-signers agree),
        the first free bit from there in the lowest word with one (batches do not collide)."""
        space = self.governance_nonce_space()
        seed = nonces.governance_seed([bytes(c) for c in calls], deadline)
        return nonces.pick_nonce(lambda word: self.bindings.nonce_bitmap(space, word), seed)

    def governance_digest(self, calls: Sequence[bytes], nonce: int, deadline: int) -> bytes:
        """The vault's own EIP-712 digest of the batch (``governanceDigest``)."""
        fn = self.contract.functions.governanceDigest([bytes(c) for c in calls], nonce, deadline)
        return bytes(fn.call())

    def governance_typed_data(
        self, calls: Sequence[bytes], nonce: int, deadline: int, *, wallet: bool = False
    ) -> dict[str, Any]:
        """The full EIP-712 ``Governance`` message owners sign for ``executeGovernance``
        (``wallet``: as ``eth_signTypedData_v4`` JSON for any wallet)."""
        domain = self.bindings.eip712_domain()
        message = typed_data.governance_message(domain, [bytes(c) for c in calls], nonce, deadline)
        return typed_data.wallet_json(message) if wallet else message

    def governance_draft(
        self, calls: Sequence[bytes], nonce: int | None = None, deadline: int | None = None
    ) -> tuple[list[bytes], int, int]:
        """The batch as it will be signed: ``calls`` checked, ``deadline`` defaulted
        (:func:`default_deadline`), ``nonce`` defaulted (:meth:`governance_nonce`)."""
        batch = [bytes(c) for c in calls]
        if not batch:
            raise AgentWalletError("a governance batch needs at least one call")
        for data in batch:
            call = self.bindings.decode_call(data)
            if call is None or call.name not in GOVERNANCE_FUNCTIONS:
                raise AgentWalletError(
                    f"0x{data[:4].hex()} is not a governance call of this vault: build the calls "
                    "with Vault.governance_call"
                )
        deadline = default_deadline(self.chain.timestamp()) if deadline is None else deadline
        if nonce is None:
            nonce = self.governance_nonce(batch, deadline)
        return batch, int(nonce), int(deadline)

    def sign_governance(
        self,
        signer: BaseAccount,
        calls: Sequence[bytes],
        nonce: int | None = None,
        deadline: int | None = None,
    ) -> SignedGovernance:
        """Sign, as an owner, a batch of governance calls (from :meth:`governance_call`) that
        runs in one transaction once the threshold signed it. Checks the digest equals the
        vault's ``governanceDigest`` before signing; nothing is sent."""
        from agentwallet.signing import sign_typed

        batch, nonce, deadline = self.governance_draft(calls, nonce, deadline)
        message = self.governance_typed_data(batch, nonce, deadline)
        signature = sign_typed(signer, message, self.governance_digest(batch, nonce, deadline))
        return SignedGovernance(
            self.address,
            self.chain.chain_id,
            tuple(HexBytes(c).to_0x_hex() for c in batch),
            nonce,
            deadline,
            checksum(str(signer.address)),
            signature,
        )

    def execute_governance(
        self, sender: BaseAccount, signed: Sequence[SignedGovernance]
    ) -> TxResult:
        """Submit owners' signatures of one governance batch (anyone may send it). All must sign
        the same batch, for this vault and chain, with an unused nonce, before the deadline;
        each ECDSA signature must be by its claimed signer. Checked before anything is sent."""
        from agentwallet.signing import checked_set

        chosen = checked_set(
            cast("Vault", self),
            signed,
            what="batch",
            fields="calls",
            space=self.governance_nonce_space(),
            used="governance nonce {nonce} is already used: this batch ran already, or "
            "governance invalidated it",
            how="Vault.sign_governance",
        )
        first = signed[0]
        batch = first.call_data()
        signatures.verify_claimed(
            self.governance_digest(batch, first.nonce, first.deadline), chosen
        )
        flags = any((c := self.bindings.decode_call(d)) and c.name in _FLAG_CALLS for d in batch)
        margin = self._flag_rewrite_margin(self.bindings.agents()) if flags else 0
        packed = signatures.packed(chosen)
        receipt = self._send(
            sender,
            "executeGovernance",
            batch,
            first.nonce,
            first.deadline,
            packed,
            extra_gas=margin,
        )
        return TxResult.from_receipt(receipt)
