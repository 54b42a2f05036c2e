// Network health, usage per organization and day, private groups.
import { rpc, batch, getJSON, RPCError } from './api.js';
import { h, mono, badge, short, num, table, kv, stat, chart, download, blockLink, txLink, addrLink, errorBox, ago, when, stacked } from './dom.js';

const WINDOW = 120; // blocks read for the throughput chart
const DAY_MS = 86400e3;

function expires(iso) {
  if (!iso) return '—';
  const left = Date.parse(iso) - Date.now();
  const date = iso.slice(0, 10);
  if (left < 0) return badge(`expired ${date}`, 'bad');
  if (left < 30 * DAY_MS) return badge(`expires ${date} (${Math.ceil(left / DAY_MS)} days)`, 'warn');
  return date;
}

function readiness(ready, reason) {
  return ready ? badge('ready', 'ok') : badge(`not ready: ${reason || 'no reason given'}`, 'bad');
}

export async function health(view, ctx) {
  const [hl, m, act] = await Promise.all([ctx.health(), ctx.members(), getJSON('/api/console/validators')]);
  view.append(h('h1', {}, 'Network health'),
    h('div', { class: 'grid' },
      stat('This node', `${hl.node.name || 'dev'} (${hl.node.org || 'dev'})`),
      stat('Ready', hl.ready ? 'ready' : `not ready: ${hl.reason}`, 'stat-ready'),
      stat('Head', String(hl.head)), stat('Head age', hl.headAgeSeconds === undefined ? 'no block yet' : `${Math.round(hl.headAgeSeconds)} s`),
      stat('Peers', String(hl.peers)), stat('Pool', `${hl.pending} pending, ${hl.queued} queued`)));
  const head = hl.head;
  const orgOf = new Map(), nameOf = new Map();
  for (const o of m.organizations) for (const n of o.nodes) orgOf.set(n.id.toLowerCase(), o.name);
  for (const p of hl.peerList) nameOf.set(p.id.toLowerCase(), p.name);
  if (hl.node.id) nameOf.set(hl.node.id.toLowerCase(), hl.node.name);
  view.append(validators(hl, m, act, orgOf, nameOf), nodes(hl, m));
  const calls = [];
  for (let n = head; n >= 1 && n > head - WINDOW; n--) calls.push(['eth_getBlockByNumber', ['0x' + n.toString(16), false]]);
  const blocks = (await batch(calls)).filter((b) => b && !(b instanceof RPCError)).reverse();
  const first = blocks.length ? num(blocks[0].number) : head;
  const txs = blocks.map((b) => b.transactions.length);
  const gaps = blocks.slice(1).map((b, i) => num(b.timestamp) - num(blocks[i].timestamp));
  const span = blocks.length > 1 ? num(blocks[blocks.length - 1].timestamp) - num(blocks[0].timestamp) : 0;
  const total = txs.reduce((a, b) => a + b, 0);
  view.append(h('h2', {}, `Throughput over the last ${blocks.length} blocks`),
    kv([['Transactions', String(total)], ['Time', `${span} s`], ['Throughput', span ? `${(total / span).toFixed(2)} tx/s` : '—'],
      ['Mean block interval', gaps.length ? `${(gaps.reduce((a, b) => a + b, 0) / gaps.length).toFixed(2)} s` : '—']]),
    chart(`Transactions per block (blue) and seconds between blocks (orange), blocks ${first} to ${head}`, txs, gaps));
  if (hl.metrics) await live(view, ctx, hl.metrics);
}

