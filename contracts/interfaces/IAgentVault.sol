// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAgentVault
/// @notice A vault that holds ETH and ERC-20 funds for its human owners and lets agent addresses
/// spend inside scoped limits. Every payment outside an agent's limits becomes a request that
/// needs M-of-N owner approvals. Reducing risk is one owner's call; adding risk needs the threshold
/// and goes through the same request machinery (a request whose action is a call on the vault).
/// @dev Token `address(0)` means ETH. Amounts are in the token's base units.
interface IAgentVault {
    // ------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------

    /// @notice Lifecycle of an agent. `None` is an address that was never added.
    enum AgentStatus {
        None,
        Active,
        Paused,
        Revoked
    }

    /// @notice Lifecycle of a request. `Expired` is only stored once someone calls {expire};
    /// a `Pending` request past its `expiresAt` can no longer be approved or executed either way.
    enum RequestStatus {
        None,
        Pending,
        Executed,
        Rejected,
        Cancelled,
        Expired
    }

    /// @notice `Payment`: an escalated agent payment. `Governance`: a threshold-gated call on the vault itself.
    enum RequestKind {
        Payment,
        Governance
    }

    /// @notice An agent's vault-wide settings (one storage word).
    struct AgentInfo {
        AgentStatus status;
        uint40 validAfter; // payments revert before this time
        uint40 validUntil; // payments revert after this time; 0 = no end
        bool useAllowlist; // when true, recipients not on the agent's allowlist escalate
        uint16 openRequests; // pending payment requests created by this agent
    }

    /// @notice An agent's limits for one token, as returned by {getPolicy}.
    struct PolicyView {
        uint256 maxPerPayment; // largest single payment that runs without a human
        uint256 allowance; // budget that refills continuously over `period`
        uint32 period; // seconds; 0 = the token is out of the agent's scope
        uint256 available; // what the agent could spend in one payment right now (ignoring maxPerPayment)
    }

    /// @notice A request as stored. For `Governance` requests, `agent` is the proposing owner,
    /// `to` is the vault and `data` is the call on the vault.
    struct Request {
        RequestKind kind;
        RequestStatus status;
        address agent;
        uint40 createdAt;
        uint40 expiresAt;
        uint32 reasons;
        address token;
        address to;
        uint256 amount;
        bytes32 ref;
        bytes data;
    }

    // ------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------

    /// @notice Funds arrived through {deposit} or a plain ETH transfer. `amount` is what the vault received.
    event Deposited(address indexed from, address indexed token, uint256 amount);

    /// @notice An agent was added or re-configured through a request, or one owner switched its
    /// allowlist on ({enforceAllowlist}, requestId 0).
    event AgentConfigured(
        address indexed agent, uint40 validAfter, uint40 validUntil, bool useAllowlist, uint256 indexed requestId
    );

    /// @notice An agent was paused or revoked by one owner (`by`, requestId 0), or unpaused through a
    /// request (`by` = the vault).
    event AgentStatusChanged(address indexed agent, AgentStatus status, address indexed by, uint256 requestId);

    /// @notice An agent's limits for `token` changed. Raises come through a request (`by` = the vault);
    /// reductions and removals are one owner's call (`requestId` 0). `period` 0 means removed from scope.
    event LimitsChanged(
        address indexed agent,
        address indexed token,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period,
        address by,
        uint256 requestId
    );

    /// @notice A recipient was added to (`allowed` true, through a request) or removed from (one owner)
    /// an agent's allowlist.
    event RecipientChanged(
        address indexed agent, address indexed recipient, bool allowed, address by, uint256 requestId
    );

    /// @notice Funds left the vault: directly inside an agent's limits (`requestId` 0) or by an
    /// executed payment request.
    event PaymentExecuted(
        address indexed agent, address indexed token, address indexed to, uint256 amount, bytes32 ref, uint256 requestId
    );

    /// @notice A payment escalated or an owner proposed a governance call. `reasons` is a bitmask of
    /// REASON_* constants (0 for governance).
    event RequestCreated(
        uint256 indexed requestId,
        address indexed agent,
        address indexed token,
        RequestKind kind,
        address to,
        uint256 amount,
        bytes32 ref,
        uint32 reasons,
        uint40 expiresAt,
        bytes data
    );

