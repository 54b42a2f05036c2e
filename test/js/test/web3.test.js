// web3.js v4 against `charter dev`: deploy, transfer, balances, logs, receipts,
// typed transactions, eth_sendTransaction with an unlocked dev account, eth_call
// at a block tag, estimateGas, reverts, chain id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Web3, eth as web3Eth, ContractExecutionError } from 'web3';
import { compileToken } from '../lib/compile.js';
import { startNode } from '../lib/node.js';
import {
  CHAIN_ID, PREFUND_WEI, KNOWN, SUPPLY, TRANSFER_TOPIC, INSUFFICIENT_BALANCE_SELECTOR,
  addressTopic, uintWord, errorText,
} from '../lib/dev.js';

const AMOUNT = 777n * 10n ** 18n + 3n;
const ZERO_TOPIC = addressTopic('0x0000000000000000000000000000000000000000');

describe('web3.js v4 against charter dev', { timeout: 180_000 }, () => {
  const { abi, bytecode, deployedBytecode } = compileToken();
  let node, web3;
  let deployer, holder; // web3 accounts from dev private keys 0 and 1 (signing locally)
  let token, tokenAddress, deployReceipt, transferReceipt;
  let spentByDeployer = 0n;
  const lower = (a) => a.toLowerCase();
  const fee = (r) => r.gasUsed * r.effectiveGasPrice;

  before(async () => {
    node = await startNode();
    web3 = new Web3(node.rpcUrl);
    web3.setConfig({
      transactionPollingInterval: 50,
      transactionReceiptPollingInterval: 50,
      transactionConfirmationPollingInterval: 50,
      transactionPollingTimeout: 30_000,
    });
    deployer = web3.eth.accounts.privateKeyToAccount(KNOWN[0].key);
    holder = web3.eth.accounts.privateKeyToAccount(KNOWN[1].key);
    web3.eth.accounts.wallet.add(deployer);
    web3.eth.accounts.wallet.add(holder);
  });

  after(async () => {
    await node?.stop();
  });

  it('derives the dev accounts from their private keys', () => {
    assert.equal(deployer.address, KNOWN[0].address);
    assert.equal(holder.address, KNOWN[1].address);
    assert.equal(web3.eth.accounts.wallet.length, 2);
  });

  it('reads chain id 1337 and the network id', async () => {
    assert.equal(await web3.eth.getChainId(), BigInt(CHAIN_ID));
    assert.equal(await web3.eth.net.getId(), BigInt(CHAIN_ID));
  });

  it('lists the unlocked development accounts with eth_accounts', async () => {
    const accounts = await web3.eth.getAccounts();
    assert.equal(accounts.length, 20);
    for (let i = 0; i < KNOWN.length; i++) assert.equal(lower(accounts[i]), lower(KNOWN[i].address));
    assert.equal(await web3.eth.getBalance(accounts[19]), PREFUND_WEI);
  });

  it('deploys the ERC-20 signed locally and waits for the receipt', async () => {
    const contract = new web3.eth.Contract(abi);
    let receipt;
    let hash;
    const deployed = await contract
      .deploy({ data: bytecode, arguments: [SUPPLY] })
      .send({ from: deployer.address })
      .on('transactionHash', (h) => {
        hash = h;
      })
      .on('receipt', (r) => {
        receipt = r;
      });
    tokenAddress = deployed.options.address;
    token = new web3.eth.Contract(abi, tokenAddress);
    deployReceipt = await web3.eth.getTransactionReceipt(hash);
    spentByDeployer += fee(deployReceipt);

    assert.equal(receipt.transactionHash, hash);
    assert.equal(lower(tokenAddress), lower(deployReceipt.contractAddress));
    assert.equal(deployReceipt.status, 1n);
    assert.equal(lower(deployReceipt.from), lower(deployer.address));
    assert.ok(deployReceipt.gasUsed > 0n);
    assert.equal(deployReceipt.logs.length, 1);
    const [mint] = deployReceipt.logs;
    assert.equal(lower(mint.address), lower(tokenAddress));
    assert.deepEqual(mint.topics, [TRANSFER_TOPIC, ZERO_TOPIC, addressTopic(deployer.address)]);
    assert.equal(mint.data, uintWord(SUPPLY));
    assert.equal(mint.blockNumber, deployReceipt.blockNumber);
    assert.equal(mint.transactionHash, hash);

    assert.equal(await web3.eth.getCode(tokenAddress), deployedBytecode);
    assert.equal(await web3.eth.getCode(tokenAddress, deployReceipt.blockNumber - 1n), '0x');
    const tx = await web3.eth.getTransaction(hash);
    assert.equal(tx.type, 2n); // web3's default transaction type
    assert.equal(tx.chainId, BigInt(CHAIN_ID));
    assert.equal(tx.nonce, 0n);
  });

  it('reads the token metadata and the minted supply', async () => {
    assert.equal(await token.methods.name().call(), 'Token');
    assert.equal(await token.methods.symbol().call(), 'TKN');
    assert.equal(await token.methods.decimals().call(), 18n);
    assert.equal(await token.methods.totalSupply().call(), SUPPLY);
    assert.equal(await token.methods.balanceOf(deployer.address).call(), SUPPLY);
  });

  it('transfers tokens and checks the receipt and its decoded event', async () => {
    transferReceipt = await token.methods.transfer(holder.address, AMOUNT).send({ from: deployer.address });
    spentByDeployer += fee(transferReceipt);
    assert.equal(transferReceipt.status, 1n);
    assert.equal(lower(transferReceipt.to), lower(tokenAddress));
    assert.ok(transferReceipt.gasUsed > 21_000n);
    assert.ok(transferReceipt.blockNumber > deployReceipt.blockNumber);
    const ev = transferReceipt.events.Transfer;
    assert.equal(lower(ev.returnValues.from), lower(deployer.address));
    assert.equal(lower(ev.returnValues.to), lower(holder.address));
    assert.equal(ev.returnValues.value, AMOUNT);
    assert.equal(ev.transactionHash, transferReceipt.transactionHash);
    assert.equal(ev.blockNumber, transferReceipt.blockNumber);
    assert.equal(transferReceipt.logs.length, 1);
    assert.deepEqual(transferReceipt.logs[0].topics, [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(holder.address)]);
    assert.equal(transferReceipt.logs[0].data, uintWord(AMOUNT));
    // The same receipt through eth_getTransactionReceipt.
    const again = await web3.eth.getTransactionReceipt(transferReceipt.transactionHash);
    assert.equal(again.blockHash, transferReceipt.blockHash);
    assert.equal(again.gasUsed, transferReceipt.gasUsed);
    assert.equal(again.logs[0].logIndex, transferReceipt.logs[0].logIndex);
  });

  it('reads exact token balances', async () => {
    assert.equal(await token.methods.balanceOf(deployer.address).call(), SUPPLY - AMOUNT);
    assert.equal(await token.methods.balanceOf(holder.address).call(), AMOUNT);
  });

  it('queries the Transfer events with eth_getLogs', async () => {
    const logs = await web3.eth.getPastLogs({ address: tokenAddress, topics: [TRANSFER_TOPIC], fromBlock: 0, toBlock: 'latest' });
    assert.equal(logs.length, 2);
    assert.deepEqual(logs.map((l) => l.transactionHash), [deployReceipt.transactionHash, transferReceipt.transactionHash]);
    assert.deepEqual(logs[1].topics, [TRANSFER_TOPIC, addressTopic(deployer.address), addressTopic(holder.address)]);
    assert.equal(logs[1].data, uintWord(AMOUNT));
    assert.equal(logs[1].blockNumber, transferReceipt.blockNumber);
    assert.equal(logs[1].blockHash, transferReceipt.blockHash);
    assert.equal(logs[0].blockNumber, deployReceipt.blockNumber);

    const events = await token.getPastEvents('Transfer', { filter: { to: holder.address }, fromBlock: 0, toBlock: 'latest' });
    assert.equal(events.length, 1);
    assert.equal(events[0].returnValues.value, AMOUNT);
    assert.equal(lower(events[0].returnValues.from), lower(deployer.address));
    assert.equal(events[0].transactionHash, transferReceipt.transactionHash);
    assert.equal(events[0].blockNumber, transferReceipt.blockNumber);
  });

  it('sends ETH in an EIP-1559 (type 2) transaction signed locally', async () => {
    const to = KNOWN[2].address;
    const value = web3.utils.toWei('2', 'ether');
    const receipt = await web3.eth.sendTransaction({ from: deployer.address, to, value, type: 2 });
    spentByDeployer += fee(receipt) + BigInt(value);
    assert.equal(receipt.status, 1n);
    assert.equal(receipt.type, 2n);
    assert.equal(receipt.gasUsed, 21_000n);
    const tx = await web3.eth.getTransaction(receipt.transactionHash);
    assert.equal(tx.type, 2n);
    assert.equal(tx.value, BigInt(value));
    assert.ok(tx.maxFeePerGas >= receipt.effectiveGasPrice);
    assert.equal(await web3.eth.getBalance(to), PREFUND_WEI + BigInt(value));
  });

  it('sends ETH in a legacy (type 0) transaction signed locally', async () => {
    const to = KNOWN[3].address;
    const value = 12345n;
    const gasPrice = await web3.eth.getGasPrice();
    const receipt = await web3.eth.sendTransaction({ from: deployer.address, to, value, type: 0, gasPrice });
    spentByDeployer += fee(receipt) + value;
    assert.equal(receipt.status, 1n);
    const raw = await web3.requestManager.send({ method: 'eth_getTransactionReceipt', params: [receipt.transactionHash] });
    assert.equal(raw.type, '0x0', `eth_getTransactionReceipt of a legacy transaction must carry "type": "0x0"; got ${JSON.stringify(raw.type)}`);
    assert.equal(receipt.type, 0n);
    assert.equal(receipt.effectiveGasPrice, gasPrice);
    const tx = await web3.eth.getTransaction(receipt.transactionHash);
    assert.equal(tx.type, 0n);
    assert.equal(tx.gasPrice, gasPrice);
    assert.equal(tx.chainId, BigInt(CHAIN_ID));
    assert.ok(tx.v === BigInt(CHAIN_ID) * 2n + 35n || tx.v === BigInt(CHAIN_ID) * 2n + 36n, `EIP-155 v, got ${tx.v}`);
    assert.equal(await web3.eth.getBalance(to), PREFUND_WEI + value);
  });

  it('sends ETH with eth_sendTransaction from an unlocked dev account', async () => {
    const [, , , , , , from] = await web3.eth.getAccounts(); // account 6, not in the local wallet
    assert.equal(web3.eth.accounts.wallet.get(from), undefined);
    const to = KNOWN[2].address;
    const before = await web3.eth.getBalance(to);
    const value = 5n * 10n ** 17n;
    const receipt = await web3.eth.sendTransaction({ from, to, value });
    assert.equal(receipt.status, 1n);
    assert.equal(lower(receipt.from), lower(from));
    assert.equal(receipt.gasUsed, 21_000n);
    assert.equal(await web3.eth.getBalance(to), before + value);
    assert.equal(await web3.eth.getBalance(from), PREFUND_WEI - value - fee(receipt));
    assert.equal(await web3.eth.getTransactionCount(from), 1n);
  });

  it('reads exact ETH balances: prefund minus values and fees', async () => {
    assert.equal(await web3.eth.getBalance(deployer.address), PREFUND_WEI - spentByDeployer);
    assert.equal(await web3.eth.getBalance(holder.address), PREFUND_WEI);
    assert.equal(await web3.eth.getTransactionCount(deployer.address), 4n);
  });

  it('runs eth_call of a view function at a block tag', async () => {
    assert.equal(await token.methods.balanceOf(holder.address).call({}, deployReceipt.blockNumber), 0n);
    assert.equal(await token.methods.balanceOf(holder.address).call({}, transferReceipt.blockNumber), AMOUNT);
    assert.equal(await token.methods.balanceOf(holder.address).call({}, 'latest'), AMOUNT);
    assert.equal(await token.methods.totalSupply().call({}, 'latest'), SUPPLY);
  });

  it('estimates gas, and the estimate is enough', async () => {
    assert.equal(await web3.eth.estimateGas({ from: deployer.address, to: KNOWN[3].address, value: 1n }), 21_000n);
    const estimate = await token.methods.transfer(KNOWN[3].address, 11n).estimateGas({ from: deployer.address });
    assert.ok(estimate > 21_000n);
    const receipt = await token.methods.transfer(KNOWN[3].address, 11n).send({ from: deployer.address, gas: estimate });
    assert.equal(receipt.status, 1n);
    assert.ok(receipt.gasUsed <= estimate);
    assert.equal(await token.methods.balanceOf(KNOWN[3].address).call(), 11n);
  });

  it('decodes the ERC20InsufficientBalance custom error of a reverted call', async () => {
    const tooMuch = AMOUNT + 1n;
    const check = (inner, err) => {
      assert.equal(inner?.errorName, 'ERC20InsufficientBalance', errorText(err));
      assert.equal(inner.errorSignature, 'ERC20InsufficientBalance(address,uint256,uint256)');
      assert.equal(lower(inner.errorArgs.sender), lower(holder.address));
      assert.equal(inner.errorArgs.balance, AMOUNT);
      assert.equal(inner.errorArgs.needed, tooMuch);
      assert.ok(String(inner.data).startsWith(INSUFFICIENT_BALANCE_SELECTOR));
    };
    // eth_call: web3 decodes the custom error with the contract ABI itself.
    await assert.rejects(token.methods.transfer(deployer.address, tooMuch).call({ from: holder.address }), (err) => {
      assert.ok(err instanceof ContractExecutionError, errorText(err));
      check(err.cause, err);
      return true;
    });
    // eth_estimateGas: web3 surfaces the revert data; its ABI decoder names the error.
    const errorsAbi = abi.filter((f) => f.type === 'error');
    await assert.rejects(token.methods.transfer(deployer.address, tooMuch).estimateGas({ from: holder.address }), (err) => {
      const inner = err.cause ?? err.innerError;
      assert.ok(inner?.data, errorText(err));
      web3Eth.abi.decodeContractErrorData(errorsAbi, inner);
      check(inner, err);
      return true;
    });
    assert.equal(await token.methods.balanceOf(holder.address).call(), AMOUNT);
  });

  it('rejects a transaction signed for another chain id', async () => {
    const nonce = await web3.eth.getTransactionCount(deployer.address);
    const gasPrice = await web3.eth.getGasPrice();
    const signed = await deployer.signTransaction({
      to: holder.address, value: 1n, gas: 21_000n, gasPrice, nonce, chainId: BigInt(CHAIN_ID + 1), type: 0,
    });
    await assert.rejects(web3.eth.sendSignedTransaction(signed.rawTransaction), (err) => {
      assert.match(errorText(err), /chain/i);
      return true;
    });
    // web3 v4's getTransaction throws TransactionNotFound on null: ask the node directly.
    assert.equal(await web3.requestManager.send({ method: 'eth_getTransactionByHash', params: [signed.transactionHash] }), null);
    assert.equal(await web3.eth.getTransactionCount(deployer.address), nonce);
  });
});
