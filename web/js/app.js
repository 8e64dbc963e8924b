// The taoyao web client's page logic. Everything that talks to the server lives in ./sdk/;
// every word shown comes from ./i18n.js.
//
// A person opens the page, sees the pre-join screen (camera preview, microphone level,
// device pickers, name, room; client id, server and login under "Advanced") and presses Join.
// An invite link is `?room=<roomId>`: it fills in the room.
//
// Deep links (tests, kiosks): ?clientId=alice&name=Alice&username=taoyao&password=taoyao&room=standup
//   [&roomPassword=..][&architecture=mesh][&mode=broadcast][&call=bob][&autoAnswer=1]
//   [&live=anchor[&autoAccept=1] | &live=viewer[&cohost=ask]][&record=3000]
// connect (and enter the room / call the client) at once; &live=anchor goes live after entering
// (accepting every co-host request with autoAccept), &live=viewer watches without a camera
// (and asks to co-host with cohost=ask); &record=MS records ourselves for MS milliseconds
// after entering (on the server in sfu/mcu rooms, in this page in mesh rooms) and then lists
// the room's recordings. &report=<clientId> also sends a summary of the connections'
// getStats() to that client every second (client::unicast), for remote diagnostics; the
// end-to-end tests read media health from it (or from window.taoyaoReport()).

import { SignalClient, Room, Call, defaultServerUrl, localMedia } from './sdk/index.js';
import { t, translate, setLanguage, language } from './i18n.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const store = globalThis.localStorage;

const state = {
  signal: null,
  server: null,
  room: null,
  call: null,
  ringing: null,
  local: null,
  micOff: false,
  camOff: false,
  layout: 'grid',
  pinned: null,
  speaker: null,
  page: 0,
  unread: 0,
  chatOpen: false,
  lastJoin: null,
  quality: new Map(), // clientId -> {lost, received}
};

/** Things to draw again when the language changes. */
const redraws = new Set();
const redraw = (fn) => { redraws.add(fn); fn(); return fn; };

// ---- messages ------------------------------------------------------------------------------

/** A toast: `kind` info (neutral, goes away) or error (red, stays longer). */
function toast(text, kind = 'info') {
  const div = document.createElement('div');
  div.className = `toast ${kind}`;
  div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  div.textContent = text;
  $('toasts').prepend(div);
  while ($('toasts').children.length > 4) $('toasts').lastChild.remove();
  setTimeout(() => div.remove(), kind === 'error' ? 12000 : 5000);
  if (kind === 'error') console.warn('taoyao:', text);
}

/** A failed request or any error in plain words (the protocol's codes mapped to sentences). */
function explain(err) {
  const code = err?.code;
  const reason = err?.reason ?? err?.message ?? String(err);
  if (!code) return String(err?.message ?? err);
  if (code === '2000' && /cannot connect/.test(reason)) return t('err_2000_connect');
  if (code === '2000' && /closed|not connected/.test(reason)) return t('err_2000_closed');
  if (code === '3403' && /password/.test(reason)) return t('err_3403_password');
  if (code === '3403' && /full/.test(reason)) return t('err_3403_full');
  if (code === '3403' && /owner/.test(reason)) return t('err_3403_owner');
  const key = `err_${code}`;
  const s = t(key, { reason });
  return s === key ? t('err_other', { reason }) : s;
}

function showError(err) {
  toast(explain(err), 'error');
}

let statusKey = ['status_offline', {}];
function setStatus(key, vars = {}) {
  statusKey = [key, vars];
  $('status').textContent = t(key, vars);
}
redraws.add(() => setStatus(...statusKey));

/** The reconnecting banner over the room; `rejoin` shows the Rejoin button (gave up). */
function banner(text, { rejoin = false } = {}) {
  $('banner').hidden = !text;
  $('banner-text').textContent = text ?? '';
  $('rejoin').hidden = !rejoin;
}

/** The shared dialog: a question, optionally a password field; resolves with the field's
 * value (or true) on OK and null on Cancel. */
function ask({ text, error, field, ok = t('ok'), cancel = t('cancel') }) {
  const d = $('dialog');
  $('dialog-text').textContent = text;
  $('dialog-error').hidden = !error;
  $('dialog-error').textContent = error ?? '';
  $('dialog-field').hidden = !field;
  $('dialog-label').textContent = field ?? '';
  $('dialog-input').value = '';
  $('dialog-ok').textContent = ok;
  $('dialog-cancel').textContent = cancel;
  d.returnValue = '';
  d.showModal();
  if (field) $('dialog-input').focus();
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      if (d.returnValue !== 'ok') resolve(null);
      else resolve(field ? $('dialog-input').value : true);
    }, { once: true });
  });
}

/** Sets an icon button's spoken label (and tooltip) and whether it shows "off". */
function setControl(button, key, off) {
  button.setAttribute('aria-label', t(key));
  button.title = t(key);
  button.dataset.i18nAria = key;
  button.classList.toggle('off', !!off);
  button.setAttribute('aria-pressed', off ? 'true' : 'false');
}

/** Appends a small button to `parent` that runs `action` (a promise) and shows its error. */
function smallButton(parent, label, action, aria) {
  const b = document.createElement('button');
  b.className = 'small';
  b.textContent = label;
  if (aria) b.setAttribute('aria-label', aria);
  b.onclick = () => action().catch(showError);
  parent.append(b);
  return b;
}

const nameOf = (id) => (id === state.signal?.clientId ? t('you') : state.room?.members.get(id)?.name ?? id);

// ---- devices -------------------------------------------------------------------------------

const DEVICE_KEYS = { audioinput: 'taoyao.mic', videoinput: 'taoyao.camera', audiooutput: 'taoyao.speaker' };
const SELECTS = { audioinput: 'mic-select', videoinput: 'camera-select', audiooutput: 'speaker-select' };

function constraint(kind) {
  const id = store?.getItem(DEVICE_KEYS[kind]);
  return id ? { deviceId: { ideal: id } } : true;
}

async function ensureLocalMedia() {
  if (!state.local) {
    state.local = await localMedia({ audio: constraint('audioinput'), video: constraint('videoinput') });
    if (!state.local) toast(t('listenOnly'));
    else startMeter(state.local);
    await fillDevices();
  }
  return state.local;
}

/** Fills the camera / microphone / speaker pickers (labels need the permission we have now). */
async function fillDevices() {
  let devices = [];
  try { devices = await navigator.mediaDevices.enumerateDevices(); } catch (_) { /* none */ }
  for (const [kind, id] of Object.entries(SELECTS)) {
    const sel = $(id);
    const list = devices.filter((d) => d.kind === kind);
    const inUse = state.local?.getTracks().find((tr) => `${tr.kind}input` === kind)?.getSettings().deviceId;
    const chosen = inUse ?? store?.getItem(DEVICE_KEYS[kind]) ?? '';
    sel.replaceChildren(...(list.length ? list : [{ deviceId: '', label: '' }]).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || (d.deviceId ? `${t(kind === 'videoinput' ? 'camera' : kind === 'audioinput' ? 'microphone' : 'speaker')} ${i + 1}` : t('systemDefault'));
      return o;
    }));
    if ([...sel.options].some((o) => o.value === chosen)) sel.value = chosen;
  }
}

