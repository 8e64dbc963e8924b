// The admin dashboard: rooms, members, streams and recordings of one server, refreshed by
// polling, with the operator's actions. It talks to the admin REST API (/api/v1) only, with
// the admin token the operator signs in with; see docs/operations.md.

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 2000;
const TOKEN_KEY = 'taoyao-admin-token';

let timer = null;
// The admin token, for this tab only.
const state = { token: sessionStorage.getItem(TOKEN_KEY) };

function showError(text) {
  const div = document.createElement('div');
  div.textContent = text;
  $('errors').prepend(div);
  setTimeout(() => div.remove(), 15000);
  console.warn('taoyao-admin:', text);
}

/** One API call; resolves to the JSON answer, rejects with `code: message`. */
async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`api/v1${path}`, init);
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(`${json.code ?? res.status}: ${json.message ?? res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return json;
}

// Each stream's bytes at the last refresh: a bitrate is the change between two refreshes.
const lastBytes = new Map();

/** The stream's bitrate since the previous refresh, in words ("" on the first one). */
function bitrate(stream) {
  const now = performance.now();
  const before = lastBytes.get(stream.streamId);
  lastBytes.set(stream.streamId, { bytes: stream.bytesReceived ?? 0, at: now });
  if (!before || now <= before.at) return '';
  const kbps = ((stream.bytesReceived - before.bytes) * 8) / (now - before.at);
  return `${Math.max(0, Math.round(kbps))} kbit/s`;
}

const enc = encodeURIComponent;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

/** A button that runs `action` and refreshes; errors are shown, not thrown. */
function actionButton(label, data, action) {
  const b = el('button', { type: 'button', textContent: label, ...data });
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await action();
      await refresh();
    } catch (e) {
      showError(e.message);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function renderRoom(room, status, files) {
  const id = room.roomId;
  const data = (action, extra = {}) => ({ 'data-action': action, 'data-room': id, ...extra });
  const recording = (status.recordings ?? []).length > 0;
  const head = el('h3', {}, `${room.name} `, el('small', {}, `(${id}) · ${room.architecture} · ${room.mode}` +
    (room.live ? ` · live, anchor ${room.live.anchor}, ${room.live.viewers} viewers` : '')));
  const actions = el('p', {},
    actionButton('Close room', data('close'), () => api('DELETE', `/rooms/${enc(id)}`)),
    actionButton(recording ? 'Stop recording' : 'Record', data(recording ? 'record-stop' : 'record-start'),
      () => api('POST', `/rooms/${enc(id)}/recording/${recording ? 'stop' : 'start'}`, {})));
  if (room.live) {
    actions.append(actionButton('Stop live', data('live-stop'), () => api('POST', `/rooms/${enc(id)}/live/stop`)));
  }
  const table = el('table', { className: 'admin' },
    el('tr', {}, el('th', {}, 'member'), el('th', {}, 'streams'), el('th', {}, 'actions')));
  for (const m of status.members ?? []) {
    const streams = (status.streams ?? []).filter((s) => s.clientId === m.clientId)
      .map((s) => `${s.kind}${s.paused ? ' (paused)' : ''} ${bitrate(s)}`.trim()).join(', ') || '—';
    const who = { 'data-client': m.clientId };
    // Each row's buttons say whose they are (screen readers, and the browser test's clicks).
    const named = (label, kind) => ({ ...data(kind, who), 'aria-label': `${label} ${m.clientId}` });
    const mute = (kind, muted) => () =>
      api('POST', `/rooms/${enc(id)}/members/${enc(m.clientId)}/mute`, { kind, muted });
    const row = el('tr', { 'data-member': m.clientId, 'data-room': id },
      el('td', {}, `${m.name} (${m.clientId})${m.owner ? ' · owner' : ''}`),
      el('td', {}, streams),
      el('td', {},
        actionButton('Expel', named('Expel', 'expel'), () => api('DELETE', `/rooms/${enc(id)}/members/${enc(m.clientId)}`)),
        actionButton('Mute audio', named('Mute audio', 'mute-audio'), mute('audio', true)),
        actionButton('Unmute audio', named('Unmute audio', 'unmute-audio'), mute('audio', false)),
        actionButton('Mute video', named('Mute video', 'mute-video'), mute('video', true)),
        actionButton('Unmute video', named('Unmute video', 'unmute-video'), mute('video', false))));
    table.append(row);
  }
  const list = el('ul', {});
  for (const f of files.files ?? []) {
    list.append(el('li', {}, el('a', { href: f.url, textContent: f.file }), ` ${f.bytes} bytes`));
  }
  return el('div', { className: 'room', 'data-room-id': id }, head, actions, table,
    el('h4', {}, `Recordings (${(files.files ?? []).length})`), list);
}

async function refresh() {
  try {
    const { rooms } = await api('GET', '/rooms');
    const parts = await Promise.all(rooms.map(async (r) => {
      const path = `/rooms/${enc(r.roomId)}`;
      // A room may close between the list and these: it is left out of this refresh.
      const [status, files] = await Promise.all([api('GET', path), api('GET', `${path}/recordings`)])
        .catch(() => [null, null]);
      return status && renderRoom(r, status, files);
    }));
    $('rooms').replaceChildren(...parts.filter(Boolean));
    $('room-count').textContent = String(parts.filter(Boolean).length);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    $('status').textContent = 'signed in';
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      signOut();
    }
    showError(e.message);
  }
}

function signIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('app').hidden = false;
  $('every').textContent = String(REFRESH_MS / 1000);
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut() {
  clearInterval(timer);
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('app').hidden = true;
  $('login').hidden = false;
  $('status').textContent = 'signed out';
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', signOut);
$('create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const body = { name: form.get('name') };
  if (form.get('architecture')) body.architecture = form.get('architecture');
  try {
    await api('POST', '/rooms', body);
    ev.target.reset();
    await refresh();
  } catch (e) {
    showError(e.message);
  }
});

if (state.token) signIn(state.token);
