// SPDX-License-Identifier: MIT
// A stand-in for Multicall3 in ctrip's real-chain tests: the two functions ctrip's
// `reconcile` calls, with Multicall3's ABI (aggregate3((address,bool,bytes)[]) and
// getEthBalance(address)). The tests put its runtime code at Multicall3's address,
// 0xcA11bde05977b3631167028862bE2a173976CA11, with anvil_setCode.
pragma solidity ^0.8.20;

contract MulticallStandIn {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    // Each call in turn; a failed one reverts the whole batch unless it allows failure.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory out) {
        out = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok, bytes memory data) = calls[i].target.call(calls[i].callData);
            require(ok || calls[i].allowFailure, "Multicall3: call failed");
            out[i] = Result(ok, data);
        }
    }

    function getEthBalance(address account) external view returns (uint256) {
        return account.balance;
    }
}
