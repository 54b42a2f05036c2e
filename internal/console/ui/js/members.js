// Members and governance: organizations, nodes, accounts and roles;
// proposals with votes, thresholds and time-lock; the audit trail; a draft
// form that prints the `charter gov propose` command (the browser never
// holds a member's key).
import { rpc, getJSON, postJSON } from './api.js';
import { h, link, mono, badge, short, table, kv, addrLink, blockLink, txLink, errorBox } from './dom.js';

const DAY_MS = 86400e3;

function expiry(c) {
  if (c.error) return badge(`unreadable: ${c.error}`, 'bad');
  const left = Date.parse(c.notAfter) - Date.now();
  const date = c.notAfter.slice(0, 10);
  if (left < 0) return badge(`expired ${date}`, 'bad');
  if (left < 30 * DAY_MS) return badge(`expires ${date} (${Math.ceil(left / DAY_MS)} days)`, 'warn');
  return h('span', {}, date);
}

export async function members(view, ctx) {
  const [m, certs, hl] = await Promise.all([ctx.members(), getJSON('/api/console/certificates'), ctx.health()]);
  const validators = new Set(m.validators.map((v) => v.toLowerCase()));
  // The nodes' TLS certificates are known for this node and the peers it
  // is connected to (each proved its certificate on the link).
  const nodeCert = new Map(hl.peerList.filter((p) => p.certExpires).map((p) => [p.id.toLowerCase(), p.certExpires]));
  if (hl.node.id && hl.node.certExpires) nodeCert.set(hl.node.id.toLowerCase(), hl.node.certExpires);
  const certCell = (id) => {
    const t = nodeCert.get(id.toLowerCase());
    return t ? expiry({ notAfter: t }) : h('span', { class: 'muted' }, 'not connected to this node');
  };
  view.append(h('h1', {}, 'Members'),
    h('p', {}, `The registry at block ${m.height}: ${m.organizations.length} organizations, ${m.validators.length} validators.`),
    table(['Organization', 'Tier', 'Weight', 'Status', 'Since', 'Nodes', 'Accounts'], m.organizations.map((o) => [
      link(`#/members`, o.name, { 'data-org': o.name, onclick: (e) => { e.preventDefault(); document.getElementById(`org-${o.name}`).scrollIntoView(); } }),
      o.tier, String(o.weight), o.status === 'active' ? badge('active', 'ok') : badge(o.status, 'warn'), blockLink(o.since),
      String(o.nodes.length), String(o.accounts.length)]), 'Organizations'));
  for (const o of m.organizations) {
    view.append(h('section', { class: 'card', id: `org-${o.name}`, 'aria-labelledby': `org-h-${o.name}` },
      h('h2', { id: `org-h-${o.name}` }, o.name || '(no organization)', ' ', badge(o.tier || 'none'), ' ', o.status === 'active' ? badge('active', 'ok') : badge(o.status, 'warn')),
      h('h3', {}, 'Nodes'),
      table(['Node id', 'Validator', 'Certificate fingerprint', 'Certificate expires', 'Revoked'], o.nodes.map((n) => [
        mono(n.id), validators.has(n.id.toLowerCase()) ? badge('validator', 'ok') : (n.validator ? 'yes' : 'no'),
        mono(short(n.fingerprint, 18)), certCell(n.id), n.revoked ? badge('revoked', 'bad') : 'no']), `Nodes of ${o.name}`),
      h('h3', {}, 'Accounts'),
      table(['Account', 'Roles', 'Frozen'], o.accounts.map((a) => [addrLink(a.address, a.address), a.roles.join(', ') || '—', a.frozen ? badge('frozen', 'bad') : 'no']), `Accounts of ${o.name}`)));
  }
  view.append(h('h2', {}, 'Root certificates'),
    h('p', { class: 'muted' }, 'Each organization\'s CA roots in the registry; one that expires within 30 days is highlighted.'),
    table(['Organization', 'Subject', 'Valid from', 'Expires', 'Fingerprint (SHA-256)'], certs.map((c) => [badge(c.org), c.subject || '—',
      c.notBefore ? c.notBefore.slice(0, 10) : '—', expiry(c), mono(short(c.fingerprint, 18))]), 'Root certificates'));
  if (m.revokedCertificates.length) view.append(h('h2', {}, 'Revoked certificates'), table(['Fingerprint'], m.revokedCertificates.map((f) => [mono(f)])));
  view.append(h('h2', {}, 'Parameters'), table(['Name', 'Value'], Object.entries(m.parameters).map(([k, v]) => [mono(k), String(v)]), 'Chain parameters'));
}

