// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultAdmin
/// @notice Requests, co-signing and signed governance. Adding risk needs the threshold: a request
/// approved on-chain, or owners' signatures over the change ({executeGovernance}).
interface IAgentVaultAdmin is IAgentVaultBase {
    // ------------------------------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------------------------------

    /// @notice An owner proposes a threshold-gated call on the vault itself (see {executeGovernance}
    /// for the calls allowed). The proposer's approval is counted. Only `keccak256(data)` is stored;
    /// `data` is in {RequestCreated} and must be passed again to execute.
    function propose(bytes calldata data, bytes32 ref) external returns (uint256 requestId);

    /// @notice An owner approves a pending request. The approval that reaches the threshold executes
    /// the request in the same transaction (`data`: the governance call, empty for payments); if the
    /// action cannot run (e.g. not enough funds) the whole call reverts and the approval is not recorded.
    function approve(Request calldata request, bytes calldata data) external;

    /// @notice Executes a pending request whose valid on-chain approvals meet the threshold in force
    /// now (e.g. after a deposit or after the threshold was lowered). Anyone may call it.
    function execute(Request calldata request, bytes calldata data) external;

    /// @notice Executes a pending request with owner EIP-712 signatures over the {Request} collected
    /// off-chain (packed as for {IAgentVaultCore-payWithSignatures}).
    function executeWithSignatures(Request calldata request, bytes calldata data, bytes calldata signatures)
        external;

    /// @notice An owner rejects a pending request. A payment request closes at once (one owner's
    /// no is enough). A governance request closes once more than `owners - threshold` current
    /// owners rejected it, so no minority can veto what the threshold wants.
    function reject(Request calldata request) external;

    /// @notice The agent (its current key) withdraws its own pending payment request.
    function cancel(Request calldata request) external;

    /// @notice Marks a pending request past its expiry as expired (anyone), freeing the agent's slot.
    function expire(Request calldata request) external;

    /// @notice Runs a batch of governance calls on the vault at once, authorised by the threshold's
    /// worth of owner EIP-712 signatures over `Governance(bytes[] calls,uint256 nonce,uint256
    /// deadline)`. No request is stored, so no one can reject, expire or front-run it away; the
    /// nonce is any unused nonce of the governance space (independent batches never cancel each
    /// other). Anyone may send it. Every call must be one of: addAgent, unpauseAgent, setLimits,
    /// allowRecipient, unpause, addOwner, removeOwner, swapOwner, changeThreshold, setRequestExpiry,
    /// setMaxOpenRequests, replaceAgentKey, invalidateNonces.
    function executeGovernance(bytes[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signatures)
        external;

    // ------------------------------------------------------------------------------------------
    // Nonces
    // ------------------------------------------------------------------------------------------

    /// @notice Marks nonces `wordPos * 256 + i` (for each bit i of `mask`) of `space` as used, so
    /// signatures over them can never run. A space may always invalidate its own nonces (an agent
    /// its intents and rotations); any owner may invalidate an agent's or the owners' payment
    /// space; the governance space only through governance.
    function invalidateNonces(address space, uint256 wordPos, uint256 mask) external;
}
