// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

/// A treasury that is a contract: receiving native coin writes storage and emits an
/// event, so a plain transfer to it costs more than 21,000 gas.
contract Treasury {
    uint256 public received;
    uint256 public deposits;

    event Received(address indexed from, uint256 amount);

    receive() external payable {
        received += msg.value;
        deposits += 1;
        emit Received(msg.sender, msg.value);
    }
}
