// Besu's privacy API (eea_ and priv_) with web3js-quorum 22.4.0, unchanged,
// over web3.js 1.10.4 (the web3 1.x it extends, installed as "web3-v1"):
// the flows of web3js-quorum's own examples (privacy group management,
// deploying and calling a private contract, private calls, logs, polling
// subscriptions, privateFor-style legacy groups), first against `charter dev`
// (one organization, a group of one), then across a 2-organization
// `charter testnet` (both nodes execute the same private transactions and
// agree on the group's state root; a node outside a group sees nothing).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Interface, keccak256, getAddress, getCreateAddress } from 'ethers';
import { compileToken } from '../lib/compile.js';
import { startNode, rpc } from '../lib/node.js';
import { startTestnet, readAccountKey } from '../lib/testnet.js';
import { KNOWN, SUPPLY, TRANSFER_TOPIC, addressTopic, uintWord, waitFor, errorText, withDeadline, deferred } from '../lib/dev.js';

const require = createRequire(import.meta.url);
const Web3 = require('web3-v1');
const Web3Quorum = require('web3js-quorum');
const PrivateTransaction = require('web3js-quorum/src/privateTransaction');

// The registry, where marker transactions go (priv_getPrivacyPrecompileAddress).
const REGISTRY = '0x0000000000000000000000000000000000000400';
// waitForTransactionReceipt(marker, RETRIES, DELAY_MS): at most 60 s.
const RETRIES = 240;
const DELAY_MS = 250;

const token = compileToken();
const iface = new Interface(token.abi);
const deployData = () => token.bytecode + iface.encodeDeploy([SUPPLY]).slice(2);
const balanceOfData = (addr) => iface.encodeFunctionData('balanceOf', [addr]);
const transferData = (to, value) => iface.encodeFunctionData('transfer', [to, value]);

const isBase64Key = (s) => typeof s === 'string' && Buffer.from(s, 'base64').length === 32 && Buffer.from(s, 'base64').toString('base64') === s;
const noHex = (k) => k.replace(/^0x/, '');

function quorum(url) {
  const web3 = new Web3Quorum(new Web3(url));
  web3.priv.subscriptionPollingInterval = 100;
  return web3;
}

// The privacy identity of an organization, from charter_members.
async function privacyKeyOf(url, org) {
  const res = await rpc(url, 'charter_members');
  assert.ok(res.result, `charter_members: ${JSON.stringify(res)}`);
  const o = res.result.organizations.find((x) => x.name === org);
  assert.ok(o, `charter_members has no organization ${org}: ${JSON.stringify(res.result.organizations.map((x) => x.name))}`);
  assert.ok(isBase64Key(o.privacyKey), `organization ${org}: privacyKey ${JSON.stringify(o.privacyKey)} is not base64 of 32 bytes`);
  return o.privacyKey;
}

// Signs a private transaction as generateAndSendRawTransaction does, but
// keeps the bytes: their keccak-256 is the private transaction hash.
function signPrivate({ chainId, key, nonce, to, data, privateFrom, privacyGroupId, privateFor }) {
  const tx = new PrivateTransaction();
  tx.nonce = nonce;
  tx.gasPrice = 0;
  tx.gasLimit = 3_000_000;
  tx.to = to;
  tx.value = 0;
  tx.data = data;
  tx._chainId = chainId;
  tx.privateFrom = privateFrom;
  if (privacyGroupId) tx.privacyGroupId = privacyGroupId;
  if (privateFor) tx.privateFor = privateFor;
  tx.restriction = 'restricted';
  tx.sign(Buffer.from(noHex(key), 'hex'));
  const raw = tx.serialize();
  const big = (b) => BigInt('0x' + (b.toString('hex') || '0'));
  return { raw: raw.toString('hex'), hash: keccak256(raw), v: big(tx.v), r: big(tx.r), s: big(tx.s) };
}

