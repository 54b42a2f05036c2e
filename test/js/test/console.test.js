// The web console in a real browser (Debian's chromium through
// playwright-core) against a 4-organization testnet: find a transaction by
// its hash and read its decoded ERC-20 Transfer, follow a proposal, see
// the members, the network's health, usage, and a private group from a
// member's node and from another organization's node, which sees only
// that it exists. Every page's screenshot goes to the test output
// (CHARTER_TEST_OUTPUT, default test/js/output/console); a console error
// or an uncaught exception on any page fails the test.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { ethers } from 'ethers';
import { compileToken, JS_ROOT } from '../lib/compile.js';
import { charterBinary, rpc } from '../lib/node.js';
import { startTestnet, readAccountKey } from '../lib/testnet.js';
import { KNOWN, SUPPLY, waitFor } from '../lib/dev.js';
import { launch, chromiumMissing } from '../lib/browser.js';

const OUT = path.resolve(process.env.CHARTER_TEST_OUTPUT || path.join(JS_ROOT, 'output'), 'console');
const missing = chromiumMissing();

async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

describe('the web console', { timeout: 240_000, skip: missing && !process.env.CI ? missing : false }, () => {
  let net, browser, bin, n0, n2, txHash, proposalId, groupId, key, disclosedFrom;
  const cli = (...args) => execFileSync(bin, args, { timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  before(async () => {
    assert.equal(missing, '', missing);
    fs.rmSync(OUT, { recursive: true, force: true });
    fs.mkdirSync(OUT, { recursive: true });
    bin = await charterBinary();
    // bft, whose proposers take turns; a short propose timeout, so that
    // the turns of a stopped validator pass quickly.
    net = await startTestnet({ validators: 4, orgs: 4, consensus: 'bft', consensusParams: { timeoutPropose: '300ms' } });
    n0 = net.nodes.find((n) => n.org === 'org0');
    n2 = net.nodes.find((n) => n.org === 'org2');
    key = (org) => path.join(net.dir, 'orgs', org, 'admin-account.key');

    // An ERC-20 deployed by a development account of org0, registered
    // under a name with its ABI, and one transfer.
    const { abi, bytecode } = compileToken();
    const provider = new ethers.JsonRpcProvider(n0.rpc, undefined, { staticNetwork: true, polling: true, pollingInterval: 100 });
    const wallet = new ethers.Wallet(KNOWN[0].key, provider);
    const token = await (await new ethers.ContractFactory(abi, bytecode, wallet).deploy(SUPPLY)).waitForDeployment();
    const tx = await token.transfer(KNOWN[1].address, 1234n, { nonce: 1 });
    txHash = (await tx.wait()).hash;
    const abiFile = path.join(net.dir, 'token.abi.json');
    const devKey = path.join(net.dir, 'dev0.key');
    fs.writeFileSync(abiFile, JSON.stringify(abi));
    fs.writeFileSync(devKey, KNOWN[0].key.slice(2), { mode: 0o600 });
    cli('contract', 'register', '--name', 'gold', '--address', await token.getAddress(), '--abi', abiFile, '--key', devKey, '--rpc', n0.rpc);
    provider.destroy();

    // A proposal of org0 that org1 and org2 approve.
    const proposed = JSON.parse(cli('gov', 'propose', 'set-parameter', '--name', 'maxOpenProposals', '--value', '20',
      '--memo', 'room for more proposals', '--key', key('org0'), '--rpc', n0.rpc, '--json'));
    proposalId = proposed.id ?? proposed.proposal;
    assert.ok(proposalId, `charter gov propose --json: ${JSON.stringify(proposed)}`);
    cli('gov', 'vote', String(proposalId), 'yes', '--key', key('org1'), '--rpc', n0.rpc);

    // A private group of org0 and org1 with a private token and a
    // private transfer; org2 is not a member.
    const group = JSON.parse(cli('privacy', 'group', 'create', '--name', 'deals', '--member', 'org1', '--key', key('org0'), '--rpc', n0.rpc, '--json'));
    groupId = group.id ?? group.groupId;
    assert.ok(groupId, `charter privacy group create --json: ${JSON.stringify(group)}`);
    // org3 audits: governance gives its admin account the auditor role,
    // and both members disclose the group to it from the next blocks on,
    // before the private transactions below. A second group of org0 and
    // org1 is disclosed to no one.
    const auditor = new ethers.Wallet('0x' + readAccountKey(key('org3'))).address;
    const roles = JSON.parse(cli('gov', 'propose', 'grant-roles', '--account', auditor, '--org', 'org3', '--roles', 'read,write,admin,auditor',
      '--memo', 'org3 audits', '--key', key('org0'), '--rpc', n0.rpc, '--json'));
    const rolesId = roles.id ?? roles.proposal;
    for (const org of ['org0', 'org1', 'org2']) cli('gov', 'vote', String(rolesId), 'yes', '--key', key(org), '--rpc', n0.rpc);
    await waitFor(async () => (await rpc(n0.rpc, 'charter_proposal', [Number(rolesId)])).result?.status === 'executed', 60_000, 'the auditor role of org3');
    disclosedFrom = Number(BigInt((await rpc(n0.rpc, 'eth_blockNumber')).result)) + 3;
    for (const org of ['org0', 'org1']) {
      cli('privacy', 'disclose', groupId, '--org', 'org3', '--from', String(disclosedFrom), '--key', key(org), '--rpc', n0.rpc, '--json');
    }
    cli('privacy', 'group', 'create', '--name', 'undisclosed', '--member', 'org1', '--key', key('org0'), '--rpc', n0.rpc, '--json');
    await waitFor(async () => Number(BigInt((await rpc(n0.rpc, 'eth_blockNumber')).result)) >= disclosedFrom, 30_000, `block ${disclosedFrom}`);

    const binFile = path.join(net.dir, 'token.bin');
    fs.writeFileSync(binFile, bytecode.slice(2));
    const deployed = JSON.parse(cli('privacy', 'send', '--group', groupId, '--key', devKey, '--deploy', binFile,
      '--call', 'constructor(uint256)', '1000', '--rpc', n0.rpc, '--json'));
    const priv = deployed.contractAddress ?? deployed.receipt?.contractAddress;
    assert.ok(priv, `charter privacy send --deploy --json: ${JSON.stringify(deployed)}`);
    cli('privacy', 'send', '--group', groupId, '--key', devKey, '--to', priv, '--call', 'transfer(address,uint256)', KNOWN[2].address, '5', '--rpc', n0.rpc, '--json');

    browser = await launch();
  });

  after(async () => {
    if (browser) await browser.close();
    if (net) await net.stop();
  });

  test('explorer, transaction, governance, members, network, usage and private data', async () => {
    const page = await browser.page();
    // The URL testnet prints and writes into endpoints.json.
    const base = n0.console;
    assert.equal(base, `${n0.rpc}/console/`);
    assert.match(net.output(), new RegExp(`Web console: ${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const t0 = Date.now();
    await page.goto(base);
    await page.locator('#blocks tbody tr').first().waitFor();
    // Reported, not asserted (the machine is shared): the issue asks for
    // the first page under 1 s on a local node.
    console.log(`first page with its latest blocks in ${Date.now() - t0} ms`);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await shot(page, '01-explorer');

    // Search by hash: the transfer, decoded by the registry's ABI.
    await page.fill('#q', txHash);
    await page.press('#q', 'Enter');
    const event = page.locator('#events .event').filter({ hasText: 'Transfer(address,address,uint256)' });
    await event.waitFor();
    assert.match(await event.innerText(), /1234/);
    assert.match(await event.innerText(), new RegExp(KNOWN[1].address, 'i'));
    assert.match(await page.locator('main').innerText(), /transfer\(address,uint256\)/);
    await shot(page, '02-transaction');

    // Its block: the proposer and the validators who signed the commit
    // certificate (a bft quorum: at least 3 of 4).
    await page.locator('main a[href^="#/block/"]').first().click();
    await page.locator('#seal li').nth(2).waitFor();
    await shot(page, '02-block');

    // Search by the registered name: the contract's page.
    await page.fill('#q', 'gold');
    await page.press('#q', 'Enter');
    await page.locator('h1', { hasText: 'Contract gold' }).waitFor();
    // A read-only call from its form: balanceOf the recipient.
    const form = page.locator('form[data-function="balanceOf"]');
    await form.locator('input').fill(KNOWN[1].address);
    await form.locator('button').click();
    await form.locator('.result', { hasText: '1234' }).waitFor();
    await shot(page, '03-contract');

    // The proposal: listed, open with org1's vote; then org2 and org3
    // vote, and it passes and executes at the end of its time-lock.
    await page.goto(`${base}#/governance`);
    await page.locator(`a[href="#/governance/${proposalId}"]`).first().click();
    await page.locator('h1', { hasText: `Proposal ${proposalId}` }).waitFor();
    await page.locator('.badge', { hasText: 'open' }).waitFor();
    const openText = await page.locator('main').innerText();
    assert.match(openText, /org1/);
    assert.match(openText, new RegExp(`charter gov vote ${proposalId} yes`), 'the open proposal shows the command to vote');
    assert.doesNotMatch(openText, /\[object |^null$/m, 'no value written out as text');
    assert.match(openText, /% of the active weight must vote/, 'the rule\'s quorum');
    assert.match(openText, /\d+ blocks between passing and execution/, 'the rule\'s time-lock');
    await shot(page, '04-proposal-open');
    for (const org of ['org2', 'org3']) cli('gov', 'vote', String(proposalId), 'yes', '--key', key(org), '--rpc', n0.rpc);
    await waitFor(async () => (await rpc(n0.rpc, 'charter_proposal', [Number(proposalId)])).result?.status === 'executed', 60_000, 'the proposal to execute');
    await page.reload();
    await page.locator('.badge', { hasText: 'executed' }).waitFor();
    const votes = await page.locator('main').innerText();
    assert.match(votes, /org2/);
    assert.match(votes, /org3/);
    assert.match(votes, /Executes at block/);
    assert.doesNotMatch(votes, /\[object |^null$/m, 'no value written out as text');
    await shot(page, '04-proposal-executed');
    await page.goto(`${base}#/governance`);
    await page.selectOption('#draft-action', 'freeze');
    await page.fill('#draft-target', KNOWN[3].address);
    await page.fill('#draft-memo', 'lost key');
    assert.match(await page.locator('#draft-command').innerText(), new RegExp(`charter gov propose freeze --target ${KNOWN[3].address} --memo 'lost key'`));
    // The audit trail of one organization: org2's vote on the proposal.
    await page.selectOption('#audit-org', 'org2');
    const trail = await page.locator('#audit-h + p + div').innerText();
    assert.match(trail, /org2/);
    assert.doesNotMatch(trail, /\torg1\t/);
    await shot(page, '05-governance');

    // The same draft signed by a browser wallet: a stub EIP-1193 provider
    // in the page that hands each request to this test, which checks its
    // shape and signs with org0's admin key in node.js (the page never
    // holds a key), so the proposal is made on the chain.
    const walletPage = await browser.ctx.newPage();
    const admin = new ethers.Wallet('0x' + readAccountKey(key('org0')), new ethers.JsonRpcProvider(n0.rpc, undefined, { staticNetwork: true }));
    const chainId = (await rpc(n0.rpc, 'eth_chainId')).result;
    const asked = [];
    await walletPage.exposeFunction('charterTestWallet', async (method, params) => {
      asked.push(method);
      if (method === 'eth_requestAccounts') return [admin.address];
      if (method === 'eth_chainId') return chainId;
      assert.equal(method, 'eth_sendTransaction');
      const [tx] = params;
      assert.deepEqual(Object.keys(tx).sort(), ['data', 'from', 'to', 'value']);
      assert.equal(tx.from, admin.address);
      assert.equal(tx.to.toLowerCase(), '0x0000000000000000000000000000000000000401');
      assert.equal(tx.value, '0x0');
      const sent = await admin.sendTransaction({ to: tx.to, data: tx.data, value: 0n });
      return sent.hash;
    });
    await walletPage.addInitScript(() => {
      window.ethereum = { request: ({ method, params }) => window.charterTestWallet(method, params || []) };
    });
    await walletPage.goto(`${base}#/governance`);
    await walletPage.selectOption('#draft-action', 'freeze');
    await walletPage.fill('#draft-target', KNOWN[3].address);
    await walletPage.fill('#draft-memo', 'signed by a wallet');
    await walletPage.locator('#draft-tx', { hasText: '"to": "0x0000000000000000000000000000000000000401"' }).waitFor();
    const unsigned = JSON.parse(await walletPage.locator('#draft-tx').innerText());
    assert.match(unsigned.data, /^0x[0-9a-f]{8}/);
    assert.equal(unsigned.chainId, chainId);
    await walletPage.locator('#draft-wallet:not([disabled])').click();
    const sentLink = walletPage.locator('#draft-status a[href^="#/tx/0x"]');
    await sentLink.waitFor();
    assert.deepEqual(asked, ['eth_requestAccounts', 'eth_chainId', 'eth_sendTransaction']);
    const sentHash = (await sentLink.getAttribute('href')).slice(5);
    await waitFor(async () => (await rpc(n0.rpc, 'eth_getTransactionReceipt', [sentHash])).result, 30_000, 'the wallet\'s proposal in a block');
    const open = (await rpc(n0.rpc, 'charter_proposals', ['open', 100])).result;
    assert.ok(open.some((p) => p.memo === 'signed by a wallet' && /freeze/i.test(p.action)), `the wallet's proposal: ${JSON.stringify(open)}`);
    await shot(walletPage, '05-governance-wallet');
    await walletPage.close();

    await page.goto(`${base}#/members`);
    await page.locator('#org-org3').waitFor();
    // Each organization's root certificate, with its expiry.
    const roots = page.locator('table', { has: page.locator('caption', { hasText: 'Root certificates' }) }).locator('tbody tr');
    assert.equal(await roots.count(), 4);
    // Each node's TLS certificate expiry (all four are connected to n0).
    for (const org of ['org0', 'org1', 'org2', 'org3']) {
      const cells = await page.locator('table', { has: page.locator('caption', { hasText: `Nodes of ${org}` }) }).locator('tbody tr').first().locator('td').allInnerTexts();
      assert.match(cells[3], /^\d{4}-\d\d-\d\d/, `certificate expiry of ${org}'s node: ${cells.join(' | ')}`);
    }
    await shot(page, '06-members');

    // Network health: every validator with its last signed block (from
    // the commit certificates), and the peers as a list, each with the
    // readiness it reported to this node (every 5 s over the p2p link).
    await page.goto(`${base}#/network`);
    await page.locator('h2', { hasText: 'Validators' }).waitFor();
    await waitFor(async () => {
      await page.reload();
      await page.locator('#peers tbody tr').nth(3).waitFor();
      if ((await page.locator('#peers tbody tr .badge', { hasText: /^ready$/ }).count()) === 4) return true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return false;
    }, 30_000, 'this node and its 3 peers, each reported ready');
    const peers = await page.locator('#peers').innerText();
    for (const org of ['org1', 'org2', 'org3']) assert.match(peers, new RegExp(`${org}\\t127\\.0\\.0\\.1:\\d+`), `peer of ${org} with its address`);
    const vals = page.locator('#validators tbody tr');
    assert.equal(await vals.count(), 4);
    for (let i = 0; i < 4; i++) assert.equal(await vals.nth(i).locator('a[href^="#/block/"]').count() >= 1, true, `validator ${i} with a last signed block`);
    await page.locator('svg.chart').first().waitFor();
    await page.locator('#live-rates', { hasText: 'tx/s' }).waitFor();
    // The node's own history: the chart starts before the page opened.
    assert.match(await page.locator('#live-chart svg').getAttribute('aria-label'), /since \d{4}-\d\d-\d\d/);
    await shot(page, '07-network');

    await page.goto(`${base}#/usage`);
    await page.locator('#usage-csv').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#usage-csv')]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^day,organization,nodes,transactions,gas,state_bytes,gas_share_bps\n/);
    assert.match(csv, /,org0,/);
    // One stacked bar per day with usage (today), one part per organization.
    assert.ok(await page.locator('#usage-chart svg rect').count() >= 1, 'the chart has bars');
    assert.match(await page.locator('#usage-chart figcaption').innerText(), /org0/);
    await page.selectOption('#usage-measure', 'txs');
    assert.match(await page.locator('#usage-chart svg').getAttribute('aria-label'), /^Transactions per day/);
    await shot(page, '08-usage');

    // A member's node shows the group's private events.
    await page.goto(`${base}#/privacy`);
    const mine = page.locator('section.group', { hasText: 'deals' });
    await mine.locator('h3', { hasText: 'Private events' }).waitFor();
    assert.match(await mine.innerText(), /member/);
    assert.match(await mine.innerText(), /Transfer/);
    await shot(page, '09-privacy-member');

    // org2's node: the group exists, its content does not.
    await page.goto(`${n2.console}#/privacy`);
    const other = page.locator('section.group', { hasText: 'deals' });
    await other.locator('.private-hidden').waitFor();
    const text = await other.innerText();
    assert.match(text, /not a member/);
    assert.doesNotMatch(text, /Private events|Transfer/);
    await shot(page, '10-privacy-other-org');

    // org3's node: the auditor reads what was disclosed to it, from the
    // granted block, and nothing of the group disclosed to no one.
    const n3node = net.nodes.find((n) => n.org === 'org3');
    await page.goto(`${n3node.console}#/privacy`);
    const audited = page.locator('section.group.audited', { hasText: 'deals' });
    await audited.locator('h3', { hasText: `Disclosed private events from block ${disclosedFrom}` }).waitFor();
    await waitFor(async () => {
      if (/Transfer/.test(await audited.innerText())) return true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await page.reload();
      await audited.locator('h3').waitFor();
      return false;
    }, 30_000, 'the disclosed transfer on the auditor\'s node');
    assert.match(await audited.innerText(), new RegExp(`auditor from block ${disclosedFrom}`));
    assert.match(await page.locator('#audited').innerText(), /deals/);
    const undisclosed = page.locator('section.group', { hasText: 'undisclosed' });
    await undisclosed.locator('.private-hidden').waitFor();
    assert.doesNotMatch(await undisclosed.innerText(), /Private events|Transfer/);
    await shot(page, '10-privacy-auditor');

    // A phone.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}#/tx/${txHash}`);
    await page.locator('#events .event').first().waitFor();
    await shot(page, '11-transaction-phone');

    // A validator stops: the others go on without it, and the network
    // page marks it missing once it let its turns pass.
    const n3 = net.nodes.find((n) => n.org === 'org3');
    process.kill(n3.pid, 'SIGKILL');
    const height = async () => Number(BigInt((await rpc(n0.rpc, 'eth_blockNumber')).result));
    const stoppedAt = await height();
    await waitFor(async () => (await height()) >= stoppedAt + 14, 60_000, 'the chain to go on without a validator');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}#/network`);
    const row = page.locator('#validators tr', { hasText: 'org3' });
    await row.locator('.badge', { hasText: 'missing' }).waitFor();
    assert.equal(await page.locator('tr .badge', { hasText: 'missing' }).count(), 1, 'only the stopped validator is missing');
    // Its missed blocks: at least the 14 the others made without it, and
    // the rounds it was to propose passed.
    const cells = await row.locator('td').allInnerTexts();
    assert.ok(Number(cells[5]) >= 14 && Number(cells[6]) >= 1, `missed blocks and rounds of the stopped validator: ${cells.join(' | ')}`);
    await page.locator('#peers tr', { hasText: 'org3' }).locator('.badge', { hasText: 'not connected' }).waitFor();
    await shot(page, '12-network-validator-missing');

    assert.deepEqual(browser.errors, [], 'console errors or uncaught exceptions');
    console.log(`screenshots: ${OUT}`);
  });
});

// A token of the node's built-in issuer for an API client (the OAuth2
// client-credentials grant over TLS), asked until the node has reread its
// clients.
async function tokenFor(url, ca, id, secret) {
  for (let i = 0; ; i++) {
    const res = await new Promise((resolve, reject) => {
      const req = https.request(`${url}/oauth/token`, {
        method: 'POST', ca, auth: `${id}:${secret}`, timeout: 10_000,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      }, (r) => {
        let data = '';
        r.on('data', (c) => { data += c; });
        r.on('end', () => resolve({ status: r.statusCode, body: data }));
      });
      req.on('error', reject);
      req.end('grant_type=client_credentials');
    });
    if (res.status === 200) return JSON.parse(res.body).access_token;
    if (i === 20) throw new Error(`no token after 10 s: ${res.status} ${res.body}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('the web console on a network that requires a credential', { timeout: 180_000, skip: missing && !process.env.CI ? missing : false }, () => {
  let net, browser, bin, n0, n1, c0, c1;
  const cli = (...args) => execFileSync(bin, args, { timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  before(async () => {
    assert.equal(missing, '', missing);
    fs.mkdirSync(OUT, { recursive: true });
    bin = await charterBinary();
    net = await startTestnet({ validators: 2, orgs: 2, apiAuth: true });
    n0 = net.nodes.find((n) => n.org === 'org0');
    n1 = net.nodes.find((n) => n.org === 'org1');
    assert.match(n0.console, /^https:\/\/127\.0\.0\.1:\d+\/console\/$/);
    // A reader and writer of org0, a reader of org1, each an API client
    // of its organization's node.
    c0 = JSON.parse(cli('client', 'add', '--home', n0.home, '--name', 'console', '--roles', 'read,write', '--json'));
    c1 = JSON.parse(cli('client', 'add', '--home', n1.home, '--name', 'console', '--roles', 'read', '--json'));
    const ca0 = path.join(net.dir, 'orgs', 'org0', 'ca.crt');
    const tokenFile = path.join(net.dir, 'org0.token');
    fs.writeFileSync(tokenFile, await tokenFor(n0.rpc, fs.readFileSync(ca0), c0.id, c0.secret), { mode: 0o600 });
    const access = ['--rpc', n0.rpc, '--tls.ca', ca0, '--token-file', tokenFile];

    // A group of org0 alone, with a private token and a transfer in it.
    const group = JSON.parse(cli('privacy', 'group', 'create', '--name', 'vault', '--key', path.join(net.dir, 'orgs', 'org0', 'admin-account.key'), ...access, '--json'));
    const groupId = group.id ?? group.groupId;
    const devKey = path.join(net.dir, 'dev0.key');
    fs.writeFileSync(devKey, KNOWN[0].key.slice(2), { mode: 0o600 });
    const binFile = path.join(net.dir, 'token.bin');
    fs.writeFileSync(binFile, compileToken().bytecode.slice(2));
    const deployed = JSON.parse(cli('privacy', 'send', '--group', groupId, '--key', devKey, '--deploy', binFile, '--call', 'constructor(uint256)', '1000', ...access, '--json'));
    const priv = deployed.contractAddress ?? deployed.receipt?.contractAddress;
    cli('privacy', 'send', '--group', groupId, '--key', devKey, '--to', priv, '--call', 'transfer(address,uint256)', KNOWN[2].address, '5', ...access, '--json');

    browser = await launch({ ignoreHTTPSErrors: true });
  });

  after(async () => {
    if (browser) await browser.close();
    if (net) await net.stop();
  });

  const signIn = async (page, node, client) => {
    await page.goto(node.console);
    await page.locator('h1', { hasText: 'Sign in' }).waitFor();
    await page.fill('#login-id', client.id);
    await page.fill('#login-secret', client.secret);
    await page.click('#main button[type=submit]');
    await page.locator('h1', { hasText: 'Explorer' }).waitFor().catch(async (err) => {
      await shot(page, `failed-sign-in-${node.org}`);
      throw new Error(`${err.message}\npage: ${await page.locator('main').innerText()}\nerrors: ${browser.errors.join('\n')}`);
    });
    await page.locator('#caller', { hasText: `${node.org}/` }).waitFor();
  };

  test('each organization signs in on its node and sees its own private data only', async () => {
    const page = await browser.page();
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, n0, c0);
    await shot(page, '20-auth-explorer-org0');
    await page.goto(`${n0.console}#/privacy`);
    const mine = page.locator('section.group', { hasText: 'vault' });
    await mine.locator('h3', { hasText: 'Private events' }).waitFor();
    assert.match(await mine.innerText(), /Transfer/);
    await shot(page, '21-auth-privacy-org0');

    await signIn(page, n1, c1);
    await page.goto(`${n1.console}#/privacy`);
    const other = page.locator('section.group', { hasText: 'vault' });
    await other.locator('.private-hidden').waitFor();
    assert.doesNotMatch(await other.innerText(), /Private events|Transfer/);
    await shot(page, '22-auth-privacy-org1');

    assert.deepEqual(browser.errors, [], 'console errors or uncaught exceptions');
  });
});
