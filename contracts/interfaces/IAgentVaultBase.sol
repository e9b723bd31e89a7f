// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAgentVaultBase
/// @notice Types, events and errors shared by every part of an AgentVault (core, admin, lens).
/// @dev Token `address(0)` means ETH. Amounts are in the token's base units. An agent is known by
/// its key (the address that signs) and by its *lineage*, a number fixed when the agent is added
/// that survives key rotation: its allowlist, its open requests and its sub-agents hang off the
/// lineage, its limits and budgets off the current key.
interface IAgentVaultBase {
    // ------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------

    /// @notice Lifecycle of an agent key. `None`: never added. `Revoked`: ended by an owner (its
    /// open requests die with it). `Rotated`: the key handed its rights to a new key.
    enum AgentStatus {
        None,
        Active,
        Paused,
        Revoked,
        Rotated
    }

    /// @notice Lifecycle of a request (an agent's escalated payment or an owners' governance
    /// proposal). `Expired` is only stored once someone calls expire; a `Pending` request past its
    /// `expiresAt` can no longer be approved or executed either way. `AgentRevoked` is never
    /// stored: it is what a pending payment request of a revoked agent is. `Closed`: the request
    /// is no longer pending and its storage slot now holds a later request of the same agent (its
    /// final status is in its event).
    enum RequestStatus {
        None,
        Pending,
        Executed,
        Rejected,
        Cancelled,
        Expired,
        AgentRevoked,
        Closed
    }

    /// @notice An agent key's vault-wide settings.
    struct AgentInfo {
        AgentStatus status;
        bool useAllowlist; // when true, recipients not on the agent's allowlist escalate
        uint40 validAfter; // payments revert before this time
        uint40 validUntil; // payments revert after this time; 0 = no end
        uint16 openRequests; // pending payment requests of the agent's lineage
        uint32 lineage; // stable across key rotation; a re-added key gets a new one
        address parent; // the agent that delegated to this one; 0 = added by the owners
    }

    /// @notice An agent's limits for one token, as returned by {IAgentVaultAdmin-getPolicy}.
    struct PolicyView {
        uint256 maxPerPayment; // largest single payment that runs without a human
        uint256 allowance; // budget that refills continuously over `period`
        uint32 period; // seconds; 0 = the token is out of the agent's scope
        uint256 available; // what the agent could spend in one payment right now (ignoring maxPerPayment)
    }

    /// @notice An agent's escalated payment as it was requested (every field is in
    /// {PaymentRequested}). The vault stores only a hash of it, at `slot` (a storage place the
    /// agent's lineage reuses once a request there closes); every call that acts on it takes it
    /// whole and checks the hash. Owners sign this struct (EIP-712) to approve it off-chain.
    struct PaymentRequest {
        uint256 id;
        address agent; // the key that asked
        uint32 lineage; // the agent's lineage (stable across key rotation)
        uint64 slot;
        address token;
        address to;
        uint256 amount;
        bytes32 ref;
        uint32 reasons;
        uint40 expiresAt;
    }

    /// @notice An owner's governance proposal: a call on the vault itself (every field is in
    /// {GovernanceProposed}). `dataHash` is `keccak256` of the call; the EIP-712 type owners sign
    /// names it `bytes data`.
    struct GovernanceProposal {
        uint256 id;
        address proposer;
        bytes32 dataHash;
        bytes32 ref;
        uint40 expiresAt;
    }

    /// @notice An agent's scoped contract call that escalated (every field is in {CallRequested},
    /// `dataHash` = keccak256 of the call data; the EIP-712 type names it `bytes data`). Stored
    /// as a hash in a slot of the agent's lineage, like a {PaymentRequest}.
    struct CallRequest {
        uint256 id;
        address agent;
        uint32 lineage;
        uint64 slot;
        address target;
        uint256 value;
        bytes32 dataHash;
        address spendToken;
        uint256 spendAmount;
        bytes32 ref;
        uint32 reasons;
        uint40 expiresAt;
    }

    /// @notice A payment the owners sign off-chain ({IAgentVaultCore-payWithSignatures}). `agent` is
    /// attribution only (may be 0). `nonce` is any unused nonce of the owners' payment space.
    struct SignedPayment {
        address agent;
        address token;
        address to;
        uint256 amount;
        bytes32 ref;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A payment an agent signs off-chain for anyone to submit ({IAgentVaultCore-payWithIntent}).
    /// The signer is the agent. `nonce` is any unused nonce of the agent key's space. `maxFee` is the
    /// most the submitter may take in the same token, counted with `amount` against the agent's limits.
    struct Intent {
        address token;
        address to;
        uint256 amount;
        bytes32 ref;
        uint256 nonce;
        uint256 deadline;
        uint256 maxFee;
    }

    // ------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------

    /// @notice Funds arrived through {IAgentVaultCore-deposit} or a plain ETH transfer. `amount` is what the vault received.
    event Deposited(address indexed from, address indexed token, uint256 amount);

