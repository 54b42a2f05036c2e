// The node's APIs as the console reads them: JSON-RPC over HTTP and
// WebSocket, the REST gateway and /api/console/, all on the origin that
// served the page, with the caller's bearer token when one was given.
const TOKEN_KEY = 'charter.console.token';
const TIMEOUT_MS = 15000;

export class AuthError extends Error {}
export class RPCError extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); }

function headers(extra = {}) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function checked(res) {
  if (res.status === 401) throw new AuthError('This node needs a credential: sign in.');
  const type = res.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await res.json() : { detail: await res.text() };
  if (!res.ok) throw new Error(body.detail || body.title || `HTTP ${res.status}`);
  return body;
}

let nextID = 0;

// rpc calls one JSON-RPC method and returns its result.
export async function rpc(method, params = []) {
  const res = await fetch('/', {
    method: 'POST', headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: ++nextID, method, params }), signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const body = await checked(res);
  if (body.error) throw new RPCError(body.error.message, body.error.code);
  return body.result;
}

// batch calls several methods in one request; each answer is its result
// or an RPCError.
export async function batch(calls) {
  if (calls.length === 0) return [];
  const first = nextID + 1;
  const reqs = calls.map(([method, params]) => ({ jsonrpc: '2.0', id: ++nextID, method, params: params || [] }));
  const res = await fetch('/', {
    method: 'POST', headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(reqs), signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const body = await checked(res);
  if (!Array.isArray(body)) throw new RPCError(body.error ? body.error.message : 'batch refused', body.error && body.error.code);
  const out = new Array(calls.length);
  for (const r of body) {
    out[r.id - first] = r.error ? new RPCError(r.error.message, r.error.code) : r.result;
  }
  return out;
}

export async function getJSON(path) {
  return checked(await fetch(path, { headers: headers(), signal: AbortSignal.timeout(TIMEOUT_MS) }));
}

export async function postJSON(path, value) {
  return checked(await fetch(path, {
    method: 'POST', headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(value), signal: AbortSignal.timeout(TIMEOUT_MS),
  }));
}

// login trades an API client's id and secret for a token at the node's
// built-in issuer (the OAuth2 client-credentials grant).
export async function login(id, secret) {
  const res = await fetch('/oauth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: 'Basic ' + btoa(`${id}:${secret}`) },
    body: 'grant_type=client_credentials', signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) throw new Error(body.error_description || body.error || `the issuer answered ${res.status}`);
  setToken(body.access_token);
}

// subscribeHeads follows newHeads over the node's WebSocket and calls
// onHead with each header; onState hears 'live', 'reconnecting' or
// 'stopped'. It reconnects a bounded number of times. The returned
// function closes it.
export function subscribeHeads(onHead, onState) {
  let ws, closed = false, tries = 0, timer;
  const MAX_TRIES = 8;
  const open = () => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const t = token();
    ws = new WebSocket(`${scheme}//${location.host}/ws${t ? '?access_token=' + encodeURIComponent(t) : ''}`);
    ws.onopen = () => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.id === 1 && msg.result) { tries = 0; onState('live'); }
      if (msg.method === 'eth_subscription' && msg.params && msg.params.result) onHead(msg.params.result);
    };
    ws.onclose = () => {
      if (closed) return;
      if (++tries > MAX_TRIES) { onState('stopped'); return; }
      onState('reconnecting');
      timer = setTimeout(open, Math.min(30000, 500 * 2 ** tries));
    };
  };
  open();
  return () => { closed = true; clearTimeout(timer); if (ws) ws.close(); };
}