// validators: each validator's part in the newest blocks. On bft the
// blocks' commit certificates tell who signed, which blocks a validator
// missed and which of its rounds to propose passed; one that signed none
// of the last blocks (and proposed none) is missing. Other engines keep no
// certificate: the proposers tell.
function validators(hl, m, act, orgOf, nameOf) {
  const stats = new Map(act.validators.map((v) => [v.id.toLowerCase(), v]));
  const ids = [...new Set([...m.validators, ...act.validators.filter((v) => v.current).map((v) => v.id)].map((v) => v.toLowerCase()))];
  const blocks = act.to >= act.from ? act.to - act.from + 1 : 0;
  const rotating = hl.node.consensus === 'bft' || hl.node.consensus === 'poa';
  // A live validator signs (or proposes, in turn) within a few blocks: one
  // that did neither in the last max(8, 3 × validators) is missing.
  const recent = Math.max(8, 3 * ids.length);
  const cutoff = act.to - recent;
  const lastProposed = Math.max(0, ...act.validators.map((v) => v.lastProposed || 0));
  const rows = ids.map((id) => {
    const v = stats.get(id) || { id, proposed: 0, signed: 0, missedBlocks: 0, missedRounds: 0, lastProposed: null, lastSigned: null };
    const seen = Math.max(v.lastSigned || 0, v.lastProposed || 0);
    let state;
    if (!rotating && !act.certificates) state = v.lastProposed && v.lastProposed === lastProposed ? badge('leader', 'ok') : badge('follower');
    else if (seen > cutoff) state = badge(act.certificates ? 'signing' : 'proposing', 'ok');
    else if (blocks >= recent) state = badge('missing', 'bad');
    else state = badge('not seen yet');
    const name = nameOf.get(id);
    return [h('span', {}, mono(short(id, 12)), name ? ` ${name}` : ''), orgOf.get(id) || '—', v.lastSigned ? blockLink(v.lastSigned) : '—',
      v.lastProposed ? blockLink(v.lastProposed) : '—', act.certificates ? `${v.signed} / ${blocks}` : '—',
      act.certificates ? String(v.missedBlocks) : '—', act.certificates ? String(v.missedRounds) : '—', state];
  });
  return h('section', { id: 'validators', 'aria-labelledby': 'validators-h' }, h('h2', { id: 'validators-h' }, 'Validators'),
    h('p', { class: 'muted' }, blocks ? `Blocks ${act.from} to ${act.to}. ` : 'No block yet. ', act.certificates
      ? 'From the commit certificates: a certificate holds a quorum of signatures, so a slow validator misses some blocks; a missed round is one the validator was to propose and that passed without a decision.'
      : `${hl.node.consensus}: its blocks carry no commit certificate; the proposers tell who takes part.`),
    table(['Validator', 'Organization', 'Last signed', 'Last proposed', 'Signed', 'Missed blocks', 'Missed rounds', 'State'], rows, 'Validators'));
}

// nodes: this node and its peers, each with the readiness it reported
// (its /readyz) over its link to this node, its head and its certificate's
// expiry; then the registry's other nodes, which this node is not
// connected to (every node dials every other: one missing here is down or
// cut off from this node).
function nodes(hl, m) {
  const self = [h('span', {}, hl.node.name || 'dev', ' ', badge('this node')), hl.node.org || '—', location.host, readiness(hl.ready, hl.reason),
    String(hl.head), expires(hl.node.certExpires), '—'];
  const rows = [self, ...hl.peerList.map((p) => [h('span', { title: p.id }, p.name || short(p.id, 12)), p.org || '—', mono(p.addr),
    !p.status ? badge('no report yet') : p.status.ageSeconds > 20 ? badge(`no report for ${Math.round(p.status.ageSeconds)} s`, 'warn') : readiness(p.status.ready, p.status.reason),
    p.status ? `${p.status.head} (${Math.round(p.status.ageSeconds)} s ago)` : '—',
    expires(p.certExpires), `${p.outbound ? 'dialed' : 'accepted'} ${ago(Date.parse(p.since) / 1000)}`])];
  const known = new Set([hl.node.id, ...hl.peerList.map((p) => p.id)].filter(Boolean).map((id) => id.toLowerCase()));
  let away = 0;
  if (hl.node.id) {
    for (const o of m.organizations) for (const n of o.nodes) {
      if (n.revoked || known.has(n.id.toLowerCase())) continue;
      away++;
      rows.push([h('span', { title: n.id }, mono(short(n.id, 12))), o.name, '—', badge('not connected to this node', 'bad'), '—', '—', '—']);
    }
  }
  return h('section', { id: 'peers', 'aria-labelledby': 'peers-h' },
    h('h2', { id: 'peers-h' }, `Nodes: this one, ${hl.peerList.length} peers${away ? `, ${away} not connected` : ''}`),
    h('p', { class: 'muted' }, 'Each peer reports its readiness (what its /readyz answers) and its head to this node over their mTLS link every few seconds; the registry\'s other nodes are not connected to this one.'),
    table(['Node', 'Organization', 'Address', 'Ready (/readyz)', 'Head', 'Certificate expires', 'Connected'], rows, 'Nodes'));
}

