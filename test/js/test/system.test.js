// Charter's native system contracts against `charter dev`, through the ABI that
// solc-js compiles from contracts/system/ICharter.sol: the registry read with
// ethers and viem, the registry called from a Solidity contract (Gate), a freeze
// voted through governance with ethers and enforced on the frozen account's
// transactions, and revert reasons of refused system writes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ethers } from 'ethers';
import { createPublicClient, http, defineChain } from 'viem';
import solc from 'solc';
import { JS_ROOT, EVM_VERSION } from '../lib/compile.js';
import { startNode } from '../lib/node.js';
import { MNEMONIC, CHAIN_ID, DEV_ACCOUNT_COUNT, KNOWN, hdPath, errorText, waitFor } from '../lib/dev.js';

const REGISTRY = '0x0000000000000000000000000000000000000400';
const GOVERNANCE = '0x0000000000000000000000000000000000000401';
const ROLE = { read: 1n, write: 2n, deploy: 4n, admin: 8n, auditor: 16n };
const DEV_ROLES = 15n; // read | write | deploy | admin
const DEFAULT_ROLES = 7n; // read | write | deploy
const ACTION_FREEZE = 12;
const STATUS = { open: 1n, passed: 2n, executed: 3n };
const DEV_WEIGHT = 1n; // the dev organization's voting weight (the default)
const EXPIRY_BLOCKS = 10_000n; // the default policy's expiry of a freeze proposal
const WAIT_MS = 30_000;

// Source unit names are the repository paths, so that Gate.sol's relative
// import of ../../../contracts/system/ICharter.sol resolves as it does on disk.
const ICHARTER_UNIT = 'contracts/system/ICharter.sol';
const GATE_UNIT = 'test/js/contracts/Gate.sol';

// Compiles ICharter.sol and Gate.sol with solc-js (standard JSON, offline: every
// source is given, no import is read from anywhere), EVM version osaka.
function compileSystem() {
  const input = {
    language: 'Solidity',
    sources: {
      [ICHARTER_UNIT]: { content: fs.readFileSync(path.join(JS_ROOT, '..', '..', 'contracts', 'system', 'ICharter.sol'), 'utf8') },
      [GATE_UNIT]: { content: fs.readFileSync(path.join(JS_ROOT, 'contracts', 'Gate.sol'), 'utf8') },
    },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: (p) => ({ error: `unexpected import ${p}` }) }));
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error('solc: ' + errors.map((e) => e.formattedMessage).join('\n'));
  const unit = output.contracts?.[ICHARTER_UNIT] ?? {};
  const gate = output.contracts?.[GATE_UNIT]?.Gate;
  if (!unit.ICharterRegistry || !unit.ICharterGovernance || !gate) {
    throw new Error(`solc output lacks a contract: ${JSON.stringify(Object.keys(output.contracts ?? {}))}`);
  }
  return {
    registryAbi: unit.ICharterRegistry.abi,
    governanceAbi: unit.ICharterGovernance.abi,
    interfaceBytecode: [unit.ICharterRegistry.evm.bytecode.object, unit.ICharterGovernance.evm.bytecode.object],
    sources: Object.keys(output.sources),
    gate: { abi: gate.abi, bytecode: '0x' + gate.evm.bytecode.object, deployedBytecode: '0x' + gate.evm.deployedBytecode.object },
  };
}

// The revert reason ethers decoded from an Error(string) revert of eth_call or eth_estimateGas.
function revertReason(err) {
  assert.equal(err.code, 'CALL_EXCEPTION', errorText(err));
  return err.reason;
}