/** Uses another camera or microphone: in the room too (replaceTrack, no renegotiation). */
async function useDevice(kind, deviceId) {
  store?.setItem(DEVICE_KEYS[kind], deviceId);
  if (kind === 'audiooutput') {
    for (const el of document.querySelectorAll('video, audio')) applySink(el);
    return;
  }
  if (!state.local) return;
  const media = kind === 'videoinput' ? 'video' : 'audio';
  const stream = await navigator.mediaDevices.getUserMedia({ [media]: { deviceId: { exact: deviceId } } });
  const track = stream.getTracks()[0];
  if (state.room?.replaceTrack && state.room.localStream) await state.room.replaceTrack(track);
  else {
    for (const old of state.local.getTracks()) if (old.kind === track.kind) { state.local.removeTrack(old); old.stop(); }
    state.local.addTrack(track);
  }
  if (media === 'audio') startMeter(state.local);
  showPreview();
}

/** The microphone level: the pre-join meter, and the speaking ring on our own tile. */
let meterStop = null;
function startMeter(stream) {
  meterStop?.();
  const track = stream.getAudioTracks()[0];
  if (!track || !globalThis.AudioContext) return;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    const level = track.enabled ? Math.min(100, Math.round((peak / 128) * 300)) : 0;
    $('mic-meter').style.width = `${level}%`;
    $('mic-meter').parentElement.setAttribute('aria-valuenow', String(level));
    tileEl('local')?.classList.toggle('speaking', level > 15);
  }, 100);
  meterStop = () => { clearInterval(timer); ctx.close().catch(() => {}); };
}

function showPreview() {
  const v = $('preview');
  if (v.srcObject !== state.local) v.srcObject = state.local;
  v.play?.().catch(() => {});
  $('preview-off').hidden = !!state.local?.getVideoTracks().length;
}

// ---- tiles ---------------------------------------------------------------------------------

/** Small icons (inline SVG: no icon font, no emoji font needed). */
const SLASH = '<path d="M3 3l18 18" stroke="currentColor" stroke-width="2.2"/>';
const ICONS = {
  micOff: `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z"/>${SLASH}</svg>`,
  cameraOff: `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z"/>${SLASH}</svg>`,
  hand: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2a1.5 1.5 0 0 1 1.5 1.5V11h1V4.5a1.5 1.5 0 0 1 3 0V11h1V7.5a1.5 1.5 0 0 1 3 0V15a7 7 0 0 1-7 7h-1a7 7 0 0 1-6.3-4L3 13.5a1.5 1.5 0 0 1 2.6-1.5L8 14.5V4.5a1.5 1.5 0 0 1 3 0V11h0V3.5A1.5 1.5 0 0 1 12 2z"/></svg>',
  pin: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 3l5 5-1.5 1.5-1.5-.5-3.5 3.5.5 4-1.5 1.5-4-4L5 20l-1-1 5-4.5-4-4L6.5 9l4 .5L14 6l-.5-1.5L16 3z"/></svg>',
};

const tileEl = (id) => document.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);

function tile(id, label, { muted = false } = {}) {
  let el = tileEl(id);
  if (!el) {
    el = document.createElement('div');
    el.className = 'tile';
    el.dataset.id = id;
    el.innerHTML = `<video autoplay playsinline></video>
      <div class="placeholder"><span class="initial"></span></div>
      <div class="label"><span class="name"></span>
        <span class="icons"><span class="icon-mic" role="img" hidden>${ICONS.micOff}</span><span class="icon-cam" role="img" hidden>${ICONS.cameraOff}</span><span class="icon-hand" role="img" hidden>${ICONS.hand}</span></span>
        <span class="state"></span>
        <button class="small pin">${ICONS.pin}</button><button class="small rec" hidden></button></div>`;
    el.querySelector('video').muted = muted;
    el.querySelector('.pin').onclick = () => { state.pinned = state.pinned === id ? null : id; layoutTiles(); };
    $('tiles').append(el);
  }
  el.dataset.name = label;
  el.querySelector('.name').textContent = label;
  el.querySelector('.initial').textContent = [...label.trim()][0]?.toUpperCase() ?? '?';
  el.querySelector('.icon-mic').setAttribute('aria-label', t('micOff'));
  el.querySelector('.icon-cam').setAttribute('aria-label', t('cameraOff'));
  el.querySelector('.icon-hand').setAttribute('aria-label', t('handUp'));
  el.querySelector('.pin').setAttribute('aria-label', t('pin', { name: label }));
  el.querySelector('.pin').title = t('pin', { name: label });
  layoutTiles();
  return el;
}

function setTileState(id, text) {
  const el = tileEl(id);
  if (el) el.querySelector('.state').textContent = text;
}

/** Shows a member's microphone / camera as off (icons, and the name instead of the video). */
function setTileMedia(id, { mic, camera }) {
  const el = tileEl(id);
  if (!el) return;
  if (mic !== undefined) {
    el.dataset.mic = mic ? 'on' : 'off';
    el.querySelector('.icon-mic').hidden = mic;
  }
  if (camera !== undefined) {
    el.dataset.camera = camera ? 'on' : 'off';
    el.querySelector('.icon-cam').hidden = camera;
    el.classList.toggle('cam-off', !camera);
  }
}

function setTileHand(id, raised) {
  const el = tileEl(id);
  if (el) el.querySelector('.icon-hand').hidden = !raised;
}

/**
 * Plays `el` on the chosen speaker. setSinkId can be refused while the element is still
 * starting (Chromium aborts it under load): try again a few times, and once more when it
 * starts playing.
 */
function applySink(el, tries = 4) {
  const sink = store?.getItem(DEVICE_KEYS.audiooutput);
  if (!sink || !el.setSinkId || el.sinkId === sink) return;
  el.setSinkId(sink).catch(() => {
    if (tries > 1) setTimeout(() => applySink(el, tries - 1), 300);
  });
  if (!el.dataset.sinkWatch) {
    el.dataset.sinkWatch = '1';
    el.addEventListener('playing', () => applySink(el));
  }
}

function removeTile(id) {
  tileEl(id)?.remove();
  if (state.pinned === id) state.pinned = null;
  layoutTiles();
}

function attach(id, stream) {
  const v = tileEl(id)?.querySelector('video');
  if (v && v.srcObject !== stream) {
    v.srcObject = stream;
    applySink(v);
    v.play().catch(() => {});
  }
  // A member without a camera track shows its name.
  const hasVideo = () => stream.getVideoTracks().some((tr) => tr.readyState === 'live');
  tileEl(id)?.classList.toggle('no-video', !hasVideo());
  stream.onaddtrack = () => tileEl(id)?.classList.toggle('no-video', !hasVideo());
}

function showLocal() {
  if (!state.local) return;
  const name = state.signal.login.name ?? state.signal.clientId;
  tile('local', t('youName', { name }), { muted: true });
  attach('local', state.local);
  setTileMedia('local', { mic: !state.micOff, camera: !state.camOff });
}

/** Grid (paged past one screen) or speaker view (the pinned tile, else the one speaking, else
 * a presenter, big; the others in a strip). */
