// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title ReturnBomb
/// @notice Test only: an ETH recipient that answers every call with `size` bytes of return data,
/// so a payer that copies return data pays for all of it.
contract ReturnBomb {
    uint256 public size;

    function setSize(uint256 size_) external {
        size = size_;
    }

    fallback() external payable {
        uint256 n = size;
        assembly ("memory-safe") {
            return(0, n)
        }
    }
}

/// @title HostileOwner
/// @notice Test only: an ERC-1271 owner that, depending on `mode`, burns all the gas it gets
/// (1), returns the magic value followed by `size` bytes (2), or returns `size` bytes of garbage (3).
contract HostileOwner is IERC1271 {
    uint256 public mode;
    uint256 public size;

    function setMode(uint256 mode_, uint256 size_) external {
        mode = mode_;
        size = size_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        uint256 m = mode;
        uint256 n = size;
        if (m == 1) {
            uint256 x;
            while (gasleft() > 0) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        bytes4 magic = IERC1271.isValidSignature.selector;
        assembly ("memory-safe") {
            if eq(m, 2) {
                mstore(0, magic)
                return(0, add(32, n))
            }
            if eq(m, 3) {
                return(0x80, n)
            }
        }
        return 0xffffffff;
    }
}
