// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Proxy} from "@openzeppelin/contracts/proxy/Proxy.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";
import {IAgentVaultAdmin} from "./interfaces/IAgentVaultAdmin.sol";
import {IAgentVaultConfig} from "./interfaces/IAgentVaultConfig.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";

/// @title AgentVaultAdmin
/// @notice Requests, co-signing and signed governance of a vault. Runs only by delegatecall from
/// the vault's core ({AgentVault}), in the vault's storage; every selector not here goes on, the
/// same way, to {AgentVaultConfig}.
/// @dev Any `threshold` owners can always govern: {executeGovernance} runs their signed batch in
/// one transaction, and a governance request dies only when the threshold can no longer be reached.
contract AgentVaultAdmin is IAgentVaultAdmin, AgentVaultStorage, Proxy {
    using TransientSlot for *;

    /// @notice The configuration extension every selector not here is forwarded to.
    address private immutable CONFIG;

    constructor(address config) {
        if (config.code.length == 0) revert ZeroAddress();
        CONFIG = config;
    }

    // ------------------------------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function propose(bytes calldata data, bytes32 ref)
        external
        onlyDelegateCall
        onlyOwner
        nonReentrant
        returns (uint256 requestId)
    {
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        if (!_isGovernanceSelector(selector)) revert NotGovernanceCall(selector);
        requestId = _newRequest(RequestKind.Governance, msg.sender, 0, address(0), address(this), 0, ref, 0, data);
        uint256 approvals = _vote(requestId);
        emit RequestApproved(requestId, msg.sender, approvals, ref);
        if (approvals >= _layout().config.threshold) {
            // a 1-of-n vault: the proposal runs at once
            Request memory r = Request({
                id: requestId,
                kind: RequestKind.Governance,
                agent: msg.sender,
                lineage: 0,
                token: address(0),
                to: address(this),
                amount: 0,
                ref: ref,
                reasons: 0,
                dataHash: keccak256(data),
                expiresAt: uint40(block.timestamp + _layout().config.requestExpiry)
            });
            _execute(r, data, approvals, new address[](0));
        }
    }

    /// @inheritdoc IAgentVaultAdmin
    function approve(Request calldata request, bytes calldata data) external onlyDelegateCall onlyOwner nonReentrant {
        _checkOpen(request);
        uint256 approvals = _vote(request.id);
        emit RequestApproved(request.id, msg.sender, approvals, request.ref);
        if (approvals >= _layout().config.threshold) _execute(request, data, approvals, new address[](0));
    }

    /// @inheritdoc IAgentVaultAdmin
    function execute(Request calldata request, bytes calldata data) external onlyDelegateCall nonReentrant {
        _checkOpen(request);
        (uint256 approvals,) = _countVotes(request.id);
        uint256 t = _layout().config.threshold;
        if (approvals < t) revert NotEnoughApprovals(request.id, approvals, t);
        _execute(request, data, approvals, new address[](0));
    }

    /// @inheritdoc IAgentVaultAdmin
    function executeWithSignatures(Request calldata request, bytes calldata data, bytes calldata signatures)
        external
        onlyDelegateCall
        nonReentrant
    {
        bytes32 structHash = _checkOpen(request);
        uint256 t = _layout().config.threshold;
        address[] memory signers = _checkSignatures(_hashTypedDataV4(structHash), signatures, t);
        _execute(request, data, t, signers);
    }

    /// @inheritdoc IAgentVaultAdmin
    function reject(Request calldata request) external onlyDelegateCall onlyOwner nonReentrant {
        (uint256 record,) = _checkPending(request);
        Layout storage l = _layout();
        if (request.kind == RequestKind.Payment) {
            // one owner's no closes an agent's payment request
            _close(request, record, RequestStatus.Rejected);
            emit RequestRejected(request.id, msg.sender, 1, true, request.ref);
            return;
        }
        uint256 epoch = l.owners[msg.sender] >> 160;
        if (l.votes[request.id][msg.sender] == (epoch << 1) | 1) revert AlreadyRejected(request.id, msg.sender);
        l.votes[request.id][msg.sender] = (epoch << 1) | 1;
        (, uint256 rejections) = _countVotes(request.id);
        Config memory c = l.config;
        // closed once the owners who have not rejected can no longer reach the threshold
        bool closed = rejections > uint256(c.ownerCount) - c.threshold;
        if (closed) _close(request, record, RequestStatus.Rejected);
        emit RequestRejected(request.id, msg.sender, rejections, closed, request.ref);
    }

    /// @inheritdoc IAgentVaultAdmin
    function cancel(Request calldata request) external onlyDelegateCall nonReentrant {
        (uint256 record,) = _checkPending(request);
        if (request.kind != RequestKind.Payment) revert NotRequestAgent(request.id, msg.sender);
        Agent storage caller = _layout().agents[msg.sender];
        if (
            caller.lineage != request.lineage
                || (caller.status != AgentStatus.Active && caller.status != AgentStatus.Paused)
        ) {
            revert NotRequestAgent(request.id, msg.sender);
        }
        _close(request, record, RequestStatus.Cancelled);
        emit RequestCancelled(request.id, msg.sender, request.ref);
    }

    /// @inheritdoc IAgentVaultAdmin
    function expire(Request calldata request) external onlyDelegateCall nonReentrant {
        (uint256 record,) = _checkPending(request);
        if (block.timestamp <= request.expiresAt) revert RequestNotExpired(request.id, request.expiresAt);
        _close(request, record, RequestStatus.Expired);
        emit RequestExpired(request.id, request.ref);
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
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            hashes[i] = keccak256(calls[i]);
        }
        bytes32 callsHash = keccak256(abi.encodePacked(hashes));
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(GOVERNANCE_TYPEHASH, callsHash, nonce, deadline)));
        address[] memory signers = _checkSignatures(digest, signatures, _layout().config.threshold);
        for (uint256 i = 0; i < n; ++i) {
            _callVault(calls[i], 0);
        }
        emit GovernanceExecuted(nonce, callsHash, msg.sender, n, signers);
    }

    // ------------------------------------------------------------------------------------------
    // Nonces
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultAdmin
    function invalidateNonces(address space, uint256 wordPos, uint256 mask) external onlyDelegateCall {
        bool allowed = msg.sender == space || msg.sender == address(this)
            || (space != GOVERNANCE_SPACE && _isOwner(msg.sender));
        if (!allowed) revert NotNonceAuthority(space, msg.sender);
        _layout().nonces[space][wordPos] |= mask;
        emit NoncesInvalidated(space, wordPos, mask, msg.sender);
    }

    // ------------------------------------------------------------------------------------------
    // Internals: requests
    // ------------------------------------------------------------------------------------------

    /// @dev Reverts unless `r` is exactly a stored request that is still pending; returns the
    /// record and the request's struct hash.
    function _checkPending(Request calldata r) private view returns (uint256 record, bytes32 structHash) {
        record = _layout().requests[r.id];
        if (record == 0) revert UnknownRequest(r.id);
        if (record >> BLOCK_BITS <= 0xff) revert RequestNotPending(r.id, RequestStatus(record >> BLOCK_BITS));
        structHash = _hashRequest(r);
        if (uint256(structHash) >> BLOCK_BITS != record >> BLOCK_BITS) revert RequestMismatch(r.id);
    }

    /// @dev {_checkPending}, not expired, and for a payment its agent's lineage alive.
    function _checkOpen(Request calldata r) private view returns (bytes32 structHash) {
        (, structHash) = _checkPending(r);
        if (block.timestamp > r.expiresAt) revert RequestHasExpired(r.id, r.expiresAt);
        if (r.kind == RequestKind.Payment && !_alive(_requestAgent(r), r.lineage)) {
            revert RequestNotPending(r.id, RequestStatus.AgentRevoked);
        }
    }

    /// @dev Records msg.sender's approval (replacing a rejection) and returns the valid approvals now.
    function _vote(uint256 requestId) private returns (uint256 approvals) {
        Layout storage l = _layout();
        uint256 vote = (l.owners[msg.sender] >> 160) << 1;
        if (l.votes[requestId][msg.sender] == vote) revert AlreadyApproved(requestId, msg.sender);
        l.votes[requestId][msg.sender] = vote;
        (approvals,) = _countVotes(requestId);
    }

    /// @dev Runs a request's action. Any failure reverts the whole transaction, so a request whose
    /// action cannot run stays pending and the approval that triggered it is not recorded.
    function _execute(Request memory r, bytes calldata data, uint256 approvals, address[] memory signers) private {
        if (keccak256(data) != r.dataHash) revert DataMismatch(r.id);
        Layout storage l = _layout();
        uint256 record = l.requests[r.id];
        l.requests[r.id] = (uint256(RequestStatus.Executed) << BLOCK_BITS) | (record & BLOCK_MASK);
        if (r.kind == RequestKind.Payment) {
            if (l.config.paused) revert VaultIsPaused();
            _requestAgent(r).openRequests -= 1;
            // slither-disable-next-line arbitrary-send-eth (a payment the threshold of owners approved)
            _transferOut(r.token, r.to, r.amount, true);
            emit PaymentExecuted(r.agent, r.token, r.to, r.amount, r.ref, r.id);
        } else {
            _callVault(data, r.id);
        }
        emit RequestExecuted(r.id, msg.sender, approvals, r.ref, signers);
    }

    /// @dev Closes a pending request (not executed); frees its agent's slot while the agent lives.
    function _close(Request calldata r, uint256 record, RequestStatus status) private {
        _layout().requests[r.id] = (uint256(status) << BLOCK_BITS) | (record & BLOCK_MASK);
        if (r.kind == RequestKind.Payment) {
            Agent storage a = _requestAgent(r);
            if (_alive(a, r.lineage)) a.openRequests -= 1;
        }
    }

    /// @dev Calls the vault itself with a governance call, marking `requestId` as the one executing.
    function _callVault(bytes calldata data, uint256 requestId) private {
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        if (!_isGovernanceSelector(selector)) revert NotGovernanceCall(selector);
        EXECUTING_SLOT.asUint256().tstore(requestId);
        (bool ok, bytes memory ret) = address(this).call(data);
        EXECUTING_SLOT.asUint256().tstore(0);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    function _isGovernanceSelector(bytes4 s) private pure returns (bool) {
        return s == IAgentVaultConfig.addAgent.selector || s == IAgentVaultConfig.unpauseAgent.selector
            || s == IAgentVaultConfig.setLimits.selector || s == IAgentVaultConfig.allowRecipient.selector
            || s == IAgentVaultConfig.unpause.selector || s == IAgentVaultConfig.addOwner.selector
            || s == IAgentVaultConfig.removeOwner.selector || s == IAgentVaultConfig.swapOwner.selector
            || s == IAgentVaultConfig.changeThreshold.selector || s == IAgentVaultConfig.setRequestExpiry.selector
            || s == IAgentVaultConfig.setMaxOpenRequests.selector || s == IAgentVaultConfig.replaceAgentKey.selector
            || s == this.invalidateNonces.selector;
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