function layoutTiles() {
  const tiles = [...document.querySelectorAll('.tile')];
  // As many 4:3 tiles (at least 16rem wide) as fit on one screen below the bars.
  const box = $('tiles').getBoundingClientRect();
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  const cols = Math.max(1, Math.floor((box.width + 0.8 * rem) / (16.8 * rem)));
  const tileHeight = ((box.width - (cols - 1) * 0.8 * rem) / cols) * 0.75 + 0.8 * rem;
  const rows = Math.max(1, Math.floor((innerHeight - Math.max(0, box.top + scrollY) - 4.5 * rem) / tileHeight));
  const perPage = Math.max(2, cols * rows);
  const ids = tiles.map((el) => el.dataset.id);
  let focus = null;
  const screen = ids.find((i) => i.startsWith('screen:'));
  if (state.layout === 'speaker' || state.pinned || screen) {
    focus = [state.pinned, screen, state.speaker, ...tiles.filter((el) => el.classList.contains('presenter')).map((el) => el.dataset.id), ids.find((i) => i !== 'local'), ids[0]]
      .find((i) => i && ids.includes(i));
  }
  $('tiles').classList.toggle('speaker-view', !!focus);
  const rest = tiles.filter((el) => el.dataset.id !== focus);
  const pages = Math.max(1, Math.ceil(rest.length / (focus ? perPage - 1 : perPage)));
  state.page = Math.min(state.page, pages - 1);
  const size = focus ? perPage - 1 : perPage;
  for (const el of tiles) el.classList.toggle('focus', el.dataset.id === focus);
  rest.forEach((el, i) => { el.hidden = Math.floor(i / size) !== state.page; });
  if (focus) tileEl(focus).hidden = false;
  $('pager').hidden = pages < 2;
  $('page-text').textContent = t('pageOf', { page: state.page + 1, pages });
}

/** Every second in a room: speaking rings and a connection word per member, from getStats. */
async function watchTiles() {
  const room = state.room;
  if (!room) return;
  let stats = {};
  try { stats = await room.stats(); } catch (_) { return; }
  for (const [id, s] of Object.entries(stats)) {
    if (!tileEl(id)) continue;
    const prev = state.quality.get(id) ?? { lost: 0, received: 0 };
    const lost = (s.video?.packetsLost ?? 0) + (s.audio?.packetsLost ?? 0);
    const received = (s.video?.packetsReceived ?? 0) + (s.audio?.packetsReceived ?? 0);
    state.quality.set(id, { lost, received });
    const dl = Math.max(0, lost - prev.lost);
    const dr = Math.max(0, received - prev.received);
    const loss = dl + dr ? dl / (dl + dr) : 0;
    const rtt = s.rttMs ?? 0;
    let word;
    if (['failed', 'disconnected', 'closed'].some((x) => String(s.connectionState).startsWith(x))) word = 'quality_lost';
    else if (!String(s.connectionState).startsWith('connected')) word = 'quality_connecting';
    else if (loss > 0.08 || rtt > 600 || dr === 0) word = 'quality_poor';
    else if (loss > 0.02 || rtt > 300) word = 'quality_fair';
    else word = 'quality_good';
    const el = tileEl(id);
    el.dataset.quality = word.replace('quality_', '');
    setTileState(id, t(word));
    // mcu rooms mix the audio (no per-member level here): media::audio::volume tells the speaker.
    if (!room.capabilities.mix) el.classList.toggle('speaking', (s.audio?.audioLevel ?? 0) > 0.02);
  }
}

// ---- connection ----------------------------------------------------------------------------

function loginFromForm() {
  const f = $('join-form').elements;
  return {
    login: { clientId: f.clientId.value.trim(), name: f.name.value.trim() || undefined, clientType: 'WEB', username: f.username.value || undefined, password: f.password.value || undefined },
    server: f.server.value.trim(),
  };
}

const sameLogin = (a, b) => ['clientId', 'name', 'username', 'password'].every((k) => a[k] === b[k]);

async function connect(login, server) {
  setStatus('status_connecting');
  if (state.signal) {
    const old = state.signal;
    state.signal = null;
    await old.close().catch(() => {});
  }
  const signal = new SignalClient(server, login);
  // Only the current connection may change the page (an old one's late events are ignored).
  const mine = (fn) => (e) => { if (signal === state.signal) fn(e); };
  signal.addEventListener('closed', mine(() => setStatus('status_reconnecting')));
  signal.addEventListener('reconnecting', mine(({ detail }) => {
    setStatus('status_reconnecting');
    banner(t('reconnecting', { attempt: detail.attempt }));
  }));
  signal.addEventListener('reconnected', mine(() => {
    banner(null);
    setStatus('status_connected', { name: signal.login.name ?? signal.clientId });
    toast(t('reconnected'));
    refreshLists();
  }));
  signal.addEventListener('failed', mine(({ detail }) => {
    setStatus('status_offline');
    banner(t('reconnectFailed', { reason: detail.reason }), { rejoin: true });
  }));
  signal.addEventListener('error', mine((e) => showError(e.detail)));
  signal.on('client::close', (b) => signal === state.signal && toast(t('serverClosing', { reason: b.reason })));
  // The online list follows presence (signal.presence: everyone with `all`, the rooms' members
  // with `rooms`) and the members of our rooms coming and going; a burst is one refresh.
  for (const s of ['client::online', 'client::offline', 'room::enter', 'room::leave']) signal.on(s, () => refreshClientsSoon());
  signal.on('room::invite', (b) => {
    toast(t('invitedTo', { from: b.from, room: b.name }));
    if (!state.room) $('room-name').value = b.roomId;
  });
  signal.on('session::call', (b) => onIncomingCall(b));
  await signal.connect();
  state.signal = signal;
  state.server = server;
  setStatus('status_connected', { name: login.name ?? signal.clientId });
  $('online-panel').hidden = false;
  showLobby();
  await refreshLists();
  return signal;
}

/** Rejoin after reconnection gave up: a new connection, and the room we were in. */
async function rejoin() {
  banner(null);
  const last = state.lastJoin;
  const old = state.signal;
  if (state.room) await state.room.leave().catch(() => {});
  await connect(old.login, state.server);
  if (last) await enterRoom(last);
}

async function refreshLists() {
  await Promise.all([refreshClients(), refreshRooms()]);
}

let clientsTimer = null;
/** Refreshes the online list once, a moment after the first of a burst of changes. */
function refreshClientsSoon() {
  if (clientsTimer) return;
  clientsTimer = setTimeout(() => { clientsTimer = null; refreshClients(); }, 500);
}

async function refreshClients() {
  if (!state.signal?.registered) return;
  try {
    const { clients } = await state.signal.request('client::list');
    $('clients').replaceChildren(...clients.map((c) => {
      const li = document.createElement('li');
      const span = document.createElement('span');
      span.textContent = c.clientId === state.signal.clientId ? t('youName', { name: c.name }) : c.name;
      li.append(span);
      if (c.clientId !== state.signal.clientId) smallButton(li, t('callShort'), () => startCall(c.clientId), t('call', { name: c.name }));
      return li;
    }));
  } catch (err) { console.warn('taoyao: client list', err?.message); }
}

async function refreshRooms() {
  if (!state.signal?.registered) return;
  try {
    const { rooms } = await state.signal.request('room::list');
    $('rooms-empty').hidden = rooms.length > 0;
    $('rooms').replaceChildren(...rooms.map((r) => {
      const li = document.createElement('li');
      const span = document.createElement('span');
      span.textContent = `${t('roomLine', { name: r.name, members: r.memberCount })}${r.hasPassword ? ` (${t('locked')})` : ''}`;
      li.append(span);
      smallButton(li, t('join'), () => enterWithPassword({ roomId: r.roomId, name: r.name, hasPassword: r.hasPassword && r.owner !== state.signal.clientId }), t('enterRoom', { room: r.name }));
      return li;
    }));
  } catch (err) { console.warn('taoyao: room list', err?.message); }
}

