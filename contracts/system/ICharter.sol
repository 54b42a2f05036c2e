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

    /// A chain parameter as in force (0 when unset and the chain spec's value applies;
    /// the engine parameters bft.* and poa.*, in milliseconds, as last decided, in force
    /// from the epoch boundary their change names):
    /// gasLimit, txGasLimit, maxTxBytes, minGasPrice, epochLength, setCode, maxOpenProposals, maxBlockBytes, maxBlockGovBytes, maxBlockGovTxs, maxGroupsPerOrg, bft.timeoutPropose, bft.timeoutVote, bft.timeoutGrowth, bft.blockTime, bft.emptyBlockPeriod, poa.period, poa.turnTimeout.
    function parameter(string calldata name) external view returns (uint256);

    /// Usage of an organization on one UTC day (block time / 86400).
    function usage(string calldata org, uint64 day) external view returns (uint64 txs, uint64 gas, uint64 stateBytes);

    /// An organization's privacy public key: its X25519 key (the privacy
    /// identity that privateFrom and privateFor carry in base64) and its
    /// ML-KEM-768 key (1184 bytes); exists is false for an organization without one.
    function privacyKey(string calldata org) external view returns (bool exists, bytes32 x25519, bytes memory mlkem);

    /// The organization whose privacy key in force has this X25519 key; exists is false for none.
    function privacyKeyOrg(bytes32 x25519) external view returns (bool exists, string memory org);

    /// An organization's admin sets the roles of an account of its own
    /// organization (or one with none): read, write, deploy, admin, within
    /// the organization's tier. The auditor role needs a proposal.
    function setAccountRoles(address account, uint32 roles) external;

    // ---- privacy groups ----
    //
    // A privacy group is a set of organizations that share private
    // transactions; its existence, members and members hash are public,
    // its content is not. Members are organization names, kept sorted
    // (bytewise ascending) and unique; membersHash is
    // keccak256(abi.encode(members)) of that sorted string[]. Group status:
    // active = 1, deleted = 2, purged = 3. Bounds: a name of at most 64 bytes, a
    // description of at most 256, at most 32 members, and an organization
    // in at most maxGroupsPerOrg (64 unless set) active groups. Gas of a
    // write: 60,000, 16 per 32 bytes of input, and 200 per byte it stores:
    // name, description, and per member listed its name and 32 bytes (the
    // id its organization's list of groups keeps).
    // An organization that is suspended or exits stays a member until a
    // member's admin removes it.

    /// A group was created by `by`, an account of organization org.
    event GroupCreated(bytes32 indexed id, address indexed by, string org, string name, string[] members, bytes32 membersHash);
    /// Organizations were added to a group by `by`, an admin of member org.
    event GroupMembersAdded(bytes32 indexed id, address indexed by, string org, string[] added, bytes32 membersHash);
    /// An organization was taken out of a group by `by`, an admin of member org.
    event GroupMemberRemoved(bytes32 indexed id, address indexed by, string org, string member, bytes32 membersHash);
    /// A group was deleted by `by`, an admin of member org (or its last member was removed).
    event GroupDeleted(bytes32 indexed id, address indexed by, string org);

    /// Creates a privacy group; only an account holding write of an active
    /// organization that is among members; every other member must be an
    /// active organization. id 0: the registry derives one; else it must be
    /// unused (Besu's privacyGroupId is its base64). Returns the id.
    function createGroup(bytes32 id, string calldata name, string calldata description, string[] calldata members) external returns (bytes32);

    /// Adds active organizations to an active group; only an admin of a member organization.
    function addMembers(bytes32 id, string[] calldata members) external;

    /// Takes an organization out of an active group (itself or another);
    /// only an admin of a member organization. Taking out the last deletes the group.
    function removeMember(bytes32 id, string calldata member) external;

    /// Deletes an active group; only an admin of a member organization. Its record stays.
    function deleteGroup(bytes32 id) external;

    /// A group: exists is false for an unknown id; a deleted group keeps the members it had.
    function group(bytes32 id) external view returns (
        bool exists, string memory name, string memory description, string memory creator,
        string[] memory members, bytes32 membersHash, uint8 status, uint64 created, uint64 changed);

    /// Ids of the active groups an organization belongs to (one that leaves a group
    /// has the last of its list take that group's place).
    function groupsOf(string calldata org) external view returns (bytes32[] memory);

    // ---- private transactions ----
    //
    // A registered node (its id is the address of its node key) may send
    // transactions, for its organization (not revoked, the organization
    // active), but only privateMarker, createGroup, deleteGroup and
    // recordDisclosure to this contract; anything else it sends is refused
    // ("not permitted: node 0x... may only send privacy calls to the registry").
    // Purges and auditor changes by members need one approval per member
    // organization (by an admin); a change of the members voids the
    // approvals given. Governance may do either at once (actions
    // PurgeGroup, GrantAuditor, RevokeAuditor, class privacy); those emit
    // no event (they run at the start of a block), the group record shows them.
    // Gas of privateMarker: 25,000, 16 per 32 bytes of input, 200 per byte
    // of the members it lists (their names and 32 bytes each: send members
    // only to create a group); of recordDisclosure: 25,000, 16 per 32 bytes
    // of input and 3,000 per payload hash.

    /// A private transaction of group: its envelope hashes to payloadHash; org's node or account sent it.
    event PrivateMarker(bytes32 indexed group, bytes32 payloadHash, string org);
    /// Organization org (by `by`, its admin) approved purging a group.
    event GroupPurgeApproved(bytes32 indexed id, address indexed by, string org);
    /// A group was purged at height: every node deletes its payloads.
    event GroupPurged(bytes32 indexed id, uint64 height);
    /// Organization org (by `by`, its admin) approved granting auditor access from
    /// height fromHeight (revoke false) or revoking it (revoke true, fromHeight 0).
    event AuditorChangeApproved(bytes32 indexed id, address indexed by, string org, string auditor, uint64 fromHeight, bool revoke);
    /// Auditor organization org may read the group's payloads of the markers at heights from on.
    event AuditorGranted(bytes32 indexed id, string org, uint64 from);
    /// Auditor organization org's access to the group was revoked.
    event AuditorRevoked(bytes32 indexed id, string org);
    /// A member node (of organization servedBy) served the payload of payloadHash to auditor.
    event Disclosed(bytes32 indexed group, string auditor, bytes32 payloadHash, string servedBy);

    /// Records a private transaction of an active group: only a node, or an
    /// account holding write, of a member organization; payloadHash is
    /// keccak256 of its envelope, not zero. members empty: the group must
    /// exist. members given and no group `group`: creates the legacy group
    /// of members (all active, the caller's among them, each with a privacy
    /// key; name "", description "legacy"), whose id must be
    /// web3js-quorum's generatePrivacyGroup of their privacy keys (emits
    /// GroupCreated first); members given and the group existing: ignored.
    function privateMarker(bytes32 group, bytes32 payloadHash, string[] calldata members) external;

    /// Approves purging an active or deleted group, for the caller's
    /// organization; only an admin of a member organization. The last
    /// member's approval purges it.
    function purgeGroup(bytes32 id) external;

    /// Approves granting auditor organization org read access to an active
    /// group's payloads from height fromHeight on; only an admin of a member
    /// organization. org must be active, not a member, and have an account
    /// with the auditor role. Effective when every member approved the same
    /// grant; at most 16 grants a group.
    function grantAuditor(bytes32 id, string calldata org, uint64 fromHeight) external;

    /// Approves revoking auditor organization org's grant on an active
    /// group; only an admin of a member organization; effective when every
    /// member approved.
    function revokeAuditor(bytes32 id, string calldata org) external;

    /// Records that the caller's organization served the payloads of
    /// payloadHashes (1 to 256, none zero) of an active or deleted group to
    /// auditor, which has a grant; only a node or an admin of a member
    /// organization. One Disclosed event per hash; the events are the log.
    function recordDisclosure(bytes32 group, string calldata auditor, bytes32[] calldata payloadHashes) external;

    /// A group's auditor grants: organizations and the first height each may read.
    function groupAuditors(bytes32 id) external view returns (string[] memory orgs, uint64[] memory fromHeights);

    /// The member organizations that approved purging a group so far.
    function purgeApprovals(bytes32 id) external view returns (string[] memory);
}