function progress(p) {
  const pct = p.totalWeight ? Math.min(100, (100 * p.yesWeight) / p.totalWeight) : 0;
  const need = p.thresholdBps / 100;
  return h('div', { class: 'bar', role: 'img', 'aria-label': `yes ${p.yesWeight} of ${p.totalWeight}, ${need}% needed` },
    h('span', { style: { width: `${pct}%` } }), h('i', { style: { left: `${need}%` } }));
}

function statusBadge(s) {
  const kind = { executed: 'ok', passed: 'ok', open: 'warn', rejected: 'bad', expired: 'bad', failed: 'bad' }[s] || '';
  return badge(s, kind);
}

export async function governance(view, ctx) {
  const [props, hist] = await Promise.all([rpc('charter_proposals', [null, 100]), rpc('charter_history', [0, 1000])]);
  view.append(h('h1', {}, 'Governance'),
    h('h2', {}, 'Proposals'),
    table(['#', 'Action', 'Proposed by', 'Status', 'Yes / total weight', 'Threshold', 'Created', 'Expires', 'Executes at'], props.map((p) => [
      link(`#/governance/${p.id}`, String(p.id)), p.action, badge(p.org), statusBadge(p.status),
      h('div', {}, `${p.yesWeight} / ${p.totalWeight}`, progress(p)), `${p.thresholdBps / 100}%`, blockLink(p.created), String(p.expires),
      p.activatesAt ? blockLink(p.activatesAt) : '—']), 'Proposals'),
    draftForm(ctx),
    auditTrail(hist));
}

// auditTrail lists the newest entries of the governance audit trail, those
// of one organization if the user picks one.
function auditTrail(hist) {
  const orgs = [...new Set(hist.map((e) => e.org).filter(Boolean))].sort();
  const box = h('div', {});
  const pick = h('select', { id: 'audit-org' }, h('option', { value: '' }, 'every organization'), orgs.map((o) => h('option', { value: o }, o)));
  const show = () => {
    const rows = hist.filter((e) => !pick.value || e.org === pick.value).slice(-200).reverse();
    box.replaceChildren(table(['Block', 'Kind', 'Organization', 'Actor', 'Proposal', 'Detail'], rows.map((e) => [
      blockLink(e.height), e.kind, e.org || '—', addrLink(e.actor), e.proposal ? link(`#/governance/${e.proposal}`, String(e.proposal)) : '—', e.detail || '']), 'Audit trail'));
  };
  pick.addEventListener('change', show);
  show();
  return h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit trail'),
    h('p', {}, h('label', { for: 'audit-org' }, 'Show '), pick, h('span', { class: 'muted' }, ' — the newest 200 entries.')), box);
}

