// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultCore} from "./IAgentVaultCore.sol";
import {IAgentVaultAdmin} from "./IAgentVaultAdmin.sol";
import {IAgentVaultConfig} from "./IAgentVaultConfig.sol";
import {IAgentVaultCalls} from "./IAgentVaultCalls.sol";
import {IAgentVaultLens} from "./IAgentVaultLens.sol";

/// @title IAgentVault
/// @notice The one ABI of a vault: a vault that holds ETH and ERC-20 funds for its human owners and
/// lets agent addresses spend inside scoped limits. Every payment outside an agent's limits becomes
/// a request that needs M-of-N owner approvals. Reducing risk is one owner's call; adding risk needs
/// the threshold. A vault is an EIP-1167 clone of {AgentVault} (the core), which forwards every
/// selector it does not have to {AgentVaultAdmin} (requests), which forwards the rest to
/// {AgentVaultConfig} (agents, limits, brakes), which forwards the rest to {AgentVaultCalls}
/// (scoped-call grants and requests), which forwards views to {AgentVaultLens}: each by
/// delegatecall in the vault's own storage.
interface IAgentVault is IAgentVaultCore, IAgentVaultAdmin, IAgentVaultConfig, IAgentVaultCalls, IAgentVaultLens {}
