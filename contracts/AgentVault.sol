// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IAgentVault} from "./interfaces/IAgentVault.sol";

/// @title AgentVault
/// @notice Scoped agent spending with escalation to M-of-N human co-signers. Deployed once as an
/// implementation and used through minimal clones made by {AgentVaultFactory}; immutable, no upgrades.
/// @dev Invariants (tested in tests/contracts):
/// - Funds leave the vault only through {pay} inside the agent's limits, or through an executed
///   payment request that reached the threshold in force at execution.
/// - Per agent and token, direct payments never exceed `allowance` in a burst and never exceed
///   `allowance * (1 + t / period)` over any window of length t (continuously refilling budget).
/// - Every state change emits an event; risk-adding changes carry the id of the request that made them.
/// - An approval counts only while its owner is still the same owner (owner epoch), and only
///   approvals of current owners count toward the current threshold.
contract AgentVault is IAgentVault, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using TransientSlot for *;

    // ------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------

    /// @notice Escalation reason bits carried by {RequestCreated} and returned by {checkPayment}.
    uint32 public constant REASON_OVER_PER_PAYMENT = 1;
    uint32 public constant REASON_OVER_ALLOWANCE = 2;
    uint32 public constant REASON_RECIPIENT_NOT_ALLOWED = 4;
    uint32 public constant REASON_TOKEN_NOT_IN_SCOPE = 8;

    uint256 public constant MAX_OWNERS = 20;
    /// @notice Largest per-payment limit or allowance a policy can hold (2^88 - 1 base units).
    uint256 public constant MAX_LIMIT = (1 << 88) - 1;
    uint256 public constant MIN_REQUEST_EXPIRY = 1 hours;
    uint256 public constant MAX_REQUEST_EXPIRY = 365 days;
    uint256 public constant MAX_OPEN_REQUESTS_CAP = 1000;
    /// @notice Agents a vault can hold at once (active or paused; revoked ones leave the list), and
    /// tokens one agent can have limits for. They bound what {pause} has to rewrite.
    uint256 public constant MAX_AGENTS = 64;
    uint256 public constant MAX_TOKENS_PER_AGENT = 8;

    /// @notice EIP-712 type owners sign to approve a request off-chain.
    bytes32 public constant REQUEST_TYPEHASH = keccak256(
        "Request(uint256 requestId,uint8 kind,address agent,address token,address to,uint256 amount,bytes32 ref,bytes32 dataHash,uint256 expiresAt)"
    );

    /// @notice EIP-712 type owners sign for {payWithSignatures}.
    bytes32 public constant SIGNED_PAYMENT_TYPEHASH = keccak256(
        "SignedPayment(address agent,address token,address to,uint256 amount,bytes32 ref,uint256 nonce,uint256 deadline)"
    );

    address private constant SENTINEL = address(1);
    bytes32 private constant EMPTY_HASH = keccak256("");
    /// @dev Transient slot holding the id of the governance request being executed.
    bytes32 private constant EXECUTING_SLOT = keccak256("agentwallet.AgentVault.executingRequest");

    // Policy word layout: | maxPerPayment (88) | allowance (88) | period (32) | ALLOWLIST | FAST | tat (46) |
    // `tat` is the theoretical arrival time of the budget (GCRA) in 1/256 s: the budget is full when
    // tat <= now; each payment of x moves tat forward by x * period / allowance; a payment runs only
    // if the new tat stays within one period of now. Equivalent to a token bucket of size `allowance`
    // refilling at allowance/period, kept in one storage word.
    // FAST caches, in the word {pay} reads anyway, that every other rule holds: the vault is not
    // paused, the agent is active, past its `validAfter` and has no `validUntil`, and the token is in
    // scope. ALLOWLIST (meaningful with FAST) mirrors the agent's `useAllowlist`. Every action that
    // changes one of those rewrites the flags of the agent's words ({_setFlags}); a word without FAST
    // takes the full checks, and a payment that passes them sets FAST again when it may.
    uint256 private constant PERIOD_SHIFT = 48;
    uint256 private constant ALLOWANCE_SHIFT = 80;
    uint256 private constant MAX_SHIFT = 168;
    uint256 private constant TIME_SCALE_BITS = 8;
    uint256 private constant TAT_MASK = (1 << 46) - 1;
    uint256 private constant FAST = 1 << 46;
    uint256 private constant ALLOWLIST = 1 << 47;
    uint256 private constant FLAGS = FAST | ALLOWLIST;
    uint256 private constant MASK_32 = (1 << 32) - 1;
    uint256 private constant MASK_88 = (1 << 88) - 1;

    // ------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------

    /// @dev Vault-wide settings, one word.
    struct Config {
        uint8 threshold;
        uint8 ownerCount;
        bool paused;
        uint32 requestExpiry;
        uint16 maxOpenRequests;
        uint64 ownerEpoch;
        uint64 requestCount;
        uint32 signedNonce;
    }

    /// @dev A request as stored: slot 0 holds everything its lifecycle touches.
    struct StoredRequest {
        address agent;
        uint40 createdAt;
        uint40 expiresAt;
        RequestKind kind;
        RequestStatus status;
        address token;
        uint32 reasons;
        address to;
        uint256 amount;
        bytes32 ref;
        bytes data;
    }

    Config private _config;
    /// @dev Owners as a linked list from SENTINEL: value = next owner | epoch << 160.
    mapping(address => uint256) private _owners;
    mapping(address => AgentInfo) private _agents;
    mapping(address => mapping(address => uint256)) private _policies;
    mapping(address => mapping(address => bool)) private _allowlist;
    mapping(uint256 => StoredRequest) private _requests;
    /// @dev requestId => owner => owner epoch at the time of approval (0 = none).
    mapping(uint256 => mapping(address => uint256)) private _approvals;
    /// @dev Agents not revoked, and each one's index + 1 in that list (0 = not listed).
    address[] private _agentList;
    mapping(address => uint256) private _agentPosition;
    /// @dev Tokens each agent has limits for (period != 0), the words {_setFlags} rewrites.
    mapping(address => address[]) private _agentTokens;

    // ------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------

    modifier onlyOwner() {
        if (!_isOwner(msg.sender)) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyVault() {
        if (msg.sender != address(this)) revert OnlyVault(msg.sender);
        _;
    }

    /// @dev Locks the implementation: only clones can be initialised.
    constructor() EIP712("AgentVault", "1") {
        _config.threshold = type(uint8).max;
    }

    // ------------------------------------------------------------------------------------------
    // Set-up and deposits
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function initialize(address[] calldata owners, uint256 threshold_, uint256 requestExpiry_, uint256 maxOpen)
        external
    {
        if (_config.threshold != 0) revert AlreadyInitialized();
        uint256 n = owners.length;
        if (n > MAX_OWNERS) revert TooManyOwners(n, MAX_OWNERS);
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        _checkRequestExpiry(requestExpiry_);
        _checkMaxOpen(maxOpen);
        address next = SENTINEL;
        // Build the list back to front so each owner's slot is written once.
        for (uint256 i = n; i > 0; --i) {
            address owner = owners[i - 1];
            // No agents exist yet, so only the owner list itself needs checking.
            if (owner == address(0) || owner == SENTINEL || owner == address(this)) revert ZeroAddress();
            if (_owners[owner] != 0) revert AlreadyOwner(owner);
            _owners[owner] = uint256(uint160(next)) | (i << 160);
            next = owner;
            emit OwnerAdded(owner, 0);
        }
        _owners[SENTINEL] = uint256(uint160(next));
        _config = Config({
            threshold: uint8(threshold_),
            ownerCount: uint8(n),
            paused: false,
            requestExpiry: uint32(requestExpiry_),
            maxOpenRequests: uint16(maxOpen),
            ownerEpoch: uint64(n),
            requestCount: 0,
            signedNonce: 0
        });
        emit ThresholdChanged(threshold_, 0);
        emit RequestExpiryChanged(requestExpiry_, 0);
        emit MaxOpenRequestsChanged(maxOpen, 0);
    }

    /// @notice Plain ETH transfers are deposits.
    receive() external payable {
        emit Deposited(msg.sender, address(0), msg.value);
    }

    /// @inheritdoc IAgentVault
    function deposit(address token, uint256 amount) external nonReentrant {
        if (token == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(msg.sender, token, IERC20(token).balanceOf(address(this)) - before);
    }

    // ------------------------------------------------------------------------------------------
    // Agents
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function pay(address token, address to, uint256 amount, bytes32 ref)
        external
        nonReentrant
        returns (uint256 requestId)
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 word = _policies[msg.sender][token];
        uint32 reasons;
        uint256 newWord;
        if (word & FAST != 0) {
            // Vault, agent status, validity window and scope already hold (see FAST): one word read.
            (reasons, newWord) = _evaluate(word, amount);
            if (word & ALLOWLIST != 0 && !_allowlist[msg.sender][to]) reasons |= REASON_RECIPIENT_NOT_ALLOWED;
        } else {
            if (_config.paused) revert VaultIsPaused();
            AgentInfo memory agent = _agents[msg.sender];
            _checkAgentCanPay(msg.sender, agent);
            (reasons, newWord) = _evaluate(word, amount);
            if (agent.useAllowlist && !_allowlist[msg.sender][to]) reasons |= REASON_RECIPIENT_NOT_ALLOWED;
            newWord = (newWord & ~FLAGS) | _flags(agent, false);
        }

        // slither-disable-next-line incorrect-equality (a bitmask, not derived from time equality)
        if (reasons == 0) {
            _policies[msg.sender][token] = newWord;
            if (token == address(0)) {
                if (address(this).balance < amount) revert InsufficientBalance(token, address(this).balance, amount);
                (bool ok,) = to.call{value: amount}("");
                if (!ok) revert EthTransferFailed(to, amount);
            } else {
                IERC20(token).safeTransfer(to, amount);
            }
            emit PaymentExecuted(msg.sender, token, to, amount, ref, 0);
            return 0;
        }
        return _createPaymentRequest(_agents[msg.sender], token, to, amount, ref, reasons);
    }

    /// @inheritdoc IAgentVault
    function cancel(uint256 requestId) external nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        if (r.agent != msg.sender) revert NotRequestAgent(requestId, msg.sender);
        _close(r, RequestStatus.Cancelled);
        emit RequestCancelled(requestId, msg.sender, r.ref);
    }

    // ------------------------------------------------------------------------------------------
    // Co-signing
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function propose(bytes calldata data, bytes32 ref) external onlyOwner nonReentrant returns (uint256 requestId) {
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        if (!_isGovernanceSelector(selector)) revert NotGovernanceCall(selector);
        requestId = _newRequest(RequestKind.Governance, address(0), address(this), 0, ref, 0, data);
        _approve(requestId, _requests[requestId]);
    }

    /// @inheritdoc IAgentVault
    function approve(uint256 requestId) external onlyOwner nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        _checkNotExpired(requestId, r);
        _approve(requestId, r);
    }

    /// @inheritdoc IAgentVault
    function execute(uint256 requestId) external nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        _checkNotExpired(requestId, r);
        uint256 approvals = _countApprovals(requestId);
        uint256 t = _config.threshold;
        if (approvals < t) revert NotEnoughApprovals(requestId, approvals, t);
        _execute(requestId, r, approvals);
    }

    /// @inheritdoc IAgentVault
    function executeWithSignatures(uint256 requestId, bytes calldata signatures) external nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        _checkNotExpired(requestId, r);
        uint256 t = _config.threshold;
        address[] memory signers = _checkSignatures(requestId, _requestDigest(requestId, r), signatures, t);
        bytes32 ref = r.ref;
        for (uint256 i = 0; i < t; ++i) {
            emit RequestApproved(requestId, signers[i], i + 1, true, ref);
        }
        _execute(requestId, r, t);
    }

    /// @inheritdoc IAgentVault
    function payWithSignatures(
        address agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint256 deadline,
        bytes calldata signatures
    ) external nonReentrant {
        Config memory c = _config;
        if (c.paused) revert VaultIsPaused();
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 nonce = c.signedNonce;
        _config.signedNonce = c.signedNonce + 1;
        bytes32 digest = _signedPaymentDigest(agent, token, to, amount, ref, nonce, deadline);
        address[] memory signers = _checkSignatures(0, digest, signatures, c.threshold);
        if (token == address(0)) {
            if (address(this).balance < amount) revert InsufficientBalance(token, address(this).balance, amount);
            // slither-disable-next-line arbitrary-send-eth (`to` is authorised by threshold owner signatures above)
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert EthTransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
        emit SignedPaymentExecuted(agent, token, to, amount, ref, nonce, signers);
    }

    /// @inheritdoc IAgentVault
    function reject(uint256 requestId) external onlyOwner nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        _close(r, RequestStatus.Rejected);
        emit RequestRejected(requestId, msg.sender, r.ref);
    }

    /// @inheritdoc IAgentVault
    function expire(uint256 requestId) external nonReentrant {
        StoredRequest storage r = _requests[requestId];
        _checkPending(requestId, r);
        if (block.timestamp <= r.expiresAt) revert RequestNotExpired(requestId, r.expiresAt);
        _close(r, RequestStatus.Expired);
        emit RequestExpired(requestId, r.ref);
    }

    // ------------------------------------------------------------------------------------------
    // Risk-reducing actions: one owner
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function pause() external onlyOwner {
        _config.paused = true;
        uint256 n = _agentList.length;
        for (uint256 i = 0; i < n; ++i) {
            _setFlags(_agentList[i], 0);
        }
        emit VaultPaused(msg.sender);
    }

    /// @inheritdoc IAgentVault
    function pauseAgent(address agent) external onlyOwner {
        AgentInfo storage a = _knownAgent(agent);
        if (a.status != AgentStatus.Active) revert AgentNotActive(agent, a.status);
        a.status = AgentStatus.Paused;
        _setFlags(agent, 0);
        emit AgentStatusChanged(agent, AgentStatus.Paused, msg.sender, 0);
    }

    /// @inheritdoc IAgentVault
    function revokeAgent(address agent) external onlyOwner {
        AgentInfo storage a = _knownAgent(agent);
        if (a.status == AgentStatus.Revoked) revert AgentNotActive(agent, a.status);
        a.status = AgentStatus.Revoked;
        _setFlags(agent, 0);
        _unlistAgent(agent);
        emit AgentStatusChanged(agent, AgentStatus.Revoked, msg.sender, 0);
    }

    /// @inheritdoc IAgentVault
    function reduceLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance)
        external
        onlyOwner
    {
        _knownAgent(agent);
        uint256 word = _policies[agent][token];
        uint256 period = (word >> PERIOD_SHIFT) & MASK_32;
        if (period == 0) revert InvalidPeriod(0);
        uint256 currentMax = word >> MAX_SHIFT;
        uint256 currentAllowance = (word >> ALLOWANCE_SHIFT) & MASK_88;
        if (maxPerPayment > currentMax) revert LimitNotReduced(currentMax, maxPerPayment);
        if (allowance > currentAllowance) revert LimitNotReduced(currentAllowance, allowance);
        _policies[agent][token] = _rewritePolicy(word, maxPerPayment, allowance, period) | (word & FLAGS);
        emit LimitsChanged(agent, token, maxPerPayment, allowance, uint32(period), msg.sender, 0);
    }

    /// @inheritdoc IAgentVault
    function removeToken(address agent, address token) external onlyOwner {
        _knownAgent(agent);
        // keep only the budget state, so re-adding the token cannot refill a spent budget
        uint256 word = _policies[agent][token];
        _policies[agent][token] = word & TAT_MASK;
        if ((word >> PERIOD_SHIFT) & MASK_32 != 0) _unlistToken(agent, token);
        emit LimitsChanged(agent, token, 0, 0, 0, msg.sender, 0);
    }

    /// @inheritdoc IAgentVault
    function removeRecipient(address agent, address recipient) external onlyOwner {
        _knownAgent(agent);
        _allowlist[agent][recipient] = false;
        emit RecipientChanged(agent, recipient, false, msg.sender, 0);
    }

    /// @inheritdoc IAgentVault
    function enforceAllowlist(address agent) external onlyOwner {
        AgentInfo storage a = _knownAgent(agent);
        a.useAllowlist = true;
        _setFlags(agent, _flags(a, _config.paused));
        emit AgentConfigured(agent, a.validAfter, a.validUntil, true, 0);
    }

    // ------------------------------------------------------------------------------------------
    // Risk-adding actions: only through an executed governance request
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function addAgent(address agent, uint40 validAfter, uint40 validUntil, bool useAllowlist) external onlyVault {
        if (agent == address(0) || agent == address(this) || agent == SENTINEL) revert InvalidAgent(agent);
        if (_isOwner(agent)) revert AgentIsOwner(agent);
        if (validUntil != 0 && validUntil <= validAfter) revert InvalidValidity(validAfter, validUntil);
        AgentInfo storage a = _agents[agent];
        a.status = AgentStatus.Active;
        a.validAfter = validAfter;
        a.validUntil = validUntil;
        a.useAllowlist = useAllowlist;
        if (_agentPosition[agent] == 0) {
            if (_agentList.length >= MAX_AGENTS) revert TooManyAgents(MAX_AGENTS);
            _agentList.push(agent);
            _agentPosition[agent] = _agentList.length;
        }
        _setFlags(agent, _flags(a, _config.paused));
        emit AgentConfigured(agent, validAfter, validUntil, useAllowlist, _executing());
    }

    /// @inheritdoc IAgentVault
    function unpauseAgent(address agent) external onlyVault {
        AgentInfo storage a = _knownAgent(agent);
        if (a.status != AgentStatus.Paused) revert AgentNotActive(agent, a.status);
        a.status = AgentStatus.Active;
        _setFlags(agent, _flags(a, _config.paused));
        emit AgentStatusChanged(agent, AgentStatus.Active, address(this), _executing());
    }

    /// @inheritdoc IAgentVault
    function setLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external
        onlyVault
    {
        AgentInfo storage a = _knownAgent(agent);
        if (maxPerPayment > MAX_LIMIT) revert LimitTooLarge(maxPerPayment, MAX_LIMIT);
        if (allowance > MAX_LIMIT) revert LimitTooLarge(allowance, MAX_LIMIT);
        if (period == 0) revert InvalidPeriod(period);
        uint256 word = _policies[agent][token];
        if ((word >> PERIOD_SHIFT) & MASK_32 == 0) {
            if (_agentTokens[agent].length >= MAX_TOKENS_PER_AGENT) {
                revert TooManyTokens(agent, MAX_TOKENS_PER_AGENT);
            }
            _agentTokens[agent].push(token);
        }
        _policies[agent][token] =
            _rewritePolicy(word, maxPerPayment, allowance, period) | _flags(a, _config.paused);
        emit LimitsChanged(agent, token, maxPerPayment, allowance, period, address(this), _executing());
    }

    /// @inheritdoc IAgentVault
    function allowRecipient(address agent, address recipient) external onlyVault {
        _knownAgent(agent);
        if (recipient == address(0)) revert ZeroAddress();
        _allowlist[agent][recipient] = true;
        emit RecipientChanged(agent, recipient, true, address(this), _executing());
    }

    /// @inheritdoc IAgentVault
    function unpause() external onlyVault {
        _config.paused = false;
        uint256 n = _agentList.length;
        for (uint256 i = 0; i < n; ++i) {
            address agent = _agentList[i];
            _setFlags(agent, _flags(_agents[agent], false));
        }
        emit VaultUnpaused(_executing());
    }

    /// @inheritdoc IAgentVault
    function addOwner(address owner, uint256 threshold_) external onlyVault {
        Config memory c = _config;
        if (c.ownerCount >= MAX_OWNERS) revert TooManyOwners(uint256(c.ownerCount) + 1, MAX_OWNERS);
        _checkNewOwner(owner);
        uint256 count = uint256(c.ownerCount) + 1;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        uint64 epoch = c.ownerEpoch + 1;
        _owners[owner] = (_owners[SENTINEL] & type(uint160).max) | (uint256(epoch) << 160);
        _owners[SENTINEL] = uint256(uint160(owner));
        c.ownerCount = uint8(count);
        c.ownerEpoch = epoch;
        uint256 requestId = _executing();
        emit OwnerAdded(owner, requestId);
        if (threshold_ != c.threshold) {
            c.threshold = uint8(threshold_);
            emit ThresholdChanged(threshold_, requestId);
        }
        _config = c;
    }

    /// @inheritdoc IAgentVault
    function removeOwner(address owner, uint256 threshold_) external onlyVault {
        if (!_isOwner(owner)) revert NotAnOwner(owner);
        Config memory c = _config;
        uint256 count = uint256(c.ownerCount) - 1;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        address previous = SENTINEL;
        while (address(uint160(_owners[previous])) != owner) {
            previous = address(uint160(_owners[previous]));
        }
        uint256 prevWord = _owners[previous];
        _owners[previous] = (prevWord & ~uint256(type(uint160).max)) | (_owners[owner] & type(uint160).max);
        delete _owners[owner];
        c.ownerCount = uint8(count);
        uint256 requestId = _executing();
        emit OwnerRemoved(owner, requestId);
        if (threshold_ != c.threshold) {
            c.threshold = uint8(threshold_);
            emit ThresholdChanged(threshold_, requestId);
        }
        _config = c;
    }

    /// @inheritdoc IAgentVault
    function changeThreshold(uint256 threshold_) external onlyVault {
        uint256 count = _config.ownerCount;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        _config.threshold = uint8(threshold_);
        emit ThresholdChanged(threshold_, _executing());
    }

    /// @inheritdoc IAgentVault
    function setRequestExpiry(uint256 requestExpiry_) external onlyVault {
        _checkRequestExpiry(requestExpiry_);
        _config.requestExpiry = uint32(requestExpiry_);
        emit RequestExpiryChanged(requestExpiry_, _executing());
    }

    /// @inheritdoc IAgentVault
    function setMaxOpenRequests(uint256 maxOpen) external onlyVault {
        _checkMaxOpen(maxOpen);
        _config.maxOpenRequests = uint16(maxOpen);
        emit MaxOpenRequestsChanged(maxOpen, _executing());
    }

    // ------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVault
    function getOwners() external view returns (address[] memory owners) {
        owners = new address[](_config.ownerCount);
        address current = address(uint160(_owners[SENTINEL]));
        for (uint256 i = 0; current != SENTINEL; ++i) {
            owners[i] = current;
            current = address(uint160(_owners[current]));
        }
    }

    /// @inheritdoc IAgentVault
    function isOwner(address account) external view returns (bool) {
        return _isOwner(account);
    }

    /// @inheritdoc IAgentVault
    function threshold() external view returns (uint256) {
        return _config.threshold;
    }

    /// @inheritdoc IAgentVault
    function paused() external view returns (bool) {
        return _config.paused;
    }

    /// @inheritdoc IAgentVault
    function requestExpiry() external view returns (uint256) {
        return _config.requestExpiry;
    }

    /// @inheritdoc IAgentVault
    function maxOpenRequests() external view returns (uint256) {
        return _config.maxOpenRequests;
    }

    /// @inheritdoc IAgentVault
    function requestCount() external view returns (uint256) {
        return _config.requestCount;
    }

    /// @inheritdoc IAgentVault
    function signedPaymentNonce() external view returns (uint256) {
        return _config.signedNonce;
    }

    /// @inheritdoc IAgentVault
    function signedPaymentDigest(
        address agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint256 deadline
    ) external view returns (bytes32) {
        return _signedPaymentDigest(agent, token, to, amount, ref, _config.signedNonce, deadline);
    }

    /// @inheritdoc IAgentVault
    function getAgent(address agent) external view returns (AgentInfo memory) {
        return _agents[agent];
    }

    /// @inheritdoc IAgentVault
    function getAgents() external view returns (address[] memory) {
        return _agentList;
    }

    /// @inheritdoc IAgentVault
    function getAgentTokens(address agent) external view returns (address[] memory) {
        return _agentTokens[agent];
    }

    /// @inheritdoc IAgentVault
    function getPolicy(address agent, address token) external view returns (PolicyView memory p) {
        uint256 word = _policies[agent][token];
        p.maxPerPayment = word >> MAX_SHIFT;
        p.allowance = (word >> ALLOWANCE_SHIFT) & MASK_88;
        p.period = uint32((word >> PERIOD_SHIFT) & MASK_32);
        p.available = _available(word);
    }

    /// @inheritdoc IAgentVault
    function isRecipientAllowed(address agent, address recipient) external view returns (bool) {
        return _allowlist[agent][recipient];
    }

    /// @inheritdoc IAgentVault
    function getRequest(uint256 requestId) external view returns (Request memory req) {
        StoredRequest storage r = _requests[requestId];
        req = Request({
            kind: r.kind,
            status: r.status,
            agent: r.agent,
            createdAt: r.createdAt,
            expiresAt: r.expiresAt,
            reasons: r.reasons,
            token: r.token,
            to: r.to,
            amount: r.amount,
            ref: r.ref,
            data: r.data
        });
    }

    /// @inheritdoc IAgentVault
    function approvalCount(uint256 requestId) external view returns (uint256) {
        return _countApprovals(requestId);
    }

    /// @inheritdoc IAgentVault
    function hasApproved(uint256 requestId, address owner) external view returns (bool) {
        uint256 word = _owners[owner];
        return owner != SENTINEL && word != 0 && _approvals[requestId][owner] == word >> 160;
    }

    /// @inheritdoc IAgentVault
    function requestDigest(uint256 requestId) external view returns (bytes32) {
        StoredRequest storage r = _requests[requestId];
        if (r.status == RequestStatus.None) revert UnknownRequest(requestId);
        return _requestDigest(requestId, r);
    }

    /// @inheritdoc IAgentVault
    function checkPayment(address agent, address token, address to, uint256 amount)
        external
        view
        returns (uint32 reasons)
    {
        (reasons,) = _evaluate(_policies[agent][token], amount);
        if (_agents[agent].useAllowlist && !_allowlist[agent][to]) reasons |= REASON_RECIPIENT_NOT_ALLOWED;
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    /// @dev Checks `amount` against a packed policy word. Returns the escalation reasons and, when
    /// there are none, the word with the budget consumed.
    function _evaluate(uint256 word, uint256 amount) private view returns (uint32 reasons, uint256 newWord) {
        uint256 period = (word >> PERIOD_SHIFT) & MASK_32;
        if (period == 0) return (REASON_TOKEN_NOT_IN_SCOPE, word);
        if (amount > word >> MAX_SHIFT) reasons = REASON_OVER_PER_PAYMENT;
        uint256 allowance = (word >> ALLOWANCE_SHIFT) & MASK_88;
        if (amount > allowance) return (reasons | REASON_OVER_ALLOWANCE, word);
        uint256 scaledPeriod = period << TIME_SCALE_BITS;
        uint256 nowScaled = block.timestamp << TIME_SCALE_BITS;
        uint256 tat = word & TAT_MASK;
        uint256 start = tat > nowScaled ? tat : nowScaled;
        // amount <= allowance <= 2^88 and scaledPeriod < 2^40: no overflow; round the cost up.
        uint256 newTat = start + (amount * scaledPeriod + allowance - 1) / allowance;
        if (newTat > nowScaled + scaledPeriod) return (reasons | REASON_OVER_ALLOWANCE, word);
        newWord = (word & ~TAT_MASK) | newTat;
    }

    /// @dev Budget available now in a packed policy word.
    function _available(uint256 word) private view returns (uint256) {
        uint256 period = (word >> PERIOD_SHIFT) & MASK_32;
        if (period == 0) return 0;
        uint256 allowance = (word >> ALLOWANCE_SHIFT) & MASK_88;
        uint256 scaledPeriod = period << TIME_SCALE_BITS;
        uint256 nowScaled = block.timestamp << TIME_SCALE_BITS;
        uint256 tat = word & TAT_MASK;
        uint256 start = tat > nowScaled ? tat : nowScaled;
        if (start >= nowScaled + scaledPeriod) return 0;
        return (nowScaled + scaledPeriod - start) * allowance / scaledPeriod;
    }

    /// @dev New limits never add to what is available now. The part of the budget in use stays in
    /// use, measured both as a fraction of the period and as an amount, whichever is larger, capped
    /// at one full new period. So a cut (even to 0, or {removeToken}, which keeps `tat`) followed by
    /// restoring the old limits cannot refill a spent budget, and a raise only adds headroom as the
    /// budget refills at the new rate.
    function _rewritePolicy(uint256 word, uint256 maxPerPayment, uint256 allowance, uint256 period)
        private
        view
        returns (uint256)
    {
        uint256 nowScaled = block.timestamp << TIME_SCALE_BITS;
        uint256 oldTat = word & TAT_MASK;
        uint256 tat = 0;
        if (oldTat > nowScaled) {
            uint256 scaledPeriod = period << TIME_SCALE_BITS;
            uint256 left = oldTat - nowScaled; // time until the old budget is full again
            uint256 oldPeriod = (word >> PERIOD_SHIFT) & MASK_32;
            uint256 used = left;
            if (oldPeriod != 0) {
                uint256 oldScaled = oldPeriod << TIME_SCALE_BITS;
                used = Math.ceilDiv(left * scaledPeriod, oldScaled); // same fraction of the new period
                uint256 oldAllowance = (word >> ALLOWANCE_SHIFT) & MASK_88;
                // the same amount under the new rate (< 2^170: no overflow)
                uint256 byAmount = allowance == 0
                    ? scaledPeriod
                    : Math.ceilDiv(left * oldAllowance * scaledPeriod, oldScaled * allowance);
                if (byAmount > used) used = byAmount;
            }
            tat = nowScaled + (used < scaledPeriod ? used : scaledPeriod);
        }
        return (maxPerPayment << MAX_SHIFT) | (allowance << ALLOWANCE_SHIFT) | (period << PERIOD_SHIFT) | tat;
    }

    /// @dev The FAST/ALLOWLIST bits an agent's words may carry now (see the policy word layout).
    function _flags(AgentInfo memory a, bool vaultPaused) private view returns (uint256) {
        if (vaultPaused || a.status != AgentStatus.Active || a.validUntil != 0 || block.timestamp < a.validAfter) {
            return 0;
        }
        return a.useAllowlist ? FLAGS : FAST;
    }

    /// @dev Writes `flags` into every policy word of `agent` (at most MAX_TOKENS_PER_AGENT).
    function _setFlags(address agent, uint256 flags) private {
        address[] storage tokens = _agentTokens[agent];
        mapping(address => uint256) storage policies = _policies[agent];
        uint256 n = tokens.length;
        for (uint256 i = 0; i < n; ++i) {
            address token = tokens[i];
            uint256 word = policies[token];
            uint256 updated = (word & ~FLAGS) | flags;
            if (updated != word) policies[token] = updated;
        }
    }

    function _unlistAgent(address agent) private {
        uint256 position = _agentPosition[agent];
        if (position == 0) return;
        address last = _agentList[_agentList.length - 1];
        _agentList[position - 1] = last;
        _agentPosition[last] = position;
        _agentList.pop();
        delete _agentPosition[agent];
    }

    function _unlistToken(address agent, address token) private {
        address[] storage tokens = _agentTokens[agent];
        uint256 n = tokens.length;
        for (uint256 i = 0; i < n; ++i) {
            if (tokens[i] == token) {
                tokens[i] = tokens[n - 1];
                tokens.pop();
                return;
            }
        }
    }

    /// @dev Checks the first `count` packed signatures (see {executeWithSignatures}) over `digest`
    /// and returns their signers: strictly ascending, each a current owner.
    function _checkSignatures(uint256 requestId, bytes32 digest, bytes calldata signatures, uint256 count)
        private
        view
        returns (address[] memory signers)
    {
        uint256 staticEnd = count * 65;
        if (signatures.length < staticEnd) revert NotEnoughApprovals(requestId, signatures.length / 65, count);
        signers = new address[](count);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            uint256 pos = i * 65;
            bytes32 r = bytes32(signatures[pos:pos + 32]);
            bytes32 s = bytes32(signatures[pos + 32:pos + 64]);
            uint8 v = uint8(signatures[pos + 64]);
            address signer;
            if (v == 0) {
                // ERC-1271 owner: r = its address, s = offset of its length-prefixed signature.
                if (uint256(r) >> 160 != 0) revert InvalidSignature(address(0));
                signer = address(uint160(uint256(r)));
            } else {
                ECDSA.RecoverError error;
                // slither-disable-next-line unused-return (the third value only details `error`)
                (signer, error,) = ECDSA.tryRecover(digest, v, r, s);
                if (error != ECDSA.RecoverError.NoError) revert InvalidSignature(address(0));
            }
            if (signer <= previous) revert SignersNotSorted(previous, signer);
            if (!_isOwner(signer)) revert NotAnOwner(signer);
            if (v == 0) {
                // only an owner's contract is ever called
                uint256 offset = uint256(s);
                if (offset < staticEnd || offset > signatures.length - 32) revert InvalidSignature(signer);
                uint256 length = uint256(bytes32(signatures[offset:offset + 32]));
                if (length > signatures.length - offset - 32) revert InvalidSignature(signer);
                if (!SignatureChecker.isValidERC1271SignatureNow(
                        signer, digest, signatures[offset + 32:offset + 32 + length]
                    )) {
                    revert InvalidSignature(signer);
                }
            }
            previous = signer;
            signers[i] = signer;
        }
    }

    function _createPaymentRequest(
        AgentInfo memory agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint32 reasons
    ) private returns (uint256 requestId) {
        Config memory c = _config;
        if (agent.openRequests >= c.maxOpenRequests) {
            revert TooManyOpenRequests(msg.sender, agent.openRequests, c.maxOpenRequests);
        }
        _agents[msg.sender].openRequests = agent.openRequests + 1;
        return _newRequest(RequestKind.Payment, token, to, amount, ref, reasons, "");
    }

    /// @dev Stores a new pending request from msg.sender and emits {RequestCreated}.
    function _newRequest(
        RequestKind kind,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint32 reasons,
        bytes memory data
    ) private returns (uint256 requestId) {
        Config memory c = _config;
        requestId = uint256(c.requestCount) + 1;
        _config.requestCount = uint64(requestId);
        uint40 expiresAt = uint40(block.timestamp + c.requestExpiry);
        StoredRequest storage r = _requests[requestId];
        r.agent = msg.sender;
        r.createdAt = uint40(block.timestamp);
        r.expiresAt = expiresAt;
        r.kind = kind;
        r.status = RequestStatus.Pending;
        r.token = token;
        r.reasons = reasons;
        r.to = to;
        r.amount = amount;
        r.ref = ref;
        if (data.length != 0) r.data = data;
        emit RequestCreated(requestId, msg.sender, token, kind, to, amount, ref, reasons, expiresAt, data);
    }

    function _approve(uint256 requestId, StoredRequest storage r) private {
        uint256 epoch = _owners[msg.sender] >> 160;
        if (_approvals[requestId][msg.sender] == epoch) revert AlreadyApproved(requestId, msg.sender);
        _approvals[requestId][msg.sender] = epoch;
        uint256 approvals = _countApprovals(requestId);
        emit RequestApproved(requestId, msg.sender, approvals, false, r.ref);
        if (approvals >= _config.threshold) _execute(requestId, r, approvals);
    }

    /// @dev Runs a request's action. Any failure reverts the whole transaction, so a request whose
    /// action cannot run stays pending and the approval that triggered it is not recorded.
    function _execute(uint256 requestId, StoredRequest storage r, uint256 approvals) private {
        r.status = RequestStatus.Executed;
        if (r.kind == RequestKind.Payment) {
            if (_config.paused) revert VaultIsPaused();
            address agent = r.agent;
            _agents[agent].openRequests -= 1;
            address token = r.token;
            address to = r.to;
            uint256 amount = r.amount;
            if (token == address(0)) {
                if (address(this).balance < amount) revert InsufficientBalance(token, address(this).balance, amount);
                (bool ok,) = to.call{value: amount}("");
                if (!ok) revert EthTransferFailed(to, amount);
            } else {
                uint256 balance = IERC20(token).balanceOf(address(this));
                if (balance < amount) revert InsufficientBalance(token, balance, amount);
                IERC20(token).safeTransfer(to, amount);
            }
            emit PaymentExecuted(agent, token, to, amount, r.ref, requestId);
        } else {
            EXECUTING_SLOT.asUint256().tstore(requestId);
            (bool ok, bytes memory ret) = address(this).call(r.data);
            EXECUTING_SLOT.asUint256().tstore(0);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
        emit RequestExecuted(requestId, msg.sender, approvals, r.ref);
    }

    function _close(StoredRequest storage r, RequestStatus status) private {
        r.status = status;
        if (r.kind == RequestKind.Payment) _agents[r.agent].openRequests -= 1;
    }

    function _countApprovals(uint256 requestId) private view returns (uint256 count) {
        address current = address(uint160(_owners[SENTINEL]));
        while (current != SENTINEL) {
            uint256 word = _owners[current];
            if (_approvals[requestId][current] == word >> 160) ++count;
            current = address(uint160(word));
        }
    }

    function _requestDigest(uint256 requestId, StoredRequest storage r) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    REQUEST_TYPEHASH,
                    requestId,
                    uint8(r.kind),
                    r.agent,
                    r.token,
                    r.to,
                    r.amount,
                    r.ref,
                    r.kind == RequestKind.Payment ? EMPTY_HASH : keccak256(r.data),
                    uint256(r.expiresAt)
                )
            )
        );
    }

    function _signedPaymentDigest(
        address agent,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint256 nonce,
        uint256 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(SIGNED_PAYMENT_TYPEHASH, agent, token, to, amount, ref, nonce, deadline))
        );
    }

    function _checkPending(uint256 requestId, StoredRequest storage r) private view {
        RequestStatus status = r.status;
        if (status == RequestStatus.None) revert UnknownRequest(requestId);
        if (status != RequestStatus.Pending) revert RequestNotPending(requestId, status);
    }

    function _checkNotExpired(uint256 requestId, StoredRequest storage r) private view {
        if (block.timestamp > r.expiresAt) revert RequestHasExpired(requestId, r.expiresAt);
    }

    function _checkAgentCanPay(address account, AgentInfo memory agent) private view {
        if (agent.status != AgentStatus.Active) revert AgentNotActive(account, agent.status);
        if (block.timestamp < agent.validAfter) revert AgentNotYetValid(account, agent.validAfter);
        if (agent.validUntil != 0 && block.timestamp > agent.validUntil) revert AgentExpired(account, agent.validUntil);
    }

    function _knownAgent(address agent) private view returns (AgentInfo storage a) {
        a = _agents[agent];
        if (a.status == AgentStatus.None) revert UnknownAgent(agent);
    }

    function _isOwner(address account) private view returns (bool) {
        return account != SENTINEL && _owners[account] != 0;
    }

    function _checkNewOwner(address owner) private view {
        if (owner == address(0) || owner == SENTINEL || owner == address(this)) revert ZeroAddress();
        if (_owners[owner] != 0) revert AlreadyOwner(owner);
        if (_agents[owner].status != AgentStatus.None) revert AgentIsOwner(owner);
    }

    function _checkRequestExpiry(uint256 requestExpiry_) private pure {
        if (requestExpiry_ < MIN_REQUEST_EXPIRY || requestExpiry_ > MAX_REQUEST_EXPIRY) {
            revert InvalidRequestExpiry(requestExpiry_);
        }
    }

    function _checkMaxOpen(uint256 maxOpen) private pure {
        if (maxOpen == 0 || maxOpen > MAX_OPEN_REQUESTS_CAP) revert InvalidMaxOpenRequests(maxOpen);
    }

    function _executing() private view returns (uint256) {
        return EXECUTING_SLOT.asUint256().tload();
    }

    function _isGovernanceSelector(bytes4 s) private pure returns (bool) {
        return s == this.addAgent.selector || s == this.unpauseAgent.selector || s == this.setLimits.selector
            || s == this.allowRecipient.selector || s == this.unpause.selector || s == this.addOwner.selector
            || s == this.removeOwner.selector || s == this.changeThreshold.selector
            || s == this.setRequestExpiry.selector || s == this.setMaxOpenRequests.selector;
    }
}