const POLL_MS = 3000;
const POINTS = 1200; // an hour of the node's samples and the page's

// rates turns two counter readings into committed transactions per second
// and the mean finality latency in ms (0 without transactions).
function rates(prev, m) {
  const dt = m.time - prev.time;
  if (dt <= 0) return null;
  const dn = m.finalityCount - prev.finalityCount;
  return { dt, dn, tps: (m.txCommitted - prev.txCommitted) / dt, ms: dn > 0 ? (1000 * (m.finalitySeconds - prev.finalitySeconds)) / dn : 0 };
}

// live charts the node's counters: the last hour the node kept (a reading
// every 10 s), then a reading every few seconds while the page is open.
async function live(view, ctx, first) {
  const tps = [], lat = [];
  let hist = [];
  try { hist = await getJSON('/api/console/history'); } catch { /* an older node: from now on */ }
  for (let i = 1; i < hist.length; i++) {
    const r = rates(hist[i - 1], hist[i]);
    if (r) { tps.push(r.tps); lat.push(r.ms); }
  }
  const now = h('p', { id: 'live-rates', 'aria-live': 'polite' }, 'Measuring…');
  const box = h('div', { id: 'live-chart' });
  const since = hist.length ? `since ${when(hist[0].time)}` : 'since the page opened';
  const draw = () => box.replaceChildren(chart(`Committed transactions per second (blue) and mean finality latency in ms (orange), ${since}; ${tps.length} readings`, tps, lat));
  if (tps.length) draw();
  view.append(h('h2', {}, 'Throughput and finality latency, the last hour'), now, box);
  let prev = hist.length && hist[hist.length - 1].time < first.time ? hist[hist.length - 1] : first;
  const timer = setInterval(async () => {
    let m;
    try { m = (await getJSON('/api/console/health')).metrics; } catch { return; }
    if (!m) return;
    const r = rates(prev, m);
    if (!r) return;
    prev = m;
    tps.push(r.tps); lat.push(r.ms);
    if (tps.length > POINTS) { tps.shift(); lat.shift(); }
    now.textContent = `${r.tps.toFixed(2)} tx/s committed; mean finality ${r.dn > 0 ? r.ms.toFixed(0) + ' ms' : '— (no transactions)'} over the last ${r.dt.toFixed(1)} s`;
    draw();
  }, POLL_MS);
  ctx.onLeave(() => clearInterval(timer));
}

const DAY = 86400;
const MAX_DAYS = 92; // the node's bound (console.MaxUsageDays)
const MEASURES = { gas: 'Gas', txs: 'Transactions', stateBytes: 'State bytes' };

