// viem against `charter dev`: deploy, transfer, balances, logs, receipts, typed
// transactions, eth_sendTransaction with an unlocked dev account, eth_call at a
// block number, estimateGas, reverts with decoded custom errors, chain id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createPublicClient, createWalletClient, http, defineChain, parseEther, getContractAddress,
  getAbiItem, BaseError, ContractFunctionRevertedError, keccak256, zeroAddress, isAddressEqual,
} from 'viem';
import { mnemonicToAccount } from 'viem/accounts';
import { compileToken } from '../lib/compile.js';
import { startNode } from '../lib/node.js';
import {
  MNEMONIC, CHAIN_ID, PREFUND_WEI, KNOWN, SUPPLY, TRANSFER_TOPIC, addressTopic, uintWord, errorText,
} from '../lib/dev.js';

const AMOUNT = 4242n * 10n ** 18n + 9n;
const WAIT = { pollingInterval: 50, timeout: 30_000 };

describe('viem against charter dev', { timeout: 180_000 }, () => {
  const { abi, bytecode, deployedBytecode } = compileToken();
  const transferEvent = getAbiItem({ abi, name: 'Transfer' });
  let node, chain, publicClient, wallet;
  const deployer = mnemonicToAccount(MNEMONIC, { addressIndex: 0 });
  const holder = mnemonicToAccount(MNEMONIC, { addressIndex: 1 });
  let tokenAddress, deployReceipt, transferReceipt;
  let spentByDeployer = 0n;
  const fee = (r) => r.gasUsed * r.effectiveGasPrice;

  before(async () => {
    node = await startNode();
    chain = defineChain({
      id: CHAIN_ID,
      name: 'Charter dev',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [node.rpcUrl], webSocket: [node.wsUrl] } },
    });
    publicClient = createPublicClient({ chain, transport: http(node.rpcUrl), pollingInterval: 50 });
    wallet = (account) => createWalletClient({ account, chain, transport: http(node.rpcUrl), pollingInterval: 50 });
  });

  after(async () => {
    await node?.stop();
  });

  it('derives the development accounts from the mnemonic', () => {
    for (let i = 0; i < KNOWN.length; i++) {
      assert.equal(mnemonicToAccount(MNEMONIC, { addressIndex: i }).address, KNOWN[i].address);
      assert.equal(mnemonicToAccount(MNEMONIC, { path: `m/44'/60'/0'/0/${i}` }).address, KNOWN[i].address);
    }
  });

  it('reads chain id 1337', async () => {
    assert.equal(await publicClient.getChainId(), CHAIN_ID);
    assert.equal(await wallet(deployer).getChainId(), CHAIN_ID);
  });

  it('deploys the ERC-20 signed locally and waits for the receipt', async () => {
    const hash = await wallet(deployer).deployContract({ abi, bytecode, args: [SUPPLY] });
    deployReceipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    spentByDeployer += fee(deployReceipt);
    tokenAddress = getContractAddress({ from: deployer.address, nonce: 0n });
    assert.ok(isAddressEqual(deployReceipt.contractAddress, tokenAddress), `contractAddress ${deployReceipt.contractAddress}`);
    assert.equal(deployReceipt.status, 'success');
    assert.equal(deployReceipt.transactionHash, hash);
    assert.ok(isAddressEqual(deployReceipt.from, deployer.address));
    assert.equal(deployReceipt.to, null);
    assert.ok(deployReceipt.gasUsed > 0n);
    assert.equal(deployReceipt.type, 'eip1559'); // viem's default when the block has a base fee
    assert.equal(deployReceipt.logs.length, 1);
    const [mint] = deployReceipt.logs;
    assert.deepEqual(mint.topics, [TRANSFER_TOPIC, addressTopic(zeroAddress), addressTopic(deployer.address)]);
    assert.equal(mint.data, uintWord(SUPPLY));
    assert.equal(mint.blockNumber, deployReceipt.blockNumber);
    assert.equal(mint.transactionHash, hash);

    assert.equal(await publicClient.getCode({ address: tokenAddress }), deployedBytecode);
    assert.equal(await publicClient.getCode({ address: tokenAddress, blockNumber: deployReceipt.blockNumber - 1n }), undefined);
    const tx = await publicClient.getTransaction({ hash });
    assert.equal(tx.type, 'eip1559');
    assert.equal(tx.chainId, CHAIN_ID);
    assert.equal(tx.to, null);
    assert.equal(tx.input, bytecode + uintWord(SUPPLY).slice(2));
  });

  it('reads the token metadata and the minted supply', async () => {
    const read = (functionName, args = []) => publicClient.readContract({ address: tokenAddress, abi, functionName, args });
    assert.equal(await read('name'), 'Token');
    assert.equal(await read('symbol'), 'TKN');
    assert.equal(await read('decimals'), 18);
    assert.equal(await read('totalSupply'), SUPPLY);
    assert.equal(await read('balanceOf', [deployer.address]), SUPPLY);
    assert.equal(await read('balanceOf', [holder.address]), 0n);
  });

  it('transfers tokens and checks the receipt', async () => {
    const hash = await wallet(deployer).writeContract({ address: tokenAddress, abi, functionName: 'transfer', args: [holder.address, AMOUNT] });
    transferReceipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    spentByDeployer += fee(transferReceipt);
    assert.equal(transferReceipt.status, 'success');
    assert.ok(isAddressEqual(transferReceipt.to, tokenAddress));
    assert.ok(transferReceipt.gasUsed > 21_000n);
    assert.ok(transferReceipt.blockNumber > deployReceipt.blockNumber);
    assert.equal(transferReceipt.logs.length, 1);
    const [log] = transferReceipt.logs;
    assert.ok(isAddressEqual(log.address, tokenAddress));
    assert.deepEqual(log.topics, [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(holder.address)]);
    assert.equal(log.data, uintWord(AMOUNT));
    assert.equal(log.transactionHash, hash);
    assert.equal(log.blockHash, transferReceipt.blockHash);
    assert.equal(log.blockNumber, transferReceipt.blockNumber);
    assert.equal(log.removed, false);
  });

  it('reads exact token balances', async () => {
    const balanceOf = (a) => publicClient.readContract({ address: tokenAddress, abi, functionName: 'balanceOf', args: [a] });
    assert.equal(await balanceOf(deployer.address), SUPPLY - AMOUNT);
    assert.equal(await balanceOf(holder.address), AMOUNT);
  });

  it('queries the Transfer events with eth_getLogs', async () => {
    const logs = await publicClient.getLogs({ address: tokenAddress, event: transferEvent, fromBlock: 0n, toBlock: 'latest' });
    assert.equal(logs.length, 2);
    assert.deepEqual(logs[0].args, { from: zeroAddress, to: deployer.address, value: SUPPLY });
    assert.deepEqual(logs[1].args, { from: deployer.address, to: holder.address, value: AMOUNT });
    assert.equal(logs[0].blockNumber, deployReceipt.blockNumber);
    assert.equal(logs[1].blockNumber, transferReceipt.blockNumber);
    assert.equal(logs[1].transactionHash, transferReceipt.transactionHash);
    assert.equal(logs[1].logIndex, transferReceipt.logs[0].logIndex);

    const toHolder = await publicClient.getLogs({ address: tokenAddress, event: transferEvent, args: { to: holder.address }, fromBlock: 0n });
    assert.deepEqual(toHolder.map((l) => l.transactionHash), [transferReceipt.transactionHash]);
    const events = await publicClient.getContractEvents({ address: tokenAddress, abi, eventName: 'Transfer', fromBlock: transferReceipt.blockNumber, toBlock: transferReceipt.blockNumber });
    assert.equal(events.length, 1);
    assert.equal(events[0].args.value, AMOUNT);
    const byHash = await publicClient.getLogs({ address: tokenAddress, blockHash: deployReceipt.blockHash });
    assert.deepEqual(byHash.map((l) => l.transactionHash), [deployReceipt.transactionHash]);
  });

  it('sends ETH in an EIP-1559 (type 2) transaction', async () => {
    const to = KNOWN[2].address;
    const value = parseEther('3');
    const hash = await wallet(deployer).sendTransaction({ to, value, type: 'eip1559' });
    const receipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    spentByDeployer += fee(receipt) + value;
    assert.equal(receipt.status, 'success');
    assert.equal(receipt.type, 'eip1559');
    assert.equal(receipt.gasUsed, 21_000n);
    const tx = await publicClient.getTransaction({ hash });
    assert.equal(tx.type, 'eip1559');
    assert.equal(tx.value, value);
    assert.equal(typeof tx.maxFeePerGas, 'bigint');
    assert.equal(typeof tx.maxPriorityFeePerGas, 'bigint');
    assert.equal(await publicClient.getBalance({ address: to }), PREFUND_WEI + value);
  });

  it('sends ETH in a legacy (type 0) transaction', async () => {
    const to = KNOWN[3].address;
    const value = 31337n;
    const gasPrice = await publicClient.getGasPrice();
    const hash = await wallet(deployer).sendTransaction({ to, value, type: 'legacy', gasPrice });
    const receipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    spentByDeployer += fee(receipt) + value;
    assert.equal(receipt.status, 'success');
    assert.equal(receipt.type, 'legacy');
    assert.equal(receipt.effectiveGasPrice, gasPrice);
    const tx = await publicClient.getTransaction({ hash });
    assert.equal(tx.type, 'legacy');
    assert.equal(tx.gasPrice, gasPrice);
    assert.equal(tx.chainId, CHAIN_ID);
    assert.equal(await publicClient.getBalance({ address: to }), PREFUND_WEI + value);
  });

  it('sends ETH with eth_sendTransaction from an unlocked dev account', async () => {
    const [from] = (await wallet(undefined).getAddresses()).slice(7, 8); // account 7, a JSON-RPC account
    assert.ok(isAddressEqual(from, mnemonicToAccount(MNEMONIC, { addressIndex: 7 }).address));
    const to = KNOWN[2].address;
    const before = await publicClient.getBalance({ address: to });
    const value = parseEther('0.125');
    const hash = await wallet(from).sendTransaction({ to, value });
    const receipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    assert.equal(receipt.status, 'success');
    assert.ok(isAddressEqual(receipt.from, from));
    assert.equal(await publicClient.getBalance({ address: to }), before + value);
    assert.equal(await publicClient.getBalance({ address: from }), PREFUND_WEI - value - fee(receipt));
    assert.equal(await publicClient.getTransactionCount({ address: from }), 1);
  });

  it('reads exact ETH balances: prefund minus values and fees', async () => {
    assert.equal(await publicClient.getBalance({ address: deployer.address }), PREFUND_WEI - spentByDeployer);
    assert.equal(await publicClient.getBalance({ address: holder.address }), PREFUND_WEI);
    assert.equal(await publicClient.getTransactionCount({ address: deployer.address }), 4);
  });

  it('runs eth_call of a view function at a block number and tag', async () => {
    const balanceOf = (a, at) => publicClient.readContract({ address: tokenAddress, abi, functionName: 'balanceOf', args: [a], ...at });
    assert.equal(await balanceOf(holder.address, { blockNumber: deployReceipt.blockNumber }), 0n);
    assert.equal(await balanceOf(deployer.address, { blockNumber: deployReceipt.blockNumber }), SUPPLY);
    assert.equal(await balanceOf(holder.address, { blockNumber: transferReceipt.blockNumber }), AMOUNT);
    assert.equal(await balanceOf(holder.address, { blockTag: 'latest' }), AMOUNT);
  });

  it('estimates gas, and the estimate is enough', async () => {
    const other = mnemonicToAccount(MNEMONIC, { addressIndex: 4 }).address;
    assert.equal(await publicClient.estimateGas({ account: deployer, to: other, value: 1n }), 21_000n);
    const request = { address: tokenAddress, abi, functionName: 'transfer', args: [other, 13n], account: deployer };
    const estimate = await publicClient.estimateContractGas(request);
    assert.ok(estimate > 21_000n);
    const hash = await wallet(deployer).writeContract({ ...request, gas: estimate });
    const receipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    assert.equal(receipt.status, 'success');
    assert.ok(receipt.gasUsed <= estimate);
    assert.equal(await publicClient.readContract({ address: tokenAddress, abi, functionName: 'balanceOf', args: [other] }), 13n);
  });

  it('decodes the ERC20InsufficientBalance custom error of eth_call and eth_estimateGas', async () => {
    const tooMuch = AMOUNT + 1n;
    const request = { address: tokenAddress, abi, functionName: 'transfer', args: [deployer.address, tooMuch], account: holder };
    const check = (err) => {
      assert.ok(err instanceof BaseError, errorText(err));
      const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
      assert.ok(revert, `no ContractFunctionRevertedError in: ${errorText(err)}`);
      assert.equal(revert.data?.errorName, 'ERC20InsufficientBalance', errorText(err));
      assert.deepEqual(revert.data.args, [holder.address, AMOUNT, tooMuch]);
      return true;
    };
    await assert.rejects(publicClient.simulateContract(request), check);
    await assert.rejects(publicClient.estimateContractGas(request), check);
  });

  it('mines a reverting transaction with status reverted', async () => {
    const hash = await wallet(holder).writeContract({
      address: tokenAddress, abi, functionName: 'transfer', args: [deployer.address, AMOUNT + 1n], gas: 200_000n,
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash, ...WAIT });
    assert.equal(receipt.status, 'reverted');
    assert.ok(receipt.gasUsed > 21_000n);
    assert.deepEqual(receipt.logs, []);
    assert.equal(await publicClient.readContract({ address: tokenAddress, abi, functionName: 'balanceOf', args: [holder.address] }), AMOUNT);
    assert.equal(await publicClient.getBalance({ address: holder.address }), PREFUND_WEI - fee(receipt));
  });

  it('rejects a transaction signed for another chain id', async () => {
    const nonce = await publicClient.getTransactionCount({ address: deployer.address });
    const fees = await publicClient.estimateFeesPerGas();
    const serializedTransaction = await deployer.signTransaction({
      chainId: CHAIN_ID + 1, type: 'eip1559', nonce, to: holder.address, value: 1n, gas: 21_000n, ...fees,
    });
    await assert.rejects(publicClient.sendRawTransaction({ serializedTransaction }), (err) => {
      assert.match(errorText(err), /chain/i);
      return true;
    });
    const hash = keccak256(serializedTransaction);
    assert.equal(await publicClient.request({ method: 'eth_getTransactionByHash', params: [hash] }), null);
    assert.equal(await publicClient.getTransactionCount({ address: deployer.address }), nonce);
  });
});
