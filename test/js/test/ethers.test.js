// ethers v6 against `charter dev`: deploy, transfer, balances, logs, receipts,
// typed transactions, eth_call at a block tag, estimateGas, reverts, chain id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';
import { compileToken } from '../lib/compile.js';
import { startNode } from '../lib/node.js';
import {
  MNEMONIC, CHAIN_ID, PREFUND_WEI, KNOWN, SUPPLY, TRANSFER_TOPIC, INSUFFICIENT_BALANCE_SELECTOR,
  hdPath, addressTopic, uintWord, errorText, bloomHas,
} from '../lib/dev.js';

const AMOUNT = 1234n * 10n ** 18n + 5n;
const WAIT_MS = 30_000;

describe('ethers v6 against charter dev', { timeout: 180_000 }, () => {
  const { abi, bytecode, deployedBytecode } = compileToken();
  const iface = new ethers.Interface(abi);
  let node, provider;
  let deployer, holder; // HD wallets 0 and 1
  let token, tokenAddress, deployReceipt, transferReceipt, deployTxType;
  const spent = {}; // address (lower case) -> wei paid in value + fees

  const wallet = (i) => ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(i)).connect(provider);
  const charge = (receipt, value = 0n) => {
    const from = receipt.from.toLowerCase();
    spent[from] = (spent[from] ?? 0n) + receipt.gasUsed * receipt.gasPrice + value;
  };

  before(async () => {
    node = await startNode();
    // cacheTimeout -1: ethers otherwise reuses identical answers for 250 ms (a
    // stale nonce on a chain that seals at once); poll every 50 ms, not 4 s.
    provider = new ethers.JsonRpcProvider(node.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
    deployer = wallet(0);
    holder = wallet(1);
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
  });

  it('derives the development accounts from the mnemonic', () => {
    for (let i = 0; i < KNOWN.length; i++) {
      const w = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(i));
      assert.equal(w.address, KNOWN[i].address);
      assert.equal(w.privateKey, KNOWN[i].key);
    }
    assert.equal(deployer.address, KNOWN[0].address);
  });

  it('reads chain id 1337', async () => {
    const network = await provider.getNetwork();
    assert.equal(network.chainId, BigInt(CHAIN_ID));
    assert.equal(await provider.send('eth_chainId', []), '0x539');
  });

  it('sees the prefunded development accounts', async () => {
    assert.equal(await provider.getBalance(deployer.address), PREFUND_WEI);
    assert.equal(await provider.getBalance(holder.address), PREFUND_WEI);
    assert.equal(await provider.getTransactionCount(deployer.address), 0);
  });

  it('deploys the ERC-20 and waits for the receipt', async () => {
    const factory = new ethers.ContractFactory(abi, bytecode, deployer);
    const contract = await factory.deploy(SUPPLY);
    const tx = contract.deploymentTransaction();
    deployReceipt = await tx.wait(1, WAIT_MS);
    tokenAddress = await contract.getAddress();
    token = new ethers.Contract(tokenAddress, abi, deployer);

    assert.equal(tokenAddress, ethers.getCreateAddress({ from: deployer.address, nonce: 0 }));
    assert.equal(deployReceipt.status, 1);
    assert.equal(deployReceipt.contractAddress, tokenAddress);
    assert.equal(deployReceipt.to, null);
    assert.equal(deployReceipt.from, deployer.address);
    assert.equal(deployReceipt.hash, tx.hash);
    assert.ok(deployReceipt.gasUsed > 0n);
    assert.ok(deployReceipt.blockNumber >= 1);
    charge(deployReceipt);

    // The mint emits Transfer(0x0 -> deployer, SUPPLY).
    assert.equal(deployReceipt.logs.length, 1);
    const [mint] = deployReceipt.logs;
    assert.equal(mint.address, tokenAddress);
    assert.deepEqual([...mint.topics], [TRANSFER_TOPIC, addressTopic(ethers.ZeroAddress), addressTopic(deployer.address)]);
    assert.equal(mint.data, uintWord(SUPPLY));
    assert.equal(mint.blockNumber, deployReceipt.blockNumber);
    assert.equal(mint.transactionHash, tx.hash);

    const sent = await provider.getTransaction(tx.hash);
    deployTxType = sent.type;
    assert.ok([0, 2].includes(sent.type));
    assert.equal(sent.chainId, BigInt(CHAIN_ID));
    assert.equal(sent.blockNumber, deployReceipt.blockNumber);
    assert.equal(sent.blockHash, deployReceipt.blockHash);
    assert.equal(sent.from, deployer.address);
    assert.equal(sent.to, null);
  });

  it("sends ethers' default transactions as EIP-1559 (type 2)", async () => {
    // ethers uses EIP-1559 by default only when getFeeData() yields maxFeePerGas,
    // which it computes from a truthy latest-block baseFeePerGas: a base fee of
    // exactly 0 turns every default ethers transaction into a legacy one.
    const block = await provider.getBlock('latest');
    const fee = await provider.getFeeData();
    assert.equal(
      deployTxType, 2,
      `ethers chose type ${deployTxType}: latest baseFeePerGas=${block.baseFeePerGas}, getFeeData maxFeePerGas=${fee.maxFeePerGas}`,
    );
  });

  it('finds the contract code at the new address, and none before', async () => {
    assert.equal(await provider.getCode(tokenAddress), deployedBytecode);
    assert.equal(await provider.getCode(tokenAddress, deployReceipt.blockNumber - 1), '0x');
    assert.equal(await provider.getCode(deployer.address), '0x');
  });

  it('reads the token metadata and the minted supply', async () => {
    assert.equal(await token.name(), 'Token');
    assert.equal(await token.symbol(), 'TKN');
    assert.equal(await token.decimals(), 18n);
    assert.equal(await token.totalSupply(), SUPPLY);
    assert.equal(await token.balanceOf(deployer.address), SUPPLY);
    assert.equal(await token.balanceOf(holder.address), 0n);
  });

  it('transfers tokens and checks the receipt', async () => {
    const tx = await token.transfer(holder.address, AMOUNT);
    transferReceipt = await tx.wait(1, WAIT_MS);
    charge(transferReceipt);
    assert.equal(transferReceipt.status, 1);
    assert.equal(transferReceipt.to, tokenAddress);
    assert.equal(transferReceipt.from, deployer.address);
    assert.equal(transferReceipt.contractAddress, null);
    assert.ok(transferReceipt.gasUsed > 21_000n);
    assert.ok(transferReceipt.blockNumber > deployReceipt.blockNumber);
    assert.ok(transferReceipt.cumulativeGasUsed >= transferReceipt.gasUsed);
    assert.equal(transferReceipt.logs.length, 1);
    const [log] = transferReceipt.logs;
    const parsed = iface.parseLog(log);
    assert.equal(parsed.name, 'Transfer');
    assert.equal(parsed.args.from, deployer.address);
    assert.equal(parsed.args.to, holder.address);
    assert.equal(parsed.args.value, AMOUNT);
    assert.equal(log.address, tokenAddress);
    assert.equal(log.blockNumber, transferReceipt.blockNumber);
    assert.equal(log.blockHash, transferReceipt.blockHash);
    assert.equal(log.transactionHash, tx.hash);
    assert.equal(log.transactionIndex, transferReceipt.index);
    // The receipt's bloom and the block's bloom carry the token address and the Transfer topic.
    const block = await provider.getBlock(transferReceipt.blockNumber);
    for (const bloom of [transferReceipt.logsBloom, block.logsBloom ?? (await provider.send('eth_getBlockByHash', [block.hash, false])).logsBloom]) {
      for (const item of [tokenAddress, TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(holder.address)]) {
        assert.ok(bloomHas(bloom, item, ethers.keccak256), `bloom has ${item}`);
      }
      // (Deterministic: the bloom depends only on these logs.) An unrelated topic is absent.
      assert.ok(!bloomHas(bloom, addressTopic(wallet(9).address), ethers.keccak256), 'bloom lacks an unrelated topic');
    }
    // The block lists the transaction.
    assert.equal(block.hash, transferReceipt.blockHash);
    assert.ok(block.transactions.includes(tx.hash));
    assert.ok(block.gasUsed >= transferReceipt.gasUsed);
  });

  it('reads exact token balances after the transfer', async () => {
    assert.equal(await token.balanceOf(deployer.address), SUPPLY - AMOUNT);
    assert.equal(await token.balanceOf(holder.address), AMOUNT);
    assert.equal(await token.totalSupply(), SUPPLY);
  });

  it('queries the Transfer events with eth_getLogs', async () => {
    const all = await provider.getLogs({ address: tokenAddress, topics: [TRANSFER_TOPIC], fromBlock: 0, toBlock: 'latest' });
    assert.equal(all.length, 2);
    const [mint, transfer] = all;
    assert.deepEqual([...mint.topics], [TRANSFER_TOPIC, addressTopic(ethers.ZeroAddress), addressTopic(deployer.address)]);
    assert.equal(mint.data, uintWord(SUPPLY));
    assert.equal(mint.blockNumber, deployReceipt.blockNumber);
    assert.equal(mint.transactionHash, deployReceipt.hash);
    assert.deepEqual([...transfer.topics], [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(holder.address)]);
    assert.equal(transfer.data, uintWord(AMOUNT));
    assert.equal(transfer.blockNumber, transferReceipt.blockNumber);
    assert.equal(transfer.blockHash, transferReceipt.blockHash);
    assert.equal(transfer.transactionHash, transferReceipt.hash);
    assert.equal(transfer.index, transferReceipt.logs[0].index);

    // Filtering on the indexed recipient keeps only the transfer.
    const toHolder = await provider.getLogs({ address: tokenAddress, topics: [TRANSFER_TOPIC, null, addressTopic(holder.address)], fromBlock: 0 });
    assert.deepEqual(toHolder.map((l) => l.transactionHash), [transferReceipt.hash]);
    // By block hash.
    const byHash = await provider.getLogs({ blockHash: transferReceipt.blockHash, address: tokenAddress });
    assert.deepEqual(byHash.map((l) => l.transactionHash), [transferReceipt.hash]);
    // A range before the deployment has none.
    const none = await provider.getLogs({ address: tokenAddress, fromBlock: 0, toBlock: deployReceipt.blockNumber - 1 });
    assert.deepEqual(none, []);
    // ethers' own event query decodes them.
    const events = await token.queryFilter(token.filters.Transfer(deployer.address, holder.address), 0, 'latest');
    assert.equal(events.length, 1);
    assert.equal(events[0].args.value, AMOUNT);
    assert.equal(events[0].blockNumber, transferReceipt.blockNumber);
  });

  it('sends ETH in an EIP-1559 (type 2) transaction', async () => {
    const to = wallet(2).address;
    const value = ethers.parseEther('1.5');
    const tx = await deployer.sendTransaction({ to, value, type: 2 });
    const receipt = await tx.wait(1, WAIT_MS);
    charge(receipt, value);
    assert.equal(receipt.status, 1);
    assert.equal(receipt.type, 2);
    assert.equal(receipt.gasUsed, 21_000n);
    assert.deepEqual(receipt.logs, []);
    const got = await provider.getTransaction(tx.hash);
    assert.equal(got.type, 2);
    assert.equal(got.value, value);
    assert.equal(got.to, to);
    assert.equal(got.chainId, BigInt(CHAIN_ID));
    assert.notEqual(got.maxFeePerGas, null);
    assert.notEqual(got.maxPriorityFeePerGas, null);
    assert.ok(receipt.gasPrice <= got.maxFeePerGas, 'effective gas price within maxFeePerGas');
    assert.equal(await provider.getBalance(to), PREFUND_WEI + value);
  });

  it('sends ETH in a legacy (type 0) transaction with EIP-155', async () => {
    const to = wallet(3).address;
    const value = ethers.parseEther('0.25');
    const { gasPrice } = await provider.getFeeData();
    assert.notEqual(gasPrice, null);
    const tx = await deployer.sendTransaction({ to, value, type: 0, gasPrice });
    const receipt = await tx.wait(1, WAIT_MS);
    charge(receipt, value);
    assert.equal(receipt.status, 1);
    assert.equal(receipt.type, 0);
    assert.equal(receipt.gasUsed, 21_000n);
    assert.equal(receipt.gasPrice, gasPrice);
    const got = await provider.getTransaction(tx.hash);
    assert.equal(got.type, 0);
    assert.equal(got.gasPrice, gasPrice);
    assert.equal(got.maxFeePerGas, null);
    assert.equal(got.chainId, BigInt(CHAIN_ID));
    assert.equal(got.signature.networkV, BigInt(CHAIN_ID) * 2n + 35n + BigInt(got.signature.yParity));
    assert.equal(await provider.getBalance(to), PREFUND_WEI + value);
  });

  it('reads exact ETH balances: prefund minus values and fees', async () => {
    assert.equal(await provider.getBalance(deployer.address), PREFUND_WEI - spent[deployer.address.toLowerCase()]);
    assert.equal(await provider.getBalance(holder.address), PREFUND_WEI);
    assert.equal(await provider.getTransactionCount(deployer.address), 4);
  });

  it('runs eth_call of a view function at a block tag', async () => {
    assert.equal(await token.balanceOf(holder.address, { blockTag: deployReceipt.blockNumber }), 0n);
    assert.equal(await token.balanceOf(deployer.address, { blockTag: deployReceipt.blockNumber }), SUPPLY);
    assert.equal(await token.balanceOf(holder.address, { blockTag: transferReceipt.blockNumber }), AMOUNT);
    assert.equal(await token.balanceOf(holder.address, { blockTag: 'latest' }), AMOUNT);
    // A raw call at a block hash and at a hex block number.
    const data = iface.encodeFunctionData('balanceOf', [holder.address]);
    assert.equal(await provider.call({ to: tokenAddress, data, blockTag: transferReceipt.blockHash }), uintWord(AMOUNT));
    assert.equal(
      await provider.send('eth_call', [{ to: tokenAddress, data }, ethers.toQuantity(deployReceipt.blockNumber)]),
      uintWord(0n),
    );
  });

  it('estimates gas, and the estimate is enough', async () => {
    const recipient = wallet(4).address;
    assert.equal(await provider.estimateGas({ from: deployer.address, to: recipient, value: 1n }), 21_000n);
    const estimate = await token.transfer.estimateGas(recipient, 7n);
    assert.ok(estimate > 21_000n);
    const tx = await token.transfer(recipient, 7n, { gasLimit: estimate });
    const receipt = await tx.wait(1, WAIT_MS);
    charge(receipt);
    assert.equal(receipt.status, 1);
    assert.ok(receipt.gasUsed <= estimate);
    assert.equal(await token.balanceOf(recipient), 7n);
  });

  it('decodes the ERC20InsufficientBalance revert of eth_call and eth_estimateGas', async () => {
    const asHolder = token.connect(holder);
    const tooMuch = AMOUNT + 1n;
    const expected = [holder.address, AMOUNT, tooMuch];
    // staticCall (eth_call): ethers decodes the custom error with the contract ABI itself.
    await assert.rejects(asHolder.transfer.staticCall(deployer.address, tooMuch), (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', errorText(err));
      assert.equal(err.revert?.name, 'ERC20InsufficientBalance', errorText(err));
      assert.equal(err.revert.signature, 'ERC20InsufficientBalance(address,uint256,uint256)');
      assert.deepEqual([...err.revert.args], expected);
      return true;
    });
    // estimateGas, and a send (which estimates first): ethers surfaces the revert
    // data, which the contract interface decodes.
    const viaData = (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', errorText(err));
      assert.ok(err.data?.startsWith(INSUFFICIENT_BALANCE_SELECTOR), `revert data ${err.data}`);
      const decoded = iface.parseError(err.data);
      assert.equal(decoded?.name, 'ERC20InsufficientBalance');
      assert.deepEqual([...decoded.args], expected);
      return true;
    };
    await assert.rejects(asHolder.transfer.estimateGas(deployer.address, tooMuch), viaData);
    await assert.rejects(asHolder.transfer(deployer.address, tooMuch), viaData);
    assert.equal(await token.balanceOf(holder.address), AMOUNT);
  });

  it('mines a reverting transaction with status 0', async () => {
    const asHolder = token.connect(holder);
    const tx = await asHolder.transfer(deployer.address, AMOUNT + 1n, { gasLimit: 200_000n });
    let receipt;
    await assert.rejects(tx.wait(1, WAIT_MS), (err) => {
      assert.equal(err.code, 'CALL_EXCEPTION', errorText(err));
      receipt = err.receipt;
      return true;
    });
    assert.equal(receipt.status, 0);
    assert.equal(receipt.hash, tx.hash);
    assert.ok(receipt.gasUsed > 21_000n);
    assert.deepEqual(receipt.logs, []);
    assert.equal(await token.balanceOf(holder.address), AMOUNT);
    assert.equal(await provider.getBalance(holder.address), PREFUND_WEI - receipt.gasUsed * receipt.gasPrice);
  });

  it('rejects a transaction signed for another chain id', async () => {
    const nonce = await provider.getTransactionCount(deployer.address);
    const fee = await provider.getFeeData();
    const signed = await deployer.signTransaction({
      type: 2, chainId: CHAIN_ID + 1, nonce, to: holder.address, value: 1n, gasLimit: 21_000n,
      maxFeePerGas: fee.maxFeePerGas, maxPriorityFeePerGas: fee.maxPriorityFeePerGas,
    });
    assert.equal(ethers.Transaction.from(signed).chainId, BigInt(CHAIN_ID + 1));
    await assert.rejects(provider.broadcastTransaction(signed), (err) => {
      assert.match(errorText(err), /chain/i);
      return true;
    });
    assert.equal(await provider.getTransaction(ethers.keccak256(signed)), null);
    assert.equal(await provider.getTransactionCount(deployer.address), nonce);
  });

  it('rejects a legacy transaction without chain id (pre-EIP-155)', async () => {
    const nonce = await provider.getTransactionCount(deployer.address);
    const { gasPrice } = await provider.getFeeData();
    const signed = await deployer.signTransaction({ type: 0, chainId: 0, nonce, to: holder.address, value: 1n, gasLimit: 21_000n, gasPrice });
    const parsed = ethers.Transaction.from(signed);
    assert.equal(parsed.chainId, 0n);
    assert.ok([27, 28].includes(parsed.signature.v));
    await assert.rejects(provider.broadcastTransaction(signed), (err) => {
      assert.match(errorText(err), /replay-protected|EIP-155|chain id/i);
      return true;
    });
    assert.equal(await provider.getTransaction(ethers.keccak256(signed)), null);
    assert.equal(await provider.getTransactionCount(deployer.address), nonce);
  });

  it('reports the transfer through HTTP filters (eth_newFilter, eth_newBlockFilter)', async () => {
    const recipient = wallet(5).address;
    const logFilter = await provider.send('eth_newFilter', [{ address: tokenAddress, topics: [TRANSFER_TOPIC, addressTopic(deployer.address)] }]);
    const blockFilter = await provider.send('eth_newBlockFilter', []);
    assert.match(logFilter, /^0x[0-9a-f]+$/);
    assert.match(blockFilter, /^0x[0-9a-f]+$/);
    try {
      assert.deepEqual(await provider.send('eth_getFilterChanges', [logFilter]), []);
      const tx = await token.transfer(recipient, 99n);
      const receipt = await tx.wait(1, WAIT_MS);
      charge(receipt);

      const changes = await provider.send('eth_getFilterChanges', [logFilter]);
      assert.equal(changes.length, 1);
      const [log] = changes;
      assert.equal(log.address.toLowerCase(), tokenAddress.toLowerCase());
      assert.deepEqual(log.topics, [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(recipient)]);
      assert.equal(log.data, uintWord(99n));
      assert.equal(log.transactionHash, tx.hash);
      assert.equal(log.blockHash, receipt.blockHash);
      assert.equal(BigInt(log.blockNumber), BigInt(receipt.blockNumber));
      assert.equal(log.removed, false);
      // Changes are consumed; the filter's full log set is still there.
      assert.deepEqual(await provider.send('eth_getFilterChanges', [logFilter]), []);
      const filterLogs = await provider.send('eth_getFilterLogs', [logFilter]);
      assert.deepEqual(filterLogs.map((l) => l.transactionHash), [tx.hash]);

      const blocks = await provider.send('eth_getFilterChanges', [blockFilter]);
      assert.ok(blocks.includes(receipt.blockHash), `block filter changes ${JSON.stringify(blocks)} include ${receipt.blockHash}`);
      assert.equal(await token.balanceOf(recipient), 99n);
    } finally {
      assert.equal(await provider.send('eth_uninstallFilter', [logFilter]), true);
      assert.equal(await provider.send('eth_uninstallFilter', [blockFilter]), true);
    }
    assert.equal(await provider.send('eth_uninstallFilter', [logFilter]), false);
  });
});