    /// @notice An agent was added or re-configured through governance (`requestId` 0 when the
    /// change came from owners' signatures), or one owner switched its allowlist on (`requestId` 0).
    event AgentConfigured(
        address indexed agent,
        uint32 indexed lineage,
        uint40 validAfter,
        uint40 validUntil,
        bool useAllowlist,
        uint256 requestId
    );

    /// @notice An agent was paused or revoked by one owner (`by`, requestId 0), or unpaused through
    /// governance (`by` = the vault).
    event AgentStatusChanged(address indexed agent, AgentStatus status, address indexed by, uint256 requestId);

    /// @notice An agent's key moved to `newKey`: by the agent itself (`by` = the old key, with both
    /// keys' signatures) or through governance (`by` = the vault). Limits, budgets, allowlist,
    /// tokens and open requests moved with it; `oldKey` can no longer act.
    event AgentRotated(address indexed oldKey, address indexed newKey, uint32 indexed lineage, address by);

    /// @notice `parent` (or governance for it, `by` = the vault) added `child` as its sub-agent.
    event SubAgentAdded(address indexed parent, address indexed child, uint32 indexed lineage, address by);

    /// @notice A per-recipient budget of `agent` in `token` changed (`recipient` 0: the default for
    /// every recipient without its own; `period` 0: removed).
    event RecipientBudgetChanged(
        address indexed agent,
        address indexed token,
        address indexed recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period,
        address by,
        uint256 requestId
    );

    /// @notice Revoking `agent` closed its `count` open requests: none of them can be approved or executed.
    event OpenRequestsClosed(address indexed agent, uint32 indexed lineage, uint256 count);

    /// @notice An agent's limits for `token` changed. Raises come through governance (`by` = the
    /// vault); reductions and removals are one owner's call (`requestId` 0). `period` 0 means
    /// removed from scope. `available` is what the agent can spend right after the change: never
    /// more than the budget the word held right before it (for a token re-granted after a
    /// removal or a re-add, the budget kept through it).
    event LimitsChanged(
        address indexed agent,
        address indexed token,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period,
        uint256 available,
        address by,
        uint256 requestId
    );

    /// @notice A recipient was added to (`allowed` true, through governance) or removed from (one
    /// owner) an agent's allowlist.
    event RecipientChanged(
        address indexed agent, address indexed recipient, bool allowed, address by, uint256 requestId
    );

    /// @notice Funds left the vault for an agent: directly inside its limits (sent by the agent or
    /// relayed from its signed intent), or by an executed payment request (then {RequestExecuted}
    /// with the request's id follows in the same transaction).
    event PaymentExecuted(address indexed agent, address indexed token, address indexed to, uint256 amount, bytes32 ref);

    /// @notice The submitter of an agent's intent took `fee` (counted against the agent's limits).
    event RelayFeePaid(address indexed agent, address indexed token, address indexed relayer, uint256 fee, bytes32 ref);

    /// @notice An agent's payment escalated into a request. `reasons` is a bitmask of REASON_* bits.
    /// Together with `requestId` these fields are the {PaymentRequest}.
    event PaymentRequested(
        uint256 indexed requestId,
        address indexed agent,
        address indexed token,
        uint32 lineage,
        uint64 slot,
        address to,
        uint256 amount,
        bytes32 ref,
        uint32 reasons,
        uint40 expiresAt
    );

    /// @notice An agent's scoped call escalated into a request (the {CallRequest}, with `data`).
    event CallRequested(
        uint256 indexed requestId,
        address indexed agent,
        address indexed target,
        uint32 lineage,
        uint64 slot,
        uint256 value,
        address spendToken,
        uint256 spendAmount,
        bytes32 ref,
        uint32 reasons,
        uint40 expiresAt,
        bytes data
    );

    /// @notice The vault called `target` for `agent`: inside its call permissions (`requestId` 0)
    /// or as an executed call request. `spent` is what left the vault in `spendToken` (at most the
    /// approved `spendAmount`, which the agent's budget was charged), `value` the ETH sent.
    event CallExecuted(
        address indexed agent,
        address indexed target,
        bytes4 indexed selector,
        uint256 value,
        address spendToken,
        uint256 spent,
        bytes32 ref,
        uint256 requestId
    );

    /// @notice An agent's permission to call `selector` on `target` changed (`period` 0: revoked).
    event CallPermissionChanged(
        address indexed agent,
        address indexed target,
        bytes4 indexed selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period,
        address by,
        uint256 requestId
    );

    /// @notice An owner proposed a governance call on the vault ({GovernanceProposal}, with
    /// `dataHash` = keccak256(data)).
    event GovernanceProposed(
        uint256 indexed requestId, address indexed proposer, bytes32 ref, uint40 expiresAt, bytes data
    );

    /// @notice An owner approved a request on-chain. `approvals` counts the valid approvals at that moment.
    event RequestApproved(uint256 indexed requestId, address indexed owner, uint256 approvals);

    /// @notice An owner rejected a request. A payment request closes at the first rejection; a
    /// governance proposal closes (`closed`) once so many owners rejected it that the threshold can
    /// no longer be reached.
    event RequestRejected(uint256 indexed requestId, address indexed owner, uint256 rejections, bool closed);