// Checks a private receipt against what was sent.
function checkReceipt(r, { marker, from, groupId, privateFrom, contract, to, logs }) {
  assert.ok(r, `no private receipt for marker ${marker}`);
  assert.equal(r.commitmentHash, marker, 'commitmentHash is the marker');
  assert.equal(r.status, '0x1', `status of ${JSON.stringify(r)}`);
  assert.equal(r.from.toLowerCase(), from.toLowerCase(), 'from');
  assert.equal(r.privateFrom, privateFrom, 'privateFrom');
  assert.equal(r.privacyGroupId, groupId, 'privacyGroupId');
  assert.match(r.transactionHash, /^0x[0-9a-f]{64}$/, 'transactionHash');
  assert.notEqual(r.transactionHash, marker, 'the private transaction hash is not the marker');
  if (contract) {
    assert.equal(getAddress(r.contractAddress), getAddress(contract), 'contractAddress');
    assert.ok(r.to == null, `to of a creation: ${r.to}`);
  } else {
    assert.ok(r.contractAddress == null, `contractAddress of a call: ${r.contractAddress}`);
    assert.equal(r.to.toLowerCase(), to.toLowerCase(), 'to');
  }
  assert.equal(r.logs.length, logs, `logs of ${JSON.stringify(r.logs)}`);
  // As in Besu, a private log names the marker as its transaction.
  for (const l of r.logs) assert.equal(l.transactionHash, marker, 'a receipt log names the marker');
}

function checkTransferLog(log, { address, from, to, value }) {
  assert.equal(getAddress(log.address), getAddress(address), 'log address');
  assert.deepEqual(log.topics, [TRANSFER_TOPIC, addressTopic(from), addressTopic(to)], 'Transfer topics');
  assert.equal(log.data, uintWord(value), 'Transfer value');
}

async function balance(web3, groupId, contract, who, block = 'latest') {
  const out = await web3.priv.call(groupId, { to: contract, data: balanceOfData(who) }, block);
  return BigInt(out);
}

