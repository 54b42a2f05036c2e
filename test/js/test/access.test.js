// ethers v6, web3.js v4 and viem against a node that requires a credential
// and serves TLS (a testnet made with --api-auth required): a token from the
// node's built-in issuer in the provider's headers, the organization's CA
// trusted through NODE_EXTRA_CA_CERTS, as an application would run.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { charterBinary, freePort } from '../lib/node.js';
import { JS_ROOT } from '../lib/compile.js';

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function postForm(url, ca, user, pass, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'POST', ca, auth: `${user}:${pass}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a node that requires a token over TLS', () => {
  let child, dir, url, home, ca;
  before(async () => {
    const bin = await charterBinary();
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'charter-js-access-')), 'net');
    const [rpcPort, p2pPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    child = spawn(bin, ['testnet', '--dir', dir, '--validators', '1', '--consensus', 'raft', '--api-auth', 'required',
      '--block-time', '200ms', '--rpc.port', String(rpcPort), '--p2p.port', String(p2pPort), '--metrics.port', String(metricsPort)],
      { stdio: ['ignore', 'ignore', 'inherit'] });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const ep = JSON.parse(fs.readFileSync(path.join(dir, 'endpoints.json'), 'utf8'));
        url = ep.nodes[0].rpc;
        home = ep.nodes[0].home;
        break;
      } catch {
        if (Date.now() > deadline) throw new Error('the testnet did not write endpoints.json within 60 s');
        await pause(200);
      }
    }
    ca = path.join(dir, 'orgs', 'org0', 'ca.crt');
  });
  after(async () => {
    if (child) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  test('ethers, web3.js and viem read and send with a bearer token over TLS', async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:/);
    const bin = await charterBinary();
    const client = JSON.parse(execFileSync(bin, ['client', 'add', '--home', home, '--name', 'js', '--roles', 'read,write', '--json']).toString());
    // The node rereads its clients within a second; asked every half second.
    let token;
    for (let i = 0; !token; i++) {
      const res = await postForm(`${url}/oauth/token`, fs.readFileSync(ca), client.id, client.secret, 'grant_type=client_credentials');
      if (res.status === 200) token = JSON.parse(res.body).access_token;
      else if (i === 8) assert.fail(`no token after 4 s: ${res.status} ${res.body}`);
      else await pause(500);
    }
    const got = execFileSync(process.execPath, [path.join(JS_ROOT, 'lib', 'access-client.mjs'), url, token],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, timeout: 120_000 }).toString();
    const r = JSON.parse(got.trim().split('\n').pop());
    assert.equal(r.ethersError, undefined, `ethers: ${r.ethersError}`);
    assert.ok(r.ethersBlock >= 0);
    assert.ok(BigInt(r.ethersBalance) > 0n, 'the development account is funded');
    assert.equal(r.ethersSendStatus, 1, 'the transfer signed by ethers was mined');
    assert.match(r.noTokenError, /authentication required/);
    assert.equal(r.web3Error, undefined, `web3: ${r.web3Error}`);
    assert.equal(r.web3ChainId, 1337);
    assert.equal(r.viemError, undefined, `viem: ${r.viemError}`);
    assert.ok(r.viemBlock >= r.ethersBlock);
    assert.equal(r.wsError, undefined, `WebSocket: ${r.wsError}`);
    assert.ok(r.wsBlock >= r.ethersBlock);
  });
});
