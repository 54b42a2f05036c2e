// Starts and stops a `charter dev` node for one test file.
//
// The binary is $CHARTER_BIN when set; otherwise it is built once from the repo
// root with `go build -o <tmp>/charter ./cmd/charter` (test files run as separate
// processes, so a lock file makes the others wait for the first build; go build
// is a no-op when the output is already up to date).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { JS_ROOT } from './compile.js';

export const REPO_ROOT = path.resolve(JS_ROOT, '..', '..');
const BUILD_DIR = path.join(os.tmpdir(), `charter-js-${process.getuid?.() ?? 'user'}`);

const START_DEADLINE_MS = 60_000;
const BUILD_DEADLINE_MS = 10 * 60_000;
const STOP_DEADLINE_MS = 15_000;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

// Takes an exclusive lock file (O_EXCL), breaking it if its owner process is gone.
async function withLock(lockFile, deadlineMs, fn) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(lockFile, { encoding: 'utf8', flag: 'a+' }));
      if (owner > 0 && !pidAlive(owner)) {
        fs.rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lock ${lockFile} still held by pid ${owner} after ${deadlineMs} ms`);
      await pause(200);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}

let binary;

// charterBinary returns the path of the charter executable, building it if needed.
export async function charterBinary() {
  if (binary) return binary;
  if (process.env.CHARTER_BIN) {
    binary = path.resolve(process.env.CHARTER_BIN);
    fs.accessSync(binary, fs.constants.X_OK);
    return binary;
  }
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  const out = path.join(BUILD_DIR, 'charter');
  await withLock(path.join(BUILD_DIR, 'build.lock'), BUILD_DEADLINE_MS, () => {
    execFileSync('go', ['build', '-o', out, './cmd/charter'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: BUILD_DEADLINE_MS,
    });
  });
  binary = out;
  return binary;
}

// A free TCP port on 127.0.0.1 (the node binds it right after; startNode retries
// with another port if someone else took it in between).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// rpc sends one JSON-RPC request over HTTP and returns the whole response object
// ({ result } or { error }). It throws only on transport failures.
export async function rpc(url, method, params = [], { signal } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal,
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${method}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
}

const running = new Set();
function killAll() {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

function spawnOnce(bin, port, datadir) {
  const args = ['dev', '--http.port', String(port), '--datadir', datadir];
  const child = spawn(bin, args, { cwd: datadir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      running.delete(child);
      resolve({ code: null, signal: null, error: err });
    });
  });
  return { child, args, exited, output: () => output };
}

// startNode spawns `charter dev --http.port <free port> --datadir <tmp dir>` and
// resolves once eth_chainId answers over HTTP. The returned object has rpcUrl,
// wsUrl, output() (everything the node printed) and stop().
export async function startNode() {
  const bin = await charterBinary();
  let lastFailure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const datadir = fs.mkdtempSync(path.join(os.tmpdir(), 'charter-js-data-'));
    const proc = spawnOnce(bin, port, datadir);
    const rpcUrl = `http://127.0.0.1:${port}`;
    const wsUrl = `ws://127.0.0.1:${port}`;
    let exitInfo;
    proc.exited.then((info) => {
      exitInfo = info;
    });

    const node = {
      rpcUrl,
      wsUrl,
      port,
      datadir,
      pid: proc.child.pid,
      output: proc.output,
      exited: proc.exited,
      // stop sends SIGTERM, waits for the exit (SIGKILL after a deadline), removes
      // the data directory and returns { code, signal, killed }.
      async stop() {
        let killed = false;
        if (!exitInfo) {
          proc.child.kill('SIGTERM');
          const timer = setTimeout(() => {
            killed = true;
            proc.child.kill('SIGKILL');
          }, STOP_DEADLINE_MS);
          await proc.exited;
          clearTimeout(timer);
        }
        fs.rmSync(datadir, { recursive: true, force: true });
        return { ...(await proc.exited), killed };
      },
    };

    const deadline = Date.now() + START_DEADLINE_MS;
    let lastError = 'no answer yet';
    while (Date.now() < deadline && !exitInfo) {
      try {
        const res = await rpc(rpcUrl, 'eth_chainId', [], { signal: AbortSignal.timeout(2000) });
        if (res.result !== undefined) return node;
        lastError = JSON.stringify(res);
      } catch (err) {
        lastError = err.cause?.code ?? err.message;
      }
      if (!exitInfo) await pause(100);
    }
    const tail = proc.output().slice(-4000);
    if (exitInfo) {
      fs.rmSync(datadir, { recursive: true, force: true });
      lastFailure = `charter ${proc.args.join(' ')} exited (code ${exitInfo.code}, signal ${exitInfo.signal}${exitInfo.error ? ', ' + exitInfo.error.message : ''}) before answering eth_chainId; output:\n${tail}`;
      if (/address already in use/i.test(tail)) continue; // port taken in between: retry
      throw new Error(lastFailure);
    }
    await node.stop();
    throw new Error(`charter ${proc.args.join(' ')}: eth_chainId did not answer within ${START_DEADLINE_MS} ms (last: ${lastError}); output:\n${tail}`);
  }
  throw new Error(lastFailure);
}
