// Facts about the charter dev chain (see /work/shared/INTERFACE.md) shared by the tests.
export const MNEMONIC = 'test test test test test test test test test test test junk';
export const CHAIN_ID = 1337;
export const DEV_ACCOUNT_COUNT = 20;
export const PREFUND_WEI = 10_000n * 10n ** 18n; // 10,000 ETH
export const hdPath = (i) => `m/44'/60'/0'/0/${i}`;

// The first accounts of the mnemonic, as every Ethereum tool derives them. The
// tests re-derive them with ethers and viem and compare with this table.
export const KNOWN = [
  { address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', key: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' },
  { address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', key: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d' },
  { address: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', key: '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a' },
  { address: '0x90F79bf6EB2c4f870365E785982E1f101E93b906', key: '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6' },
];

// The Token is deployed with this supply (in the token's smallest unit).
export const SUPPLY = 1_000_000n * 10n ** 18n;

// The keccak-256 of "Transfer(address,address,uint256)".
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';

// The 4-byte selector of ERC20InsufficientBalance(address,uint256,uint256).
export const INSUFFICIENT_BALANCE_SELECTOR = '0xe450d38c';

// Left-pads an address to a 32-byte topic, lower case.
export function addressTopic(address) {
  return '0x' + address.toLowerCase().replace(/^0x/, '').padStart(64, '0');
}

// A 32-byte big-endian word for a uint256.
export function uintWord(value) {
  return '0x' + BigInt(value).toString(16).padStart(64, '0');
}

// Resolves with promise's value, or rejects after ms with a message naming what was awaited.
export function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A promise with its resolve function exposed, for event callbacks.
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// All the text an error carries (message, nested causes and the JSON-RPC error
// the library wrapped), for matching a node's rejection reason.
export function errorText(err) {
  const parts = [];
  const seen = new Set();
  const walk = (e, depth) => {
    if (e == null || depth > 6 || seen.has(e)) return;
    if (typeof e !== 'object') {
      parts.push(String(e));
      return;
    }
    seen.add(e);
    for (const key of ['message', 'shortMessage', 'details', 'reason']) {
      if (typeof e[key] === 'string') parts.push(e[key]);
    }
    for (const key of ['error', 'cause', 'info', 'innerError', 'data']) walk(e[key], depth + 1);
  };
  walk(err, 0);
  return parts.join(' | ');
}

// Polls cond() every 20 ms until it returns true; rejects after ms naming what was awaited.
export async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// Whether a 2048-bit logs bloom (0x-hex, 256 bytes) has the three bits that
// Ethereum sets for value (an address or a topic, 0x-hex): the low 11 bits of
// the first three 16-bit words of keccak256(value).
export function bloomHas(bloom, value, keccak256) {
  const bytes = Buffer.from(bloom.slice(2), 'hex');
  const hash = Buffer.from(keccak256(value).slice(2), 'hex');
  for (let i = 0; i < 6; i += 2) {
    const bit = ((hash[i] << 8) | hash[i + 1]) & 2047;
    if ((bytes[255 - (bit >> 3)] & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
