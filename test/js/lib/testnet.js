// Starts and stops a `charter testnet` of several organizations for one test
// file: `charter testnet --dir <tmp> --validators N --orgs N` writes the
// network with `charter init` (development accounts in org0, one admin
// account per organization in orgs/ORG/admin-account.key) and runs one node
// per validator, then writes endpoints.json once every node answers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { charterBinary, rpc } from './node.js';

const START_DEADLINE_MS = 90_000;
const STOP_DEADLINE_MS = 45_000;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// freePortRun finds n consecutive free ports on 127.0.0.1, avoiding taken.
async function freePortRun(n, taken) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      ok = !taken.has(base + i) && (await portFree(base + i));
    }
    if (ok) {
      for (let i = 0; i < n; i++) taken.add(base + i);
      return base;
    }
  }
  throw new Error(`no run of ${n} free ports found on 127.0.0.1`);
}

// The secp256k1 key of an unencrypted key file written by charter init
// (PEM "CHARTER NODE KEY" holding the 32 raw bytes), as 64 hex digits.
export function readAccountKey(file) {
  const text = fs.readFileSync(file, 'utf8');
  const m = /-----BEGIN CHARTER NODE KEY-----\s+([A-Za-z0-9+/=\s]+?)-----END CHARTER NODE KEY-----/.exec(text);
  if (!m) throw new Error(`${file}: not an unencrypted CHARTER NODE KEY PEM file`);
  const raw = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  if (raw.length !== 32) throw new Error(`${file}: key of ${raw.length} bytes, want 32`);
  return raw.toString('hex');
}

// startTestnet runs `charter testnet` with `validators` nodes spread over
// `orgs` organizations and resolves once endpoints.json is written and
// every node answers eth_chainId. The result has dir, nodes (name, org,
// rpc, home) from endpoints.json, output() and stop(). apiAuth: the nodes
// serve TLS and require a credential (--api-auth required); eth_chainId is
// then not asked.
export async function startTestnet({ validators = 2, orgs = 2, blockTime = '200ms', apiAuth = false, consensus = 'raft', consensusParams } = {}) {
  const bin = await charterBinary();
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'charter-js-net-')), 'net');
  const taken = new Set();
  const args = [
    'testnet', '--dir', dir, '--validators', String(validators), '--orgs', String(orgs),
    '--consensus', consensus, '--block-time', blockTime,
    '--rpc.port', String(await freePortRun(validators, taken)),
    '--p2p.port', String(await freePortRun(validators, taken)),
    '--metrics.port', String(await freePortRun(validators, taken)),
    ...(apiAuth ? ['--api-auth', 'required'] : []),
    ...(consensusParams ? ['--consensus-params', JSON.stringify(consensusParams)] : []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitInfo;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      resolve(exitInfo);
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const net = {
    dir,
    nodes: [],
    output: () => output,
    async stop() {
      if (!exitInfo) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      return exitInfo;
    },
  };

  const deadline = Date.now() + START_DEADLINE_MS;
  const endpoints = path.join(dir, 'endpoints.json');
  while (Date.now() < deadline && !exitInfo) {
    try {
      const ep = JSON.parse(fs.readFileSync(endpoints, 'utf8'));
      net.nodes = ep.nodes;
      net.chainId = ep.chainId;
      break;
    } catch {
      await pause(200);
    }
  }
  if (net.nodes.length !== validators) {
    const tail = output.slice(-4000);
    await net.stop();
    throw new Error(`charter ${args.join(' ')}: no endpoints.json with ${validators} nodes within ${START_DEADLINE_MS} ms; output:\n${tail}`);
  }
  for (const n of apiAuth ? [] : net.nodes) {
    const res = await rpc(n.rpc, 'eth_chainId', [], { signal: AbortSignal.timeout(5000) });
    if (res.result === undefined) {
      await net.stop();
      throw new Error(`${n.name} at ${n.rpc}: eth_chainId answered ${JSON.stringify(res)}`);
    }
  }
  return net;
}
