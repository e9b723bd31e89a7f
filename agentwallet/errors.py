"""The agentwallet exception hierarchy.

Every error raised on purpose by agentwallet derives from :class:`AgentWalletError`, and its
message says what went wrong and how to fix it. The CLI turns these into a one-line
``error: <message>`` and exit code 1.

* AgentWalletError
  + ConfigurationError - a setting (environment variable, option, file) is missing or invalid
  + CompilerError - no Solidity compiler, contracts that do not compile, a missing artifact
  + ChainConnectionError - the JSON-RPC node cannot be reached or answered badly
    - NodeUnavailableError - the node failed during ``pay`` before anything was sent
  + NodeNotFoundError - anvil is not installed or cannot start
  + NotADevelopmentChainError - snapshots, time travel, dev accounts, faucet on a real chain
  + SnapshotError
  + TransactionFailedError - mined but reverted (status 0); ``.receipt``
  + AmountError, DurationError, InvalidAddressError - bad input (also ``ValueError``)
  + KeyStoreError
    - UnknownKeyError, WrongPasswordError, InsecureKeystoreError, KeyExistsError,
      PasswordRequiredError
  + UnknownVaultError, UnknownTokenError, NotAVaultError, ChainMismatchError - deployments
  + InsufficientGasError - the sender cannot pay for gas (nothing was sent)
  + InsufficientFundsError - the vault or the sender holds too little of the token
    - InsufficientBalanceError (also a ContractRevertError)
  + SignatureMismatchError - a local EIP-712 digest or signer differs from the vault's view
  + PaymentPendingError - broadcast, not confirmed yet: retry with the same ref
    - PaymentOutcomeUnknownError - the receipt wait timed out or the node died after the
      broadcast: it MAY have been sent; ``.ref``, ``.tx_hash``
    - RefPendingElsewhereError - exactly once: the ref is in the node's pool from another
      process or machine (nothing was sent by this call); ``.ref``
  + RefCancelledError - exactly once: the ref's intent nonce was invalidated (never pays)
  + NonceConflictError - the key's nonce was taken by another sender (nothing was sent)
  + JournalError - the payment journal cannot be written, or an entry is damaged (nothing
    was sent); ``.path``
  + RefReusedError - a ref already names another payment of this agent; ``.earlier``
  + IntentRefusedError - an intent or rotation refused before any gas was spent (by the SDK or
    a relay); ``.code`` (machine-readable), ``.status`` (HTTP status at a relay)
  + RelayError - a relay could not be reached or answered badly
  + ContractRevertError - a contract call reverts; ``.error_name``, ``.args_by_name``, ``.data``
    - one subclass per vault error, named after it plus ``Error`` (:data:`REVERT_ERRORS`):
      e.g. NotOwnerError, VaultIsPausedError, AgentNotActiveError, LimitTooLargeError,
      RequestNotPendingError, NotEnoughApprovalsError, InsufficientBalanceError,
      NonceAlreadyUsedError, FeeTooHighError, ExceedsParentError, ForbiddenCallError
  + AuditError (:mod:`agentwallet.audit.errors`) - index, block range, log reads, what-if

Build a revert error with :meth:`ContractRevertError.from_error` (the Solidity name and
arguments), or from raw revert data with :func:`agentwallet.bindings.reverts.decode_revert`;
never by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agentwallet.protocol.constants import (
    MAX_OPEN_REQUESTS_CAP,
    MAX_OWNERS,
    AgentStatus,
    RequestStatus,
    reason_texts,
)


class AgentWalletError(Exception):
    """Base class of every error agentwallet raises on purpose."""


class ConfigurationError(AgentWalletError):
    """A setting (environment variable, option, file) is missing or invalid."""


class CompilerError(AgentWalletError):
    """The Solidity compiler is missing, or the contracts do not compile."""


class ChainConnectionError(AgentWalletError):
    """The JSON-RPC node cannot be reached or answered badly."""


class NodeNotFoundError(AgentWalletError):
    """The local development node (anvil) is not installed or cannot be started."""


class NotADevelopmentChainError(AgentWalletError):
    """A development-only operation (snapshot, time travel, dev accounts) on a real chain."""


class SnapshotError(AgentWalletError):
    """A snapshot id that does not exist (or was consumed by an earlier revert)."""


class TransactionFailedError(AgentWalletError):
    """A transaction was mined but reverted (receipt status 0). ``receipt`` holds the receipt."""

    def __init__(self, message: str, *, receipt: object = None) -> None:
        super().__init__(message)
        self.receipt = receipt


# ---------------------------------------------------------------------------------------------
# SDK errors: input, keys, deployments, funds
# ---------------------------------------------------------------------------------------------


class AmountError(AgentWalletError, ValueError):
    """An amount that is negative, malformed, or has more decimals than the token."""


class DurationError(AgentWalletError, ValueError):
    """A duration that is not like ``30s``, ``15m``, ``12h``, ``1d``, ``2w`` or plain seconds."""


class InvalidAddressError(AgentWalletError, ValueError):
    """Text that is not a 20-byte hex address (or has a wrong EIP-55 checksum)."""


class KeyStoreError(AgentWalletError):
    """Base class of the keystore errors."""


class UnknownKeyError(KeyStoreError):
    """No keystore with that name."""


class WrongPasswordError(KeyStoreError):
    """The password does not decrypt the keystore."""


class InsecureKeystoreError(KeyStoreError):
    """A keystore file readable or writable by group or others."""


class KeyExistsError(KeyStoreError):
    """A keystore with that name already exists."""


class PasswordRequiredError(KeyStoreError):
    """No password given and ``AGENTWALLET_PASSWORD`` is not set."""


class UnknownVaultError(AgentWalletError):
    """A vault name that is not in the deployments record."""


class UnknownTokenError(AgentWalletError):
    """A token symbol that is not in the deployments record."""


class NotAVaultError(AgentWalletError):
    """An address with no AgentVault behind it."""


class ChainMismatchError(AgentWalletError):
    """A deployments record written for another chain id."""


class InsufficientGasError(AgentWalletError):
    """The sending account has not enough ETH to pay for gas."""


class InsufficientFundsError(AgentWalletError):
    """The vault (or the sender) holds less of the token than the operation needs."""


class SignatureMismatchError(AgentWalletError):
    """A locally computed EIP-712 digest or signer differs from the vault's view (its
    ``paymentRequestDigest``, ``proposalDigest``, ``signedPaymentDigest``)."""


class PaymentPendingError(AgentWalletError):
    """A payment was broadcast but its receipt did not arrive in time; retry with the same ref."""


class PaymentOutcomeUnknownError(PaymentPendingError):
    """The payment's transaction was signed, journaled and handed to the node, then the client
    lost sight of it: the receipt wait timed out, or the node stopped answering. The payment MAY
    have been sent: never pay again with a new ref; retry ``pay`` with the same ``ref`` (it
    finishes that exact transaction) or look at ``AgentWallet.payment_state(ref)``.
    ``ref`` is the ref's text, ``tx_hash`` the journaled transaction's hash (0x hex)."""

    def __init__(self, message: str, *, ref: str = "", tx_hash: str = "") -> None:
        super().__init__(message)
        self.ref = ref
        self.tx_hash = tx_hash


class RefPendingElsewhereError(PaymentPendingError):
    """An exactly-once payment's ref is already in the node's pool, sent by another process or
    machine with the same agent key, and not mined yet. Nothing was sent by this call: wait and
    retry ``pay`` with the same ref (it then answers that payment). ``ref`` is the ref's text."""

    def __init__(self, message: str, *, ref: str = "") -> None:
        super().__init__(message)
        self.ref = ref


