// WebSocket on the JSON-RPC port: eth_subscribe newHeads and logs through ethers'
// WebSocketProvider and viem's webSocket transport (watchBlocks,
// watchContractEvent and raw eth_subscribe), with every notification checked.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';
import { createPublicClient, webSocket, defineChain, isAddressEqual } from 'viem';
import { compileToken } from '../lib/compile.js';
import { startNode } from '../lib/node.js';
import {
  MNEMONIC, CHAIN_ID, SUPPLY, TRANSFER_TOPIC, hdPath, addressTopic, uintWord, withDeadline, waitFor,
} from '../lib/dev.js';

const WAIT_MS = 30_000;
const AMOUNT = 500n * 10n ** 18n;

describe('WebSocket subscriptions against charter dev', { timeout: 180_000 }, () => {
  const { abi, bytecode } = compileToken();
  let node, http, ws, viemClient;
  let deployer, holder, other, token, tokenAddress;
  const subscribeCalls = []; // promises of every eth_subscribe made by ethers or viem
  const unsubscribeCalls = []; // promises of ethers' eth_unsubscribe requests
  const viemUnsubscribes = [];

  before(async () => {
    node = await startNode();
    http = new ethers.JsonRpcProvider(node.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
    ws = new ethers.WebSocketProvider(node.wsUrl, undefined, { cacheTimeout: -1 });
    // Record ethers' eth_subscribe requests so the test can wait until they are acknowledged.
    const send = ws.send.bind(ws);
    ws.send = (method, params) => {
      const result = send(method, params);
      if (method === 'eth_subscribe') subscribeCalls.push(result);
      if (method === 'eth_unsubscribe') unsubscribeCalls.push(result);
      return result;
    };
    deployer = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(0)).connect(ws);
    holder = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(1)).connect(ws);
    other = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(2)).address;

    const chain = defineChain({
      id: CHAIN_ID,
      name: 'Charter dev',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [node.rpcUrl], webSocket: [node.wsUrl] } },
    });
    viemClient = createPublicClient({ chain, transport: webSocket(node.wsUrl) });
    const subscribe = viemClient.transport.subscribe;
    viemClient.transport.subscribe = (args) => {
      const result = subscribe(args);
      subscribeCalls.push(result.then((s) => s.subscriptionId));
      return result;
    };
  });

  after(async () => {
    for (const unwatch of viemUnsubscribes) await unwatch();
    if (viemClient) (await viemClient.transport.getRpcClient()).close();
    await ws?.destroy();
    http?.destroy();
    await node?.stop();
  });
  it('answers JSON-RPC over WebSocket on the HTTP port', async () => {
    assert.equal((await ws.getNetwork()).chainId, BigInt(CHAIN_ID));
    assert.equal(await viemClient.getChainId(), CHAIN_ID);
    const height = await http.getBlockNumber();
    assert.equal(await ws.getBlockNumber(), height);
    assert.equal(await viemClient.getBlockNumber(), BigInt(height));
  });

  it('deploys the ERC-20 over WebSocket', async () => {
    const contract = await new ethers.ContractFactory(abi, bytecode, deployer).deploy(SUPPLY);
    const receipt = await contract.deploymentTransaction().wait(1, WAIT_MS);
    assert.equal(receipt.status, 1);
    tokenAddress = await contract.getAddress();
    token = new ethers.Contract(tokenAddress, abi, deployer);
    assert.equal(await token.balanceOf(deployer.address), SUPPLY);
  });

  it('delivers newHeads and Transfer logs to ethers and viem subscribers', async () => {
    const ethersBlocks = [];
    const ethersTransfers = [];
    const viemBlocks = [];
    const viemLogs = [];
    const rawHeads = [];
    const rawLogs = [];
    const errors = [];
    const fromDeployer = token.filters.Transfer(deployer.address, null);

    // ethers: provider 'block' events (eth_subscribe newHeads) and contract events (eth_subscribe logs).
    const onBlock = (n) => ethersBlocks.push(n);
    // With a filter that has arguments, ethers v6 passes only the event payload
    // (its decoded args are on payload.args); the payload is always the last argument.
    const onTransfer = (...args) => {
      const payload = args.at(-1);
      const [from, to, value] = payload.args;
      ethersTransfers.push({ from, to, value, log: payload.log });
    };
    await ws.on('block', onBlock);
    await token.on(fromDeployer, onTransfer);

    // viem: watchBlocks and watchContractEvent over the webSocket transport...
    viemUnsubscribes.push(viemClient.watchBlocks({ onBlock: (b) => viemBlocks.push(b), onError: (e) => errors.push(e), emitOnBegin: false }));
    viemUnsubscribes.push(viemClient.watchContractEvent({
      address: tokenAddress, abi, eventName: 'Transfer', args: { from: deployer.address },
      onLogs: (logs) => viemLogs.push(...logs), onError: (e) => errors.push(e),
    }));
    // ...and raw eth_subscribe, to see the notifications exactly as the node sends them.
    const heads = await viemClient.transport.subscribe({ params: ['newHeads'], onData: (d) => rawHeads.push(d), onError: (e) => errors.push(e) });
    const logs = await viemClient.transport.subscribe({
      params: ['logs', { address: tokenAddress, topics: [TRANSFER_TOPIC, addressTopic(deployer.address)] }],
      onData: (d) => rawLogs.push(d), onError: (e) => errors.push(e),
    });

    // Every subscription is acknowledged with a distinct id before anything is sent.
    await waitFor(() => subscribeCalls.length >= 6, WAIT_MS, 'ethers and viem to send eth_subscribe');
    const ids = await withDeadline(Promise.all(subscribeCalls), WAIT_MS, 'eth_subscribe answers');
    for (const id of ids) assert.match(id, /^0x[0-9a-fA-F]+$/, `subscription id ${id}`);
    assert.equal(new Set(ids).size, ids.length, `distinct subscription ids ${ids}`);

    const startHeight = await http.getBlockNumber();

    // Three transfers, each waited for, so in three blocks; the middle one is not
    // from the deployer, so the log subscriptions (from = deployer) must skip it.
    const r1 = await (await token.transfer(holder.address, AMOUNT)).wait(1, WAIT_MS);
    const r2 = await (await token.connect(holder).transfer(deployer.address, 1n)).wait(1, WAIT_MS);
    const r3 = await (await token.transfer(other, 5n)).wait(1, WAIT_MS);
    const receipts = [r1, r2, r3];
    assert.ok(r1.blockNumber > startHeight && r2.blockNumber > r1.blockNumber && r3.blockNumber > r2.blockNumber);
    // newHeads must report every block after the subscription, once each, in order
    // (the dev node seals none while nothing waits, so these are normally r1..r3's).
    const numbers = [];
    for (let n = startHeight + 1; n <= r3.blockNumber; n++) numbers.push(n);
    const upToLast = (list, num) => list.slice(0, list.findIndex((x) => num(x) === r3.blockNumber) + 1);

    await waitFor(
      () => ethersBlocks.includes(r3.blockNumber) && viemBlocks.some((b) => b.number === BigInt(r3.blockNumber))
        && rawHeads.some((h) => Number(h.result.number) === r3.blockNumber)
        && ethersTransfers.length >= 2 && viemLogs.length >= 2 && rawLogs.length >= 2,
      WAIT_MS,
      'notifications',
    ).catch((err) => {
      throw new Error(`${err.message}: ethers blocks ${ethersBlocks}, viem blocks ${viemBlocks.length}, raw heads ${rawHeads.length}, `
        + `ethers transfers ${ethersTransfers.length}, viem logs ${viemLogs.length}, raw logs ${rawLogs.length}, errors ${errors.map(String)}`);
    });
    assert.deepEqual(errors, []);

    // newHeads: one per block, in order, with the fields of the block.
    const heads3 = upToLast(rawHeads, (h) => Number(h.result.number));
    assert.deepEqual(upToLast(ethersBlocks, (n) => n), numbers);
    assert.deepEqual(upToLast(viemBlocks, (b) => Number(b.number)).map((b) => b.number), numbers.map(BigInt));
    assert.deepEqual(heads3.map((h) => Number(h.result.number)), numbers);
    for (const [i, note] of heads3.entries()) {
      assert.equal(note.subscription, heads.subscriptionId);
      const head = note.result;
      const block = await http.send('eth_getBlockByNumber', [ethers.toQuantity(numbers[i]), false]);
      for (const field of ['hash', 'parentHash', 'stateRoot', 'transactionsRoot', 'receiptsRoot', 'logsBloom', 'miner', 'gasLimit', 'gasUsed', 'timestamp', 'baseFeePerGas']) {
        assert.equal(head[field], block[field], `newHeads ${field} of block ${numbers[i]}`);
      }
      assert.equal(viemBlocks[i].hash, block.hash);
      if (i > 0) assert.equal(head.parentHash, heads3[i - 1].result.hash);
    }
    for (const r of receipts) {
      const note = heads3.find((h) => Number(h.result.number) === r.blockNumber);
      assert.equal(note.result.hash, r.blockHash);
    }

    // logs: the two transfers from the deployer, nothing else.
    const expected = [
      { to: holder.address, value: AMOUNT, receipt: r1 },
      { to: other, value: 5n, receipt: r3 },
    ];
    assert.equal(ethersTransfers.length, 2);
    assert.equal(viemLogs.length, 2);
    assert.equal(rawLogs.length, 2);
    for (const [i, want] of expected.entries()) {
      const e = ethersTransfers[i];
      assert.equal(e.from, deployer.address);
      assert.equal(e.to, want.to);
      assert.equal(e.value, want.value);
      assert.equal(e.log.transactionHash, want.receipt.hash);
      assert.equal(e.log.blockNumber, want.receipt.blockNumber);
      assert.equal(e.log.blockHash, want.receipt.blockHash);

      const v = viemLogs[i];
      assert.ok(isAddressEqual(v.address, tokenAddress));
      assert.deepEqual(v.args, { from: deployer.address, to: want.to, value: want.value });
      assert.equal(v.transactionHash, want.receipt.hash);
      assert.equal(v.blockNumber, BigInt(want.receipt.blockNumber));
      assert.equal(v.logIndex, want.receipt.logs[0].index);

      const note = rawLogs[i];
      assert.equal(note.subscription, logs.subscriptionId);
      const log = note.result;
      assert.equal(log.address.toLowerCase(), tokenAddress.toLowerCase());
      assert.deepEqual(log.topics, [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(want.to)]);
      assert.equal(log.data, uintWord(want.value));
      assert.equal(Number(log.blockNumber), want.receipt.blockNumber);
      assert.equal(log.blockHash, want.receipt.blockHash);
      assert.equal(log.transactionHash, want.receipt.hash);
      assert.equal(Number(log.transactionIndex), want.receipt.index);
      assert.equal(Number(log.logIndex), want.receipt.logs[0].index);
      assert.equal(log.removed, false);
    }
    assert.equal(await token.balanceOf(other), 5n);

    // eth_unsubscribe acknowledges both raw subscriptions.
    assert.deepEqual((await heads.unsubscribe()).result, true);
    assert.deepEqual((await logs.unsubscribe()).result, true);
    await token.off(fromDeployer, onTransfer);
    await ws.off('block', onBlock);
    // ethers sends its eth_unsubscribe calls in the background: wait for their answers.
    await waitFor(() => unsubscribeCalls.length >= 2, WAIT_MS, "ethers' eth_unsubscribe");
    assert.deepEqual(await withDeadline(Promise.all(unsubscribeCalls), WAIT_MS, 'eth_unsubscribe answers'), unsubscribeCalls.map(() => true));
  });
});
