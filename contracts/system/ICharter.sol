// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Charter's system contracts are native: they live at fixed addresses
/// and run inside the node, but are called like any Solidity contract.
/// Role bits: read = 1, write = 2, deploy = 4, admin = 8, auditor = 16.
/// Tiers: read = 1, write = 2, validate = 3.
/// Organization status: active = 1, suspended = 2, exited = 3.

/// The registry of organizations, nodes and accounts, at 0x…0400.
interface ICharterRegistry {
    /// Roles of an account changed (by its organization's admin or a proposal).
    event RolesChanged(address indexed account, string org, uint32 roles, address indexed by);

    /// The organization an account belongs to ("" for none), its roles
    /// (the default roles if it has no record) and whether it is frozen.
    function accountOf(address account) external view returns (string memory org, uint32 roles, bool frozen);

    /// Whether account holds every role bit of roles and is not frozen.
    function hasRole(address account, uint32 roles) external view returns (bool);

    /// Whether account (or contract) is frozen.
    function isFrozen(address account) external view returns (bool);

    /// An organization: tier, voting weight, status; exists is false for an unknown name.
    function organization(string calldata name) external view returns (bool exists, uint8 tier, uint64 weight, uint8 status);

    /// Names of every organization ever admitted, exited ones included.
    function organizations() external view returns (string[] memory);

    /// The validator set the registry holds now (it takes effect at the next epoch boundary).
    function validators() external view returns (address[] memory);

    /// A node: its organization, whether it validates, whether it is revoked.
    function node(address id) external view returns (bool exists, string memory org, bool validator, bool revoked);

    /// A chain parameter: gasLimit, txGasLimit, maxTxBytes, minGasPrice, epochLength.
    function parameter(string calldata name) external view returns (uint256);

    /// Usage of an organization on one UTC day (block time / 86400).
    function usage(string calldata org, uint64 day) external view returns (uint64 txs, uint64 gas, uint64 stateBytes);

    /// An organization's admin sets the roles of an account of its own
    /// organization (or one with none): read, write, deploy, admin, within
    /// the organization's tier. The auditor role needs a proposal.
    function setAccountRoles(address account, uint32 roles) external;
}

/// Proposals and votes, at 0x…0401.
/// Actions, with the ABI encoding of their args:
///   1 AddOrganization(string name, string rootsPem, uint8 tier, uint64 weight, address[] admins, address[] nodes, bytes32[] fingerprints, address[] validators)
///   2 RemoveOrganization(string name)
///   3 SetOrganization(string name, uint8 tier, uint64 weight, uint8 status)
///   4 AddNode(string org, address id, bytes32 fingerprint, bool validator)
///   5 RemoveNode(address id)
///   6 AddValidator(address id)
///   7 RemoveValidator(address id)
///   8 GrantRoles(address account, string org, uint32 roles)
///   9 RevokeRoles(address account, uint32 roles)
///  10 RevokeCertificate(bytes32 fingerprint)
///  11 RotateCA(string org, string rootsPem)
///  12 Freeze(address target)
///  13 Unfreeze(address target)
///  14 SetParameter(string name, uint256 value)
///  15 ScheduleUpgrade(string name, uint64 height)
///  16 SetRule(uint8 class, uint64 threshold, uint64 quorum, uint64 expiryBlocks, uint64 timelock, uint64 minApprovals)
///  17 SetDefaultRoles(uint32 roles)
/// Classes: membership 0, validators 1, roles 2, certificates 3, freeze 4, parameters 5, upgrade 6, policy 7.
/// Status: open 1, passed 2, executed 3, rejected 4, expired 5, cancelled 6, failed 7.
interface ICharterGovernance {
    event ProposalCreated(uint64 indexed id, uint8 action, string org, address indexed proposer, uint64 expires, string memo);
    event VoteCast(uint64 indexed id, string org, address indexed voter, bool support, uint64 weight);
    event ProposalPassed(uint64 indexed id, uint64 activatesAt);
    event ProposalRejected(uint64 indexed id);
    event ProposalCancelled(uint64 indexed id);

    /// Proposes an action; only an admin of an active organization. Returns the id.
    function propose(uint8 action, bytes calldata args, string calldata memo) external returns (uint64 id);

    /// Votes for the caller's organization; once per organization.
    function vote(uint64 id, bool support) external;

    /// Withdraws an open proposal; only an admin of the proposing organization.
    function cancel(uint64 id) external;

    /// A proposal's state; status 0 for an unknown id.
    function proposal(uint64 id) external view returns (
        uint8 action, uint8 status, string memory org, address proposer,
        uint64 created, uint64 expires, uint64 activatesAt,
        uint64 yesWeight, uint64 noWeight, uint64 totalWeight);

    /// The number of proposals made; ids run from 1 to it.
    function proposalCount() external view returns (uint64);
}
