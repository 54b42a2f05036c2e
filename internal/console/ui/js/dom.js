// A small DOM builder and the formats the pages share. Text is always set
// as text (never parsed as HTML).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the page's style-src 'self'
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export const link = (href, text, attrs = {}) => h('a', { href, ...attrs }, text);
export const mono = (text) => h('span', { class: 'mono' }, text);
export const badge = (text, kind = '') => h('span', { class: `badge ${kind}` }, text);

export function short(hex, n = 10) {
  if (!hex || hex.length <= n + 6) return hex || '';
  return hex.slice(0, n) + '…' + hex.slice(-4);
}

export const num = (hex) => (hex === null || hex === undefined ? null : Number(BigInt(hex)));

// ether formats wei (a hex or decimal string) in ether, up to 6 decimals.
export function ether(wei) {
  const v = BigInt(wei || 0);
  const whole = v / 10n ** 18n;
  let frac = (v % 10n ** 18n).toString().padStart(18, '0').slice(0, 6).replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

export function ago(seconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export const when = (seconds) => new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

export function table(headers, rows, caption) {
  return h('div', { class: 'scroll' }, h('table', {},
    caption ? h('caption', { class: 'sr' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
      : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'None.')))));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export const stat = (k, v, id) => h('div', { class: 'stat', id }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v));

export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

const ADDR = /^0x[0-9a-fA-F]{40}$/;
export const isAddress = (s) => ADDR.test(s);
export const addrLink = (a, label) => (a ? link(`#/address/${a}`, label || short(a, 12), { class: 'mono', title: a }) : h('span', { class: 'muted' }, '—'));
export const txLink = (hash) => link(`#/tx/${hash}`, short(hash, 12), { class: 'mono', title: hash });
export const blockLink = (n) => link(`#/block/${n}`, String(n));

// svgCanvas is an empty W×H SVG image with its text alternative, and add,
// which appends an element of attrs (and text) to it and returns it.
function svgCanvas(W, H, cls, label) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', cls);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    svg.append(e);
    return e;
  };
  return { svg, add };
}

// chart draws up to two series as lines over their index (an SVG with a
// text alternative).
export function chart(label, a, b) {
  const W = 600, H = 140, P = 18;
  const all = [...a, ...(b || [])];
  const max = Math.max(1, ...all);
  const path = (s) => s.map((v, i) => `${i ? 'L' : 'M'}${(P + (i * (W - 2 * P)) / Math.max(1, s.length - 1)).toFixed(1)},${(H - P - (v / max) * (H - 2 * P)).toFixed(1)}`).join(' ');
  const { svg, add } = svgCanvas(W, H, 'chart', label);
  if (a.length) add('path', { d: path(a), class: 'l1' });
  if (b && b.length) add('path', { d: path(b), class: 'l2' });
  add('text', { x: P, y: 12 }, `max ${Math.round(max * 100) / 100}`);
  return svg;
}

// download offers text as a file.
export function download(name, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

// stacked draws one bar per label, stacked by series (series[i].values
// align with labels), with a legend and a text alternative: an SVG.
export function stacked(label, labels, series) {
  const W = 600, H = 180, P = 22, B = 16;
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const { svg, add } = svgCanvas(W, H, 'chart stacked', label);
  const step = (W - 2 * P) / Math.max(1, labels.length);
  const bw = Math.max(2, Math.min(40, step * 0.7));
  labels.forEach((l, i) => {
    let y = H - B;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (!v) return;
      const hh = (v / max) * (H - B - P);
      y -= hh;
      add('rect', { x: (P + i * step + (step - bw) / 2).toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: hh.toFixed(1), class: `s${k % 8}` });
    });
    if (labels.length <= 16 || i % Math.ceil(labels.length / 16) === 0) add('text', { x: (P + i * step + step / 2).toFixed(1), y: H - 3, 'text-anchor': 'middle' }, l);
  });
  add('text', { x: P, y: 12 }, `max ${max}`);
  const legend = h('ul', { class: 'legend' }, series.map((s, k) => h('li', {}, h('span', { class: `sw s${k % 8}`, 'aria-hidden': 'true' }), s.name)));
  return h('figure', { class: 'stacked-chart' }, svg, h('figcaption', {}, legend));
}
