// SPDX-License-Identifier: MIT
// An ERC-20 whose `drop` pays many holders at once without a Transfer log (as some
// airdrop and rebasing tokens do): only balances show such a payment. `transfer`
// and `mint` are standard and log Transfer.
pragma solidity ^0.8.20;

contract SilentDropToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        emit Transfer(msg.sender, to, amount);
        return true;
    }

    // Pays `amount` to each of `to` from the sender, logging nothing.
    function drop(address[] calldata to, uint256 amount) external {
        for (uint256 i = 0; i < to.length; ++i) {
            _move(msg.sender, to[i], amount);
        }
    }

    function _move(address from, address to, uint256 amount) internal {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
}
