// Runs ethers v6, web3.js v4 and viem against a node that requires a bearer
// token over TLS, and prints what each got as one JSON line. It is a child
// process of access.test.js, started with NODE_EXTRA_CA_CERTS set to the
// organization's CA certificate, so that every library trusts the node as
// an application's process would.
//   node access-client.mjs URL TOKEN
import { JsonRpcProvider, FetchRequest, Wallet, HDNodeWallet, WebSocketProvider, parseEther } from 'ethers';
import { Web3 } from 'web3';
import { createPublicClient, http } from 'viem';
import { MNEMONIC, hdPath, CHAIN_ID } from './dev.js';

const [url, token] = process.argv.slice(2);
const out = {};
const text = (err) => String(err?.shortMessage ?? err?.message ?? err);

function ethersProvider(withToken) {
  const req = new FetchRequest(url);
  if (withToken) req.setHeader('Authorization', `Bearer ${token}`);
  return new JsonRpcProvider(req, CHAIN_ID, { staticNetwork: true });
}

try {
  const p = ethersProvider(true);
  out.ethersBlock = await p.getBlockNumber();
  const dev = HDNodeWallet.fromPhrase(MNEMONIC, undefined, hdPath(0)).connect(p);
  out.ethersBalance = (await p.getBalance(dev.address)).toString();
  const tx = await dev.sendTransaction({ to: Wallet.createRandom().address, value: parseEther('1') });
  const rc = await tx.wait(1, 60_000);
  out.ethersSendStatus = rc.status;
} catch (err) {
  out.ethersError = text(err);
}
try {
  await ethersProvider(false).getBlockNumber();
  out.noTokenError = 'none';
} catch (err) {
  out.noTokenError = text(err) + ' ' + JSON.stringify(err?.info ?? err?.error ?? '');
}
try {
  const web3 = new Web3(new Web3.providers.HttpProvider(url, { providerOptions: { headers: { Authorization: `Bearer ${token}` } } }));
  out.web3ChainId = Number(await web3.eth.getChainId());
  out.web3Block = Number(await web3.eth.getBlockNumber());
} catch (err) {
  out.web3Error = text(err);
}
try {
  const client = createPublicClient({ transport: http(url, { fetchOptions: { headers: { Authorization: `Bearer ${token}` } } }) });
  out.viemBlock = Number(await client.getBlockNumber());
} catch (err) {
  out.viemError = text(err);
}
try {
  const ws = new WebSocketProvider(url.replace(/^https/, 'wss') + `/?access_token=${encodeURIComponent(token)}`, CHAIN_ID, { staticNetwork: true });
  out.wsBlock = await ws.getBlockNumber();
  await ws.destroy();
} catch (err) {
  out.wsError = text(err);
}
console.log(JSON.stringify(out));
process.exit(0);