/// Proposals and votes, at 0x…0401.
/// propose(action, args, memo): action is the number of an action of
/// ICharterActions below, args the ABI encoding of its function's
/// parameters (without a selector), memo at most 1024 bytes. An
/// organization has at most maxOpenProposals (16 unless set) open at once.
/// Gas of a write: 60,000, 16 per 32 bytes of input, and 200 per byte of
/// the strings and bytes it stores (a proposal's args and memo).
/// Classes: membership 0, validators 1, roles 2, certificates 3, freeze 4, parameters 5, upgrade 6, policy 7, contracts 8, privacy 9.
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

/// The contract registry, at 0x…0402: names of deployed contracts and
/// their versions (address, hash of the code when recorded, keccak256 of
/// the ABI document), the organization that registered each name, and
/// the ABI documents (at most 24576 bytes each; a larger one is refused).
/// A name is registered once, by an account with the deploy role, for its
/// organization; an address is registered under one name at most. New
/// versions and deprecations are governance actions of class contracts
/// (UpgradeContract, DeprecateContract). Gas of a write: 60,000, 16 per
/// 32 bytes of input, and 200 per byte of the strings and bytes it stores.
interface ICharterContracts {
    event ContractRegistered(string indexed name, address indexed addr, address indexed by, string contractName, string org, bytes32 codeHash, bytes32 abiHash);

