// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultCalls
/// @notice Scoped contract calls: grants of (target, selector) pairs to agents, and the lifecycle
/// of an agent's call outside its grants (a call request, decided like a payment request).
interface IAgentVaultCalls is IAgentVaultBase {
    /// @notice Governance grants `agent` calls of `selector` on `target` through
    /// {IAgentVaultCore-scopedCall}, sending at most `maxValue` wei per call and `valueAllowance`
    /// per `period` (a continuously refilling budget). Forbidden targets and selectors revert
    /// `ForbiddenCall`. A new grant's ETH budget starts full; a changed one follows the budget rule.
    function grantCall(
        address agent,
        address target,
        bytes4 selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period
    ) external;

    /// @notice A parent (or governance) grants its sub-agent a call it holds itself, no wider.
    function grantSubAgentCall(
        address child,
        address target,
        bytes4 selector,
        uint256 maxValue,
        uint256 valueAllowance,
        uint32 period
    ) external;

    /// @notice One owner (or an agent above `agent`) revokes a call grant at once.
    function revokeCall(address agent, address target, bytes4 selector) external;

    // ------------------------------------------------------------------------------------------
    // Agents' call requests: the same lifecycle for a scoped call outside its permissions
    // ------------------------------------------------------------------------------------------

    /// @notice An owner approves a pending call request; the approval that reaches the threshold
    /// makes the call (`data` must be the requested call data).
    function approveCall(CallRequest calldata request, bytes calldata data) external;

    /// @notice Makes a pending call request whose on-chain approvals meet the threshold now. Anyone.
    function executeCall(CallRequest calldata request, bytes calldata data) external;

    /// @notice Makes a pending call request with owner EIP-712 signatures over the {CallRequest}
    /// (packed as for {IAgentVaultCore-payWithSignatures}); on-chain approvals of this request
    /// count as `v` 1 entries, as in {IAgentVaultCore-executePaymentWithSignatures}.
    function executeCallWithSignatures(CallRequest calldata request, bytes calldata data, bytes calldata signatures)
        external;

    /// @notice One owner rejects a pending call request: it closes at once.
    function rejectCall(CallRequest calldata request) external;

    /// @notice The agent (its current key) withdraws its own pending call request.
    function cancelCall(CallRequest calldata request) external;

    /// @notice Marks a pending call request past its expiry as expired (anyone).
    function expireCall(CallRequest calldata request) external;

}