// The room list keeps itself fresh while it is shown (rooms come and go without a signal).
setInterval(() => { if (!$('rooms-panel').hidden) refreshRooms(); }, 3000);

// ---- pre-join and lobby --------------------------------------------------------------------

function showLobby() {
  $('prejoin').hidden = false;
  $('rooms-panel').hidden = !state.signal;
  $('disconnect').hidden = !state.signal;
  $('join-form').append($('devices'));
  $('devices-panel').hidden = true;
  showPreview();
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return `web-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function fillJoinForm() {
  const f = $('join-form').elements;
  f.name.value = params.get('name') ?? store?.getItem('taoyao.name') ?? '';
  // Generated once and kept, so a reload is the same client.
  let id = store?.getItem('taoyao.clientId');
  if (!id) { id = randomId(); store?.setItem('taoyao.clientId', id); }
  f.clientId.value = params.get('clientId') ?? id;
  f.server.value = params.get('server') ?? defaultServerUrl();
  if (params.get('username')) f.username.value = params.get('username');
  if (params.get('password')) f.password.value = params.get('password');
  f.room.value = params.get('room') ?? '';
  f.roomPassword.value = params.get('roomPassword') ?? '';
  if (params.get('architecture')) f.architecture.value = params.get('architecture');
  if (params.get('mode')) f.mode.value = params.get('mode');
}

/** The Join button: connect (again, if the login changed), find the room by id or name
 * (entering a room made with Create by its name, not making a second one), enter it. */
async function join() {
  const { login, server } = loginFromForm();
  const f = $('join-form').elements;
  store?.setItem('taoyao.name', f.name.value.trim());
  store?.setItem('taoyao.clientId', login.clientId);
  if (!state.signal?.registered || !sameLogin(state.signal.login, login) || state.server !== server) {
    await connect(login, server);
  }
  await joinByName({ name: f.room.value.trim(), password: f.roomPassword.value, architecture: f.architecture.value, mode: f.mode.value });
}

async function joinByName({ name, password, architecture, mode }) {
  const { rooms } = await state.signal.request('room::list');
  const found = rooms.find((r) => r.roomId === name) ?? rooms.find((r) => r.name === name);
  if (!found) return enterRoom({ roomId: name, password, architecture, mode });
  return enterWithPassword({ roomId: found.roomId, name: found.name, hasPassword: found.hasPassword && found.owner !== state.signal.clientId, password });
}

/** Enters a room, asking for its password when it has one we were not given, and again
 * when the one given is wrong. */
async function enterWithPassword({ roomId, name, hasPassword, password, architecture, mode }) {
  const askPassword = (error) => ask({ text: t('roomPasswordAsk', { room: name ?? roomId }), error, field: t('roomPassword'), ok: t('enter') });
  if (hasPassword && !password) {
    password = await askPassword();
    if (password === null) return null;
  }
  for (;;) {
    try {
      return await enterRoom({ roomId, password, architecture, mode });
    } catch (err) {
      if (err?.code !== '3403' || !/password/.test(err.reason ?? '')) throw err;
      password = await askPassword(t('wrongRoomPassword'));
      if (password === null) return null;
    }
  }
}

// ---- rooms ---------------------------------------------------------------------------------

async function enterRoom({ roomId, password, architecture, mode, watch = false }) {
  if (state.room) await state.room.leave().catch(() => {});
  // Watching (a live's viewer) needs no camera or microphone.
  const local = watch ? null : await ensureLocalMedia();
  // A new room starts with the microphone and camera on (nothing carried over).
  state.micOff = false;
  state.camOff = false;
  for (const tr of local?.getTracks() ?? []) tr.enabled = true;
  const room = await Room.enter(state.signal, { roomId, password: password || undefined, architecture: architecture || undefined, mode: mode || undefined }, local);
  state.room = room;
  state.lastJoin = { roomId, password, architecture, mode, watch };
  state.speaker = null;
  state.pinned = null;
  document.body.classList.add('in-room');
  $('prejoin').hidden = true;
  $('rooms-panel').hidden = true;
  $('disconnect').hidden = true;
  $('room-bar').hidden = false;
  $('controls').hidden = false;
  $('devices-panel').append($('devices'));
  $('devices-panel').hidden = false;
  $('room-title').textContent = room.name;
  $('room-arch').textContent = room.architecture;
  $('close-room').hidden = room.owner !== state.signal.clientId;
  history.replaceState(null, '', inviteLink(room, params.get('clientId') ? location.search : null));
  if (room.localStream) showLocal();
  // Everyone gets a tile in a meeting; in broadcast mode and lives only those who send media.
  const tilesForAll = () => room.stage.mode !== 'broadcast' && !room.stage.live;
  const memberTiles = () => { if (tilesForAll()) for (const m of room.members.values()) tile(m.clientId, m.name); };
  memberTiles();
  room.addEventListener('member-joined', ({ detail }) => {
    if (tilesForAll()) tile(detail.member.clientId, detail.member.name);
    toast(t('memberJoined', { name: detail.member.name }));
    // A newcomer cannot know that our microphone or camera is off, or our hand up: tell it.
    const me = state.signal.clientId;
    if (state.micOff || state.camOff || room.chat.hands.has(me) || state.screen) room.chat.tellState({ mic: !state.micOff, camera: !state.camOff }).catch(() => {});
  });
  room.addEventListener('member-left', ({ detail }) => {
    const name = tileEl(detail.clientId)?.dataset.name ?? detail.clientId;
    removeTile(detail.clientId);
    removeTile(`screen:${detail.clientId}`);
    room.chat.forget(detail.clientId);
    state.quality.delete(detail.clientId);
    if (detail.reason === 'left') toast(t('memberLeft', { name }));
  });
  room.addEventListener('reentered', () => {
    // Back after a reconnect: tiles for who is there now, streams come again as tracks.
    for (const el of document.querySelectorAll('.tile')) {
      const id = el.dataset.id;
      if (id !== 'local' && !id.startsWith('call:') && !room.members.has(id)) removeTile(id);
    }
    memberTiles();
    if (room.localStream) showLocal();
    applyMic();
    if (state.micOff) room.setEnabled('audio', false).catch(() => {});
    if (state.camOff) room.setEnabled('video', false).catch(() => {});
  });
  stageUi(room);
  membersUi(room);
  recordingUi(room);
  chatUi(room);
  const onTrack = (detail) => {
    if (detail.clientId === 'mix') {
      // mcu rooms: everyone's voice, mixed by the server, in one track.
      let a = document.getElementById('mix-audio');
      if (!a) {
        a = document.createElement('audio');
        a.id = 'mix-audio';
        a.autoplay = true;
        document.body.append(a);
      }
      a.srcObject = detail.stream;
      applySink(a);
      a.play().catch(() => {});
      return;
    }
    const name = room.members.get(detail.clientId)?.name ?? detail.clientId;
    if (detail.screen) {
      // mesh: a shared screen comes in a stream of its own.
      tile(`screen:${detail.clientId}`, t('screenOf', { name })).classList.add('screen');
      attach(`screen:${detail.clientId}`, detail.stream);
      return;
    }
    tile(detail.clientId, name);
    attach(detail.clientId, detail.stream);
    screenFromStream(detail.clientId, detail.stream);
  };
  // sfu/mcu: a member's shared screen is its second video track (the camera came first).
  const screenFromStream = (clientId, stream) => {
    const videos = stream.getVideoTracks().filter((tr) => tr.readyState === 'live').sort((x, y) => x.id.localeCompare(y.id, 'en', { numeric: true }));
    const id = `screen:${clientId}`;
    if (videos.length < 2 || !room.chat.screens.has(clientId)) return;
    const track = videos.at(-1);
    const el = tile(id, t('screenOf', { name: room.members.get(clientId)?.name ?? clientId }));
    el.classList.add('screen');
    if (el.dataset.track !== track.id) {
      el.dataset.track = track.id;
      attach(id, new MediaStream([track]));
    }
  };
  room.chat.addEventListener('screen', ({ detail }) => {
    if (detail.clientId === state.signal.clientId) return;
    if (!detail.on) removeTile(`screen:${detail.clientId}`);
    else if (room.streams?.get(detail.clientId)) screenFromStream(detail.clientId, room.streams.get(detail.clientId));
  });
  room.addEventListener('track', ({ detail }) => onTrack(detail));
  // Tracks that arrived while we entered (the server's first offer comes with the answer).
  for (const [clientId, stream] of room.streams ?? []) onTrack({ clientId, stream });
  room.addEventListener('volume', ({ detail }) => {
    // mcu: the active speaker's tile (ours is 'local') gets the ring.
    const me = state.signal.clientId;
    for (const el of document.querySelectorAll('.tile')) {
      const id = el.dataset.id === 'local' ? me : el.dataset.id;
      el.classList.toggle('speaking', id === detail.speaker);
    }
    if (detail.speaker && detail.speaker !== me && state.speaker !== detail.speaker) {
      state.speaker = detail.speaker;
      if (state.layout === 'speaker') layoutTiles();
    }
  });
  room.addEventListener('media-state', ({ detail }) => {
    const on = detail.action === 'resume' || detail.action === 'publish';
    if (detail.kind === 'audio' || !detail.kind) setTileMedia(detail.clientId, { mic: on });
    if (detail.kind === 'video' || !detail.kind) setTileMedia(detail.clientId, { camera: on });
  });
  room.addEventListener('error', ({ detail }) => showError(detail));
  const watcher = setInterval(watchTiles, 1000);
  room.addEventListener('closed', ({ detail }) => {
    clearInterval(watcher);
    if (state.screen) {
      for (const tr of state.screen.getTracks()) tr.stop();
      state.screen = null;
    }
    $('stage-bar').hidden = true;
    $('cohost-requests').hidden = true;
    $('cohost-invite').hidden = true;
    $('chat-panel').hidden = true;
    $('controls').hidden = !state.call;
    if (detail.reason !== 'left') toast(t('roomClosed', { reason: detail.reason }), 'error');
    for (const el of [...document.querySelectorAll('.tile')]) if (!el.dataset.id.startsWith('call:') && (el.dataset.id !== 'local' || !state.call)) removeTile(el.dataset.id);
    $('room-bar').hidden = true;
    // Files recorded here (mesh) stay offered; the server's list belongs to the room.
    if (!room.recording.localFiles.length) $('recordings-panel').hidden = true;
    if (state.room === room) state.room = null;
    if (!state.room) {
      document.body.classList.remove('in-room');
      $('sidebar').classList.remove('open');
      showLobby();
    }
    // Back in the lobby nobody tells us who comes and goes (with signal.presence = rooms):
    // the lists are read again now.
    refreshLists();
  });
  applyMic();
  toast(t('enteredRoom', { room: room.name }));
  return room;
}

/** The link that brings someone into this room (the pre-join screen, room filled in). */
function inviteLink(room, keep) {
  if (keep) return `${location.pathname}${keep}`;
  return `${location.origin}${location.pathname}?room=${encodeURIComponent(room.roomId)}`;
}

/** Our microphone is live unless muted by us, or in intercom while someone else holds the
 * floor (the server also gates it in sfu/mcu rooms). Leaving intercom turns it back on. */
function applyMic() {
  const room = state.room;
  const stage = room?.stage;
  const intercom = stage && stage.mode === 'intercom' && !stage.live;
  const live = !state.micOff && (!intercom || stage.holdsFloor());
  for (const tr of room?.localStream?.getAudioTracks() ?? []) tr.enabled = live;
  setControl($('toggle-mic'), state.micOff ? 'unmuteMic' : 'muteMic', state.micOff);
  setControl($('toggle-cam'), state.camOff ? 'startCamera' : 'stopCamera', state.camOff);
  setTileMedia('local', { mic: !state.micOff, camera: !state.camOff });
}

async function toggleMedia(kind) {
  const room = state.room;
  if (!room) return;
  if (kind === 'audio') state.micOff = !state.micOff;
  else state.camOff = !state.camOff;
  const on = kind === 'audio' ? !state.micOff : !state.camOff;
  applyMic();
  await room.setEnabled(kind, on);
  applyMic();
  await room.chat.tellState({ mic: !state.micOff, camera: !state.camOff }).catch(() => {});
}

/** Shares the screen (getDisplayMedia) as a second video with its own tile, or stops; the
 * browser's own "Stop sharing" ends the track, which stops it here too. */
async function toggleScreen() {
  const room = state.room;
  if (!room) return;
  if (state.screen) {
    await stopScreen();
    return;
  }
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = stream.getVideoTracks()[0];
  track.addEventListener('ended', () => { if (state.screen === stream) stopScreen().catch(showError); });
  state.screen = stream;
  setControl($('toggle-screen'), 'stopSharing', true);
  tile('screen:local', t('yourScreen'), { muted: true }).classList.add('screen');
  attach('screen:local', stream);
  await room.shareScreen(stream);
  await room.chat.tellScreen(true);
}

async function stopScreen() {
  const stream = state.screen;
  const room = state.room;
  state.screen = null;
  setControl($('toggle-screen'), 'shareScreen', false);
  removeTile('screen:local');
  for (const tr of stream?.getTracks() ?? []) tr.stop();
  if (!room) return;
  await room.stopScreen();
  await room.chat.tellScreen(false);
}

function toggle(button, kind, target, keys) {
  const on = button.dataset.off === '1';
  button.dataset.off = on ? '0' : '1';
  button.dataset.i18n = on ? keys[0] : keys[1];
  button.textContent = t(button.dataset.i18n);
  return target.setEnabled(kind, on).catch(showError);
}

// ---- chat and hands --------------------------------------------------------------------------

function chatUi(room) {
  const chat = room.chat;
  const me = state.signal.clientId;
  $('chat-log').replaceChildren();
  state.unread = 0;
  const badge = () => {
    $('unread').hidden = !state.unread;
    $('unread').textContent = String(state.unread);
    setControl($('toggle-chat'), 'openChat');
    if (state.unread) $('toggle-chat').setAttribute('aria-label', `${t('openChat')} (${state.unread})`);
  };
  const fmt = new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' });
  chat.addEventListener('message', ({ detail: m }) => {
    const li = document.createElement('li');
    li.className = m.mine ? 'mine' : '';
    const who = document.createElement('strong');
    who.textContent = m.mine ? t('you') : m.name;
    const time = document.createElement('time');
    time.dateTime = new Date(m.at).toISOString();
    time.textContent = fmt.format(new Date(m.at));
    const p = document.createElement('p');
    p.textContent = m.text;
    li.append(who, ' ', time, p);
    $('chat-log').append(li);
    li.scrollIntoView({ block: 'nearest' });
    if (!m.mine && !state.chatOpen) {
      state.unread += 1;
      toast(t('newMessage', { name: m.name, text: m.text.slice(0, 80) }));
    }
    badge();
  });
  chat.addEventListener('hand', ({ detail }) => {
    setTileHand(detail.clientId === me ? 'local' : detail.clientId, detail.raised);
    if (detail.clientId === me) setControl($('toggle-hand'), detail.raised ? 'lowerHand' : 'raiseHand', detail.raised);
    else if (detail.raised) toast(t('handRaised', { name: nameOf(detail.clientId) }));
  });
  chat.addEventListener('member-state', ({ detail }) => setTileMedia(detail.clientId, detail));
  setControl($('toggle-hand'), 'raiseHand', false);
  setControl($('toggle-screen'), 'shareScreen', false);
  openChat(false);
  badge();
}

function openChat(open) {
  state.chatOpen = open;
  $('chat-panel').hidden = !open;
  $('toggle-chat').classList.toggle('active', open);
  if (open) {
    state.unread = 0;
    $('unread').hidden = true;
    setControl($('toggle-chat'), 'openChat');
    $('sidebar').classList.add('open');
    $('chat-input').focus();
  }
}

// ---- 1:1 calls -----------------------------------------------------------------------------

function callUi(call) {
  state.call = call;
  $('call-bar').hidden = false;
  const remote = call.remoteId;
  $('call-title').textContent = t('callWith', { name: remote });
  showLocal();
  const id = `call:${remote}`;
  tile(id, remote);
  call.addEventListener('track', ({ detail }) => attach(id, detail.stream));
  call.addEventListener('state', ({ detail }) => setTileState(id, t(detail.state === 'connected' ? 'quality_good' : detail.state === 'failed' ? 'quality_lost' : 'quality_connecting')));
  call.addEventListener('remote-pause', ({ detail }) => setTileMedia(id, detail.type === 'audio' ? { mic: false } : { camera: false }));
  call.addEventListener('remote-resume', ({ detail }) => setTileMedia(id, detail.type === 'audio' ? { mic: true } : { camera: true }));
  call.addEventListener('closed', ({ detail }) => {
    removeTile(id);
    if (!state.room) removeTile('local');
    $('call-bar').hidden = true;
    if (state.call === call) state.call = null;
    if (detail.reason !== 'hung up') toast(t('callEnded', { reason: detail.reason }));
  });
}

async function startCall(clientId) {
  if (state.call) throw new Error(t('alreadyInCall'));
  const local = await ensureLocalMedia();
  callUi(await Call.dial(state.signal, clientId, local));
}

function onIncomingCall(body) {
  const call = Call.incoming(state.signal, body);
  if (state.call) {
    call.hangUp().catch(() => {});
    return;
  }
  state.ringing = call;
  call.addEventListener('closed', () => { if (state.ringing === call) { state.ringing = null; $('incoming').hidden = true; } });
  if (params.get('autoAnswer') === '1') {
    answer().catch(showError);
    return;
  }
  $('incoming-text').textContent = t('callingYou', { name: body.name ?? body.clientId });
  $('incoming').hidden = false;
}

async function answer() {
  const call = state.ringing;
  if (!call) return;
  state.ringing = null;
  $('incoming').hidden = true;
  callUi(call);
  await call.accept(await ensureLocalMedia());
  showLocal();
}

// ---- modes and live ------------------------------------------------------------------------

function stageUi(room) {
  const stage = room.stage;
  const me = state.signal.clientId;
  const caps = room.capabilities;
  $('stage-bar').hidden = false;
  const render = () => {
    const owner = room.owner === me;
    $('mode-label').hidden = !owner;
    $('room-mode').textContent = stage.live ? t('modeLive') : t(`mode${stage.mode[0].toUpperCase()}${stage.mode.slice(1)}`);
    $('mode-select').value = stage.mode;
    const intercom = stage.mode === 'intercom' && !stage.live;
    $('ptt').hidden = !intercom || !room.localStream;
    $('toggle-screen').hidden = !stage.mayPublish || !navigator.mediaDevices?.getDisplayMedia;
    $('floor').hidden = !intercom;
    const f = stage.floor ?? {};
    $('floor').textContent = f.holder
      ? `${t('floorHolder', { name: nameOf(f.holder) })}${f.queue?.length ? ` (${t('floorNext', { names: f.queue.map(nameOf).join(', ') })})` : ''}`
      : t('floorFree');
    applyMic();
    const live = stage.live;
    $('live-badge').hidden = !live;
    if (live) $('live-badge').textContent = t('liveBadge', { paused: live.paused ? t('livePausedTag') : '', anchor: nameOf(live.anchor), viewers: live.viewers ?? 0 });
    const anchor = live?.anchor === me;
    const cohost = (live?.cohosts ?? []).includes(me);
    $('live-start').hidden = !owner || !caps.live || !!live;
    $('live-stop').hidden = !anchor;
    $('cohost-ask').hidden = !live || anchor || cohost;
    $('cohost-leave').hidden = !cohost;
    $('cohost-requests').hidden = !anchor || !$('cohost-requests').children.length;
    // Presenter view: presenters' tiles are large in broadcast mode, the anchor's in a live.
    const big = live ? [live.anchor, ...(live.cohosts ?? [])] : stage.mode === 'broadcast' ? stage.presenters : [];
    for (const el of document.querySelectorAll('.tile')) {
      const id = el.dataset.id === 'local' ? me : el.dataset.id;
      el.classList.toggle('presenter', big.includes(id));
    }
    layoutTiles();
  };
  redraw(render);
  for (const ev of ['mode', 'floor', 'live', 'cohost']) stage.addEventListener(ev, render);
  stage.addEventListener('live-stopped', ({ detail }) => toast(t('liveEnded', { reason: detail.reason })));
  stage.addEventListener('live-paused', ({ detail }) => toast(t('livePaused', { reason: detail.reason })));
  stage.addEventListener('cohost', ({ detail }) => {
    if (detail.action === 'request' && stage.live?.anchor === me) {
      // &autoAccept=1 (tests, unattended anchors) takes every request on stage.
      if (params.get('autoAccept')) stage.cohost('accept', detail.clientId).catch(showError);
      else addCohostRequest(stage, detail.clientId, render);
    }
    if (detail.action === 'invite' && detail.clientId === me) $('cohost-invite').hidden = false;
    if (detail.action === 'decline' && detail.clientId === me) toast(t('anchorDeclined'));
  });
  // On (or off) stage: start (or stop) sending (mesh: on every member's connection).
  stage.addEventListener('may-publish', async ({ detail }) => {
    try {
      if (detail.mayPublish) {
        await room.publish(await ensureLocalMedia());
        showLocal();
      } else {
        await room.unpublishLocal();
        removeTile('local');
      }
    } catch (err) { showError(err); }
    render();
  });
  stage.addEventListener('republish', async () => {
    try {
      await room.unpublishLocal();
      await room.publish(await ensureLocalMedia());
    } catch (err) { showError(err); }
  });
  $('mode-select').onchange = (e) => stage.setMode(e.target.value).catch(showError);
  const talk = async (on) => {
    $('ptt').classList.toggle('talking', on);
    await (on ? stage.requestFloor() : stage.releaseFloor()).catch(showError);
  };
  $('ptt').onpointerdown = () => talk(true);
  $('ptt').onpointerup = () => talk(false);
  $('ptt').onpointerleave = () => $('ptt').classList.contains('talking') && talk(false);
  $('live-start').onclick = () => stage.startLive().then(render).catch(showError);
  $('live-stop').onclick = () => stage.stopLive().catch(showError);
  $('cohost-ask').onclick = () => stage.cohost('request').then(() => toast(t('askedAnchor'))).catch(showError);
  $('cohost-leave').onclick = () => stage.cohost('end', me).catch(showError);
  $('invite-accept').onclick = () => { $('cohost-invite').hidden = true; stage.cohost('accept').catch(showError); };
  $('invite-decline').onclick = () => { $('cohost-invite').hidden = true; stage.cohost('decline').catch(showError); };
  room.addEventListener('closed', () => redraws.delete(render));
}

/**
 * The room's members, with what each may do now, and the owner's actions on them: name or
 * remove presenters (broadcast mode), and as a live's anchor invite a viewer on stage or end a
 * co-host.
 */
function membersUi(room) {
  const stage = room.stage;
  const me = state.signal.clientId;
  $('members-panel').hidden = false;
  const render = () => {
    const live = stage.live;
    const owner = room.owner === me;
    const anchor = live?.anchor === me;
    const ids = [me, ...room.members.keys()];
    $('members').replaceChildren(...ids.map((id) => {
      const li = document.createElement('li');
      li.dataset.id = id;
      const name = nameOf(id);
      const roles = [];
      if (id === room.owner) roles.push(t('owner'));
      if (live?.anchor === id && id !== room.owner) roles.push(t('anchor'));
      if ((live?.cohosts ?? []).includes(id)) roles.push(t('cohost'));
      if (!live && stage.mode === 'broadcast' && stage.presenters.includes(id)) roles.push(t('presenter'));
      if (stage.floor?.holder === id) roles.push(t('talking'));
      if (room.chat?.hands.has(id)) roles.push(t('handUp'));
      const span = document.createElement('span');
      span.textContent = `${name}${roles.length ? ` (${roles.join(', ')})` : ''} `;
      li.append(span);
      const action = (key, fn) => smallButton(li, t(key), () => fn().finally(render), `${t(key)}: ${name}`);
      if (id === me) return li;
      if (owner && !live && stage.mode === 'broadcast') {
        if (stage.presenters.includes(id)) action('stopPresenting', () => stage.presenter(id, 'remove'));
        else action('makePresenter', () => stage.presenter(id, 'add'));
      }
      if (anchor && (live.cohosts ?? []).includes(id)) action('endCohost', () => stage.cohost('end', id));
      else if (anchor) action('inviteOnStage', () => stage.cohost('invite', id));
      return li;
    }));
  };
  redraw(render);
  for (const ev of ['mode', 'floor', 'live', 'cohost']) stage.addEventListener(ev, render);
  for (const ev of ['member-joined', 'member-left', 'reentered']) room.addEventListener(ev, render);
  room.chat.addEventListener('hand', render);
  room.addEventListener('closed', () => { $('members-panel').hidden = true; redraws.delete(render); });
}

function addCohostRequest(stage, clientId, render) {
  const li = document.createElement('li');
  li.textContent = `${t('asksCohost', { name: nameOf(clientId) })} `;
  for (const [action, key] of [['accept', 'accept'], ['decline', 'decline']]) {
    smallButton(li, t(key), () => { li.remove(); return stage.cohost(action, clientId).finally(render); });
  }
  $('cohost-requests').append(li);
  render();
}

// ---- recording -----------------------------------------------------------------------------

function recordingUi(room) {
  const rec = room.recording;
  const me = state.signal.clientId;
  const owner = room.owner === me;
  $('record-room').hidden = !owner;
  $('record-mix').hidden = !owner || !room.capabilities.mix;
  $('record-me').hidden = !room.localStream;
  $('recordings-panel').hidden = false;
  const render = () => {
    const active = [...rec.active.keys()];
    const shown = rec.mix ? [...active.map(nameOf), t('theMix')] : active.map(nameOf);
    $('rec-badge').hidden = !shown.length;
    $('rec-badge').textContent = t('recBadge', { names: shown.join(', ') });
    $('record-mix').textContent = t(rec.mix ? 'stopRecordMix' : 'recordMix');
    $('record-me').textContent = t(rec.isRecording(me) ? 'stopRecordMe' : 'recordMe');
    $('record-room').textContent = t(active.length ? 'stopRecording' : 'recordRoom');
    for (const el of document.querySelectorAll('.tile')) {
      const id = el.dataset.id === 'local' ? me : el.dataset.id;
      if (id.startsWith('call:')) continue;
      el.classList.toggle('recording', rec.isRecording(id));
      // The owner may record any member from its tile.
      const b = el.querySelector('button.rec');
      if (!b) continue;
      b.hidden = !owner || el.dataset.id === 'local';
      b.textContent = t(rec.isRecording(id) ? 'stopRec' : 'rec');
      b.onclick = () => (rec.isRecording(id) ? rec.stop(id) : rec.start(id)).catch(showError);
    }
  };
  redraw(render);
  rec.addEventListener('state', render);
  room.addEventListener('member-joined', render);
  room.addEventListener('track', render);
  rec.addEventListener('stopped', ({ detail }) => {
    if (detail.error) toast(t('recordingStopped', { who: detail.mix ? t('theMix') : nameOf(detail.clientId), reason: detail.error }), 'error');
    refreshRecordings();
  });
  rec.addEventListener('local-file', () => refreshRecordings());
  rec.addEventListener('error', ({ detail }) => showError(detail));
  $('record-me').onclick = () => (rec.isRecording(me) ? rec.stop(me) : rec.start(me)).catch(showError);
  $('record-room').onclick = () => (rec.active.size ? rec.stop() : rec.start()).catch(showError);
  $('record-mix').onclick = () => (rec.mix ? rec.stopMix() : rec.startMix()).catch(showError);
  $('recordings-refresh').onclick = () => refreshRecordings();
  room.addEventListener('closed', () => redraws.delete(render));
  refreshRecordings();
}

/** The room's files on the server (signed download links) and the ones this page made. */
async function refreshRecordings() {
  const room = state.room;
  if (!room) return;
  let files = [];
  try {
    files = await room.recording.list();
  } catch (err) { showError(err); }
  state.recordings = files;
  const item = (label, href, download, bytes) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = href;
    a.download = download;
    a.textContent = label;
    li.append(a, ` ${t('kib', { n: (bytes / 1024).toFixed(0) })}`);
    return li;
  };
  $('recordings').replaceChildren(
    ...files.map((f) => item(f.file, f.url, f.file.split('/').pop(), f.bytes)),
    ...room.recording.localFiles.map((f) => item(`${f.name} (${t('recordedHere')})`, f.url, f.name, f.bytes)),
  );
}

/** &record=MS: record ourselves for MS ms, then list. The server takes our tracks a moment
 * after the publish answer (and a recording keeps the tracks it started with), so this waits
 * until the server holds our video, and retries "no media published yet" (3400) for a while. */
async function recordSelf(ms) {
  const room = state.room;
  const rec = room.recording;
  const me = state.signal.clientId;
  if (room.capabilities.serverMedia && room.localStream?.getVideoTracks().length) {
    const mine = async () => (await state.signal.request('room::status', { roomId: room.roomId })).streams
      ?.some((s) => s.clientId === me && s.kind === 'video');
    for (let i = 0; i < 50 && !(await mine()); i++) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 500));
  }
  for (let tries = 0; ; tries++) {
    try {
      await rec.start(me);
      break;
    } catch (err) {
      if (err.code !== '3400' || tries > 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await new Promise((r) => setTimeout(r, ms));
  await rec.stop(me);
  await refreshRecordings();
}

// ---- diagnostics report --------------------------------------------------------------------

/** What the page knows about its media, for remote diagnostics and the end-to-end tests. */
async function report(to) {
  const body = { to, kind: 'taoyao-stats', clientId: state.signal?.clientId };
  if (state.room) body.room = { roomId: state.room.roomId, peers: await state.room.stats() };
  if (state.call) body.call = { sessionId: state.call.sessionId, remoteId: state.call.remoteId, stats: await state.call.stats() };
  body.local = state.room && !state.room.localStream ? [] : state.local ? state.local.getTracks().map((tr) => tr.kind) : [];
  // sfu/mcu: the publish and subscribe connections' states (diagnostics).
  if (state.room?.capabilities?.serverMedia) body.connections = { publish: state.room.pub?.connectionState ?? null, subscribe: state.room.sub?.connectionState ?? null };
  body.localEnabled = (state.room?.localStream ?? state.local)?.getTracks().filter((tr) => tr.enabled).map((tr) => tr.kind) ?? [];
  if (state.room?.recording) {
    const rec = state.room.recording;
    body.recording = {
      active: [...rec.active.keys()],
      mix: rec.mix,
      files: state.recordings ?? [],
      links: [...document.querySelectorAll('#recordings a')].map((a) => a.getAttribute('href')),
      local: rec.localFiles.map(({ name, bytes, type, head }) => ({ name, bytes, type, head })),
    };
  }
  if (state.room?.stage) body.stage = { mode: state.room.stage.mode, live: state.room.stage.live, mayPublish: state.room.stage.mayPublish };
  return body;
}
window.taoyaoReport = () => report(null);

function startReports(to) {
  const every = Number(params.get('reportMs') ?? 1000);
  setInterval(async () => {
    if (!state.signal?.registered) return;
    try {
      await state.signal.request('client::unicast', await report(to));
    } catch (err) {
      console.warn('taoyao: report failed', err?.code ?? '', err?.message ?? String(err));
    }
  }, every);
}

// ---- wiring --------------------------------------------------------------------------------

$('lang').value = language();
$('lang').onchange = (e) => { setLanguage(e.target.value); for (const fn of redraws) fn(); };
translate();
fillJoinForm();
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const b = $('join');
  b.disabled = true;
  b.textContent = t('joining');
  join().catch(showError).finally(() => { b.disabled = false; b.textContent = t('join'); });
});
for (const [kind, id] of Object.entries(SELECTS)) $(id).onchange = (e) => useDevice(kind, e.target.value).catch(showError);
$('leave').onclick = () => state.room?.leave().catch(showError);
$('close-room').onclick = async () => {
  const room = state.room;
  if (!room || !(await ask({ text: t('closeRoomAsk', { room: room.name }), ok: t('endForEveryone') }))) return;
  await state.signal.request('room::close', { roomId: room.roomId }).then(() => room.leave()).catch(showError);
};
$('invite').onclick = async () => {
  const link = inviteLink(state.room);
  try {
    await navigator.clipboard.writeText(link);
    toast(t('inviteCopied', { link }));
  } catch (_) {
    toast(t('inviteShow', { link })); // no clipboard (permission, plain http): show it to copy
  }
};
$('layout').onclick = () => {
  state.layout = state.layout === 'grid' ? 'speaker' : 'grid';
  $('layout').dataset.i18n = state.layout === 'grid' ? 'layoutSpeaker' : 'layoutGrid';
  $('layout').textContent = t($('layout').dataset.i18n);
  layoutTiles();
};
$('page-prev').onclick = () => { state.page = Math.max(0, state.page - 1); layoutTiles(); };
$('page-next').onclick = () => { state.page += 1; layoutTiles(); };
addEventListener('resize', () => layoutTiles());
$('toggle-mic').onclick = () => toggleMedia('audio').catch(showError);
$('toggle-cam').onclick = () => toggleMedia('video').catch(showError);
$('toggle-screen').onclick = () => toggleScreen().catch(showError);
$('toggle-hand').onclick = () => state.room?.chat.raiseHand(!state.room.chat.hands.has(state.signal.clientId)).catch(showError);
$('toggle-chat').onclick = () => openChat(!state.chatOpen);
$('toggle-people').onclick = () => $('sidebar').classList.toggle('open');
$('drawer-close').onclick = () => $('sidebar').classList.remove('open');
$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || !state.room) return;
  state.room.chat.send(text, state.signal.login.name ?? state.signal.clientId)
    .then(() => { $('chat-input').value = ''; })
    .catch(showError);
});
$('call-mic').onclick = (e) => state.call && toggle(e.target, 'audio', state.call, ['muteMic', 'unmuteMic']);
$('call-cam').onclick = (e) => state.call && toggle(e.target, 'video', state.call, ['stopCamera', 'startCamera']);
$('hangup').onclick = () => state.call?.hangUp().catch(showError);
$('answer').onclick = () => answer().catch(showError);
$('decline').onclick = () => { state.ringing?.hangUp().catch(showError); };
$('rejoin').onclick = () => rejoin().catch(showError);
$('disconnect').onclick = async () => {
  await state.call?.hangUp().catch(() => {});
  await state.signal?.close();
  location.href = location.pathname;
};
setStatus('status_offline');

async function autostart() {
  const clientId = params.get('clientId');
  if (!clientId) {
    // The pre-join screen: show the camera and microphone we would join with.
    await ensureLocalMedia();
    showPreview();
    return;
  }
  const { login, server } = loginFromForm();
  const signal = await connect(login, server);
  if (params.get('report')) startReports(params.get('report'));
  if (params.get('room')) {
    const live = params.get('live'); // anchor: enter, publish and go live; viewer: watch only
    await enterRoom({ roomId: params.get('room'), password: params.get('roomPassword'), architecture: params.get('architecture'), mode: params.get('mode'), watch: live === 'viewer' });
    if (live === 'anchor') await state.room.stage.startLive();
    if (live === 'viewer' && params.get('cohost') === 'ask') await state.room.stage.cohost('request');
    if (params.get('record')) await recordSelf(Number(params.get('record')));
  }
  const callee = params.get('call');
  if (callee) {
    // Wait until the callee is online, then call.
    const online = async () => (await signal.request('client::list')).clients.some((c) => c.clientId === callee);
    while (!(await online())) await new Promise((r) => setTimeout(r, 300));
    await startCall(callee);
  }
}
autostart().catch(showError);
