// The `charter dev` facts every client test relies on (INTERFACE.md), checked
// over plain JSON-RPC: chain id, the 20 prefunded and unlocked development
// accounts, the printed keys, standard error codes, batches, clean shutdown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ethers } from 'ethers';
import { startNode, rpc } from '../lib/node.js';
import { MNEMONIC, CHAIN_ID, DEV_ACCOUNT_COUNT, PREFUND_WEI, hdPath, withDeadline } from '../lib/dev.js';

describe('charter dev node', { timeout: 120_000 }, () => {
  let node;
  const dev = Array.from({ length: DEV_ACCOUNT_COUNT }, (_, i) => ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(i)));
  const call = async (method, params = []) => {
    const res = await rpc(node.rpcUrl, method, params);
    assert.equal(res.error, undefined, `${method}: ${JSON.stringify(res.error)}`);
    return res.result;
  };

  before(async () => {
    node = await startNode();
  });

  after(async () => {
    await node?.stop();
  });

  it('answers chain id 1337 and network id 1337', async () => {
    assert.equal(await call('eth_chainId'), '0x539');
    assert.equal(await call('net_version'), String(CHAIN_ID));
  });

  it('lists the 20 development accounts with eth_accounts, in mnemonic order', async () => {
    const accounts = await call('eth_accounts');
    assert.deepEqual(accounts.map((a) => a.toLowerCase()), dev.map((w) => w.address.toLowerCase()));
  });

  it('prefunds each development account with 10,000 ETH at genesis', async () => {
    for (const w of dev) {
      assert.equal(BigInt(await call('eth_getBalance', [w.address, '0x0'])), PREFUND_WEI, w.address);
      assert.equal(await call('eth_getTransactionCount', [w.address, '0x0']), '0x0');
    }
  });

  it('prints the development addresses and keys, marked as development keys', () => {
    const out = node.output().toLowerCase();
    assert.match(out, /development/);
    for (const w of dev) {
      assert.ok(out.includes(w.address.toLowerCase().slice(2)), `address ${w.address} printed`);
      assert.ok(out.includes(w.privateKey.toLowerCase().slice(2)), `key of ${w.address} printed`);
    }
  });

  it('answers an unknown method with -32601 and malformed JSON with -32700', async () => {
    const unknown = await rpc(node.rpcUrl, 'eth_noSuchMethod', []);
    assert.equal(unknown.error?.code, -32601, JSON.stringify(unknown));
    const res = await fetch(node.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,' });
    const body = await res.json();
    assert.equal(body.error?.code, -32700, JSON.stringify(body));
  });

  it('answers a JSON-RPC batch with one response per request', async () => {
    const res = await fetch(node.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 7, method: 'eth_chainId', params: [] },
        { jsonrpc: '2.0', id: 8, method: 'eth_getBalance', params: [dev[0].address, '0x0'] },
      ]),
    });
    const body = await res.json();
    assert.ok(Array.isArray(body), JSON.stringify(body));
    const byId = Object.fromEntries(body.map((r) => [r.id, r.result]));
    assert.deepEqual(byId, { 7: '0x539', 8: ethers.toQuantity(PREFUND_WEI) });
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const { code, signal, killed } = await withDeadline(node.stop(), 30_000, 'charter dev to exit after SIGTERM');
    assert.equal(killed, false, 'exited before the SIGKILL deadline');
    assert.equal(signal, null);
    assert.equal(code, 0);
  });
});
