// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// test/js/test/system.test.js compiles this file with contracts/system/ICharter.sol
// under their repository paths, so this relative import resolves in solc as on disk.
import "../../../contracts/system/ICharter.sol";

/// Gate calls Charter's native system contracts from Solidity: a function only
/// accounts holding the write role (2) may call, views that return the
/// registry's answers, and a forwarded governance write (which the node refuses:
/// system writes must come from an account directly).
contract Gate {
    ICharterRegistry public constant REGISTRY = ICharterRegistry(0x0000000000000000000000000000000000000400);
    ICharterGovernance public constant GOVERNANCE = ICharterGovernance(0x0000000000000000000000000000000000000401);
    uint32 public constant ROLE_WRITE = 2;

    uint256 public entries;

    event Entered(address indexed caller, uint256 entries);

    /// Counts an entry by a caller the registry says holds write and is not frozen.
    function enter() external returns (uint256) {
        require(REGISTRY.hasRole(msg.sender, ROLE_WRITE), "Gate: caller lacks role write");
        entries += 1;
        emit Entered(msg.sender, entries);
        return entries;
    }

    /// The registry's accountOf(account), through this contract.
    function accountOf(address account) external view returns (string memory org, uint32 roles, bool frozen) {
        return REGISTRY.accountOf(account);
    }

    /// The registry's hasRole(account, roles), through this contract.
    function hasRole(address account, uint32 roles) external view returns (bool) {
        return REGISTRY.hasRole(account, roles);
    }

    /// Forwards a proposal to the governance contract (which reverts: not called directly).
    function propose(uint8 action, bytes calldata args, string calldata memo) external returns (uint64) {
        return GOVERNANCE.propose(action, args, memo);
    }
}
