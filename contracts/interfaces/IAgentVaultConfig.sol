// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultConfig
/// @notice Agents, limits, owners, the brakes and key rotation. Reducing risk is one owner's call;
/// adding risk runs only as a call of the vault on itself, i.e. through governance.
interface IAgentVaultConfig is IAgentVaultBase {
    // ------------------------------------------------------------------------------------------
    // Risk-reducing actions: any single owner, instant
    // ------------------------------------------------------------------------------------------

    function pause() external;
    function pauseAgent(address agent) external;
    /// @notice Ends an agent: its key can no longer pay, its open requests die, and re-adding the
    /// address later starts from nothing (no limits, tokens or allowlist come back).
    function revokeAgent(address agent) external;
    /// @notice Lowers an agent's limits for a token; each new value must be <= the current one.
    function reduceLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance) external;
    /// @notice Takes a token out of an agent's scope: every later payment in it escalates.
    function removeToken(address agent, address token) external;
    function removeRecipient(address agent, address recipient) external;
    /// @notice Switches an agent's recipient allowlist on.
    function enforceAllowlist(address agent) external;


    // ------------------------------------------------------------------------------------------
    // Key rotation
    // ------------------------------------------------------------------------------------------

    /// @notice An agent moves its rights to `newKey`: both keys sign EIP-712
    /// `RotateKey(address oldKey,address newKey,uint256 nonce,uint256 deadline)` (the new key's
    /// signature proves it is held; `oldSig` may be empty when the old key sends the call itself).
    /// Anyone may submit. `nonce` is from the old key's space.
    function rotateAgentKey(
        address oldKey,
        address newKey,
        uint256 nonce,
        uint256 deadline,
        bytes calldata oldSig,
        bytes calldata newSig
    ) external;

    // ------------------------------------------------------------------------------------------
    // Risk-adding actions: only the vault itself, through governance
    // ------------------------------------------------------------------------------------------

    function addAgent(address agent, uint40 validAfter, uint40 validUntil, bool useAllowlist) external;
    function unpauseAgent(address agent) external;
    function setLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external;
    function allowRecipient(address agent, address recipient) external;
    function unpause() external;
    /// @notice The owners move an agent's rights to `newKey` (its key was lost).
    function replaceAgentKey(address oldKey, address newKey) external;

    // ------------------------------------------------------------------------------------------
    // Sub-agents: narrower scope, shared budget
    // ------------------------------------------------------------------------------------------

    /// @notice `parent` (an active agent, or the owners through governance) adds `child` as its
    /// sub-agent: a new agent with its own key, a validity window inside the parent's, at most
    /// 8 under one agent and 3 levels below an owners' agent. Every payment of a sub-agent also
    /// spends, in the same token, the budget of every agent above it, so a subtree never spends
    /// more than its root allows; pausing or lowering an agent stops or caps everything under it
    /// at once, and revoking it revokes its whole subtree. A sub-agent's escalations go to the owners.
    function addSubAgent(address parent, address child, uint40 validAfter, uint40 validUntil, bool useAllowlist)
        external;

    /// @notice The parent (or governance) sets a sub-agent's limits for `token`: a per-payment limit
    /// and an allowance no larger than the parent's, refilling no faster (`ExceedsParent`).
    function setSubAgentLimits(address child, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external;

    /// @notice The parent (or governance) adds a recipient to a sub-agent's allowlist (the
    /// parent's own allowlist still applies to the sub-agent's payments).
    function allowSubAgentRecipient(address child, address recipient) external;

    // ------------------------------------------------------------------------------------------
    // Per-recipient budgets: inside an agent's allowance, a budget per recipient
    // ------------------------------------------------------------------------------------------

    /// @notice One owner (or an agent above `agent`) adds a budget for payments of `agent` in
    /// `token` to `recipient` (0: to every recipient without its own), or tightens one: never
    /// looser than the budget that applies now. Payments over it escalate (REASON 16).
    function limitRecipient(
        address agent,
        address token,
        address recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period
    ) external;

    /// @notice Governance sets a per-recipient budget to any value (raising it adds risk).
    function setRecipientBudget(
        address agent,
        address token,
        address recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period
    ) external;

    /// @notice Governance removes a per-recipient budget.
    function removeRecipientBudget(address agent, address token, address recipient) external;
}