    /// Registers version 1 of a new name for the caller's organization;
    /// only an account with the deploy role, called directly. addr must
    /// hold code; keccak256(abiDoc) must equal abiHash. Returns the version.
    function registerContract(string calldata name, address addr, bytes calldata abiDoc, bytes32 abiHash) external returns (uint64 version);

    /// The newest version of a name; version 0 when it is not registered.
    function contractByName(string calldata name) external view returns (
        uint64 version, address addr, bytes32 codeHash, bytes32 abiHash, string memory org, bool deprecated);

    /// One version of a name; version 0 when there is none.
    function contractVersion(string calldata name, uint64 version) external view returns (
        uint64 version_, address addr, bytes32 codeHash, bytes32 abiHash, string memory org, bool deprecated);

    /// The ABI document of one version; empty when there is none.
    function contractAbi(string calldata name, uint64 version) external view returns (bytes memory);

    /// The number of registered names.
    function contractCount() external view returns (uint64);

    /// The index-th registered name (0-based) and its newest version; "" and 0 past the end.
    function contractAt(uint64 index) external view returns (string memory name, uint64 version);
}

// BEGIN ICharterActions: generated from internal/system (the Args types) by
//   go test ./internal/system -run TestSolidityInterfaceMatches -update
// then node internal/system/gen.js; do not edit by hand.

/// The arguments of each governance action. propose(action, args, memo)
/// takes as args the ABI encoding of the parameters of the action's
/// function here, without a selector (abi.encode(target) for Freeze; in
/// ethers, the function's encodeFunctionData less its first 4 bytes). The
/// functions are never called: they name and type the encodings.
interface ICharterActions {
    /// Action 1, decided by the rule of class membership (0). Admits an organization with its root certificates, admin accounts, nodes and, optionally, its privacy public key.
    /// @param name at most 64 bytes
    /// @param rootsPem at most 8192 bytes
    /// @param admins at most 16 elements
    /// @param nodes at most 64 elements
    /// @param fingerprints at most 64 elements
    /// @param validators at most 64 elements
    /// @param privacyKey at most 1216 bytes
    function AddOrganization(string calldata name, string calldata rootsPem, uint8 tier, uint64 weight, address[] calldata admins, address[] calldata nodes, bytes32[] calldata fingerprints, address[] calldata validators, bytes calldata privacyKey) external;

    /// Action 2, decided by the rule of class membership (0). An organization exits: its nodes are revoked, its accounts lose their roles, its history stays.
    /// @param name at most 64 bytes
    function RemoveOrganization(string calldata name) external;

    /// Action 3, decided by the rule of class membership (0). Sets an organization's tier, voting weight and status (active or suspended).
    /// @param name at most 64 bytes
    function SetOrganization(string calldata name, uint8 tier, uint64 weight, uint8 status) external;