class RefCancelledError(AgentWalletError):
    """The ref's derived intent nonce is spent without a payment (it was invalidated): this ref
    can never pay. Nothing was sent; use a new ref."""


class NodeUnavailableError(ChainConnectionError):
    """The node failed before the payment was handed to it (connection refused or reset, an
    HTTP error, a JSON-RPC error): nothing was sent by this call. Retry ``pay`` with the same
    ref once the node answers."""


class NonceConflictError(AgentWalletError):
    """The node refused a freshly signed transaction because its nonce was already used by
    another transaction of the same key (another process or wallet signing with it). Nothing
    was sent; retrying picks the next free nonce."""


class JournalError(AgentWalletError):
    """The payment journal could not be written (disk full, file size limit, read-only or
    unwritable directory), or an entry cannot be read (damaged: ``path`` names it, and it is
    left in place). Raised before anything is broadcast: nothing was sent and no partial file
    is left; fix the journal directory (``$AGENTWALLET_HOME/journal``) and retry with the same
    ref."""

    def __init__(self, message: str, *, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class RefReusedError(AgentWalletError):
    """A payment ref (idempotency key) this agent already used for a *different* payment
    (recipient, amount or token). Nothing was sent; ``earlier`` is the earlier payment's outcome
    (a ``Paid``/``Escalated``) or, while it is pending, its journaled transaction hash."""

    def __init__(self, message: str, earlier: object = None) -> None:
        super().__init__(message)
        self.earlier = earlier


class IntentRefusedError(AgentWalletError):
    """An agent's intent or rotation was refused before any gas was spent: malformed, expired,
    replayed (nonce used), signed for another vault or chain or by a key that is not an active
    agent, a fee above ``maxFee``, or a payment the vault would refuse. ``code`` is the
    machine-readable reason (``expired``, ``nonce_used``, ...), ``status`` the HTTP status a
    relay answers with."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class RelayError(AgentWalletError):
    """A relay could not be reached, or answered with something that is not its JSON API."""


# ---------------------------------------------------------------------------------------------
# Contract reverts
# ---------------------------------------------------------------------------------------------


class ContractRevertError(AgentWalletError):
    """A contract call reverted. ``error_name`` is the Solidity error (``"Error"`` for a
    ``require`` string, ``"Panic"`` for a panic, ``""`` if unknown); ``args_by_name`` its
    decoded arguments; ``data`` the raw revert data."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        error_name: str = "",
        args_by_name: dict[str, object] | None = None,
        data: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.args_by_name: dict[str, object] = dict(args_by_name or {})
        self.data = data

    @classmethod
    def from_error(
        cls,
        name: str | None = None,
        args: Mapping[str, object] | None = None,
        *,
        data: bytes = b"",
        format_amount: Callable[[str, int], str] | None = None,
        message: str | None = None,
    ) -> ContractRevertError:
        """The typed error for the Solidity error ``name(args)`` (``name`` defaults to this
        class's): the :data:`REVERT_ERRORS` class, or a plain :class:`ContractRevertError` for a
        name agentwallet does not know. The message is the one ``decode_revert`` writes
        (``format_amount(token, amount)`` renders token amounts), unless ``message`` is given
        for a check agentwallet made itself before asking the contract."""
        name = name or cls.__name__.removesuffix("Error")
        error_cls = REVERT_ERRORS.get(name, ContractRevertError)
        arguments = dict(args or {})
        if message is None:
            parts = [_describe_arg(k, v, name) for k, v in arguments.items()]
            if name == "InsufficientBalance" and format_amount is not None:
                token = str(arguments["token"])
                parts = [
                    f"vault holds {format_amount(token, int(str(arguments['balance'])))}",
                    f"needs {format_amount(token, int(str(arguments['amount'])))}",
                ]
            hint = f": {error_cls.hint}" if error_cls.hint else ""
            message = f"the contract reverted with {name}({', '.join(parts)}){hint}"
        return error_cls(message, error_name=name, args_by_name=arguments, data=data)


class AlreadyInitializedError(ContractRevertError):
    hint = "the vault is already initialised"


class NotOwnerError(ContractRevertError):
    hint = "send it from one of the vault's owners (check `--as`)"


class OnlyVaultError(ContractRevertError):
    hint = "risk-adding calls only run through an approved governance request: use propose"


class VaultIsPausedError(ContractRevertError):
    hint = "the vault is paused; owners unpause it with a governance request (propose unpause)"


class ZeroAddressError(ContractRevertError):
    hint = "the zero address is not allowed here"


class ZeroAmountError(ContractRevertError):
    hint = "the amount must be greater than zero"


class AgentNotActiveError(ContractRevertError):
    hint = "the agent is not active (paused or revoked): ask the owners"


class AgentNotYetValidError(ContractRevertError):
    hint = "the agent's validity window has not started yet"


class AgentExpiredError(ContractRevertError):
    hint = "the agent's validity window has ended: the owners must re-add it"


class AgentIsOwnerError(ContractRevertError):
    hint = "an owner cannot be an agent, and an agent cannot become an owner"


class InvalidAgentError(ContractRevertError):
    hint = "that address cannot be an agent"


class InvalidValidityError(ContractRevertError):
    hint = "valid_until must be 0 or after valid_after"


class TooManyOpenRequestsError(ContractRevertError):
    hint = "the agent has too many pending requests: wait for owners to decide or cancel some"


class LimitTooLargeError(ContractRevertError):
    hint = "limits are at most 2^88-1 base units"


class InvalidPeriodError(ContractRevertError):
    hint = "the period must be between 1 second and 2^29-1 seconds (17 years)"


class LimitNotReducedError(ContractRevertError):
    hint = "reduce_limits only lowers limits; raising one needs a set-limits proposal"


class UnknownRequestError(ContractRevertError):
    hint = "no request with that id: list them with `requests`"


class RequestNotPendingError(ContractRevertError):
    hint = "the request was already decided (or its agent was revoked)"


class RequestHasExpiredError(ContractRevertError):
    hint = "the request expired: the agent must pay again to open a new one"


class RequestNotExpiredError(ContractRevertError):
    hint = "the request has not expired yet"


class AlreadyApprovedError(ContractRevertError):
    hint = "this owner already approved the request; another owner must approve"


class NotEnoughApprovalsError(ContractRevertError):
    hint = "collect approvals from more owners"


class SignersNotSortedError(ContractRevertError):
    hint = "signatures must be sorted by signer address, ascending and distinct"


class InvalidSignatureError(ContractRevertError):
    hint = "the signature does not match (wrong vault, chain, request or payment?)"


class NotRequestAgentError(ContractRevertError):
    hint = "only the agent that created a payment request (its current key) can cancel it"


class InsufficientBalanceError(ContractRevertError, InsufficientFundsError):
    hint = "fund the vault with `fund`"


class EthTransferFailedError(ContractRevertError):
    hint = "the recipient refused the ETH transfer"


class InvalidThresholdError(ContractRevertError):
    hint = "the threshold must be between 1 and the number of owners"


class AlreadyOwnerError(ContractRevertError):
    hint = "that address is already an owner"


class NotAnOwnerError(ContractRevertError):
    hint = "that address is not an owner of the vault"


class TooManyOwnersError(ContractRevertError):
    hint = f"a vault has at most {MAX_OWNERS} owners"


class InvalidRequestExpiryError(ContractRevertError):
    hint = "request expiry must be between 1 hour and 365 days"


class InvalidMaxOpenRequestsError(ContractRevertError):
    hint = f"max open requests must be between 1 and {MAX_OPEN_REQUESTS_CAP}"


class NotGovernanceCallError(ContractRevertError):
    hint = "only risk-adding vault functions can be proposed"


class UnknownAgentError(ContractRevertError):
    hint = "that address was never added as an agent"


class SignatureExpiredError(ContractRevertError):
    hint = "the owners' signatures are past their deadline: ask them to sign again"


class TooManyAgentsError(ContractRevertError):
    hint = "the vault holds its maximum number of agents: revoke one it no longer needs"


class TooManyTokensError(ContractRevertError):
    hint = "the agent has limits for its maximum number of tokens: remove one it no longer needs"


class TokenNotInScopeError(ContractRevertError):
    hint = "the token is not in the agent's scope: nothing to lower or remove"


class RequestMismatchError(ContractRevertError):
    hint = (
        "the request given differs from the one the vault stores: pass it exactly as its "
        "creation event gave it"
    )


class DataMismatchError(ContractRevertError):
    hint = "the call given is not the one proposed: pass the proposal's call as proposed"


class AlreadyRejectedError(ContractRevertError):
    hint = "this owner already rejected the proposal; another owner must reject"


class NotEnoughSignaturesError(ContractRevertError):
    hint = "collect signatures from more owners"


class NonceAlreadyUsedError(ContractRevertError):
    hint = "that nonce was spent (or invalidated) already: sign again with an unused nonce"


class NotNonceAuthorityError(ContractRevertError):
    hint = "only the space itself, an owner (not for the governance space) or governance may"


class NotDelegateCallError(ContractRevertError):
    hint = "call the vault (the clone), not one of its parts directly"


class FeeTooHighError(ContractRevertError):
    hint = "the relayer's fee exceeds the intent's maxFee"


class ExecutionMismatchError(ContractRevertError):
    hint = "the execution is not exactly the transfer the agent's intent names"


class UnsupportedExecutionModeError(ContractRevertError):
    hint = "only the ERC-7579 single-call default mode (bytes32 0) is supported"


class InvalidPermissionContextError(ContractRevertError):
    hint = "the permission context is not abi.encode(Intent, signature)"


class LengthMismatchError(ContractRevertError):
    hint = "contexts, modes and executions must have the same length"


class PaymentOutsidePolicyError(ContractRevertError):
    hint = "the payment is outside the agent's limits; a delegation redeemer cannot escalate it"


class InvalidNewKeyError(ContractRevertError):
    hint = "the new key must never have been an agent or an owner of this vault"


class CounterOverflowError(ContractRevertError):
    hint = "a vault counter is exhausted"


class TooDeepError(ContractRevertError):
    hint = "sub-agents nest at most three levels below an owners' agent"


class TooManySubAgentsError(ContractRevertError):
    hint = "that agent already has its maximum number of sub-agents"


class ExceedsParentError(ContractRevertError):
    hint = "a sub-agent's limits cannot exceed its parent's (nor refill faster)"


class EmptyBatchError(ContractRevertError):
    hint = "a governance batch needs at least one call"


class ForbiddenCallError(ContractRevertError):
    hint = (
        "the vault never calls itself, a token it holds limits for, or a selector that moves "
        "tokens around a budget (transfer, approve, permit, ...): pay through the vault instead"
    )


class CallFailedError(ContractRevertError):
    hint = "the target contract reverted; its reason (up to 256 bytes) is in the error"


class CallOverspentError(ContractRevertError):
    hint = "more left the vault during the call than the agent approved: nothing was spent"


#: Solidity error name -> exception class: every direct subclass of
#: :class:`ContractRevertError` above, named after its Solidity error plus ``Error``
#: (``tests/test_compiler.py`` checks that every error in the vault's ABI has one).
REVERT_ERRORS: dict[str, type[ContractRevertError]] = {
    cls.__name__.removesuffix("Error"): cls for cls in ContractRevertError.__subclasses__()
}


def _describe_arg(name: str, value: object, error_name: str) -> str:
    if name == "status" and isinstance(value, int):
        if error_name == "AgentNotActive":
            return f"status={AgentStatus.text_of(value)}"
        if error_name == "RequestNotPending":
            return f"status={RequestStatus.text_of(value)}"
    if name == "reasons" and isinstance(value, int) and error_name == "PaymentOutsidePolicy":
        return f"reasons={', '.join(reason_texts(value)) or value}"
    if isinstance(value, bytes):
        return f"{name}=0x{value.hex()}"
    return f"{name}={value}"