    /// @notice The agent withdrew its own pending payment request.
    event RequestCancelled(uint256 indexed requestId, address indexed agent);

    /// @notice A request passed its expiry and was marked expired.
    event RequestExpired(uint256 indexed requestId);

    /// @notice A request reached the threshold and its action ran. `executor` sent the transaction;
    /// `signers` are the owners who authorised it, by on-chain approval or off-chain signature.
    event RequestExecuted(uint256 indexed requestId, address indexed executor, address[] signers);

    /// @notice A payment authorised by owner signatures alone ({IAgentVaultCore-payWithSignatures}),
    /// without a stored request. `agent` is the attribution the owners signed (may be 0).
    event SignedPaymentExecuted(
        address indexed agent, address indexed token, address indexed to, uint256 amount, bytes32 ref, address[] signers
    );

    /// @notice A batch of governance calls ran on the strength of owners' signatures
    /// ({IAgentVaultAdmin-executeGovernance}, the calls in its input); the calls' own events precede
    /// it, with requestId 0.
    event GovernanceExecuted(uint256 indexed nonce, address indexed executor, address[] signers);

    /// @notice Nonces of `space` were marked used without being spent (an agent key, or the owners'
    /// payment or governance space), by the space itself, an owner, or governance.
    event NoncesInvalidated(address indexed space, uint256 wordPos, uint256 mask, address indexed by);

    event OwnerAdded(address indexed owner, uint256 indexed requestId);
    event OwnerRemoved(address indexed owner, uint256 indexed requestId);
    event ThresholdChanged(uint256 threshold, uint256 indexed requestId);
    event RequestExpiryChanged(uint256 requestExpiry, uint256 indexed requestId);
    event MaxOpenRequestsChanged(uint256 maxOpenRequests, uint256 indexed requestId);
    event VaultPaused(address indexed by);
    event VaultUnpaused(uint256 indexed requestId);

    // ------------------------------------------------------------------------------------------
    // Errors (each carries the offending values)
    // ------------------------------------------------------------------------------------------

    error AlreadyInitialized();
    error NotDelegateCall();
    error NotOwner(address caller);
    error OnlyVault(address caller);
    error VaultIsPaused();
    error ZeroAddress();
    error ZeroAmount();
    error AgentNotActive(address agent, AgentStatus status);
    error AgentNotYetValid(address agent, uint40 validAfter);
    error AgentExpired(address agent, uint40 validUntil);
    error AgentIsOwner(address account);
    error InvalidAgent(address account);
    error InvalidValidity(uint40 validAfter, uint40 validUntil);
    error TooManyOpenRequests(address agent, uint256 open, uint256 max);
    error LimitTooLarge(uint256 value, uint256 max);
    error InvalidPeriod(uint256 period);
    error LimitNotReduced(uint256 current, uint256 proposed);
    error TokenNotInScope(address agent, address token);
    error UnknownRequest(uint256 requestId);
    error RequestMismatch(uint256 requestId);
    error DataMismatch(uint256 requestId);
    error RequestNotPending(uint256 requestId, RequestStatus status);
    error RequestHasExpired(uint256 requestId, uint40 expiresAt);
    error RequestNotExpired(uint256 requestId, uint40 expiresAt);
    error AlreadyApproved(uint256 requestId, address owner);
    error AlreadyRejected(uint256 requestId, address owner);
    error NotEnoughApprovals(uint256 requestId, uint256 approvals, uint256 threshold);
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    error SignersNotSorted(address previous, address signer);
    error InvalidSignature(address signer);
    error NotRequestAgent(uint256 requestId, address caller);
    error InsufficientBalance(address token, uint256 balance, uint256 amount);
    error EthTransferFailed(address to, uint256 amount);
    error InvalidThreshold(uint256 threshold, uint256 owners);
    error AlreadyOwner(address owner);
    error NotAnOwner(address account);
    error TooManyOwners(uint256 owners, uint256 max);
    error InvalidRequestExpiry(uint256 requestExpiry);
    error InvalidMaxOpenRequests(uint256 maxOpenRequests);
    error NotGovernanceCall(bytes4 selector);
    error UnknownAgent(address agent);
    error SignatureExpired(uint256 deadline);
    error TooManyAgents(uint256 max);
    error TooManyTokens(address agent, uint256 max);
    error NonceAlreadyUsed(address space, uint256 nonce);
    error NotNonceAuthority(address space, address caller);
    error FeeTooHigh(uint256 fee, uint256 maxFee);
    error UnsupportedExecutionMode(bytes32 mode);
    error ExecutionMismatch(uint256 index);
    error InvalidPermissionContext(uint256 index);
    error LengthMismatch();
    error PaymentOutsidePolicy(address agent, uint32 reasons);
    error InvalidNewKey(address account);
    error CounterOverflow();
    error TooDeep(uint256 maxDepth);
    error TooManySubAgents(address parent, uint256 max);
    error ExceedsParent(address parent, address token);
    error ForbiddenCall(address target, bytes4 selector);
    error CallFailed(address target, bytes reason);
    error CallOverspent(address token, uint256 spent, uint256 allowed);
    error EmptyBatch();
}
