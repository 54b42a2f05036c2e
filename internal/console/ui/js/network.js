// Network health, usage per organization and day, private groups.
import { rpc, batch, getJSON, RPCError } from './api.js';
import { h, mono, badge, short, num, table, kv, stat, chart, download, blockLink, txLink, addrLink, errorBox } from './dom.js';

const WINDOW = 120; // blocks read for the health page

export async function health(view, ctx) {
  const [hl, m] = await Promise.all([ctx.health(), ctx.members()]);
  view.append(h('h1', {}, 'Network health'),
    h('div', { class: 'grid' },
      stat('This node', `${hl.node.name || 'dev'} (${hl.node.org || 'dev'})`),
      stat('Ready', hl.ready ? 'ready' : `not ready: ${hl.reason}`, 'stat-ready'),
      stat('Head', String(hl.head)), stat('Head age', hl.headAgeSeconds === undefined ? 'no block yet' : `${Math.round(hl.headAgeSeconds)} s`),
      stat('Peers', String(hl.peers)), stat('Pool', `${hl.pending} pending, ${hl.queued} queued`)));
  const head = hl.head;
  const calls = [];
  for (let n = head; n >= 1 && n > head - WINDOW; n--) calls.push(['eth_getBlockByNumber', ['0x' + n.toString(16), false]]);
  const blocks = (await batch(calls)).filter((b) => b && !(b instanceof RPCError)).reverse();
  const last = new Map();
  for (const b of blocks) last.set(b.miner.toLowerCase(), num(b.number));
  const orgOf = new Map();
  for (const o of m.organizations) for (const n of o.nodes) orgOf.set(n.id.toLowerCase(), o.name);
  const rotating = hl.node.consensus === 'bft' || hl.node.consensus === 'poa';
  const first = blocks.length ? num(blocks[0].number) : head;
  // On a rotating engine every validator proposes about one block in
  // |validators|: one that proposed none of the last three rounds of turns
  // is missing.
  const turns = Math.max(8, 3 * m.validators.length);
  const cutoff = head - turns;
  view.append(h('h2', {}, 'Validators'),
    h('p', { class: 'muted' }, rotating
      ? `Each validator proposes in turn: one that proposed none of the last ${turns} blocks is marked missing.`
      : `${hl.node.consensus}: the leader proposes every block; the last proposer is the leader.`),
    table(['Validator', 'Organization', 'Last proposed block', 'State'], m.validators.map((v) => {
      const l = last.get(v.toLowerCase());
      let state;
      if (!rotating) state = l !== undefined && l === Math.max(...last.values()) ? badge('leader', 'ok') : badge('follower');
      else if (l !== undefined && l > cutoff) state = badge('proposing', 'ok');
      else if (blocks.length >= turns) state = badge('missing', 'bad');
      else state = badge('not seen yet');
      return [mono(v), orgOf.get(v.toLowerCase()) || '—', l !== undefined ? blockLink(l) : `none since ${first}`, state];
    }), 'Validators'));
  const txs = blocks.map((b) => b.transactions.length);
  const gaps = blocks.slice(1).map((b, i) => num(b.timestamp) - num(blocks[i].timestamp));
  const span = blocks.length > 1 ? num(blocks[blocks.length - 1].timestamp) - num(blocks[0].timestamp) : 0;
  const total = txs.reduce((a, b) => a + b, 0);
  view.append(h('h2', {}, `Throughput over the last ${blocks.length} blocks`),
    kv([['Transactions', String(total)], ['Time', `${span} s`], ['Throughput', span ? `${(total / span).toFixed(2)} tx/s` : '—'],
      ['Mean block interval', gaps.length ? `${(gaps.reduce((a, b) => a + b, 0) / gaps.length).toFixed(2)} s` : '—']]),
    chart(`Transactions per block (blue) and seconds between blocks (orange), blocks ${first} to ${head}`, txs, gaps),
    h('p', { class: 'muted' }, 'Finality latency histograms are on the node\'s metrics listener (charter_finality_latency_seconds), for Prometheus and Grafana.'));
  if (hl.metrics) live(view, ctx, hl.metrics);
}

const POLL_MS = 3000;
const POINTS = 120;

// live charts, from the node's counters read every few seconds while the
// page is open, the committed transactions per second and the mean time
// from a transaction's arrival to its final block.
function live(view, ctx, first) {
  const tps = [], lat = [];
  const now = h('p', { id: 'live-rates', 'aria-live': 'polite' }, 'Measuring…');
  const box = h('div', {});
  view.append(h('h2', {}, 'Now: throughput and finality latency'), now, box);
  let prev = first;
  const timer = setInterval(async () => {
    let m;
    try { m = (await getJSON('/api/console/health')).metrics; } catch { return; }
    const dt = m.time - prev.time;
    if (!m || dt <= 0) return;
    const rate = (m.txCommitted - prev.txCommitted) / dt;
    const dn = m.finalityCount - prev.finalityCount;
    const ms = dn > 0 ? (1000 * (m.finalitySeconds - prev.finalitySeconds)) / dn : 0;
    prev = m;
    tps.push(rate); lat.push(ms);
    if (tps.length > POINTS) { tps.shift(); lat.shift(); }
    now.textContent = `${rate.toFixed(2)} tx/s committed; mean finality ${dn > 0 ? ms.toFixed(0) + ' ms' : '— (no transactions)'} over the last ${dt.toFixed(1)} s`;
    box.replaceChildren(chart(`Committed transactions per second (blue) and mean finality latency in ms (orange), every ${POLL_MS / 1000} s`, tps, lat));
  }, POLL_MS);
  ctx.onLeave(() => clearInterval(timer));
}