describe('web3js-quorum against charter dev', () => {
  let node;
  let web3;
  let devKey; // the dev organization's privacy identity
  let chainId;
  const alice = KNOWN[0];
  const bob = KNOWN[1];
  let groupId;
  let contract;
  let deployMarker;
  let deployBlock;

  before(async () => {
    node = await startNode();
    web3 = quorum(node.rpcUrl);
    devKey = await privacyKeyOf(node.rpcUrl, 'dev');
    chainId = await web3.eth.getChainId();
  });
  after(async () => {
    if (node) await node.stop();
  });

  test('priv_getPrivacyPrecompileAddress is the registry', async () => {
    assert.equal((await web3.priv.getPrivacyPrecompileAddress()).toLowerCase(), REGISTRY);
  });

  test('priv_createPrivacyGroup, priv_findPrivacyGroup (a group of one organization)', async () => {
    groupId = await web3.priv.createPrivacyGroup({ addresses: [devKey], name: 'dev group', description: 'web3js-quorum' });
    assert.ok(isBase64Key(groupId), `group id ${JSON.stringify(groupId)}`);
    const found = await web3.priv.findPrivacyGroup([devKey]);
    const g = found.find((x) => x.privacyGroupId === groupId);
    assert.ok(g, `findPrivacyGroup([${devKey}]) = ${JSON.stringify(found)} lacks ${groupId}`);
    assert.deepEqual(g, { privacyGroupId: groupId, name: 'dev group', description: 'web3js-quorum', type: 'PANTHEON', members: [devKey] });
    // The group is on the public chain too.
    const res = await rpc(node.rpcUrl, 'charter_group', ['0x' + Buffer.from(groupId, 'base64').toString('hex')]);
    assert.equal(res.result?.privacyGroupId, groupId, JSON.stringify(res));
    assert.equal(await web3.priv.getTransactionCount(alice.address, groupId), 0);
  });

  test('deploy a private ERC-20 with generateAndSendRawTransaction; waitForTransactionReceipt', async () => {
    deployMarker = await web3.priv.generateAndSendRawTransaction({
      data: deployData(), privateFrom: devKey, privacyGroupId: groupId, privateKey: noHex(alice.key),
    });
    assert.match(deployMarker, /^0x[0-9a-f]{64}$/);
    const r = await web3.priv.waitForTransactionReceipt(deployMarker, RETRIES, DELAY_MS);
    contract = getCreateAddress({ from: alice.address, nonce: 0 });
    checkReceipt(r, { marker: deployMarker, from: alice.address, groupId, privateFrom: devKey, contract, logs: 1 });
    checkTransferLog(r.logs[0], { address: contract, from: '0x' + '0'.repeat(40), to: alice.address, value: SUPPLY });
    deployBlock = Number(r.blockNumber);

    // The public marker: from the node, to the registry, without the bytecode.
    const pub = await web3.eth.getTransactionReceipt(deployMarker);
    assert.equal(pub.status, true);
    assert.equal(pub.to.toLowerCase(), REGISTRY);
    assert.equal(Number(pub.blockNumber), deployBlock, 'private receipt block = marker block');
    const tx = await web3.eth.getTransaction(deployMarker);
    assert.ok(!tx.input.includes(token.bytecode.slice(2, 200)), 'the marker carries no contract code');
    assert.notEqual(tx.from.toLowerCase(), alice.address.toLowerCase(), 'the marker is signed by the node, not the account');
    assert.equal(await web3.eth.getCode(contract), '0x', 'no public code at the private contract');

    assert.equal(await web3.priv.getCode(groupId, contract, 'latest'), token.deployedBytecode);
    assert.equal(await web3.priv.getCode(groupId, contract, web3.utils.toHex(deployBlock - 1)), '0x');
    assert.equal(await web3.priv.getTransactionCount(alice.address, groupId), 1);
  });

  test('priv_call reads the private state at a block', async () => {
    assert.equal(await balance(web3, groupId, contract, alice.address), SUPPLY);
    assert.equal(await balance(web3, groupId, contract, bob.address), 0n);
    const name = await web3.priv.call(groupId, { to: contract, data: iface.encodeFunctionData('name') }, 'latest');
    assert.equal(iface.decodeFunctionResult('name', name)[0], 'Token');
  });

  test('a private transfer signed here: receipt, priv_getPrivateTransaction, logs, state roots', async () => {
    const rootBefore = await web3.priv.debugGetStateRoot(groupId, 'latest');
    assert.match(rootBefore, /^0x[0-9a-f]{64}$/);
    assert.notEqual(rootBefore, '0x' + '0'.repeat(64));
    const nonce = await web3.priv.getTransactionCount(alice.address, groupId);
    const signed = signPrivate({ chainId, key: alice.key, nonce, to: contract, data: transferData(bob.address, 1000n), privateFrom: devKey, privacyGroupId: groupId });
    const marker = await web3.priv.sendRawTransaction(signed.raw);
    const r = await web3.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    checkReceipt(r, { marker, from: alice.address, groupId, privateFrom: devKey, to: contract, logs: 1 });
    assert.equal(r.transactionHash, signed.hash, 'transactionHash = keccak256 of the signed private transaction');
    checkTransferLog(r.logs[0], { address: contract, from: alice.address, to: bob.address, value: 1000n });
    const block = Number(r.blockNumber);

    const ptx = await web3.priv.getPrivateTransaction(marker);
    assert.ok(ptx, 'priv_getPrivateTransaction answered null');
    assert.equal(ptx.from.toLowerCase(), alice.address.toLowerCase());
    assert.equal(ptx.to.toLowerCase(), contract.toLowerCase());
    assert.equal(ptx.input, transferData(bob.address, 1000n));
    assert.equal(BigInt(ptx.nonce), BigInt(nonce));
    assert.equal(ptx.privateFrom, devKey);
    assert.equal(ptx.privacyGroupId, groupId);
    assert.equal(ptx.restriction, 'restricted');
    assert.equal(BigInt(ptx.v), signed.v, 'v');
    assert.equal(BigInt(ptx.r), signed.r, 'r');
    assert.equal(BigInt(ptx.s), signed.s, 's');
    assert.equal(BigInt(ptx.gas), 3_000_000n);
    assert.equal(BigInt(ptx.gasPrice), 0n);
    assert.equal(BigInt(ptx.value), 0n);

    assert.equal(await balance(web3, groupId, contract, bob.address), 1000n);
    assert.equal(await balance(web3, groupId, contract, bob.address, web3.utils.toHex(block - 1)), 0n, 'priv_call at the block before');
    assert.equal(await web3.priv.getTransactionCount(alice.address, groupId), nonce + 1);
    const rootAfter = await web3.priv.debugGetStateRoot(groupId, web3.utils.toHex(block));
    assert.notEqual(rootAfter, rootBefore, 'the transfer changed the private state root');
    assert.equal(await web3.priv.debugGetStateRoot(groupId, web3.utils.toHex(block - 1)), rootBefore);

    // Block numbers as web3js-quorum's own tests give them: the receipts' hex quantities.
    const logs = await web3.priv.getLogs(groupId, { address: contract, fromBlock: '0x0', toBlock: 'latest' });
    assert.equal(logs.length, 2, JSON.stringify(logs));
    assert.deepEqual(await web3.priv.getLogs(groupId, {}), logs, 'an empty filter: every log of the group');
    assert.equal((await web3.priv.getLogs(groupId, { toBlock: r.blockNumber })).length, 2);
    assert.equal((await web3.priv.getLogs(groupId, { toBlock: web3.utils.toHex(block - 1) })).length, 1);
    assert.equal((await web3.priv.getLogs(groupId, { fromBlock: r.blockNumber })).length, 1);
    assert.equal(logs[0].transactionHash, deployMarker, 'a private log names its marker');
    assert.equal(logs[1].transactionHash, marker);
    assert.equal(logs[1].blockNumber, block);
    checkTransferLog(logs[1], { address: contract, from: alice.address, to: bob.address, value: 1000n });
    const toBob = await web3.priv.getLogs(groupId, { address: contract, topics: [TRANSFER_TOPIC, null, addressTopic(bob.address)] });
    assert.equal(toBob.length, 1);
  });

  test('a stale private nonce is refused', async () => {
    const signed = signPrivate({ chainId, key: alice.key, nonce: 0, to: contract, data: transferData(bob.address, 1n), privateFrom: devKey, privacyGroupId: groupId });
    await assert.rejects(web3.priv.sendRawTransaction(signed.raw), (err) => /nonce/i.test(errorText(err)));
  });

  test('a subscription by polling (priv_newFilter, priv_getFilterChanges, priv_uninstallFilter)', async () => {
    const filterId = deferred();
    const sub = await web3.priv.subscribeWithPooling(groupId, { address: contract }, (err, id) => (err ? filterId.reject(err) : filterId.resolve(id)));
    assert.match(await withDeadline(filterId.promise, 10_000, 'the filter id'), /^0x[0-9a-f]+$/);
    const got = [];
    const errors = [];
    sub.on('data', (log) => got.push(log));
    sub.on('error', (e) => errors.push(e));
    const marker = await web3.priv.generateAndSendRawTransaction({
      to: contract, data: transferData(bob.address, 7n), privateFrom: devKey, privacyGroupId: groupId, privateKey: noHex(alice.key),
    });
    const r = await web3.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    await waitFor(() => got.length >= 1 || errors.length > 0, 20_000, 'the subscription to deliver the transfer log');
    assert.deepEqual(errors, []);
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.equal(got[0].transactionHash, marker);
    checkTransferLog(got[0], { address: contract, from: alice.address, to: bob.address, value: 7n });
    await sub.unsubscribe();
    sub.on('error', () => {}); // a poll in flight during unsubscribe finds the filter gone
    const res = await rpc(node.rpcUrl, 'priv_getFilterChanges', [groupId, await filterId.promise]);
    assert.ok(res.error, `priv_getFilterChanges after priv_uninstallFilter: ${JSON.stringify(res)}`);
  });

  test('a subscription over WebSocket (priv_subscribe, priv_unsubscribe)', async () => {
    const ws = new Web3Quorum(new Web3(new Web3.providers.WebsocketProvider(node.wsUrl)));
    try {
      const filterId = deferred();
      const sub = await ws.priv.subscribeWithPooling(groupId, { address: contract }, (err, id) => (err ? filterId.reject(err) : filterId.resolve(id)));
      const id = await withDeadline(filterId.promise, 10_000, 'the subscription id');
      assert.match(id, /^0x[0-9a-f]+$/);
      const got = [];
      const errors = [];
      sub.on('data', (params) => got.push(params));
      sub.on('error', (e) => errors.push(e));
      const marker = await web3.priv.generateAndSendRawTransaction({
        to: contract, data: transferData(bob.address, 9n), privateFrom: devKey, privacyGroupId: groupId, privateKey: noHex(alice.key),
      });
      const r = await web3.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
      await waitFor(() => got.length >= 1 || errors.length > 0, 20_000, 'the WebSocket subscription to deliver the transfer log');
      assert.deepEqual(errors, []);
      assert.equal(got.length, 1, JSON.stringify(got));
      assert.equal(got[0].subscription, id);
      assert.equal(got[0].result.transactionHash, marker);
      checkTransferLog(got[0].result, { address: contract, from: alice.address, to: bob.address, value: 9n });
      assert.equal(await sub.unsubscribe(() => {}), true);
    } finally {
      ws.currentProvider.disconnect();
    }
  });

  test('privateFor: a legacy group whose id is generatePrivacyGroup of the keys', async () => {
    const legacyId = web3.utils.generatePrivacyGroup({ privateFrom: devKey, privateFor: [devKey] });
    const marker = await web3.priv.generateAndSendRawTransaction({
      data: deployData(), privateFrom: devKey, privateFor: [devKey], privateKey: noHex(bob.key),
    });
    const r = await web3.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    const legacyContract = getCreateAddress({ from: bob.address, nonce: 0 });
    assert.equal(r.privacyGroupId, legacyId, `privacyGroupId of ${JSON.stringify(r)}`);
    checkReceipt(r, { marker, from: bob.address, groupId: legacyId, privateFrom: devKey, contract: legacyContract, logs: 1 });
    assert.equal(await balance(web3, legacyId, legacyContract, bob.address), SUPPLY);
    assert.equal(await web3.priv.getTransactionCount(bob.address, legacyId), 1);
    const ptx = await web3.priv.getPrivateTransaction(marker);
    assert.deepEqual(ptx.privateFor, [devKey]);
    assert.equal(ptx.privacyGroupId, undefined);
    const found = await web3.priv.findPrivacyGroup([devKey]);
    const g = found.find((x) => x.privacyGroupId === legacyId);
    assert.ok(g, `findPrivacyGroup lacks the legacy group: ${JSON.stringify(found)}`);
    assert.equal(g.type, 'LEGACY');
    assert.deepEqual(g.members, [devKey]);
    // Its contract is not in the other group's state.
    assert.equal(await web3.priv.getCode(groupId, legacyContract, 'latest'), '0x');
  });

  test('an unknown group is refused', async () => {
    const unknown = Buffer.alloc(32, 7).toString('base64');
    await assert.rejects(web3.priv.call(unknown, { to: contract, data: balanceOfData(alice.address) }, 'latest'), (err) => /group/i.test(errorText(err)));
    const signed = signPrivate({ chainId, key: alice.key, nonce: 0, to: contract, data: transferData(bob.address, 1n), privateFrom: devKey, privacyGroupId: unknown });
    await assert.rejects(web3.priv.sendRawTransaction(signed.raw), (err) => /group/i.test(errorText(err)));
    assert.equal(await web3.priv.getTransactionReceipt('0x' + '11'.repeat(32)), null);
  });

  test('a privateFrom other than the node organization\'s identity is refused', async () => {
    const other = Buffer.alloc(32, 9).toString('base64');
    const signed = signPrivate({ chainId, key: alice.key, nonce: 5, to: contract, data: transferData(bob.address, 1n), privateFrom: other, privacyGroupId: groupId });
    await assert.rejects(web3.priv.sendRawTransaction(signed.raw), (err) => /privateFrom|privacy/i.test(errorText(err)));
  });

  test('priv_deletePrivacyGroup', async () => {
    const id = await web3.priv.createPrivacyGroup({ addresses: [devKey], name: 'to delete', description: '' });
    assert.ok((await web3.priv.findPrivacyGroup([devKey])).some((g) => g.privacyGroupId === id));
    assert.equal(await web3.priv.deletePrivacyGroup(id), id);
    assert.ok(!(await web3.priv.findPrivacyGroup([devKey])).some((g) => g.privacyGroupId === id), 'the deleted group is still found');
    await assert.rejects(
      web3.priv.generateAndSendRawTransaction({ data: deployData(), privateFrom: devKey, privacyGroupId: id, privateKey: noHex(alice.key), nonce: 0 }),
      (err) => /group/i.test(errorText(err)),
    );
  });
});

