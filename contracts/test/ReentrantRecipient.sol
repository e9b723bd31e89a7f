// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ReentrantRecipient
/// @notice Test only: an ETH recipient (and, once added, an agent) that re-enters a target with
/// an armed call when it receives ETH. It records what the re-entrant call returned; with
/// `bubble` it reverts with that data, making the payment itself fail.
contract ReentrantRecipient {
    address public target;
    bytes public attack;
    bool public bubble;
    bool public attempted;
    bool public reentryOk;
    bytes public reentryData;

    /// @notice Arms one re-entrant call of `data` on `target_` for the next ETH received.
    function arm(address target_, bytes calldata data, bool bubble_) external {
        target = target_;
        attack = data;
        bubble = bubble_;
        attempted = false;
    }

    /// @notice Calls `target_` with `data` as this contract (e.g. `pay` or `cancel` as an agent).
    function call(address target_, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target_.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        if (attack.length == 0 || attempted) return;
        attempted = true;
        (bool ok, bytes memory ret) = target.call(attack);
        reentryOk = ok;
        reentryData = ret;
        if (!ok && bubble) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}