// usage: per organization and UTC day, what the chain metered, from one
// read of the node (/api/console/usage/FROM/TO), as a stacked chart per
// day, tables and a CSV.
export async function usage(view) {
  const today = Math.floor(Date.now() / 1000 / DAY);
  const iso = (d) => new Date(d * DAY * 1000).toISOString().slice(0, 10);
  const from = h('input', { id: 'usage-from', type: 'date', value: iso(today - 6) });
  const to = h('input', { id: 'usage-to', type: 'date', value: iso(today) });
  const measure = h('select', { id: 'usage-measure' }, Object.entries(MEASURES).map(([k, v]) => h('option', { value: k }, v)));
  const out = h('div', { id: 'usage-out' });
  let shown = null;
  const draw = () => {
    if (!shown) return;
    const { u, days } = shown;
    const k = measure.value;
    const series = u.orgs.map((o) => ({ name: o || '(no organization)', values: days.map((d) => {
      const r = u.rows.find((x) => x.date === d && x.org === o);
      return r ? r[k] : 0;
    }) }));
    document.getElementById('usage-chart').replaceChildren(stacked(`${MEASURES[k]} per day and organization, ${u.from} to ${u.to}`, days.map((d) => d.slice(5)), series));
  };
  const run = async () => {
    out.replaceChildren(h('p', {}, 'Reading…'));
    const d0 = Math.floor(Date.parse(from.value) / 1000 / DAY), d1 = Math.floor(Date.parse(to.value) / 1000 / DAY);
    if (!(d0 <= d1) || d1 - d0 >= MAX_DAYS) { out.replaceChildren(errorBox(new Error(`Give a range of 1 to ${MAX_DAYS} days.`))); return; }
    const u = await getJSON(`/api/console/usage/${iso(d0)}/${iso(d1)}`);
    const days = [];
    for (let d = d0; d <= d1; d++) days.push(iso(d));
    const byOrg = new Map(u.orgs.map((o) => [o, { gas: 0, txs: 0, bytes: 0 }]));
    for (const r of u.rows) {
      const o = byOrg.get(r.org) || { gas: 0, txs: 0, bytes: 0 };
      o.gas += r.gas; o.txs += r.txs; o.bytes += r.stateBytes;
      byOrg.set(r.org, o);
    }
    const csv = ['day,organization,nodes,transactions,gas,state_bytes,gas_share_bps',
      ...u.rows.map((r) => [r.date, r.org, r.nodes, r.txs, r.gas, r.stateBytes, r.gasShareBps].join(','))].join('\n') + '\n';
    const maxGas = Math.max(1, ...[...byOrg.values()].map((o) => o.gas));
    out.replaceChildren(
      h('h2', {}, `Per day, ${u.from} to ${u.to}`),
      h('p', {}, h('label', { for: 'usage-measure' }, 'Chart '), measure),
      h('div', { id: 'usage-chart' }),
      h('p', {}, h('button', { type: 'button', id: 'usage-csv', onclick: () => download(`charter-usage-${u.from}-${u.to}.csv`, csv) }, 'Download CSV (per organization and day)')),
      h('h2', {}, 'Totals'),
      table(['Organization', 'Transactions', 'Gas', 'State bytes', 'Share of gas'], [...byOrg.entries()].map(([org, o]) => [badge(org || '(no organization)'), String(o.txs), String(o.gas), String(o.bytes),
        h('div', { class: 'bar', role: 'img', 'aria-label': `${org}: ${o.gas} gas` }, h('span', { style: { width: `${(100 * o.gas) / maxGas}%` } }))]), 'Usage per organization'),
      h('h2', {}, 'Per day and organization'),
      table(['Day', 'Organization', 'Transactions', 'Gas', 'State bytes', 'Gas share of the day'], u.rows.map((r) => [r.date, r.org || '(no organization)', String(r.txs), String(r.gas), String(r.stateBytes), `${r.gasShareBps / 100}%`]), 'Usage per organization and day'));
    out.dataset.csv = csv;
    shown = { u, days };
    draw();
  };
  measure.addEventListener('change', draw);
  view.append(h('h1', {}, 'Usage'),
    h('p', {}, 'Gas, transactions and state bytes per organization and UTC day, as the chain meters them, for cost sharing.'),
    h('form', { class: 'draft', onsubmit: (e) => { e.preventDefault(); run().catch((err) => out.replaceChildren(errorBox(err))); } },
      h('label', { for: 'usage-from' }, 'From'), from, h('label', { for: 'usage-to' }, 'To'), to,
      h('div', { class: 'full' }, h('button', { type: 'submit' }, 'Show'))), out);
  await run();
}

