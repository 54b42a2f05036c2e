// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Contracts of the tests of the permission rules at every EVM frame
/// (internal/execution/permit_test.go, internal/node/permit_test.go).
/// gen.js compiles them into contracts_gen.go.

/// Counter is the contract governance freezes: a frame that runs it
/// raises slot 0.
contract Counter {
    uint256 public count;

    function bump() external payable {
        count += 1;
    }

    receive() external payable {}
}

/// Forwarder reaches a target in each of the four ways a frame runs
/// another account's code, and records in slot 1 whether the inner frame
/// succeeded instead of failing itself. Slot 0 stays unused, so that a
/// DELEGATECALL or CALLCODE that ran Counter's code here would show in it.
contract Forwarder {
    uint256 private unused;
    bool public ok;

    function callTo(address t, bytes calldata data) external payable {
        (bool s, ) = t.call{value: msg.value}(data);
        ok = s;
    }

    function delegateTo(address t, bytes calldata data) external payable {
        (bool s, ) = t.delegatecall(data);
        ok = s;
    }

    function staticTo(address t, bytes calldata data) external {
        (bool s, ) = t.staticcall(data);
        ok = s;
    }

    function callcodeTo(address t, bytes calldata data) external payable {
        bool s;
        assembly {
            let p := mload(0x40)
            calldatacopy(p, data.offset, data.length)
            s := callcode(gas(), t, callvalue(), p, data.length, 0, 0)
        }
        ok = s;
    }

    receive() external payable {}
}

/// Sweeper is code an account delegates to (EIP-7702): sweep sends the
/// account's whole balance to `to`.
contract Sweeper {
    function sweep(address payable to) external {
        (bool s, ) = to.call{value: address(this).balance}("");
        require(s, "sweep failed");
    }
}

/// Destructor pays its balance to a beneficiary by SELFDESTRUCT.
contract Destructor {
    function destroy(address payable to) external {
        selfdestruct(to);
    }

    receive() external payable {}
}

/// Child is what Factory creates.
contract Child {
    uint256 public x = 7;
}

/// Factory creates a Child with CREATE or CREATE2; `last` is the newest.
contract Factory {
    address public last;

    function make() external returns (address a) {
        a = address(new Child());
        last = a;
    }

    function make2(bytes32 salt) external returns (address a) {
        a = address(new Child{salt: salt}());
        last = a;
    }
}