export async function proposal(view, ctx, id) {
  const p = await rpc('charter_proposal', [Number(id)]);
  let args = p.args;
  view.append(h('h1', {}, `Proposal ${p.id}: ${p.action}`),
    kv([
      ['Status', statusBadge(p.status)],
      ['Class', p.class],
      ['Proposed by', h('span', {}, badge(p.org), ' ', addrLink(p.proposer, p.proposer))],
      ['Memo', p.memo || '—'],
      ['Created at block', blockLink(p.created)],
      ['Expires at block', String(p.expires)],
      p.decided ? ['Decided at block', blockLink(p.decided)] : null,
      p.activatesAt ? ['Executes at block (time-lock)', blockLink(p.activatesAt)] : null,
      p.result ? ['Result', p.result] : null,
      ['Yes / no / total weight', `${p.yesWeight} / ${p.noWeight} / ${p.totalWeight}`],
      ['Threshold', h('div', {}, `${p.thresholdBps / 100}% of the active weight`, progress(p))],
      ['Quorum', `${(p.quorumBps || 0) / 100}% of the active weight must vote`],
      p.minApprovals ? ['Approvals needed', `${p.minApprovals} organizations voting yes`] : null,
      ['Time-lock', `${p.timelockBlocks || 0} blocks between passing and execution`],
    ]),
    h('h2', {}, 'Arguments'), h('pre', { class: 'cmd mono' }, JSON.stringify(args, null, 2)),
    h('h2', {}, 'Votes'),
    table(['Organization', 'Voter', 'Vote', 'Weight', 'Block'], p.votes.map((v) => [badge(v.org), addrLink(v.voter, v.voter),
      v.support ? badge('yes', 'ok') : badge('no', 'bad'), String(v.weight), blockLink(v.height)]), 'Votes'),
    // view.append is the DOM's: it would write out a null or an array.
    p.status === 'open' ? h('section', {}, h('h2', {}, 'Vote on it'),
      h('pre', { class: 'cmd' }, `charter gov vote ${p.id} yes --key orgs/ORG/admin-account.key --rpc ${location.origin}`)) : '');
}

// The actions and their flags, as `charter gov propose --help` lists them.
const ACTIONS = {
  'add-organization': ['name', 'roots', 'tier', 'weight', 'admin', 'node', 'fingerprint', 'validator', 'privacy-key'],
  'remove-organization': ['name'],
  'set-organization': ['name', 'tier', 'weight', 'status'],
  'add-node': ['org', 'id', 'fingerprint'],
  'remove-node': ['id'],
  'add-validator': ['id'],
  'remove-validator': ['id'],
  'grant-roles': ['account', 'org', 'roles'],
  'revoke-roles': ['account', 'roles'],
  'revoke-certificate': ['fingerprint'],
  'rotate-ca': ['org', 'roots'],
  freeze: ['target'],
  unfreeze: ['target'],
  'set-parameter': ['name', 'value'],
  'schedule-upgrade': ['name', 'height'],
  'set-rule': ['class', 'threshold', 'quorum', 'expiry', 'timelock', 'min-approvals'],
  'set-default-roles': ['roles'],
  'set-factory': ['target'],
  'purge-group': ['group'],
  'grant-auditor': ['group', 'org', 'from'],
  'revoke-auditor': ['group', 'org'],
  'deprecate-contract': ['name', 'version'],
};

// quote makes a value one shell word.
export function quote(v) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

