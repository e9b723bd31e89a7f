// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MinimalToken
/// @notice Test only: balances and allowances without OpenZeppelin, so transfers can misbehave.
abstract contract MinimalToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        totalSupply += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal virtual {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }

    function _spend(address from, uint256 amount) internal {
        require(allowance[from][msg.sender] >= amount, "allowance");
        allowance[from][msg.sender] -= amount;
    }
}

/// @title NoReturnToken
/// @notice Test only: USDT-like, `transfer` and `transferFrom` return nothing.
contract NoReturnToken is MinimalToken {
    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external {
        _spend(from, amount);
        _move(from, to, amount);
    }
}

/// @title FalseToken
/// @notice Test only: `transfer` returns false without moving anything while `failing` is set.
contract FalseToken is MinimalToken {
    bool public failing;

    function setFailing(bool failing_) external {
        failing = failing_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        if (failing) return false;
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (failing) return false;
        _spend(from, amount);
        _move(from, to, amount);
        return true;
    }
}

/// @title FeeToken
/// @notice Test only: every transfer burns 1% of the amount (fee-on-transfer).
contract FeeToken is MinimalToken {
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal override {
        require(balanceOf[from] >= amount, "balance");
        uint256 fee = amount / 100;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
        emit Transfer(from, address(0), fee);
    }
}

/// @title CallbackToken
/// @notice Test only: a malicious ERC-20 that, on `transfer`, makes one armed call on a target
/// (e.g. the vault paying it out) and records the result; with `bubble` a failed call reverts
/// the transfer.
contract CallbackToken is ERC20 {
    address public target;
    bytes public attack;
    bool public bubble;
    bool public attempted;
    bool public reentryOk;
    bytes public reentryData;

    constructor() ERC20("Callback Token", "CBT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata data, bool bubble_) external {
        target = target_;
        attack = data;
        bubble = bubble_;
        attempted = false;
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (attack.length != 0 && !attempted) {
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
        return super.transfer(to, amount);
    }
}
