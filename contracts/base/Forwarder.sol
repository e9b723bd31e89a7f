// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Proxy} from "@openzeppelin/contracts/proxy/Proxy.sol";

/// @title Forwarder
/// @notice OpenZeppelin's Proxy with its `_delegate` marked memory-safe: the calldata and the
/// return data are staged at the free memory pointer instead of from address 0, so the compiler
/// may move stack variables to memory in the contracts that inherit it (via-IR "stack too deep").
abstract contract Forwarder is Proxy {
    /// @inheritdoc Proxy
    function _delegate(address implementation) internal virtual override {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, 0, calldatasize())
            let result := delegatecall(gas(), implementation, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            switch result
            case 0 { revert(p, returndatasize()) }
            default { return(p, returndatasize()) }
        }
    }
}
