// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IAgentVault} from "./interfaces/IAgentVault.sol";

/// @title AgentVaultFactory
/// @notice Deploys AgentVaults as EIP-1167 minimal clones with CREATE2 and initialises them in the
/// same transaction, so no one can front-run the initialisation. The address depends on every
/// initialisation parameter and the caller's salt, so a squatter cannot take a vault's address with
/// other owners. Every vault runs four immutable parts, deployed once before the factory (together
/// their creation code is over EIP-3860's initcode limit for one constructor): {AgentVaultLens},
/// {AgentVaultConfig} (pointing at the lens), {AgentVaultAdmin} (pointing at the config) and the
/// core {AgentVault} (pointing at the admin), which the clones delegate to.
contract AgentVaultFactory {
    /// @notice The AgentVault core every clone delegates to.
    address public immutable implementation;

    error NotAContract(address account);

    /// @notice A vault was created.
    event VaultCreated(
        address indexed vault,
        address indexed creator,
        address[] owners,
        uint256 threshold,
        uint256 requestExpiry,
        uint256 maxOpenRequests,
        bytes32 salt
    );

    constructor(address implementation_) {
        if (implementation_.code.length == 0) revert NotAContract(implementation_);
        implementation = implementation_;
    }

    /// @notice Creates and initialises a vault. See {IAgentVaultCore-initialize} for the parameters.
    /// @param salt any value chosen by the caller to make several vaults with the same settings
    function createVault(
        address[] calldata owners,
        uint256 threshold,
        uint256 requestExpiry,
        uint256 maxOpenRequests,
        bytes32 salt
    ) external returns (address vault) {
        vault = Clones.cloneDeterministic(
            implementation, _salt(owners, threshold, requestExpiry, maxOpenRequests, salt)
        );
        IAgentVault(vault).initialize(owners, threshold, requestExpiry, maxOpenRequests);
        emit VaultCreated(vault, msg.sender, owners, threshold, requestExpiry, maxOpenRequests, salt);
    }

    /// @notice The address {createVault} will deploy to for these parameters.
    function predictVaultAddress(
        address[] calldata owners,
        uint256 threshold,
        uint256 requestExpiry,
        uint256 maxOpenRequests,
        bytes32 salt
    ) external view returns (address) {
        return Clones.predictDeterministicAddress(
            implementation, _salt(owners, threshold, requestExpiry, maxOpenRequests, salt)
        );
    }

    function _salt(
        address[] calldata owners,
        uint256 threshold,
        uint256 requestExpiry,
        uint256 maxOpenRequests,
        bytes32 salt
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(owners, threshold, requestExpiry, maxOpenRequests, salt));
    }
}