const DAY = 86400;
const MAX_DAYS = 31;

export async function usage(view) {
  const today = Math.floor(Date.now() / 1000 / DAY);
  const iso = (d) => new Date(d * DAY * 1000).toISOString().slice(0, 10);
  const from = h('input', { id: 'usage-from', type: 'date', value: iso(today - 6) });
  const to = h('input', { id: 'usage-to', type: 'date', value: iso(today) });
  const out = h('div', { id: 'usage-out' });
  const run = async () => {
    out.replaceChildren(h('p', {}, 'Reading…'));
    const d0 = Math.floor(Date.parse(from.value) / 1000 / DAY), d1 = Math.floor(Date.parse(to.value) / 1000 / DAY);
    if (!(d0 <= d1) || d1 - d0 >= MAX_DAYS) { out.replaceChildren(errorBox(new Error(`Give a range of 1 to ${MAX_DAYS} days.`))); return; }
    const days = [];
    for (let d = d0; d <= d1; d++) days.push(d);
    const res = await batch(days.map((d) => ['charter_usage', [d, d]]));
    const rows = [];
    days.forEach((d, i) => {
      if (res[i] instanceof RPCError) throw res[i];
      for (const r of res[i]) rows.push({ day: iso(d), ...r });
    });
    const byOrg = new Map();
    for (const r of rows) {
      const o = byOrg.get(r.org) || { gas: 0, txs: 0, bytes: 0 };
      o.gas += r.gas; o.txs += r.txs; o.bytes += r.stateBytes;
      byOrg.set(r.org, o);
    }
    const csv = ['day,organization,nodes,transactions,gas,state_bytes,gas_share_bps',
      ...rows.map((r) => [r.day, r.org, r.nodes, r.txs, r.gas, r.stateBytes, r.gasShareBps].join(','))].join('\n') + '\n';
    const maxGas = Math.max(1, ...[...byOrg.values()].map((o) => o.gas));
    out.replaceChildren(
      h('h2', {}, `Totals ${iso(d0)} to ${iso(d1)}`),
      table(['Organization', 'Transactions', 'Gas', 'State bytes', 'Share of gas'], [...byOrg.entries()].map(([org, o]) => [badge(org), String(o.txs), String(o.gas), String(o.bytes),
        h('div', { class: 'bar', role: 'img', 'aria-label': `${org}: ${o.gas} gas` }, h('span', { style: { width: `${(100 * o.gas) / maxGas}%` } }))]), 'Usage per organization'),
      h('p', {}, h('button', { type: 'button', id: 'usage-csv', onclick: () => download(`charter-usage-${iso(d0)}-${iso(d1)}.csv`, csv) }, 'Download CSV (per organization and day)')),
      h('h2', {}, 'Per day'),
      table(['Day', 'Organization', 'Transactions', 'Gas', 'State bytes', 'Gas share'], rows.map((r) => [r.day, r.org, String(r.txs), String(r.gas), String(r.stateBytes), `${r.gasShareBps / 100}%`]), 'Usage per organization and day'));
    out.dataset.csv = csv;
  };
  view.append(h('h1', {}, 'Usage'),
    h('p', {}, 'Gas, transactions and state bytes per organization and UTC day, as the chain meters them, for cost sharing.'),
    h('form', { class: 'draft', onsubmit: (e) => { e.preventDefault(); run().catch((err) => out.replaceChildren(errorBox(err))); } },
      h('label', { for: 'usage-from' }, 'From'), from, h('label', { for: 'usage-to' }, 'To'), to,
      h('div', { class: 'full' }, h('button', { type: 'submit' }, 'Show'))), out);
  await run();
}

const TRANSFER = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';

export async function privacy(view, ctx) {
  const [hl, m] = await Promise.all([ctx.health(), ctx.members()]);
  // The caller's organization when it signed in, else the node's (an
  // open node shows what its organization sees).
  const mine = hl.caller && hl.caller.org ? hl.caller.org : hl.node.org;
  const res = await batch(m.organizations.filter((o) => o.name).map((o) => ['charter_groups', [o.name]]));
  const groups = new Map();
  for (const r of res) if (Array.isArray(r)) for (const g of r) groups.set(g.id, g);
  view.append(h('h1', {}, 'Private data'),
    h('p', {}, `Privacy groups in the registry, seen from this node of ${mine || 'dev'}. Members read their groups' private transactions here; `,
      'everyone else sees that a group exists and that markers are on the chain, nothing of the content.'));
  if (!groups.size) { view.append(h('p', { class: 'muted' }, 'No privacy groups.')); return; }
  for (const g of groups.values()) {
    const member = g.members.includes(mine);
    const card = h('section', { class: 'card group', 'data-group': g.id, 'aria-label': `Group ${g.name || g.id}` },
      h('h2', {}, g.name || short(g.id, 14), ' ', member ? badge('member', 'ok') : badge('not a member', 'warn')),
      kv([['Group id', mono(g.id)], ['Members', g.members.join(', ')], ['Creator', g.creator], ['Status', g.status], ['Created at', blockLink(g.created)],
        g.auditors.length ? ['Auditors', g.auditors.map((a) => `${a.org} from block ${a.from}`).join(', ')] : null]));
    view.append(card);
    if (!member) {
      card.append(h('p', { class: 'muted private-hidden' }, 'Your organization is not a member: this node holds none of the group\'s payloads. Only its markers (hashes) are on the shared chain.'));
      continue;
    }
    try {
      const logs = await rpc('priv_getLogs', [g.privacyGroupId, { fromBlock: '0x0', toBlock: 'latest' }]);
      card.append(h('h3', {}, `Private events (${logs.length})`),
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