// draftForm builds a proposal: the `charter gov propose` command, the
// unsigned transaction the node encodes (POST /api/console/draft: to,
// data, value, for any signer), and, when the page has an EIP-1193
// provider (a browser wallet), a button that has the wallet sign and send
// it. The page never holds a key.
function draftForm() {
  const out = h('pre', { class: 'cmd', id: 'draft-command', 'aria-live': 'polite' });
  const txOut = h('pre', { class: 'cmd mono', id: 'draft-tx', 'aria-live': 'polite' }, 'Fill in the action to see its transaction.');
  const status = h('div', { id: 'draft-status', role: 'status' });
  const fields = h('div', { class: 'full draft-fields' });
  const actionSel = h('select', { id: 'draft-action', name: 'action' }, Object.keys(ACTIONS).map((a) => h('option', { value: a }, a)));
  const memo = h('input', { id: 'draft-memo', name: 'memo', placeholder: 'why (shown to every member)' });
  const key = h('input', { id: 'draft-key', name: 'key', value: 'orgs/ORG/admin-account.key' });
  let draft = null, seq = 0, timer;
  const walletBtn = h('button', { type: 'button', id: 'draft-wallet', disabled: true, onclick: () => signWithWallet() }, 'Sign with wallet');
  const args = () => {
    const a = {};
    for (const inp of fields.querySelectorAll('input')) if (inp.value.trim()) a[inp.name] = inp.value.trim();
    return a;
  };
  const encode = async () => {
    const mine = ++seq;
    try {
      const d = await postJSON('/api/console/draft', { action: actionSel.value, args: args(), memo: memo.value.trim() });
      if (mine !== seq) return;
      if (d.problem) throw new Error(d.problem);
      draft = d;
      txOut.textContent = JSON.stringify({ to: d.to, data: d.data, value: d.value, chainId: d.chainId }, null, 2);
    } catch (err) {
      if (mine !== seq) return;
      draft = null;
      txOut.textContent = `Not yet a transaction: ${err.message}`;
    }
    walletBtn.disabled = !draft || !window.ethereum;
  };
  const update = () => {
    const parts = ['charter', 'gov', 'propose', actionSel.value];
    for (const inp of fields.querySelectorAll('input')) if (inp.value.trim()) parts.push(`--${inp.name}`, quote(inp.value.trim()));
    parts.push('--memo', quote(memo.value.trim() || 'no memo'), '--key', quote(key.value.trim()), '--rpc', location.origin);
    out.textContent = parts.join(' ');
    draft = null;
    walletBtn.disabled = true;
    clearTimeout(timer);
    timer = setTimeout(encode, 250);
  };
  const signWithWallet = async () => {
    const eth = window.ethereum;
    if (!eth || !draft) return;
    status.replaceChildren('Asking the wallet…');
    try {
      const [from] = await eth.request({ method: 'eth_requestAccounts' });
      const chainId = await eth.request({ method: 'eth_chainId' });
      if (BigInt(chainId) !== BigInt(draft.chainId)) throw new Error(`the wallet is on chain ${BigInt(chainId)}, this node's chain is ${BigInt(draft.chainId)}: switch the wallet's network`);
      const hash = await eth.request({ method: 'eth_sendTransaction', params: [{ from, to: draft.to, data: draft.data, value: draft.value }] });
      status.replaceChildren('Sent by ', mono(from), ': ', txLink(hash), '. The proposal is open once the transaction is in a block.');
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  };
  const build = () => {
    fields.replaceChildren(h('div', { class: 'draft' }, ACTIONS[actionSel.value].map((f) => [
      h('label', { for: `draft-${f}` }, `--${f}`), h('input', { id: `draft-${f}`, name: f, oninput: update })])));
    update();
  };
  actionSel.addEventListener('change', build);
  memo.addEventListener('input', update);
  key.addEventListener('input', update);
  const form = h('form', { class: 'draft', onsubmit: (e) => e.preventDefault() },
    h('label', { for: 'draft-action' }, 'Action'), actionSel, fields,
    h('label', { for: 'draft-memo' }, 'Memo'), memo, h('label', { for: 'draft-key' }, 'Admin key file'), key,
    h('div', { class: 'full' }, h('button', { type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(out.textContent).catch(() => {}) }, 'Copy the command')));
  build();
  return h('section', { 'aria-labelledby': 'draft-h' }, h('h2', { id: 'draft-h' }, 'Draft a proposal'),
    h('p', {}, 'Fill in the action; run the command on the machine that holds your organization\'s admin key, or sign the transaction below with the admin account. The console never holds a key.'),
    form, out,
    h('h3', {}, 'The unsigned transaction'),
    h('p', { class: 'muted' }, 'From your organization\'s admin account, to the governance contract; sign it with any Ethereum signer.'),
    txOut,
    window.ethereum ? h('p', {}, walletBtn, ' ', h('span', { class: 'muted' }, 'Your browser wallet signs and sends it; it must hold the admin account.'))
      : h('p', { class: 'muted' }, 'No browser wallet (EIP-1193 provider) in this page: sign it elsewhere.'),
    status);
}