    /// @notice An owner approved a request, on-chain or by an off-chain signature (`viaSignature`).
    /// `approvals` counts the valid approvals at that moment.
    event RequestApproved(
        uint256 indexed requestId, address indexed owner, uint256 approvals, bool viaSignature, bytes32 ref
    );

    /// @notice A payment authorised by owner signatures alone ({payWithSignatures}), without a
    /// stored request. `agent` is the attribution the owners signed (may be 0), `signers` the owners.
    event SignedPaymentExecuted(
        address indexed agent,
        address indexed token,
        address indexed to,
        uint256 amount,
        bytes32 ref,
        uint256 nonce,
        address[] signers
    );

    /// @notice One owner rejected a request; it can never execute.
    event RequestRejected(uint256 indexed requestId, address indexed owner, bytes32 ref);

    /// @notice The agent withdrew its own pending request.
    event RequestCancelled(uint256 indexed requestId, address indexed agent, bytes32 ref);

    /// @notice A request passed its expiry and was marked expired.
    event RequestExpired(uint256 indexed requestId, bytes32 ref);

    /// @notice A request reached the threshold and its action ran. `executor` sent the transaction.
    event RequestExecuted(uint256 indexed requestId, address indexed executor, uint256 approvals, bytes32 ref);

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
    error UnknownRequest(uint256 requestId);
    error RequestNotPending(uint256 requestId, RequestStatus status);
    error RequestHasExpired(uint256 requestId, uint40 expiresAt);
    error RequestNotExpired(uint256 requestId, uint40 expiresAt);
    error AlreadyApproved(uint256 requestId, address owner);
    error NotEnoughApprovals(uint256 requestId, uint256 approvals, uint256 threshold);
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

    // ------------------------------------------------------------------------------------------
    // Set-up
    // ------------------------------------------------------------------------------------------

    /// @notice Initialises a fresh clone once. Called by the factory in the creating transaction.
    /// @param owners distinct non-zero owners, at most MAX_OWNERS
    /// @param threshold approvals needed, 1..owners.length
    /// @param requestExpiry seconds a request stays open (1 hour .. 365 days)
    /// @param maxOpenRequests pending payment requests one agent may have open (1..1000)
    function initialize(address[] calldata owners, uint256 threshold, uint256 requestExpiry, uint256 maxOpenRequests)
        external;

    /// @notice Deposit `amount` of an ERC-20 (needs an allowance). ETH is deposited by plain transfer.
    /// Emits {Deposited} with the amount actually received (fee-on-transfer tokens credit less).
    function deposit(address token, uint256 amount) external;

    // ------------------------------------------------------------------------------------------
    // Agents
    // ------------------------------------------------------------------------------------------

    /// @notice Pay `amount` of `token` to `to`, sent by an agent. Inside every limit the transfer runs
    /// at once and 0 is returned. Outside any limit a request is created (reasons in the event) and
    /// its id returned. Reverts for a paused vault, or an agent that is not active or outside its
    /// validity window, or when the agent already has `maxOpenRequests` pending requests.
    /// @param ref the caller's reference (invoice id, idempotency key); appears in every event about the payment
    function pay(address token, address to, uint256 amount, bytes32 ref) external returns (uint256 requestId);

    /// @notice The agent withdraws its own pending request.
    function cancel(uint256 requestId) external;

    // ------------------------------------------------------------------------------------------
    // Co-signing
    // ------------------------------------------------------------------------------------------

    /// @notice An owner proposes a threshold-gated call on the vault itself (add agent, raise a
    /// limit, add a recipient, unpause, owners, threshold, expiry). The proposer's approval is counted.
    function propose(bytes calldata data, bytes32 ref) external returns (uint256 requestId);

    /// @notice An owner approves a pending request. The approval that reaches the threshold executes
    /// the request in the same transaction; if the action cannot run (e.g. not enough funds) the
    /// whole call reverts and the approval is not recorded.
    function approve(uint256 requestId) external;

    /// @notice Executes a pending request whose valid on-chain approvals meet the threshold in force
    /// now (e.g. after a deposit or after the threshold was lowered). Anyone may call it.
    function execute(uint256 requestId) external;

