// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Forwarder} from "./base/Forwarder.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";
import {IAgentVaultAdmin} from "./interfaces/IAgentVaultAdmin.sol";
import {IAgentVaultConfig} from "./interfaces/IAgentVaultConfig.sol";
import {IAgentVaultCalls} from "./interfaces/IAgentVaultCalls.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";

/// @title AgentVaultAdmin
/// @notice Requests, co-signing and signed governance of a vault. Runs only by delegatecall from
/// the vault's core ({AgentVault}), in the vault's storage; every selector not here goes on, the
/// same way, to {AgentVaultConfig}.
/// @dev Any `threshold` owners can always govern: {executeGovernance} runs their signed batch in
/// one transaction, and a governance proposal dies only when the threshold can no longer be
/// reached. One owner's no still closes an agent's payment request.
contract AgentVaultAdmin is IAgentVaultAdmin, AgentVaultStorage, Forwarder {
    using TransientSlot for *;

    /// @notice The configuration extension every selector not here is forwarded to.
    address private immutable CONFIG;

    constructor(address config) {
        if (config.code.length == 0) revert ZeroAddress();
        CONFIG = config;
    }

    // ------------------------------------------------------------------------------------------
    // Payment requests
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function approvePayment(PaymentRequest calldata request) external onlyDelegateCall onlyOwner nonReentrant {
        (, uint256 agentSlot, uint256 aw) = _openPayment(request);
        (address[] memory approvers, uint256 approvals) = _approve(request.id);
        if (approvals >= _layout().config.threshold) _executePayment(request, agentSlot, aw, approvers);
    }

    /// @inheritdoc IAgentVaultAdmin
    function executePayment(PaymentRequest calldata request) external onlyDelegateCall nonReentrant {
        (, uint256 agentSlot, uint256 aw) = _openPayment(request);
        _executePayment(request, agentSlot, aw, _approvedBy(request.id));
    }

    /// @inheritdoc IAgentVaultAdmin
    function rejectPayment(PaymentRequest calldata request) external onlyDelegateCall onlyOwner nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashPayment(request));
        // one owner's no closes an agent's payment request
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        _closePayment(request, agentSlot, aw, alive, RequestStatus.Rejected);
        emit RequestRejected(request.id, msg.sender, 1, true);
    }

    /// @inheritdoc IAgentVaultAdmin
    function cancelPayment(PaymentRequest calldata request) external onlyDelegateCall nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashPayment(request));
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        // only the lineage's current key, while it lives
        if (!alive || agentSlot != _agentSlot(msg.sender)) revert NotRequestAgent(request.id, msg.sender);
        _closePayment(request, agentSlot, aw, true, RequestStatus.Cancelled);
        emit RequestCancelled(request.id, msg.sender);
    }

    /// @inheritdoc IAgentVaultAdmin
    function expirePayment(PaymentRequest calldata request) external onlyDelegateCall nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashPayment(request));
        if (block.timestamp <= request.expiresAt) revert RequestNotExpired(request.id, request.expiresAt);
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        _closePayment(request, agentSlot, aw, alive, RequestStatus.Expired);
        emit RequestExpired(request.id);
    }

    // ------------------------------------------------------------------------------------------
    // Governance proposals
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function propose(bytes calldata data, bytes32 ref)
        external
        onlyDelegateCall
        onlyOwner
        nonReentrant
        returns (uint256 requestId)
    {
        _checkGovernanceCall(data);
        Layout storage l = _layout();
        Config memory c = l.config;
        requestId = uint256(c.requestCount) + 1;
        if (requestId > type(uint64).max) revert CounterOverflow();
        l.config.requestCount = uint64(requestId);
        uint40 expiresAt = uint40(block.timestamp + c.requestExpiry);
        l.requests[requestId] = _pendingRecord(
            keccak256(abi.encode(PROPOSAL_TYPEHASH, requestId, msg.sender, keccak256(data), ref, expiresAt))
        );
        emit GovernanceProposed(requestId, msg.sender, ref, expiresAt, data);
        (address[] memory approvers, uint256 approvals) = _approve(requestId);
        if (approvals >= c.threshold) _runProposal(requestId, data, approvers);
    }

    /// @inheritdoc IAgentVaultAdmin
    function approveProposal(GovernanceProposal calldata proposal, bytes calldata data)
        external
        onlyDelegateCall
        onlyOwner
        nonReentrant
    {
        _openProposal(proposal);
        (address[] memory approvers, uint256 approvals) = _approve(proposal.id);
        if (approvals >= _layout().config.threshold) _executeProposal(proposal, data, approvers);
    }

    /// @inheritdoc IAgentVaultAdmin
    function executeProposal(GovernanceProposal calldata proposal, bytes calldata data)
        external
        onlyDelegateCall
        nonReentrant
    {
        _openProposal(proposal);
        _executeProposal(proposal, data, _approvedBy(proposal.id));
    }

    /// @inheritdoc IAgentVaultAdmin
    function executeProposalWithSignatures(
        GovernanceProposal calldata proposal,
        bytes calldata data,
        bytes calldata signatures
    ) external onlyDelegateCall nonReentrant {
        bytes32 structHash = _openProposal(proposal);
        address[] memory signers =
            _checkSignatures(_hashTypedDataV4(structHash), signatures, _layout().config.threshold, proposal.id);
        _executeProposal(proposal, data, signers);
    }

    /// @inheritdoc IAgentVaultAdmin
    function rejectProposal(GovernanceProposal calldata proposal) external onlyDelegateCall onlyOwner nonReentrant {
        Layout storage l = _layout();
        _checkRecord(proposal.id, l.requests[proposal.id], _hashProposal(proposal));
        uint256 vote = _approvalOf(l.owners[msg.sender]) | 1;
        if (l.votes[proposal.id][msg.sender] == vote) revert AlreadyRejected(proposal.id, msg.sender);
        l.votes[proposal.id][msg.sender] = vote;
        (, uint256 rejections) = _countVotes(proposal.id);
        Config memory c = l.config;
        // closed once the owners who have not rejected can no longer reach the threshold
        bool closed = rejections > uint256(c.ownerCount) - c.threshold;
        if (closed) l.requests[proposal.id] = uint256(RequestStatus.Rejected) | (proposal.id << 40);
        emit RequestRejected(proposal.id, msg.sender, rejections, closed);
    }

    /// @inheritdoc IAgentVaultAdmin
    function expireProposal(GovernanceProposal calldata proposal) external onlyDelegateCall nonReentrant {
        Layout storage l = _layout();
        _checkRecord(proposal.id, l.requests[proposal.id], _hashProposal(proposal));
        if (block.timestamp <= proposal.expiresAt) revert RequestNotExpired(proposal.id, proposal.expiresAt);
        l.requests[proposal.id] = uint256(RequestStatus.Expired) | (proposal.id << 40);
        emit RequestExpired(proposal.id);
    }

    /// @inheritdoc IAgentVaultAdmin
    function executeGovernance(bytes[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signatures)
        external
        onlyDelegateCall
        nonReentrant
    {
        uint256 n = calls.length;
        if (n == 0) revert EmptyBatch();
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        _useNonce(GOVERNANCE_SPACE, nonce);
        // EIP-712 `bytes[]`: keccak256 of the concatenated keccak256 of each call
        bytes32 callsHash;
        assembly ("memory-safe") {
            let hashes := mload(0x40)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let item := add(calls.offset, calldataload(add(calls.offset, shl(5, i))))
                let length := calldataload(item)
                let buffer := add(hashes, shl(5, n))
                calldatacopy(buffer, add(item, 0x20), length)
                mstore(add(hashes, shl(5, i)), keccak256(buffer, length))
            }
            callsHash := keccak256(hashes, shl(5, n))
        }
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(GOVERNANCE_TYPEHASH, callsHash, nonce, deadline)));
        address[] memory signers = _checkSignatures(digest, signatures, _layout().config.threshold, 0);
        EXECUTING_SLOT.asUint256().tstore(SIGNED_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            _governanceCall(calls[i]);
        }
        EXECUTING_SLOT.asUint256().tstore(0);
        emit GovernanceExecuted(nonce, msg.sender, signers);
    }

    // ------------------------------------------------------------------------------------------
    // Owners and request settings: only through governance
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function addOwner(address owner, uint256 threshold_) external onlyDelegateCall onlyVault {
        Layout storage l = _layout();
        Config memory c = l.config;
        if (c.ownerCount >= MAX_OWNERS) revert TooManyOwners(uint256(c.ownerCount) + 1, MAX_OWNERS);
        _checkNewOwner(owner);
        uint256 count = uint256(c.ownerCount) + 1;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        uint64 epoch = _nextEpoch(c);
        l.owners[owner] = (l.owners[SENTINEL] & type(uint160).max) | (uint256(epoch) << 160);
        l.owners[SENTINEL] = uint256(uint160(owner));
        c.ownerCount = uint8(count);
        c.ownerEpoch = epoch;
        uint256 requestId = _executing();
        emit OwnerAdded(owner, requestId);
        _setThreshold(c, threshold_, requestId);
        l.config = c;
        _syncOwners();
    }

    /// @inheritdoc IAgentVaultAdmin
    function removeOwner(address owner, uint256 threshold_) external onlyDelegateCall onlyVault {
        if (!_isOwner(owner)) revert NotAnOwner(owner);
        Layout storage l = _layout();
        Config memory c = l.config;
        uint256 count = uint256(c.ownerCount) - 1;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        address previous = _previousOwner(owner);
        l.owners[previous] = (l.owners[previous] & ~uint256(type(uint160).max)) | (l.owners[owner] & type(uint160).max);
        delete l.owners[owner];
        c.ownerCount = uint8(count);
        uint256 requestId = _executing();
        emit OwnerRemoved(owner, requestId);
        _setThreshold(c, threshold_, requestId);
        l.config = c;
        _syncOwners();
    }

    /// @inheritdoc IAgentVaultAdmin
    function swapOwner(address oldOwner, address newOwner) external onlyDelegateCall onlyVault {
        if (!_isOwner(oldOwner)) revert NotAnOwner(oldOwner);
        _checkNewOwner(newOwner);
        Layout storage l = _layout();
        Config memory c = l.config;
        uint64 epoch = _nextEpoch(c);
        address previous = _previousOwner(oldOwner);
        l.owners[newOwner] = (l.owners[oldOwner] & type(uint160).max) | (uint256(epoch) << 160);
        l.owners[previous] = (l.owners[previous] & ~uint256(type(uint160).max)) | uint256(uint160(newOwner));
        delete l.owners[oldOwner];
        l.config.ownerEpoch = epoch;
        uint256 requestId = _executing();
        emit OwnerRemoved(oldOwner, requestId);
        emit OwnerAdded(newOwner, requestId);
        _syncOwners();
    }

    /// @inheritdoc IAgentVaultAdmin
    function changeThreshold(uint256 threshold_) external onlyDelegateCall onlyVault {
        Layout storage l = _layout();
        uint256 count = l.config.ownerCount;
        if (threshold_ == 0 || threshold_ > count) revert InvalidThreshold(threshold_, count);
        l.config.threshold = uint8(threshold_);
        _syncOwners();
        emit ThresholdChanged(threshold_, _executing());
    }

    /// @inheritdoc IAgentVaultAdmin
    function setRequestExpiry(uint256 requestExpiry_) external onlyDelegateCall onlyVault {
        if (requestExpiry_ < MIN_REQUEST_EXPIRY || requestExpiry_ > MAX_REQUEST_EXPIRY) {
            revert InvalidRequestExpiry(requestExpiry_);
        }
        _layout().config.requestExpiry = uint32(requestExpiry_);
        emit RequestExpiryChanged(requestExpiry_, _executing());
    }

    /// @inheritdoc IAgentVaultAdmin
    function setMaxOpenRequests(uint256 maxOpen) external onlyDelegateCall onlyVault {
        if (maxOpen == 0 || maxOpen > MAX_OPEN_REQUESTS_CAP) revert InvalidMaxOpenRequests(maxOpen);
        _layout().config.maxOpenRequests = uint16(maxOpen);
        emit MaxOpenRequestsChanged(maxOpen, _executing());
    }

    // ------------------------------------------------------------------------------------------
    // Nonces
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function invalidateNonces(address space, uint256 wordPos, uint256 mask) external onlyDelegateCall {
        bool allowed = msg.sender == space || EXECUTING_SLOT.asUint256().tload() != 0
            || (space != GOVERNANCE_SPACE && _isOwner(msg.sender));
        if (!allowed) revert NotNonceAuthority(space, msg.sender);
        _layout().nonces[space][wordPos] |= mask;
        emit NoncesInvalidated(space, wordPos, mask, msg.sender);
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    /// @dev Checks that `p` is a pending, unexpired proposal; returns its struct hash.
    function _openProposal(GovernanceProposal calldata p) private view returns (bytes32 structHash) {
        structHash = _hashProposal(p);
        _checkRecord(p.id, _layout().requests[p.id], structHash);
        if (block.timestamp > p.expiresAt) revert RequestHasExpired(p.id, p.expiresAt);
    }

    function _executeProposal(GovernanceProposal calldata p, bytes calldata data, address[] memory signers) private {
        if (keccak256(data) != p.dataHash) revert DataMismatch(p.id);
        _runProposal(p.id, data, signers);
    }

    /// @dev Closes proposal `requestId` as executed and runs its call. Any failure reverts the
    /// whole transaction, so a proposal whose call cannot run stays pending.
    function _runProposal(uint256 requestId, bytes calldata data, address[] memory signers) private {
        _layout().requests[requestId] = uint256(RequestStatus.Executed) | (requestId << 40);
        EXECUTING_SLOT.asUint256().tstore(requestId);
        _governanceCall(data);
        EXECUTING_SLOT.asUint256().tstore(0);
        emit RequestExecuted(requestId, msg.sender, signers);
    }

    function _checkGovernanceCall(bytes calldata data) private view {
        _governanceTarget(data);
    }

    /// @dev Where a governance call runs: the config extension, or this contract for its own
    /// (owners, request settings, nonces). Reverts for anything that is not a governance call.
    function _governanceTarget(bytes calldata data) private view returns (address) {
        bytes4 s = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        if (
            s == IAgentVaultConfig.addAgent.selector || s == IAgentVaultConfig.setLimits.selector
                || s == IAgentVaultConfig.allowRecipient.selector || s == IAgentVaultConfig.unpause.selector
                || s == IAgentVaultConfig.unpauseAgent.selector || s == IAgentVaultConfig.replaceAgentKey.selector
                || s == IAgentVaultConfig.addSubAgent.selector || s == IAgentVaultConfig.setSubAgentLimits.selector
                || s == IAgentVaultConfig.allowSubAgentRecipient.selector
                || s == IAgentVaultConfig.setRecipientBudget.selector
                || s == IAgentVaultConfig.removeRecipientBudget.selector || s == IAgentVaultCalls.grantCall.selector
                || s == IAgentVaultCalls.grantSubAgentCall.selector
        ) return CONFIG; // grants run one part further, reached through the config's fallback
        if (
            s == this.addOwner.selector || s == this.removeOwner.selector || s == this.swapOwner.selector
                || s == this.changeThreshold.selector || s == this.setRequestExpiry.selector
                || s == this.setMaxOpenRequests.selector || s == this.invalidateNonces.selector
        ) return SELF;
        revert NotGovernanceCall(s);
    }

    /// @dev Runs one governance call in the vault's own context (EXECUTING_SLOT is set): the config
    /// extension's functions directly, this contract's own by delegatecall to itself.
    function _governanceCall(bytes calldata data) private {
        address target = _governanceTarget(data);
        bytes memory call = data;
        // slither-disable-next-line controlled-delegatecall,low-level-calls (a fixed, immutable target)
        (bool ok, bytes memory ret) = target.delegatecall(call);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _checkNewOwner(address owner) private view {
        if (owner == address(0) || owner == SENTINEL || owner == address(this)) revert ZeroAddress();
        if (_isOwner(owner)) revert AlreadyOwner(owner);
        if (_layout().agents[owner].status != AgentStatus.None) revert AgentIsOwner(owner);
    }

    function _previousOwner(address owner) private view returns (address previous) {
        Layout storage l = _layout();
        previous = SENTINEL;
        while (address(uint160(l.owners[previous])) != owner) {
            previous = address(uint160(l.owners[previous]));
        }
    }

    function _nextEpoch(Config memory c) private pure returns (uint64) {
        if (c.ownerEpoch == type(uint64).max) revert CounterOverflow();
        return c.ownerEpoch + 1;
    }

    function _setThreshold(Config memory c, uint256 threshold_, uint256 requestId) private {
        if (threshold_ != c.threshold) {
            c.threshold = uint8(threshold_);
            emit ThresholdChanged(threshold_, requestId);
        }
    }

    /// @dev Forwarding, too, happens only inside a vault.
    function _fallback() internal override onlyDelegateCall {
        super._fallback();
    }

    /// @dev Configuration, brakes and rotation run in the config extension (OpenZeppelin's Proxy).
    function _implementation() internal view override returns (address) {
        return CONFIG;
    }
}
