// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Marketplace
/// @notice Test only: sells items for a token price it pulls from the buyer with `transferFrom`,
/// or for ETH sent with the call.
contract Marketplace {
    address public immutable seller;
    mapping(address => uint256) public bought;

    event Sold(address indexed buyer, address token, uint256 price);

    constructor(address seller_) {
        seller = seller_;
    }

    function buy(address token, uint256 price) external {
        require(IERC20(token).transferFrom(msg.sender, seller, price), "pull");
        bought[msg.sender] += 1;
        emit Sold(msg.sender, token, price);
    }

    function buyWithEth() external payable {
        bought[msg.sender] += 1;
        (bool ok,) = seller.call{value: msg.value}("");
        require(ok, "forward");
        emit Sold(msg.sender, address(0), msg.value);
    }
}

/// @title HostileMarketplace
/// @notice Test only: a call target that misbehaves, by `mode`: 1 takes more than the price, 2
/// re-enters the vault, 3 pulls a second token, 4 reverts with a large reason, 5 pulls nothing
/// (hoping the approval stays).
contract HostileMarketplace {
    uint256 public mode;
    address public other;
    bytes public reentry;

    function setMode(uint256 mode_, address other_, bytes calldata reentry_) external {
        mode = mode_;
        other = other_;
        reentry = reentry_;
    }

    function buy(address token, uint256 price) external {
        uint256 m = mode;
        if (m == 1) {
            IERC20(token).transferFrom(msg.sender, address(this), price + 1);
        } else if (m == 2) {
            (bool ok, bytes memory ret) = msg.sender.call(reentry);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        } else if (m == 3) {
            IERC20(token).transferFrom(msg.sender, address(this), price);
            IERC20(other).transferFrom(msg.sender, address(this), 1);
        } else if (m == 4) {
            assembly ("memory-safe") {
                revert(0, 100000)
            }
        }
        // mode 5 (and 0): take nothing
    }
}