    /// @notice Executes a pending request with owner EIP-712 signatures over {requestDigest}
    /// collected off-chain.
    /// @param signatures the threshold's worth of owner signatures, packed as in Safe: 65 bytes each,
    /// `r | s | v`, ordered by signer address strictly ascending (so no owner counts twice), every
    /// signer a current owner. `v` 27/28: an EOA's ECDSA signature (low `s` only). `v` 0: an
    /// ERC-1271 owner (a contract such as a Safe); `r` is its address and `s` the byte offset in
    /// `signatures` of its signature, stored there as a 32-byte length and the bytes, after the
    /// 65-byte parts. Signatures beyond the threshold are ignored.
    function executeWithSignatures(uint256 requestId, bytes calldata signatures) external;

    /// @notice Pays at once with owner EIP-712 signatures over `SignedPayment(address agent,address
    /// token,address to,uint256 amount,bytes32 ref,uint256 nonce,uint256 deadline)`, no stored
    /// request. `nonce` is {signedPaymentNonce} (one vault-wide sequence, so a signature set is good
    /// for one payment only). Anyone may send it (e.g. a relayer); the vault must not be paused.
    /// @param signatures packed as for {executeWithSignatures}
    function payWithSignatures(
        address agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint256 deadline,
        bytes calldata signatures
    ) external;

    /// @notice One owner rejects a pending request; it can never execute.
    function reject(uint256 requestId) external;

    /// @notice Marks a pending request past its expiry as expired (anyone), freeing the agent's slot.
    function expire(uint256 requestId) external;

    // ------------------------------------------------------------------------------------------
    // Risk-reducing actions: any single owner, instant
    // ------------------------------------------------------------------------------------------

    function pause() external;
    function pauseAgent(address agent) external;
    function revokeAgent(address agent) external;
    /// @notice Lowers an agent's limits for a token; each new value must be <= the current one.
    function reduceLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance) external;
    /// @notice Takes a token out of an agent's scope: every later payment in it escalates.
    function removeToken(address agent, address token) external;
    function removeRecipient(address agent, address recipient) external;
    /// @notice Switches an agent's recipient allowlist on.
    function enforceAllowlist(address agent) external;

    // ------------------------------------------------------------------------------------------
    // Risk-adding actions: only the vault itself, through an executed governance request
    // ------------------------------------------------------------------------------------------

    function addAgent(address agent, uint40 validAfter, uint40 validUntil, bool useAllowlist) external;
    function unpauseAgent(address agent) external;
    function setLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external;
    function allowRecipient(address agent, address recipient) external;
    function unpause() external;
    function addOwner(address owner, uint256 threshold) external;
    function removeOwner(address owner, uint256 threshold) external;
    function changeThreshold(uint256 threshold) external;
    function setRequestExpiry(uint256 requestExpiry) external;
    function setMaxOpenRequests(uint256 maxOpenRequests) external;

    // ------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------

    function getOwners() external view returns (address[] memory);
    function isOwner(address account) external view returns (bool);
    function threshold() external view returns (uint256);
    function paused() external view returns (bool);
    function requestExpiry() external view returns (uint256);
    function maxOpenRequests() external view returns (uint256);
    function requestCount() external view returns (uint256);
    /// @notice The nonce the next {payWithSignatures} must be signed over.
    function signedPaymentNonce() external view returns (uint256);
    /// @notice The EIP-712 digest owners sign for {payWithSignatures} with the current nonce.
    function signedPaymentDigest(
        address agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint256 deadline
    ) external view returns (bytes32);
    function getAgent(address agent) external view returns (AgentInfo memory);
    /// @notice Agents that are active or paused (revoked ones leave the list), at most MAX_AGENTS.
    function getAgents() external view returns (address[] memory);
    /// @notice Tokens an agent has limits for, at most MAX_TOKENS_PER_AGENT.
    function getAgentTokens(address agent) external view returns (address[] memory);
    function getPolicy(address agent, address token) external view returns (PolicyView memory);
    function isRecipientAllowed(address agent, address recipient) external view returns (bool);
    function getRequest(uint256 requestId) external view returns (Request memory);
    /// @notice Valid on-chain approvals of a request by current owners.
    function approvalCount(uint256 requestId) external view returns (uint256);
    function hasApproved(uint256 requestId, address owner) external view returns (bool);
    /// @notice The EIP-712 digest owners sign to approve `requestId` off-chain.
    function requestDigest(uint256 requestId) external view returns (bytes32);
    /// @notice Dry run of {pay} for `agent`: the escalation reasons (0 = would pay directly).
    /// Does not check pause, status, validity or balance; callers check those separately.
    function checkPayment(address agent, address token, address to, uint256 amount)
        external
        view
        returns (uint32 reasons);
}
