// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultAdmin
/// @notice Requests, co-signing and signed governance. Adding risk needs the threshold: a request
/// approved on-chain, or owners' signatures over it ({executeGovernance}); reducing it (a
/// rejection of an agent's payment request) is one owner's call. The vault stores only a hash of
/// each request: every call that acts on one takes it whole (as in its creation event).
interface IAgentVaultAdmin is IAgentVaultBase {
    // ------------------------------------------------------------------------------------------
    // Agents' payment requests (executed with signatures: IAgentVaultCore.executePaymentWithSignatures)
    // ------------------------------------------------------------------------------------------

    /// @notice An owner approves a pending payment request. The approval that reaches the
    /// threshold executes it in the same transaction; if the payment cannot run (e.g. not enough
    /// funds, paused vault) the whole call reverts and the approval is not recorded.
    function approvePayment(PaymentRequest calldata request) external;

    /// @notice Executes a pending payment request whose valid on-chain approvals meet the
    /// threshold in force now (e.g. after a deposit or after the threshold was lowered). Anyone.
    function executePayment(PaymentRequest calldata request) external;

    /// @notice One owner rejects a pending payment request: it closes at once.
    function rejectPayment(PaymentRequest calldata request) external;

    /// @notice The agent (its current key) withdraws its own pending payment request.
    function cancelPayment(PaymentRequest calldata request) external;

    /// @notice Marks a pending payment request past its expiry as expired (anyone), freeing the agent's slot.
    function expirePayment(PaymentRequest calldata request) external;

    // ------------------------------------------------------------------------------------------
    // Governance
    // ------------------------------------------------------------------------------------------

    /// @notice An owner proposes a threshold-gated call on the vault itself (one of the calls
    /// {executeGovernance} allows). The proposer's approval is counted. Only a hash is stored;
    /// `data` is in {GovernanceProposed} and must be passed again to execute.
    function propose(bytes calldata data, bytes32 ref) external returns (uint256 requestId);

    /// @notice An owner approves a pending proposal; the approval that reaches the threshold runs
    /// `data` (which must be the proposed call) in the same transaction.
    function approveProposal(GovernanceProposal calldata proposal, bytes calldata data) external;

    /// @notice Runs a pending proposal whose valid on-chain approvals meet the threshold now. Anyone.
    function executeProposal(GovernanceProposal calldata proposal, bytes calldata data) external;

    /// @notice Runs a pending proposal with owner EIP-712 signatures over the {GovernanceProposal}
    /// (packed as for {IAgentVaultCore-payWithSignatures}). Anyone may send it. On-chain approvals
    /// of this proposal count as `v` 1 entries, as in {IAgentVaultCore-executePaymentWithSignatures}.
    function executeProposalWithSignatures(
        GovernanceProposal calldata proposal,
        bytes calldata data,
        bytes calldata signatures
    ) external;

    /// @notice An owner rejects a pending proposal. It closes once more than `owners - threshold`
    /// current owners rejected it, so no minority can veto what the threshold wants. An owner's
    /// later approval replaces its rejection (one vote per owner).
    function rejectProposal(GovernanceProposal calldata proposal) external;

    /// @notice Marks a pending proposal past its expiry as expired (anyone).
    function expireProposal(GovernanceProposal calldata proposal) external;

    /// @notice Runs a batch of governance calls on the vault at once, authorised by the threshold's
    /// worth of owner EIP-712 signatures over `Governance(bytes[] calls,uint256 nonce,uint256
    /// deadline)`. No request is stored, so no one can reject, expire or front-run it away; the
    /// nonce is any unused nonce of the governance space (independent batches never cancel each
    /// other). Anyone may send it. Every call must be one of: addAgent, unpauseAgent, setLimits,
    /// allowRecipient, unpause, addOwner, removeOwner, swapOwner, changeThreshold, setRequestExpiry,
    /// setMaxOpenRequests, replaceAgentKey, invalidateNonces. Signatures are packed as for
    /// {IAgentVaultCore-payWithSignatures}; `v` 1 entries are refused (no request to approve).
    function executeGovernance(bytes[] calldata calls, uint256 nonce, uint256 deadline, bytes calldata signatures)
        external;

    // ------------------------------------------------------------------------------------------
    // Owners and request settings: only through governance
    // ------------------------------------------------------------------------------------------

    function addOwner(address owner, uint256 threshold) external;
    function removeOwner(address owner, uint256 threshold) external;
    /// @notice Replaces `oldOwner` by `newOwner` at the same place (Safe's swapOwner). The old
    /// owner's approvals stop counting.
    function swapOwner(address oldOwner, address newOwner) external;
    function changeThreshold(uint256 threshold) external;
    function setRequestExpiry(uint256 requestExpiry) external;
    function setMaxOpenRequests(uint256 maxOpenRequests) external;

    // ------------------------------------------------------------------------------------------
    // Nonces
    // ------------------------------------------------------------------------------------------

    /// @notice Marks nonces `wordPos * 256 + i` (for each bit i of `mask`) of `space` as used, so
    /// signatures over them can never run. A space may always invalidate its own nonces (an agent
    /// its intents and rotations); any owner may invalidate an agent's or the owners' payment
    /// space; the governance space only through governance.
    function invalidateNonces(address space, uint256 wordPos, uint256 mask) external;
}
