// The explorer: latest blocks live, a block, a transaction decoded by the
// contract registry's ABIs, an account, search.
import { rpc, batch, getJSON, postJSON, subscribeHeads, RPCError } from './api.js';
import { h, link, mono, badge, short, num, ether, ago, when, table, kv, stat, errorBox, addrLink, txLink, blockLink } from './dom.js';

const SHOWN = 10;

// nodeNames maps node ids (block proposers) to "node of org".
async function nodeNames(ctx) {
  const m = await ctx.members();
  const out = new Map();
  for (const o of m.organizations) for (const n of o.nodes) out.set(n.id.toLowerCase(), { org: o.name, id: n.id, validator: n.validator });
  return out;
}

function proposerCell(names, miner) {
  const n = names.get((miner || '').toLowerCase());
  return n ? h('span', {}, mono(short(miner, 10)), ' ', badge(n.org)) : mono(short(miner, 10));
}

export async function home(view, ctx) {
  const [hl, names] = await Promise.all([ctx.health(), nodeNames(ctx)]);
  const live = h('span', { class: 'live', role: 'status', id: 'live' }, 'connecting…');
  const stats = h('div', { class: 'grid' },
    stat('Head block', String(hl.head), 'stat-head'), stat('Node', `${hl.node.name || 'dev'} (${hl.node.org || 'dev'})`),
    stat('Consensus', hl.node.consensus), stat('Peers', String(hl.peers)), stat('Pool', `${hl.pending} pending, ${hl.queued} queued`),
    stat('Ready', hl.ready ? 'yes' : `no: ${hl.reason}`));
  const blocksBody = h('tbody', {});
  const txsBody = h('tbody', {});
  view.append(h('h1', {}, 'Explorer'), stats,
    h('div', { class: 'cols' },
      h('section', { 'aria-labelledby': 'lb' }, h('h2', { id: 'lb' }, 'Latest blocks ', live),
        h('div', { class: 'scroll' }, h('table', { id: 'blocks' }, h('thead', {}, h('tr', {}, ['Block', 'Proposer', 'Txs', 'Gas used', 'Age'].map((t) => h('th', { scope: 'col' }, t)))), blocksBody))),
      h('section', { 'aria-labelledby': 'lt' }, h('h2', { id: 'lt' }, 'Latest transactions'),
        h('div', { class: 'scroll' }, h('table', { id: 'txs' }, h('thead', {}, h('tr', {}, ['Hash', 'Block', 'From', 'To'].map((t) => h('th', { scope: 'col' }, t)))), txsBody)))));
  const blocks = [];
  const show = () => {
    blocksBody.replaceChildren(...blocks.map((b) => h('tr', {}, h('td', {}, blockLink(num(b.number))), h('td', {}, proposerCell(names, b.miner)),
      h('td', {}, String(b.transactions.length)), h('td', {}, String(num(b.gasUsed))), h('td', {}, ago(num(b.timestamp))))));
    const txs = blocks.flatMap((b) => b.transactions).slice(0, SHOWN);
    txsBody.replaceChildren(...(txs.length ? txs.map((t) => h('tr', {}, h('td', {}, txLink(t.hash)), h('td', {}, blockLink(num(t.blockNumber))),
      h('td', {}, addrLink(t.from)), h('td', {}, addrLink(t.to))))
      : [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No transactions in the latest blocks.'))]));
    if (blocks.length) document.querySelector('#stat-head .v').textContent = String(num(blocks[0].number));
  };
  const head = hl.head;
  const calls = [];
  for (let n = head; n >= 0 && n > head - SHOWN; n--) calls.push(['eth_getBlockByNumber', ['0x' + n.toString(16), true]]);
  for (const b of await batch(calls)) if (b && !(b instanceof RPCError)) blocks.push(b);
  show();
  let pending = Promise.resolve();
  const stop = subscribeHeads((hd) => {
    pending = pending.then(async () => {
      const n = num(hd.number);
      if (blocks.length && n <= num(blocks[0].number)) return;
      const b = await rpc('eth_getBlockByNumber', [hd.number, true]);
      if (!b) return;
      blocks.unshift(b);
      blocks.length = Math.min(blocks.length, SHOWN);
      show();
    }).catch(() => {});
  }, (state) => { live.textContent = state === 'live' ? '● live' : state; });
  ctx.onLeave(stop);
}

export async function block(view, ctx, id) {
  const isHash = /^0x[0-9a-fA-F]{64}$/.test(id);
  const b = isHash ? await rpc('eth_getBlockByHash', [id, true]) : await rpc('eth_getBlockByNumber', ['0x' + BigInt(id).toString(16), true]);
  if (!b) { view.append(h('h1', {}, `Block ${id}`), h('p', {}, 'This node holds no such block.')); return; }
  const n = num(b.number);
  const [names, seal] = await Promise.all([nodeNames(ctx), n > 0 ? getJSON(`/api/console/block/${n}/seal`) : null]);
  const p = names.get((b.miner || '').toLowerCase());
  const sealCell = !seal ? 'the genesis' : seal.signers.length
    ? h('div', { id: 'seal' }, `round ${seal.round}, signed by ${seal.signers.length} validators: `,
      h('ul', {}, seal.signers.map((id) => {
        const s = names.get(id.toLowerCase());
        return h('li', {}, mono(id), s ? h('span', {}, ' ', badge(s.org)) : null);
      })))
    : h('span', { class: 'muted' }, `${seal.engine}: ${seal.note || 'no commit certificate'}`);
  view.append(h('h1', {}, `Block ${n}`),
    h('p', {}, n > 0 ? link(`#/block/${n - 1}`, '← previous') : null, ' ', link(`#/block/${n + 1}`, 'next →')),
    kv([
      ['Hash', mono(b.hash)],
      ['Parent', isHash || n > 0 ? link(`#/block/${b.parentHash}`, short(b.parentHash, 14), { class: 'mono' }) : mono(b.parentHash)],
      ['Time', `${when(num(b.timestamp))} (${ago(num(b.timestamp))})`],
      ['Proposer', h('span', {}, mono(b.miner), p ? h('span', {}, ' — node of ', badge(p.org)) : null)],
      ['Commit certificate', sealCell],
      ['Transactions', String(b.transactions.length)],
      ['Gas used / limit', `${num(b.gasUsed)} / ${num(b.gasLimit)}`],
      ['State root', mono(b.stateRoot)],
      ['Size', `${num(b.size)} bytes`],
    ]),
    h('h2', {}, 'Transactions'),
    table(['Hash', 'From', 'To', 'Value (ETH)'], b.transactions.map((t) => [txLink(t.hash), addrLink(t.from), addrLink(t.to), ether(t.value)]), 'Transactions of the block'));
}

function argRows(args) {
  return (args || []).map((a) => [a.name, mono(a.type), typeof a.value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(a.value) ? addrLink(a.value, a.value) : mono(JSON.stringify(a.value).replace(/^"|"$/g, ''))]);
}

export async function tx(view, ctx, hash) {
  const t = await rpc('eth_getTransactionByHash', [hash]);
  view.append(h('h1', {}, 'Transaction'), h('p', { class: 'mono' }, hash));
  if (!t) { view.append(h('p', {}, 'This node knows no such transaction.')); return; }
  if (t.blockNumber === null) { view.append(h('p', {}, badge('pending', 'warn'), ' waiting in the pool.')); return; }
  const d = await getJSON(`/api/console/tx/${hash}`);
  view.append(kv([
    ['Status', d.status === 'success' ? badge('success', 'ok') : badge('failed', 'bad')],
    d.revertReason ? ['Revert reason', h('span', { class: 'bad mono', id: 'revert' }, d.revertReason)] : null,
    d.note ? ['', h('span', { class: 'muted' }, d.note)] : null,
    ['Block', h('span', {}, blockLink(d.blockNumber), ` (index ${d.index})`)],
    ['From', addrLink(d.from, d.from)],
    ['To', d.to ? h('span', {}, addrLink(d.to, d.to), d.contract ? h('span', {}, ' ', badge(`${d.contract.name} v${d.contract.version}`)) : null) : h('span', {}, 'contract creation ', addrLink(d.contractAddress, d.contractAddress))],
    ['Value', `${ether(d.value)} ETH`],
    ['Nonce', String(d.nonce)],
    ['Gas used / limit', `${d.gasUsed} / ${d.gas}`],
    ['Method', d.method ? mono(d.method) : h('span', { class: 'muted' }, d.to && !d.contract ? 'not a registered contract: input not decoded' : '—')],
  ]));
  if (d.args && d.args.length) view.append(h('h2', {}, 'Input'), table(['Name', 'Type', 'Value'], argRows(d.args), 'Decoded input'));
  view.append(h('details', {}, h('summary', {}, 'Raw input'), h('pre', { class: 'cmd mono' }, d.input)));
  view.append(h('h2', {}, `Events (${d.events.length})`));
  const evs = h('div', { id: 'events' });
  for (const e of d.events) {
    evs.append(h('div', { class: 'card event' },
      h('p', {}, h('strong', {}, e.event ? e.event.replace(/\(.*/, '') : 'Undecoded log'), ' ',
        e.event ? mono(e.event) : null, ' from ', addrLink(e.address), e.contract ? h('span', {}, ' ', badge(e.contract.name)) : null,
        h('span', { class: 'muted' }, ` · log ${e.logIndex}`)),
      e.args ? table(['Name', 'Type', 'Value'], argRows(e.args), 'Event arguments') : h('p', { class: 'mono muted' }, e.topics.join(' '), ' ', e.data)));
  }
  view.append(evs);
}

export async function address(view, ctx, addr) {
  const [bal, nonce, code, acct] = await batch([
    ['eth_getBalance', [addr, 'latest']], ['eth_getTransactionCount', [addr, 'latest']],
    ['eth_getCode', [addr, 'latest']], ['charter_account', [addr]],
  ]);
  const contracts = await ctx.contracts();
  const reg = contracts.filter((c) => c.address.toLowerCase() === addr.toLowerCase());
  const ok = (v) => !(v instanceof RPCError);
  view.append(h('h1', {}, reg.length ? `Contract ${reg[reg.length - 1].name}` : (ok(code) && code !== '0x' ? 'Contract' : 'Account')),
    h('p', { class: 'mono' }, addr),
    kv([
      ['Balance', ok(bal) ? `${ether(bal)} ETH` : bal.message],
      ['Nonce', ok(nonce) ? String(num(nonce)) : nonce.message],
      ['Organization', ok(acct) && acct.org ? badge(acct.org) : h('span', { class: 'muted' }, 'not in the registry')],
      ['Roles', ok(acct) ? (acct.roles || []).join(', ') || h('span', { class: 'muted' }, 'none') : acct.message],
      ok(acct) && acct.effectiveRoles ? ['Effective roles', acct.effectiveRoles.join(', ') || 'none'] : null,
      ['Frozen', ok(acct) && acct.frozen ? badge('frozen', 'bad') : 'no'],
      ok(code) && code !== '0x' ? ['Code', `${(code.length - 2) / 2} bytes`] : null,
      reg.length ? ['Registered', reg.map((c) => `${c.name} v${c.version}${c.deprecated ? ' (deprecated)' : ''} by ${c.org}`).join('; ')] : null,
    ]));
  if (reg.length) await contractSection(view, reg);
  view.append(h('h2', {}, 'Transactions'));
  const hl = await ctx.health();
  if (!hl.sqlIndex) { view.append(h('p', { class: 'muted' }, 'This node keeps no SQL index: its transactions are not listed (a node started with --index keeps one; charter testnet --index for every node of a test network).')); return; }
  const a = addr.toLowerCase();
  try {
    const r = await postJSON('/api/v1/sql', { query: `SELECT hash, block_number, from_addr, to_addr, value FROM transactions WHERE from_addr = '${a}' OR to_addr = '${a}' ORDER BY block_number DESC, tx_index DESC LIMIT 50` });
    view.append(table(['Hash', 'Block', 'From', 'To', 'Value (ETH)'], r.rows.map(([hash, bn, f, t, v]) => [txLink(hash), blockLink(bn), addrLink(f), addrLink(t), ether(String(v))]), 'Transactions of the account'),
      h('p', { class: 'muted' }, 'The newest 50, from the node\'s SQL index.'));
  } catch (err) {
    view.append(errorBox(err));
  }
}

export async function search(view, ctx, q) {
  view.append(h('h1', {}, 'Search'), h('p', {}, 'Looking for ', mono(q), '…'));
  if (/^0x[0-9a-fA-F]{64}$/.test(q)) {
    const [t, b] = await batch([['eth_getTransactionByHash', [q]], ['eth_getBlockByHash', [q, false]]]);
    if (t && !(t instanceof RPCError)) { location.replace(`#/tx/${q}`); return; }
    if (b && !(b instanceof RPCError)) { location.replace(`#/block/${q}`); return; }
  } else {
    const contracts = await ctx.contracts();
    const hits = contracts.filter((c) => c.name.toLowerCase().includes(q.toLowerCase()));
    if (hits.length === 1 || hits.some((c) => c.name === q)) {
      const c = hits.filter((c) => c.name === q).pop() || hits[0];
      location.replace(`#/address/${c.address}`);
      return;
    }
    if (hits.length) {
      view.append(table(['Contract', 'Version', 'Address', 'Organization'], hits.map((c) => [c.name, String(c.version), addrLink(c.address, c.address), c.org]), 'Contracts found'));
      return;
    }
  }
  view.append(h('p', {}, 'Nothing found: give a block number, a block or transaction hash, an address or a registered contract\'s name.'));
}

// contractSection shows a registered contract's versions, its ABI, and a
// form per read-only function that calls it through the REST gateway
// (POST /api/v1/contracts/NAME/call/SIGNATURE, which uses the registry's ABI).
async function contractSection(view, reg) {
  const name = reg[reg.length - 1].name;
  const doc = await getJSON(`/api/console/contracts/${encodeURIComponent(name)}`);
  view.append(h('h2', {}, 'Versions'),
    table(['Version', 'Address', 'Registered by', 'ABI hash', 'State'], reg.map((c) => [String(c.version), addrLink(c.address, c.address), badge(c.org),
      mono(short(c.abiHash, 14)), c.deprecated ? badge('deprecated', 'warn') : 'in use']), 'Versions'));
  if (!Array.isArray(doc.abi)) return;
  view.append(h('details', {}, h('summary', {}, 'ABI'), h('pre', { class: 'cmd mono' }, JSON.stringify(doc.abi, null, 1))));
  const reads = doc.abi.filter((f) => f.type === 'function' && (f.stateMutability === 'view' || f.stateMutability === 'pure'));
  if (!reads.length) return;
  const section = h('section', { id: 'reads', 'aria-labelledby': 'reads-h' }, h('h2', { id: 'reads-h' }, 'Read'));
  reads.forEach((f, i) => {
    const sig = `${f.name}(${(f.inputs || []).map((x) => x.type).join(',')})`;
    const out = h('div', { class: 'mono', 'aria-live': 'polite' });
    const inputs = (f.inputs || []).map((x, j) => {
      const id = `read-${i}-${j}`;
      return [h('label', { for: id }, `${x.name || `arg${j}`} (${x.type})`), h('input', { id, name: String(j), autocomplete: 'off' })];
    });
    const form = h('form', { class: 'draft card', 'data-function': f.name, onsubmit: async (e) => {
      e.preventDefault();
      const args = [...form.querySelectorAll('input')].map((el) => {
        const v = el.value.trim();
        if (/^[[{]/.test(v)) { try { return JSON.parse(v); } catch { return v; } }
        return v;
      });
      out.textContent = 'Calling…';
      try {
        const r = await postJSON(`/api/v1/contracts/${encodeURIComponent(name)}/call/${encodeURIComponent(sig)}`, { args });
        out.replaceChildren(...(r.outputs.length ? r.outputs.map((o) => h('div', { class: 'result' }, `${o.name || o.type}: ${typeof o.value === 'string' ? o.value : JSON.stringify(o.value)}`)) : ['(no outputs)']));
      } catch (err) {
        out.replaceChildren(errorBox(err));
      }
    } },
    h('strong', { class: 'full mono' }, sig), inputs,
    h('div', { class: 'full' }, h('button', { type: 'submit' }, `Call ${f.name}`)), h('div', { class: 'full' }, out));
    section.append(form);
  });
  view.append(section);
}
