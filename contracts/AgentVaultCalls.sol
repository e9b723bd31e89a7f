// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Forwarder} from "./base/Forwarder.sol";
import {IAgentVaultCalls} from "./interfaces/IAgentVaultCalls.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";
import {PolicyWord} from "./libraries/PolicyWord.sol";

/// @title AgentVaultCalls
/// @notice Scoped contract calls: the owners' grants of (target, selector) pairs to agents, and
/// the lifecycle of an agent's call that escalated. The call itself runs in the core
/// ({IAgentVaultCore-scopedCall}). Runs only by delegatecall from the vault's config extension,
/// in the vault's storage; every selector not here (the views) goes on to {AgentVaultLens}.
/// @dev Granting a call adds risk (governance); revoking it is one owner's (or an ancestor's)
/// call. A grant is a {PolicyWord} over the ETH value sent: a per-call cap, an allowance and a
/// period. The token a call spends is counted against the agent's token budget by the core.
contract AgentVaultCalls is IAgentVaultCalls, AgentVaultStorage, Forwarder {
    /// @notice The lens every selector not here is forwarded to.
    address private immutable LENS;

    constructor(address lens) {
        if (lens.code.length == 0) revert ZeroAddress();
        LENS = lens;
    }

    // ------------------------------------------------------------------------------------------
    // Grants
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultCalls
    function grantCall(
        address agent,
        address target,
        bytes4 selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period
    ) external onlyDelegateCall onlyVault {
        _grant(agent, target, selector, maxValue, valueAllowance, period, address(this));
    }

    /// @inheritdoc IAgentVaultCalls
    function grantSubAgentCall(
        address child,
        address target,
        bytes4 selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period
    ) external onlyDelegateCall {
        Layout storage l = _layout();
        address parent = l.parentOf[child];
        Agent memory p = _delegator(parent);
        // the parent holds the same grant, at least as wide
        uint256 word = l.callPermissions[p.lineage][target][selector];
        if (
            !PolicyWord.inScope(word) || maxValue > PolicyWord.maxPerPayment(word)
                || valueAllowance > PolicyWord.allowance(word)
                || valueAllowance * PolicyWord.period(word) > PolicyWord.allowance(word) * period
        ) revert ExceedsParent(parent, target);
        _grant(child, target, selector, maxValue, valueAllowance, period, _by());
    }

    /// @inheritdoc IAgentVaultCalls
    function revokeCall(address agent, address target, bytes4 selector) external onlyDelegateCall {
        _onlyOwnerOrAncestor(agent);
        Agent storage a = _layout().agents[agent];
        if (a.status == AgentStatus.None) revert UnknownAgent(agent);
        mapping(bytes4 => uint256) storage grants = _layout().callPermissions[a.lineage][target];
        grants[selector] = PolicyWord.unscope(grants[selector]);
        emit CallPermissionChanged(agent, target, selector, 0, 0, 0, msg.sender, 0);
    }

    // ------------------------------------------------------------------------------------------
    // Call requests (an agent's scoped call outside its permissions)
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultCalls
    function approveCall(CallRequest calldata request, bytes calldata data)
        external
        onlyDelegateCall
        onlyOwner
        nonReentrant
    {
        (, uint256 agentSlot, uint256 aw) = _openCall(request);
        (address[] memory approvers, uint256 approvals) = _approve(request.id);
        if (approvals >= _layout().config.threshold) _executeCall(request, data, agentSlot, aw, approvers);
    }

    /// @inheritdoc IAgentVaultCalls
    function executeCall(CallRequest calldata request, bytes calldata data) external onlyDelegateCall nonReentrant {
        (, uint256 agentSlot, uint256 aw) = _openCall(request);
        _executeCall(request, data, agentSlot, aw, _approvedBy(request.id));
    }

    /// @inheritdoc IAgentVaultCalls
    function executeCallWithSignatures(CallRequest calldata request, bytes calldata data, bytes calldata signatures)
        external
        onlyDelegateCall
        nonReentrant
    {
        (bytes32 structHash, uint256 agentSlot, uint256 aw) = _openCall(request);
        address[] memory signers =
            _checkSignatures(_hashTypedDataV4(structHash), signatures, _layout().config.threshold, request.id);
        _executeCall(request, data, agentSlot, aw, signers);
    }

    /// @inheritdoc IAgentVaultCalls
    function rejectCall(CallRequest calldata request) external onlyDelegateCall onlyOwner nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashCall(request));
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        _closeSlot(request.id, request.slot, agentSlot, aw, alive, RequestStatus.Rejected);
        emit RequestRejected(request.id, msg.sender, 1, true);
    }

    /// @inheritdoc IAgentVaultCalls
    function cancelCall(CallRequest calldata request) external onlyDelegateCall nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashCall(request));
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        if (!alive || agentSlot != _agentSlot(msg.sender)) revert NotRequestAgent(request.id, msg.sender);
        _closeSlot(request.id, request.slot, agentSlot, aw, true, RequestStatus.Cancelled);
        emit RequestCancelled(request.id, msg.sender);
    }

    /// @inheritdoc IAgentVaultCalls
    function expireCall(CallRequest calldata request) external onlyDelegateCall nonReentrant {
        _checkRecord(request.id, _layout().requests[request.slot], _hashCall(request));
        if (block.timestamp <= request.expiresAt) revert RequestNotExpired(request.id, request.expiresAt);
        (uint256 agentSlot, uint256 aw, bool alive) = _requestAgentWord(request.agent, request.lineage);
        _closeSlot(request.id, request.slot, agentSlot, aw, alive, RequestStatus.Expired);
        emit RequestExpired(request.id);
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    function _grant(
        address agent,
        address target,
        bytes4 selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period,
        address by
    ) private {
        _checkCallTarget(target, selector);
        Agent storage a = _layout().agents[agent];
        if (a.status != AgentStatus.Active && a.status != AgentStatus.Paused) revert AgentNotActive(agent, a.status);
        if (maxValue > PolicyWord.MAX_LIMIT) revert LimitTooLarge(maxValue, PolicyWord.MAX_LIMIT);
        if (valueAllowance > PolicyWord.MAX_LIMIT) revert LimitTooLarge(valueAllowance, PolicyWord.MAX_LIMIT);
        if (period == 0 || period > PolicyWord.MAX_PERIOD) revert InvalidPeriod(period);
        mapping(bytes4 => uint256) storage grants = _layout().callPermissions[a.lineage][target];
        // the ETH value budget follows the budget rule: a change never adds to it at once
        grants[selector] = PolicyWord.rewrite(grants[selector], maxValue, valueAllowance, period);
        emit CallPermissionChanged(agent, target, selector, maxValue, valueAllowance, period, by, _executing());
    }

    /// @dev Checks that `r` is a pending, unexpired call request of a live agent.
    function _openCall(CallRequest calldata r) private view returns (bytes32 structHash, uint256 agentSlot, uint256 aw) {
        structHash = _hashCall(r);
        _checkRecord(r.id, _layout().requests[r.slot], structHash);
        if (block.timestamp > r.expiresAt) revert RequestHasExpired(r.id, r.expiresAt);
        bool alive;
        (agentSlot, aw, alive) = _requestAgentWord(r.agent, r.lineage);
        if (!alive) revert RequestNotPending(r.id, RequestStatus.AgentRevoked);
    }

    /// @dev Executes an approved call request: closes it and makes the call (no budget is charged:
    /// the owners approved this call themselves).
    function _executeCall(
        CallRequest calldata r,
        bytes calldata data,
        uint256 agentSlot,
        uint256 aw,
        address[] memory signers
    ) private {
        if (keccak256(data) != r.dataHash) revert DataMismatch(r.id);
        if (_layout().config.paused) revert VaultIsPaused();
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        _checkCallTarget(r.target, selector);
        _closeSlot(r.id, r.slot, agentSlot, aw, true, RequestStatus.Executed);
        uint256 spent = _runCall(r.target, r.value, data, r.spendToken, r.spendAmount);
        emit CallExecuted(r.agent, r.target, selector, r.value, r.spendToken, spent, r.ref, r.id);
        emit RequestExecuted(r.id, msg.sender, signers);
    }

    /// @dev Forwarding, too, happens only inside a vault.
    function _fallback() internal override onlyDelegateCall {
        super._fallback();
    }

    /// @dev Views and digests run in the lens (OpenZeppelin's Proxy).
    function _implementation() internal view override returns (address) {
        return LENS;
    }
}