const TRANSFER = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';

// privacy: the registry's privacy groups as this organization sees them.
// A member reads its groups' private events; an organization granted as
// auditor of a group reads what was disclosed to it, the payloads from
// the granted height on; every other organization sees that the group
// exists and nothing of its content (its node holds none).
export async function privacy(view, ctx) {
  const [hl, m] = await Promise.all([ctx.health(), ctx.members()]);
  // The caller's organization when it signed in, else the node's (an
  // open node shows what its organization sees).
  const mine = hl.caller && hl.caller.org ? hl.caller.org : hl.node.org;
  const res = await batch(m.organizations.filter((o) => o.name).map((o) => ['charter_groups', [o.name]]));
  const groups = new Map();
  for (const r of res) if (Array.isArray(r)) for (const g of r) groups.set(g.id, g);
  const audited = [...groups.values()].filter((g) => !g.members.includes(mine) && g.auditors.some((a) => a.org === mine));
  view.append(h('h1', {}, 'Private data'),
    h('p', {}, `Privacy groups in the registry, seen from this node of ${mine || 'dev'}. Members read their groups' private transactions here; `,
      'an auditor reads what was disclosed to it, from the block of its grant; ',
      'everyone else sees that a group exists and that markers are on the chain, nothing of the content.'),
    audited.length ? h('p', { id: 'audited', class: 'muted' }, `Disclosed to ${mine} as auditor: ${audited.map((g) => g.name || short(g.id, 14)).join(', ')}.`) : null);
  if (!groups.size) { view.append(h('p', { class: 'muted' }, 'No privacy groups.')); return; }
  for (const g of groups.values()) {
    const member = g.members.includes(mine);
    const grant = member ? null : g.auditors.find((a) => a.org === mine);
    const card = h('section', { class: `card group${grant ? ' audited' : ''}`, 'data-group': g.id, 'aria-label': `Group ${g.name || g.id}` },
      h('h2', {}, g.name || short(g.id, 14), ' ', member ? badge('member', 'ok') : grant ? badge(`auditor from block ${grant.from}`, 'warn') : badge('not a member', 'warn')),
      kv([['Group id', mono(g.id)], ['Members', g.members.join(', ')], ['Creator', g.creator], ['Status', g.status], ['Created at', blockLink(g.created)],
        g.auditors.length ? ['Auditors', g.auditors.map((a) => `${a.org} from block ${a.from}`).join(', ')] : null]));
    view.append(card);
    if (!member && !grant) {
      card.append(h('p', { class: 'muted private-hidden' }, 'Your organization is not a member: this node holds none of the group\'s payloads. Only its markers (hashes) are on the shared chain.'));
      continue;
    }
    try {
      const fromBlock = grant ? '0x' + grant.from.toString(16) : '0x0';
      const logs = await rpc('priv_getLogs', [g.privacyGroupId, { fromBlock, toBlock: 'latest' }]);
      card.append(h('h3', {}, grant ? `Disclosed private events from block ${grant.from} (${logs.length})` : `Private events (${logs.length})`),
        table(['Block', 'Transaction', 'Contract', 'Event', 'Detail'], logs.slice(-50).reverse().map((l) => {
          const isTransfer = l.topics[0] === TRANSFER && l.topics.length === 3;
          return [blockLink(num(l.blockNumber)), txLink(l.transactionHash), addrLink(l.address), isTransfer ? 'Transfer' : short(l.topics[0] || '', 12),
            isTransfer ? h('span', {}, addrLink('0x' + l.topics[1].slice(26)), ' → ', addrLink('0x' + l.topics[2].slice(26)), ` ${BigInt(l.data)}`) : mono(short(l.data, 20))];
        }), 'Private events'));
    } catch (err) {
      card.append(errorBox(err));
    }
  }
}