    /// Action 4, decided by the rule of class membership (0). Registers a node of an organization, optionally a validator.
    /// @param org at most 64 bytes
    function AddNode(string calldata org, address id, bytes32 fingerprint, bool validator) external;

    /// Action 5, decided by the rule of class membership (0). Revokes a node and its certificate.
    function RemoveNode(address id) external;

    /// Action 6, decided by the rule of class validators (1). Makes a registered node a validator (from the next epoch boundary).
    function AddValidator(address id) external;

    /// Action 7, decided by the rule of class validators (1). Takes a node out of the validator set (from the next epoch boundary).
    function RemoveValidator(address id) external;

    /// Action 8, decided by the rule of class roles (2). Adds roles to an account of an organization (an account of none joins it).
    /// @param org at most 64 bytes
    function GrantRoles(address account, string calldata org, uint32 roles) external;

    /// Action 9, decided by the rule of class roles (2). Takes roles from an account.
    function RevokeRoles(address account, uint32 roles) external;

    /// Action 10, decided by the rule of class certificates (3). Revokes a certificate by its SHA-256, and the nodes that present it.
    function RevokeCertificate(bytes32 fingerprint) external;

    /// Action 11, decided by the rule of class certificates (3). Replaces an organization's root certificates.
    /// @param org at most 64 bytes
    /// @param rootsPem at most 8192 bytes
    function RotateCA(string calldata org, string calldata rootsPem) external;

    /// Action 12, decided by the rule of class freeze (4). Freezes an account or contract: it may not send, nor receive transfers.
    function Freeze(address target) external;

    /// Action 13, decided by the rule of class freeze (4). Lifts a freeze.
    function Unfreeze(address target) external;

    /// Action 14, decided by the rule of class parameters (5). Sets a chain parameter within its range.
    /// @param name at most 64 bytes
    function SetParameter(string calldata name, uint256 value) external;

    /// Action 15, decided by the rule of class upgrade (6). Schedules a protocol upgrade by name at a height.
    /// @param name at most 64 bytes
    function ScheduleUpgrade(string calldata name, uint64 height) external;

    /// Action 16, decided by the rule of class policy (7). Sets the voting rule of one class of proposals.
    function SetRule(uint8 class, uint64 threshold, uint64 quorum, uint64 expiryBlocks, uint64 timelock, uint64 minApprovals) external;

    /// Action 17, decided by the rule of class policy (7). Sets the roles of accounts the registry does not list.
    function SetDefaultRoles(uint32 roles) external;

    /// Action 18, decided by the rule of class contracts (8). Marks a contract a factory, which may create contracts in transactions of senders without deploy; factory false unmarks it.
    function SetFactory(address target, bool factory) external;

    /// Action 19, decided by the rule of class certificates (3). Rotates an organization's privacy public key, to which private payloads for it are sealed.
    /// @param org at most 64 bytes
    /// @param key at most 1216 bytes
    function SetPrivacyKey(string calldata org, bytes calldata key) external;

    /// Action 20, decided by the rule of class privacy (9). Purges a privacy group at once, as a legal order: every node deletes its payloads; its record stays.
    function PurgeGroup(bytes32 group) external;

    /// Action 21, decided by the rule of class privacy (9). Grants an auditor organization read access to a privacy group's payloads from a height on, without the members' approvals.
    /// @param org at most 64 bytes
    function GrantAuditor(bytes32 group, string calldata org, uint64 fromHeight) external;

    /// Action 22, decided by the rule of class privacy (9). Takes an auditor organization's access to a privacy group's payloads away.
    /// @param org at most 64 bytes
    function RevokeAuditor(bytes32 group, string calldata org) external;

    /// Action 23, decided by the rule of class contracts (8). Records a new version of a registered contract name: its address (which must hold code) and ABI document (at most 24576 bytes).
    /// @param name at most 64 bytes
    /// @param abiDoc at most 24576 bytes
    function UpgradeContract(string calldata name, address addr, bytes calldata abiDoc, bytes32 abiHash) external;

    /// Action 24, decided by the rule of class contracts (8). Marks one version of a registered contract name deprecated.
    /// @param name at most 64 bytes
    function DeprecateContract(string calldata name, uint64 version) external;
}
// END ICharterActions
