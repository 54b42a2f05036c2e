// The console's router: hash routes (#/tx/0x…), one page at a time in
// <main>; a page may register what to stop when the user leaves it.
import { AuthError, getJSON, rpc, login, setToken, token } from './api.js';
import { h, errorBox, isAddress } from './dom.js';
import * as explorer from './explorer.js';
import * as members from './members.js';
import * as network from './network.js';

const routes = [
  [/^$/, explorer.home],
  [/^block\/(\w+)$/, explorer.block],
  [/^tx\/(0x[0-9a-fA-F]{64})$/, explorer.tx],
  [/^address\/(0x[0-9a-fA-F]{40})$/, explorer.address],
  [/^search\/(.+)$/, explorer.search],
  [/^members$/, members.members],
  [/^governance$/, members.governance],
  [/^governance\/(\d+)$/, members.proposal],
  [/^network$/, network.health],
  [/^usage$/, network.usage],
  [/^privacy$/, network.privacy],
  [/^login$/, loginPage],
];

// The context pages share; members and contracts are read once per
// navigation at most.
function context() {
  const stops = [];
  let membersP, contractsP;
  return {
    stops,
    onLeave: (fn) => stops.push(fn),
    health: () => getJSON('/api/console/health'),
    members: () => (membersP ||= rpc('charter_members', [])),
    contracts: () => (contractsP ||= getJSON('/api/console/contracts')),
  };
}

let current = null;

async function render() {
  if (current) current.stops.forEach((f) => f());
  const ctx = (current = context());
  const path = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  const main = document.getElementById('main');
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').slice(2);
    if ((target === '' && path === '') || (target && path.startsWith(target))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let page = null, args = [];
  for (const [re, fn] of routes) {
    const m = re.exec(path);
    if (m) { page = fn; args = m.slice(1); break; }
  }
  const view = h('div', {});
  main.replaceChildren(view);
  if (!page) {
    view.append(h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, 'No page at this address. ', h('a', { href: '#/' }, 'Back to the explorer.')));
    return;
  }
  try {
    await page(view, ctx, ...args);
  } catch (err) {
    if (err instanceof AuthError) { location.hash = '#/login'; return; }
    view.append(errorBox(err));
  }
  if (current === ctx) {
    const h1 = view.querySelector('h1');
    if (h1 && document.activeElement !== document.getElementById('q')) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
  }
}

async function loginPage(view) {
  const status = h('p', { role: 'status' });
  const form = h('form', { class: 'draft', onsubmit: async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    status.textContent = 'Signing in…';
    try {
      if (fd.get('token')) setToken(String(fd.get('token')).trim());
      else await login(String(fd.get('id')).trim(), String(fd.get('secret')));
      await getJSON('/api/console/health');
      status.textContent = 'Signed in.';
      showWho();
      footer();
      location.hash = '#/';
    } catch (err) {
      setToken('');
      status.replaceChildren(errorBox(err));
    }
  } },
  h('label', { for: 'login-id' }, 'Client id'), h('input', { id: 'login-id', name: 'id', autocomplete: 'username' }),
  h('label', { for: 'login-secret' }, 'Client secret'), h('input', { id: 'login-secret', name: 'secret', type: 'password', autocomplete: 'current-password' }),
  h('label', { for: 'login-token' }, 'Or a bearer token'), h('input', { id: 'login-token', name: 'token', autocomplete: 'off' }),
  h('div', { class: 'full' }, h('button', { type: 'submit' }, 'Sign in')));
  view.append(h('h1', {}, 'Sign in'),
    h('p', {}, 'This node requires a credential. Give an API client of your organization (',
      h('code', {}, 'charter client add --roles read'), '), or a token from your organization\'s identity provider. ',
      'The token stays in this tab only; you see what your organization may see.'),
    form, status);
}

async function showWho() {
  const who = document.getElementById('who');
  who.replaceChildren();
  if (token()) {
    let name = '';
    try {
      const c = (await getJSON('/api/console/health')).caller;
      if (c) name = `as ${c.name} (${c.roles.join(', ')}) `;
    } catch { /* the token was refused: the page asks again */ }
    who.append(h('span', { id: 'caller' }, `Signed in ${name}`), h('button', { type: 'button', class: 'secondary', onclick: () => { setToken(''); showWho(); location.hash = '#/login'; } }, 'Sign out'));
  }
}

document.getElementById('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('q').value.trim();
  if (!q) return;
  if (isAddress(q)) location.hash = `#/address/${q}`;
  else if (/^\d+$/.test(q)) location.hash = `#/block/${q}`;
  else location.hash = `#/search/${encodeURIComponent(q)}`;
});

async function footer() {
  try {
    const hl = await getJSON('/api/console/health');
    const n = hl.node;
    document.getElementById('nodeinfo').textContent =
      `Node ${n.name || '(dev)'} of ${n.org || '(dev)'} · ${n.consensus} · ${location.host}`;
  } catch { /* the page shows the sign-in form */ }
}

async function start() {
  try {
    const site = await (await fetch('/console/config.json', { signal: AbortSignal.timeout(10000) })).json();
    if (site.authRequired && !token()) location.replace('#/login');
  } catch { /* an old node: the first read tells */ }
  window.addEventListener('hashchange', render);
  await render();
  if (!location.hash.startsWith('#/login')) {
    showWho();
    footer();
  }
}

start();