describe('system contracts (ICharter.sol) against charter dev', { timeout: 180_000 }, () => {
  const compiled = compileSystem();
  const { registryAbi, governanceAbi } = compiled;
  const govIface = new ethers.Interface(governanceAbi);
  const regIface = new ethers.Interface(registryAbi);
  let node, provider, dev0, registry, governance;
  let gate, gateAddress;
  let frozen, freezeId, freezeArgs; // the account frozen through governance, its proposal

  const hdWallet = (i) => ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(i)).connect(provider);
  const plain = (result) => [...result]; // an ethers Result as a plain array

  before(async () => {
    node = await startNode();
    // cacheTimeout -1: no reuse of identical answers (fresh nonces); poll every 50 ms.
    provider = new ethers.JsonRpcProvider(node.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
    dev0 = hdWallet(0);
    registry = new ethers.Contract(REGISTRY, registryAbi, dev0);
    governance = new ethers.Contract(GOVERNANCE, governanceAbi, dev0);
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
  });

  it('compiles contracts/system/ICharter.sol into the registry and governance ABIs', () => {
    assert.deepEqual(compiled.sources.sort(), [ICHARTER_UNIT, GATE_UNIT].sort());
    assert.deepEqual(compiled.interfaceBytecode, ['', '']); // interfaces: no code
    const names = (iface) => iface.fragments.filter((f) => f.type === 'function').map((f) => f.name).sort();
    assert.deepEqual(names(regIface), [
      'accountOf', 'addMembers', 'createGroup', 'deleteGroup', 'grantAuditor', 'group', 'groupAuditors', 'groupsOf', 'hasRole',
      'isFrozen', 'node', 'organization', 'organizations', 'parameter', 'privacyKey', 'privacyKeyOrg', 'privateMarker',
      'purgeApprovals', 'purgeGroup', 'recordDisclosure', 'removeMember', 'revokeAuditor', 'setAccountRoles', 'usage', 'validators',
    ]);
    assert.deepEqual(names(govIface), ['cancel', 'proposal', 'proposalCount', 'propose', 'vote']);
    assert.equal(regIface.getFunction('hasRole').selector, ethers.id('hasRole(address,uint32)').slice(0, 10));
    assert.equal(govIface.getFunction('propose').selector, ethers.id('propose(uint8,bytes,string)').slice(0, 10));
    assert.equal(dev0.address, KNOWN[0].address);
  });

  it('reads the registry with ethers: accounts, roles, organizations', async () => {
    assert.deepEqual(plain(await registry.accountOf(dev0.address)), ['dev', DEV_ROLES, false]);
    const r = await registry.accountOf(dev0.address);
    assert.equal(r.org, 'dev');
    assert.equal(r.roles, DEV_ROLES);
    assert.equal(r.frozen, false);
    assert.equal(await registry.hasRole(dev0.address, ROLE.write), true);
    assert.equal(await registry.hasRole(dev0.address, DEV_ROLES), true);
    assert.equal(await registry.hasRole(dev0.address, ROLE.auditor), false);
    assert.equal(await registry.hasRole(dev0.address, ROLE.write | ROLE.auditor), false);
    assert.equal(await registry.isFrozen(dev0.address), false);
    // Every development account is an admin of "dev".
    for (let i = 1; i < DEV_ACCOUNT_COUNT; i++) {
      assert.deepEqual(plain(await registry.accountOf(hdWallet(i).address)), ['dev', DEV_ROLES, false], `dev account ${i}`);
    }

    assert.deepEqual(plain(await registry.organizations()), ['dev']);
    // exists, tier validate (3), weight, status active (1); an unknown name does not exist.
    assert.deepEqual(plain(await registry.organization('dev')), [true, 3n, DEV_WEIGHT, 1n]);
    assert.deepEqual(plain(await registry.organization('nobody')), [false, 0n, 0n, 0n]);

    // An address the registry does not list: no organization, the default roles.
    const stranger = ethers.Wallet.createRandom().address;
    assert.deepEqual(plain(await registry.accountOf(stranger)), ['', DEFAULT_ROLES, false]);
    assert.equal(await registry.hasRole(stranger, ROLE.write), true);
    assert.equal(await registry.hasRole(stranger, ROLE.admin), false);
    assert.equal(await registry.isFrozen(stranger), false);
    assert.equal(await governance.proposalCount(), 0n);
  });

  it('creates and deletes a privacy group with ethers; its members hash is keccak256(abi.encode(members))', async () => {
    const receipt = await (await registry.createGroup(ethers.ZeroHash, 'trade', 'dev alone', ['dev'])).wait(1, WAIT_MS);
    assert.equal(receipt.status, 1);
    assert.equal(receipt.logs.length, 1);
    assert.equal(receipt.logs[0].address, REGISTRY);
    const created = regIface.parseLog(receipt.logs[0]);
    assert.equal(created.name, 'GroupCreated');
    const { id } = created.args;
    const membersHash = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(['string[]'], [['dev']]));
    assert.equal(created.args.by, dev0.address);
    assert.equal(created.args.org, 'dev');
    assert.deepEqual([...created.args.members], ['dev']);
    assert.equal(created.args.membersHash, membersHash);

    const g = await registry.group(id);
    assert.equal(g.exists, true);
    assert.equal(g.name, 'trade');
    assert.equal(g.description, 'dev alone');
    assert.equal(g.creator, 'dev');
    assert.deepEqual([...g.members], ['dev']);
    assert.equal(g.membersHash, membersHash);
    assert.equal(g.status, 1n);
    assert.equal(g.created, BigInt(receipt.blockNumber));
    assert.deepEqual([...(await registry.groupsOf('dev'))], [id]);

    // Refusals carry the registry's reason.
    await assert.rejects(registry.createGroup.staticCall(id, 'again', '', ['dev']), (err) => {
      assert.equal(revertReason(err), `group ${id} exists already`);
      return true;
    });
    await assert.rejects(registry.addMembers.staticCall(id, ['nobody']), (err) => {
      assert.equal(revertReason(err), 'organization nobody is not in the registry');
      return true;
    });

    const del = await (await registry.deleteGroup(id)).wait(1, WAIT_MS);
    assert.equal(del.status, 1);
    const deleted = regIface.parseLog(del.logs[0]);
    assert.equal(deleted.name, 'GroupDeleted');
    assert.equal(deleted.args.id, id);
    assert.equal((await registry.group(id)).status, 2n);
    assert.deepEqual([...(await registry.groupsOf('dev'))], []);
  });

  it('lets a Solidity contract (Gate) call the registry', async () => {
    const factory = new ethers.ContractFactory(compiled.gate.abi, compiled.gate.bytecode, dev0);
    const deployed = await factory.deploy();
    const deployReceipt = await deployed.deploymentTransaction().wait(1, WAIT_MS);
    assert.equal(deployReceipt.status, 1);
    gateAddress = await deployed.getAddress();
    assert.equal(await provider.getCode(gateAddress), compiled.gate.deployedBytecode);
    gate = new ethers.Contract(gateAddress, compiled.gate.abi, dev0);
    assert.equal(await gate.REGISTRY(), REGISTRY);
    assert.equal(await gate.GOVERNANCE(), GOVERNANCE);

    // The view through the contract answers as a direct call does.
    const stranger = ethers.Wallet.createRandom().address;
    for (const [who, want] of [[dev0.address, ['dev', DEV_ROLES, false]], [stranger, ['', DEFAULT_ROLES, false]]]) {
      const direct = plain(await registry.accountOf(who));
      assert.deepEqual(direct, want);
      assert.deepEqual(plain(await gate.accountOf(who)), direct);
    }
    assert.equal(await gate.hasRole(dev0.address, ROLE.write), true);
    assert.equal(await gate.hasRole(dev0.address, ROLE.auditor), false);

    // The guarded function: dev0 holds write, so it gets through, in a mined transaction.
    const tx = await gate.enter();
    const receipt = await tx.wait(1, WAIT_MS);
    assert.equal(receipt.status, 1);
    assert.equal(receipt.logs.length, 1);
    const entered = gate.interface.parseLog(receipt.logs[0]);
    assert.equal(entered.name, 'Entered');
    assert.deepEqual(plain(entered.args), [dev0.address, 1n]);
    assert.equal(await gate.entries(), 1n);

    // An account dev0 (an admin) limits to read (1) is turned away by the contract.
    const reader = ethers.Wallet.createRandom().address;
    const rolesReceipt = await (await registry.setAccountRoles(reader, ROLE.read)).wait(1, WAIT_MS);
    assert.equal(rolesReceipt.status, 1);
    assert.equal(rolesReceipt.logs.length, 1);
    assert.equal(rolesReceipt.logs[0].address, REGISTRY);
    const changed = regIface.parseLog(rolesReceipt.logs[0]);
    assert.equal(changed.name, 'RolesChanged');
    assert.deepEqual(plain(changed.args), [reader, 'dev', ROLE.read, dev0.address]);
    assert.deepEqual(plain(await registry.accountOf(reader)), ['dev', ROLE.read, false]);
    assert.deepEqual(plain(await gate.accountOf(reader)), ['dev', ROLE.read, false]);
    assert.equal(await gate.hasRole(reader, ROLE.write), false);
    assert.equal(await gate.hasRole(reader, ROLE.read), true);
    const asCaller = gate.connect(provider);
    await assert.rejects(asCaller.enter.staticCall({ from: reader }), (err) => {
      assert.equal(revertReason(err), 'Gate: caller lacks role write');
      return true;
    });
    assert.equal(await asCaller.enter.staticCall({ from: dev0.address }), 2n);
    assert.equal(await gate.entries(), 1n);
  });

  it('freezes an account through a governance proposal voted with ethers', async () => {
    frozen = ethers.Wallet.createRandom().connect(provider);
    const fund = await (await dev0.sendTransaction({ to: frozen.address, value: ethers.parseEther('1') })).wait(1, WAIT_MS);
    assert.equal(fund.status, 1);
    assert.equal(await provider.getBalance(frozen.address), ethers.parseEther('1'));
    // Before the freeze the account may send.
    const before = await (await frozen.sendTransaction({ to: dev0.address, value: 1n })).wait(1, WAIT_MS);
    assert.equal(before.status, 1);
    assert.equal(await provider.getTransactionCount(frozen.address), 1);

    // Propose Freeze(X).
    freezeArgs = ethers.AbiCoder.defaultAbiCoder().encode(['address'], [frozen.address]);
    const proposeTx = await governance.propose(ACTION_FREEZE, freezeArgs, 'freeze X');
    const proposed = await proposeTx.wait(1, WAIT_MS);
    assert.equal(proposed.status, 1);
    assert.equal(proposed.logs.length, 1);
    assert.equal(proposed.logs[0].address, GOVERNANCE);
    const created = govIface.parseLog(proposed.logs[0]);
    assert.equal(created.name, 'ProposalCreated');
    freezeId = created.args.id;
    assert.equal(freezeId, 1n);
    assert.equal(created.args.action, BigInt(ACTION_FREEZE));
    assert.equal(created.args.org, 'dev');
    assert.equal(created.args.proposer, dev0.address);
    assert.equal(created.args.expires, BigInt(proposed.blockNumber) + EXPIRY_BLOCKS);
    assert.equal(created.args.memo, 'freeze X');
    assert.equal(await governance.proposalCount(), 1n);
    const open = await governance.proposal(freezeId);
    assert.deepEqual(plain(open), [
      BigInt(ACTION_FREEZE), STATUS.open, 'dev', dev0.address,
      BigInt(proposed.blockNumber), BigInt(proposed.blockNumber) + EXPIRY_BLOCKS, 0n, 0n, 0n, DEV_WEIGHT,
    ]);

    // dev0 votes yes: the dev organization's majority passes it.
    const voted = await (await governance.vote(freezeId, true)).wait(1, WAIT_MS);
    assert.equal(voted.status, 1);
    const events = voted.logs.map((log) => {
      assert.equal(log.address, GOVERNANCE);
      return govIface.parseLog(log);
    });
    assert.deepEqual(events.map((e) => e.name), ['VoteCast', 'ProposalPassed']);
    assert.deepEqual(plain(events[0].args), [freezeId, 'dev', dev0.address, true, DEV_WEIGHT]);
    const activatesAt = BigInt(voted.blockNumber) + 1n; // executes at the start of the next block
    assert.deepEqual(plain(events[1].args), [freezeId, activatesAt]);
    // At the vote's block it has passed and X is not frozen yet.
    const atVote = await governance.proposal(freezeId, { blockTag: voted.blockNumber });
    assert.equal(atVote.status, STATUS.passed);
    assert.equal(atVote.activatesAt, activatesAt);
    assert.equal(atVote.yesWeight, DEV_WEIGHT);
    assert.equal(await registry.isFrozen(frozen.address, { blockTag: voted.blockNumber }), false);

    // charter dev seals the next block by itself; the proposal executes in it.
    await waitFor(async () => (await governance.proposal(freezeId)).status === STATUS.executed, WAIT_MS, `proposal ${freezeId} executed`);
    const done = await governance.proposal(freezeId);
    assert.deepEqual(plain(done), [
      BigInt(ACTION_FREEZE), STATUS.executed, 'dev', dev0.address,
      BigInt(proposed.blockNumber), BigInt(proposed.blockNumber) + EXPIRY_BLOCKS, activatesAt, DEV_WEIGHT, 0n, DEV_WEIGHT,
    ]);
    assert.equal(await registry.isFrozen(frozen.address, { blockTag: Number(activatesAt) }), true);
    assert.equal(await registry.isFrozen(frozen.address), true);
    assert.deepEqual(plain(await registry.accountOf(frozen.address)), ['', DEFAULT_ROLES, true]);
    assert.equal(await registry.hasRole(frozen.address, ROLE.read), false);
    assert.equal(await gate.hasRole(frozen.address, ROLE.write), false);
    await assert.rejects(gate.connect(provider).enter.staticCall({ from: frozen.address }), (err) => {
      assert.equal(revertReason(err), 'Gate: caller lacks role write');
      return true;
    });

    // A transaction signed by X is refused, and so is one sent to X.
    await assert.rejects(frozen.sendTransaction({ to: dev0.address, value: 1n }), (err) => {
      const text = errorText(err);
      assert.match(text, /not permitted/, text);
      assert.match(text, /frozen/, text);
      assert.ok(text.toLowerCase().includes(`account ${frozen.address.toLowerCase()} is frozen`), text);
      return true;
    });
    assert.equal(await provider.getTransactionCount(frozen.address), 1);
    await assert.rejects(dev0.sendTransaction({ to: frozen.address, value: 1n }), (err) => {
      const text = errorText(err);
      assert.match(text, /not permitted/, text);
      assert.ok(text.toLowerCase().includes(`${frozen.address.toLowerCase()} is frozen`), text);
      return true;
    });
    assert.equal(await provider.getBalance(frozen.address), ethers.parseEther('1') - 1n - before.gasUsed * before.gasPrice);
  });

  it('carries the revert reason of a refused system write', async () => {
    assert.ok(freezeId, 'the freeze proposal exists');
    // A second vote on the executed proposal.
    const again = `proposal ${freezeId} is executed`;
    await assert.rejects(governance.vote.estimateGas(freezeId, true), (err) => {
      assert.equal(revertReason(err), again);
      return true;
    });
    await assert.rejects(governance.vote.staticCall(freezeId, false), (err) => {
      assert.equal(revertReason(err), again);
      return true;
    });
    await assert.rejects(governance.vote(freezeId, true), (err) => {
      assert.equal(revertReason(err), again);
      return true;
    });

    // The same proposal called directly would be made (eth_call) ...
    const unfreezeArgs = ethers.AbiCoder.defaultAbiCoder().encode(['address'], [frozen.address]);
    assert.equal(await governance.propose.staticCall(13, unfreezeArgs, 'direct'), 2n);
    // ... but forwarded by a contract it reverts, in eth_call, eth_estimateGas and a mined transaction.
    const directly = 'propose: call the system contract directly from an account, not through a contract';
    await assert.rejects(gate.propose.staticCall(13, unfreezeArgs, 'via gate'), (err) => {
      assert.equal(revertReason(err), directly);
      return true;
    });
    await assert.rejects(gate.propose.estimateGas(13, unfreezeArgs, 'via gate'), (err) => {
      assert.equal(revertReason(err), directly);
      return true;
    });
    const tx = await gate.propose(13, unfreezeArgs, 'via gate', { gasLimit: 300_000n });
    let receipt;
    await assert.rejects(tx.wait(1, WAIT_MS), (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', errorText(err));
      receipt = err.receipt;
      return true;
    });
    assert.equal(receipt.status, 0);
    assert.deepEqual(receipt.logs, []);
    assert.equal(await governance.proposalCount(), 1n);
    assert.equal(await registry.isFrozen(frozen.address), true);
  });

  it('reads the registry with viem', async () => {
    const chain = defineChain({
      id: CHAIN_ID,
      name: 'Charter dev',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [node.rpcUrl] } },
    });
    const client = createPublicClient({ chain, transport: http(node.rpcUrl) });
    const read = (args) => client.readContract({ address: REGISTRY, abi: registryAbi, functionName: 'hasRole', args });
    assert.equal(await read([dev0.address, Number(ROLE.write)]), true);
    assert.equal(await read([frozen.address, Number(ROLE.write)]), false);
  });
});
