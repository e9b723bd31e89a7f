// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultLens
/// @notice Read-only views of a vault, its digests and the payment dry run.
interface IAgentVaultLens is IAgentVaultBase {
    function getOwners() external view returns (address[] memory);
    function isOwner(address account) external view returns (bool);
    function threshold() external view returns (uint256);
    function paused() external view returns (bool);
    function requestExpiry() external view returns (uint256);
    function maxOpenRequests() external view returns (uint256);
    function requestCount() external view returns (uint256);

    function getAgent(address agent) external view returns (AgentInfo memory);
    /// @notice Agents that are active or paused (revoked and rotated keys leave the list), at most MAX_AGENTS.
    function getAgents() external view returns (address[] memory);
    /// @notice Tokens an agent has limits for, at most MAX_TOKENS_PER_AGENT.
    function getAgentTokens(address agent) external view returns (address[] memory);
    /// @notice An agent's limits for `token` (all 0 when the token is out of its scope).
    function getPolicy(address agent, address token) external view returns (PolicyView memory);
    function isRecipientAllowed(address agent, address recipient) external view returns (bool);
    /// @notice The sub-agents directly under `agent`.
    function getSubAgents(address agent) external view returns (address[] memory);
    /// @notice The per-recipient budget that applies to `agent`'s payments in `token` to
    /// `recipient` (its own, else the default; all 0 when none applies).
    function getRecipientBudget(address agent, address token, address recipient)
        external
        view
        returns (PolicyView memory);
    /// @notice `agent`'s grant to call `selector` on `target` (its ETH value limits; all 0 if none).
    function getCallPermission(address agent, address target, bytes4 selector)
        external
        view
        returns (PolicyView memory);
    /// @notice The EIP-712 digest owners sign to approve a call request off-chain.
    function callRequestDigest(CallRequest calldata request) external view returns (bytes32);
    /// @notice The status of a call request now (as for {paymentStatus}).
    function callStatus(CallRequest calldata request) external view returns (RequestStatus);
    /// @notice The key that holds `key`'s rights now: `key` itself unless it was rotated, else the
    /// key it was rotated to (following every later rotation).
    function currentKey(address key) external view returns (address);

    /// @notice The status of a payment request now: `Pending` only if `request` is exactly the
    /// pending request stored at its slot (`Expired` past its expiry, `AgentRevoked` for a revoked
    /// agent's request); its final status once closed; `Closed` once its slot holds a later
    /// request (then, and for contents that were never requested under a real id, the final
    /// status is in the request's events); `None` for an id never issued.
    function paymentStatus(PaymentRequest calldata request) external view returns (RequestStatus);
    /// @notice The status of a governance proposal now (as for {paymentStatus}).
    function proposalStatus(GovernanceProposal calldata proposal) external view returns (RequestStatus);
    /// @notice Valid on-chain approvals of a request by current owners.
    function approvalCount(uint256 requestId) external view returns (uint256);
    /// @notice Rejections of a request by current owners.
    function rejectionCount(uint256 requestId) external view returns (uint256);
    function hasApproved(uint256 requestId, address owner) external view returns (bool);

    /// @notice The EIP-712 digest owners sign to approve a payment request off-chain.
    function paymentRequestDigest(PaymentRequest calldata request) external view returns (bytes32);
    /// @notice The EIP-712 digest owners sign to approve a governance proposal off-chain.
    function proposalDigest(GovernanceProposal calldata proposal) external view returns (bytes32);
    /// @notice The EIP-712 digest owners sign for {IAgentVaultCore-payWithSignatures}.
    function signedPaymentDigest(SignedPayment calldata payment) external view returns (bytes32);
    /// @notice The EIP-712 digest an agent signs for {IAgentVaultCore-payWithIntent}.
    function intentDigest(Intent calldata intent) external view returns (bytes32);
    /// @notice The EIP-712 digest owners sign for {IAgentVaultAdmin-executeGovernance}.
    function governanceDigest(bytes[] calldata calls, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);
    /// @notice The EIP-712 digest both keys sign for {IAgentVaultAdmin-rotateAgentKey}.
    function rotationDigest(address oldKey, address newKey, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice Whether `nonce` of `space` (an agent key, or the owners' payment or governance
    /// space: {paymentNonceSpace}, {governanceNonceSpace}) is used.
    function isNonceUsed(address space, uint256 nonce) external view returns (bool);
    /// @notice The used-nonce bitmap word `wordPos` of `space` (Permit2's `nonceBitmap`).
    function nonceBitmap(address space, uint256 wordPos) external view returns (uint256);
    function paymentNonceSpace() external pure returns (address);
    function governanceNonceSpace() external pure returns (address);

    /// @notice Dry run of {IAgentVaultCore-pay} for `agent`: the escalation reasons (0 = would pay
    /// directly). Does not check pause, status, validity or balance; callers check those separately.
    function checkPayment(address agent, address token, address to, uint256 amount)
        external
        view
        returns (uint32 reasons);
}