describe('web3js-quorum across a 2-organization charter testnet', { timeout: 240_000 }, () => {
  let net;
  let w0; // node of org0
  let w1; // node of org1
  let k0;
  let k1;
  let admin1; // org1's admin account key (roles read, write, admin)
  let admin1Address;
  const deployer = KNOWN[0]; // a development account: read, write, deploy in org0

  before(async () => {
    net = await startTestnet({ validators: 2, orgs: 2 });
    const n0 = net.nodes.find((n) => n.org === 'org0');
    const n1 = net.nodes.find((n) => n.org === 'org1');
    assert.ok(n0 && n1, `nodes of org0 and org1 in ${JSON.stringify(net.nodes)}`);
    w0 = quorum(n0.rpc);
    w1 = quorum(n1.rpc);
    k0 = await privacyKeyOf(n0.rpc, 'org0');
    k1 = await privacyKeyOf(n0.rpc, 'org1');
    assert.notEqual(k0, k1);
    admin1 = readAccountKey(path.join(net.dir, 'orgs', 'org1', 'admin-account.key'));
    admin1Address = new Web3().eth.accounts.privateKeyToAccount('0x' + admin1).address;
  });
  after(async () => {
    if (net) await net.stop();
  });

  test('a group of both organizations: deployed from org0, called from org1, one state on both nodes', async () => {
    const groupId = await w0.priv.createPrivacyGroup({ addresses: [k0, k1], name: 'org0+org1', description: '' });
    await waitFor(async () => (await w1.priv.findPrivacyGroup([k0, k1])).some((g) => g.privacyGroupId === groupId), 30_000, 'org1 to find the group');

    const deploy = await w0.priv.generateAndSendRawTransaction({ data: deployData(), privateFrom: k0, privacyGroupId: groupId, privateKey: noHex(deployer.key) });
    const r0 = await w0.priv.waitForTransactionReceipt(deploy, RETRIES, DELAY_MS);
    const contract = r0.contractAddress;
    const r1 = await w1.priv.waitForTransactionReceipt(deploy, RETRIES, DELAY_MS);
    assert.deepEqual(r1, r0, 'the same private receipt on both nodes');

    const give = await w0.priv.generateAndSendRawTransaction({ to: contract, data: transferData(admin1Address, 500n), privateFrom: k0, privacyGroupId: groupId, privateKey: noHex(deployer.key) });
    await w0.priv.waitForTransactionReceipt(give, RETRIES, DELAY_MS);
    await w1.priv.waitForTransactionReceipt(give, RETRIES, DELAY_MS);
    assert.equal(await w1.priv.getTransactionCount(deployer.address, groupId), 2);

    const back = await w1.priv.generateAndSendRawTransaction({ to: contract, data: transferData(deployer.address, 200n), privateFrom: k1, privacyGroupId: groupId, privateKey: admin1 });
    const b1 = await w1.priv.waitForTransactionReceipt(back, RETRIES, DELAY_MS);
    checkReceipt(b1, { marker: back, from: admin1Address, groupId, privateFrom: k1, to: contract, logs: 1 });
    const b0 = await w0.priv.waitForTransactionReceipt(back, RETRIES, DELAY_MS);
    assert.deepEqual(b0, b1);
    for (const w of [w0, w1]) {
      assert.equal(await balance(w, groupId, contract, admin1Address), 300n);
      assert.equal(await balance(w, groupId, contract, deployer.address), SUPPLY - 300n);
    }
    const block = w0.utils.toHex(Number(b1.blockNumber));
    assert.equal(await w1.priv.debugGetStateRoot(groupId, block), await w0.priv.debugGetStateRoot(groupId, block), 'state roots differ between the nodes');
    const logs0 = await w0.priv.getLogs(groupId, { address: contract });
    const logs1 = await w1.priv.getLogs(groupId, { address: contract });
    assert.equal(logs0.length, 3);
    assert.deepEqual(logs1, logs0);
  });

  test('privateFor from org0 to org1: the legacy group id of generatePrivacyGroup on both nodes', async () => {
    const legacyId = w0.utils.generatePrivacyGroup({ privateFrom: k0, privateFor: [k1] });
    const marker = await w0.priv.generateAndSendRawTransaction({ data: deployData(), privateFrom: k0, privateFor: [k1], privateKey: noHex(KNOWN[2].key) });
    const r0 = await w0.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    assert.equal(r0.privacyGroupId, legacyId);
    const r1 = await w1.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    assert.deepEqual(r1, r0);
    const found = await w1.priv.findPrivacyGroup([k0, k1]);
    const g = found.find((x) => x.privacyGroupId === legacyId);
    assert.ok(g, `org1 does not find the legacy group: ${JSON.stringify(found)}`);
    assert.equal(g.type, 'LEGACY');
    assert.deepEqual([...g.members].sort(), [k0, k1].sort());
  });

  test('a group of org0 alone: org1\'s node holds nothing of it', async () => {
    const groupId = await w0.priv.createPrivacyGroup({ addresses: [k0], name: 'org0 only', description: '' });
    const marker = await w0.priv.generateAndSendRawTransaction({ data: deployData(), privateFrom: k0, privacyGroupId: groupId, privateKey: noHex(KNOWN[3].key) });
    const r0 = await w0.priv.waitForTransactionReceipt(marker, RETRIES, DELAY_MS);
    await waitFor(async () => (await w1.eth.getTransactionReceipt(marker)) != null, 30_000, 'org1\'s node to have the marker');
    assert.equal(await w1.priv.getTransactionReceipt(marker), null);
    assert.equal(await w1.priv.getPrivateTransaction(marker), null);
    assert.ok(!(await w1.priv.findPrivacyGroup([k0])).some((g) => g.privacyGroupId === groupId));
    await assert.rejects(w1.priv.getCode(groupId, r0.contractAddress, 'latest'), (err) => /group/i.test(errorText(err)));
  });
});
