// SPDX-License-Identifier: MIT
// Contract that rejects every call and every native-value transfer (for failed-receipt tests).
pragma solidity ^0.8.20;

contract Reverter {
    receive() external payable {
        revert("no");
    }

    fallback() external payable {
        revert("no");
    }
}
