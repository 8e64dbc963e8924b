// The taoyao web client's page logic. Everything that talks to the server lives in ./sdk/.
//
// Deep links: ?clientId=alice&name=Alice&username=taoyao&password=taoyao&room=standup
//   [&roomPassword=..][&architecture=mesh][&mode=broadcast][&call=bob][&autoAnswer=1]
//   [&live=anchor[&autoAccept=1] | &live=viewer[&cohost=ask]][&record=3000]
// connect (and enter the room / call the client) at once; &live=anchor goes live after entering
// (accepting every co-host request with autoAccept), &live=viewer watches without a camera
// (and asks to co-host with cohost=ask); &record=MS records ourselves for MS milliseconds
// after entering (on the server in sfu/mcu rooms, in this page in mesh rooms) and then lists
// the room's recordings. &report=<clientId> also sends a
// summary of the connections' getStats() to that client every second (client::unicast), for
// remote diagnostics; the end-to-end tests read media health from it.

import { SignalClient, Room, Call, defaultServerUrl, localMedia } from './sdk/index.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = { signal: null, room: null, call: null, ringing: null, local: null };

function showError(err) {
  const text = err?.code ? `${err.code}: ${err.reason ?? err.message}` : String(err?.message ?? err);
  const div = document.createElement('div');
  div.textContent = text;
  $('errors').prepend(div);
  setTimeout(() => div.remove(), 15000);
  console.warn('taoyao:', text);
}

function setStatus(text) {
  $('status').textContent = text;
}

async function ensureLocalMedia() {
  if (!state.local) {
    state.local = await localMedia();
    if (!state.local) showError('no camera or microphone: joining to watch and listen only');
  }
  return state.local;
}

/** Appends a small button to `parent` that runs `action` (a promise) and shows its error. */
function smallButton(parent, label, action) {
  const b = document.createElement('button');
  b.className = 'small';
  b.textContent = label;
  b.onclick = () => action().catch(showError);
  parent.append(b);
  return b;
}

// ---- tiles ---------------------------------------------------------------------------------

function tile(id, label, { muted = false } = {}) {
  let t = document.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
  if (!t) {
    t = document.createElement('div');
    t.className = 'tile';
    t.dataset.id = id;
    t.innerHTML = '<video autoplay playsinline></video><div class="label"><span class="name"></span><span class="state"></span><button class="small rec" hidden></button></div>';
    t.querySelector('video').muted = muted;
    $('tiles').append(t);
  }
  t.querySelector('.name').textContent = label;
  return t;
}

function setTileState(id, text) {
  const t = document.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
  if (t) t.querySelector('.state').textContent = text;
}

function removeTile(id) {
  document.querySelector(`.tile[data-id="${CSS.escape(id)}"]`)?.remove();
}

function attach(id, stream) {
  const v = document.querySelector(`.tile[data-id="${CSS.escape(id)}"] video`);
  if (v && v.srcObject !== stream) {
    v.srcObject = stream;
    v.play().catch(() => {});
  }
}

function showLocal() {
  if (!state.local) return;
  tile('local', `${state.signal.login.name ?? state.signal.clientId} (you)`, { muted: true });
  attach('local', state.local);
}

// ---- connection ----------------------------------------------------------------------------

async function connect(login, server) {
  const signal = new SignalClient(server, login);
  signal.addEventListener('closed', (e) => setStatus(`disconnected (${e.detail.code}${e.detail.reason ? `: ${e.detail.reason}` : ''})`));
  signal.addEventListener('reconnected', () => { setStatus(`connected as ${signal.clientId}`); refreshLists(); });
  signal.addEventListener('error', (e) => showError(e.detail));
  signal.on('client::close', (b) => showError(`server closing the connection: ${b.reason}`));
  for (const s of ['client::online', 'client::offline']) signal.on(s, () => refreshClients());
  signal.on('room::invite', (b) => showError(`${b.from} invites you to room ${b.name} (${b.architecture}): enter "${b.roomId}"`));
  signal.on('session::call', (b) => onIncomingCall(b));
  await signal.connect();
  state.signal = signal;
  setStatus(`connected as ${signal.clientId}`);
  $('login').hidden = true;
  $('app').hidden = false;
  await refreshLists();
  return signal;
}

async function refreshLists() {
  await Promise.all([refreshClients(), refreshRooms()]);
}

async function refreshClients() {
  if (!state.signal) return;
  try {
    const { clients } = await state.signal.request('client::list');
    const ul = $('clients');
    ul.replaceChildren(...clients.map((c) => {
      const li = document.createElement('li');
      li.textContent = `${c.name} (${c.clientId}, ${c.clientType})`;
      if (c.clientId !== state.signal.clientId) smallButton(li, 'call', () => startCall(c.clientId));
      return li;
    }));
  } catch (err) { showError(err); }
}

async function refreshRooms() {
  if (!state.signal) return;
  try {
    const { rooms } = await state.signal.request('room::list');
    $('rooms').replaceChildren(...rooms.map((r) => {
      const li = document.createElement('li');
      li.textContent = `${r.name} (${r.architecture}, ${r.memberCount})${r.hasPassword ? ' 🔒' : ''}`;
      smallButton(li, 'enter', () => enterRoom({ roomId: r.roomId }));
      return li;
    }));
  } catch (err) { showError(err); }
}

// ---- rooms ---------------------------------------------------------------------------------

async function enterRoom({ roomId, password, architecture, mode, watch = false }) {
  if (state.room) await state.room.leave().catch(() => {});
  // Watching (a live's viewer) needs no camera or microphone.
  const local = watch ? null : await ensureLocalMedia();
  const room = await Room.enter(state.signal, { roomId, password: password || undefined, architecture: architecture || undefined, mode: mode || undefined }, local);
  state.room = room;
  $('room-bar').hidden = false;
  $('room-title').textContent = room.name;
  $('room-arch').textContent = room.architecture;
  $('close-room').hidden = room.owner !== state.signal.clientId;
  if (room.localStream) showLocal();
  // Everyone gets a tile in a meeting; in broadcast mode and lives only those who send media.
  const tilesForAll = () => room.stage.mode !== 'broadcast' && !room.stage.live;
  if (tilesForAll()) for (const m of room.members.values()) tile(m.clientId, m.name);
  room.addEventListener('member-joined', ({ detail }) => tilesForAll() && tile(detail.member.clientId, detail.member.name));
  stageUi(room);
  membersUi(room);
  recordingUi(room);
  room.addEventListener('member-left', ({ detail }) => removeTile(detail.clientId));
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
      a.play().catch(() => {});
      return;
    }
    tile(detail.clientId, room.members.get(detail.clientId)?.name ?? detail.clientId);
    attach(detail.clientId, detail.stream);
  };
  room.addEventListener('track', ({ detail }) => onTrack(detail));
  // Tracks that arrived while we entered (the server's first offer comes with the answer).
  for (const [clientId, stream] of room.streams ?? []) onTrack({ clientId, stream });
  room.addEventListener('volume', ({ detail }) => {
    // The active speaker's tile (ours is 'local') gets a highlight.
    const me = state.signal.clientId;
    for (const t of document.querySelectorAll('.tile')) {
      const id = t.dataset.id === 'local' ? me : t.dataset.id;
      t.classList.toggle('speaking', id === detail.speaker);
    }
  });
  room.addEventListener('peer-state', ({ detail }) => setTileState(detail.clientId, detail.state));
  room.addEventListener('media-state', ({ detail }) => setTileState(detail.clientId, `${detail.kind ?? 'media'} ${detail.action}d`));
  room.addEventListener('error', ({ detail }) => showError(detail));
  room.addEventListener('closed', ({ detail }) => {
    $('stage-bar').hidden = true;
    $('cohost-requests').hidden = true;
    $('cohost-invite').hidden = true;
    if (detail.reason !== 'left') showError(`left room ${room.name}: ${detail.reason}`);
    for (const id of room.members.keys()) removeTile(id);
    if (!state.call) removeTile('local');
    $('room-bar').hidden = true;
    // Files recorded here (mesh) stay offered; the server's list belongs to the room.
    if (!room.recording.localFiles.length) $('recordings-panel').hidden = true;
    if (state.room === room) state.room = null;
    refreshRooms();
  });
  refreshRooms();
}

async function createRoom({ name, password, architecture, mode }) {
  const r = await state.signal.request('room::create', { name, password: password || undefined, architecture: architecture || undefined, mode: mode || undefined });
  await enterRoom({ roomId: r.roomId, password });
}

function toggle(button, kind, target, labels) {
  const on = button.dataset.off === '1';
  button.dataset.off = on ? '0' : '1';
  button.textContent = on ? labels[0] : labels[1];
  return target.setEnabled(kind, on).catch(showError);
}

// ---- 1:1 calls -----------------------------------------------------------------------------

function callUi(call) {
  state.call = call;
  $('call-bar').hidden = false;
  $('call-title').textContent = `call with ${call.remoteId}`;
  showLocal();
  const id = `call:${call.remoteId}`;
  tile(id, `${call.remoteId} (call)`);
  call.addEventListener('track', ({ detail }) => attach(id, detail.stream));
  call.addEventListener('state', ({ detail }) => setTileState(id, detail.state));
  call.addEventListener('remote-pause', ({ detail }) => setTileState(id, `${detail.type} paused`));
  call.addEventListener('remote-resume', ({ detail }) => setTileState(id, `${detail.type} resumed`));
  call.addEventListener('closed', ({ detail }) => {
    removeTile(id);
    if (!state.room) removeTile('local');
    $('call-bar').hidden = true;
    if (state.call === call) state.call = null;
    if (detail.reason !== 'hung up') showError(`call ended: ${detail.reason}`);
  });
}

async function startCall(clientId) {
  if (state.call) throw new Error('already in a call');
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
  $('incoming-text').textContent = `${body.name} (${body.clientId}) is calling`;
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
  const owner = room.owner === me;
  $('stage-bar').hidden = false;
  $('mode-select').hidden = !owner;
  $('live-start').hidden = !owner || room.architecture === 'mesh';
  const render = () => {
    $('room-mode').textContent = stage.live ? 'live' : stage.mode;
    $('mode-select').value = stage.mode;
    const intercom = stage.mode === 'intercom' && !stage.live;
    $('ptt').hidden = !intercom || !room.localStream;
    $('floor').hidden = !intercom;
    const f = stage.floor ?? {};
    $('floor').textContent = f.holder ? `talking: ${f.holder}${f.queue?.length ? ` (next: ${f.queue.join(', ')})` : ''}` : 'floor free';
    // Intercom in any architecture: our microphone is live only while we hold the floor
    // (the server also gates it in sfu/mcu rooms).
    if (intercom) for (const t of room.localStream?.getAudioTracks() ?? []) t.enabled = stage.holdsFloor();
    const live = stage.live;
    $('live-badge').hidden = !live;
    if (live) $('live-badge').textContent = `LIVE${live.paused ? ' (paused)' : ''} · anchor ${live.anchor} · ${live.viewers ?? 0} watching`;
    const anchor = live?.anchor === me;
    const cohost = (live?.cohosts ?? []).includes(me);
    $('live-start').hidden = !owner || room.architecture === 'mesh' || !!live;
    $('live-stop').hidden = !anchor;
    $('cohost-ask').hidden = !live || anchor || cohost;
    $('cohost-leave').hidden = !cohost;
    $('cohost-requests').hidden = !anchor || !$('cohost-requests').children.length;
    // Presenter view: presenters' tiles are large in broadcast mode, the anchor's in a live.
    const big = live ? [live.anchor, ...(live.cohosts ?? [])] : stage.mode === 'broadcast' ? stage.presenters : [];
    for (const t of document.querySelectorAll('.tile')) {
      const id = t.dataset.id === 'local' ? me : t.dataset.id;
      t.classList.toggle('presenter', big.includes(id));
    }
  };
  for (const ev of ['mode', 'floor', 'live', 'cohost']) stage.addEventListener(ev, render);
  stage.addEventListener('live-stopped', ({ detail }) => showError(`the live ended: ${detail.reason}`));
  stage.addEventListener('live-paused', ({ detail }) => showError(`the live paused: ${detail.reason}`));
  stage.addEventListener('cohost', ({ detail }) => {
    if (detail.action === 'request' && stage.live?.anchor === me) {
      // &autoAccept=1 (tests, unattended anchors) takes every request on stage.
      if (params.get('autoAccept')) stage.cohost('accept', detail.clientId).catch(showError);
      else addCohostRequest(stage, detail.clientId, render);
    }
    if (detail.action === 'invite' && detail.clientId === me) $('cohost-invite').hidden = false;
    if (detail.action === 'decline' && detail.clientId === me) showError('the anchor declined');
  });
  // On (or off) stage: start (or stop) sending (mesh: on every member's connection).
  stage.addEventListener('may-publish', async ({ detail }) => {
    if (detail.mayPublish) {
      await room.publish(await ensureLocalMedia());
      showLocal();
    } else {
      room.unpublishLocal();
      removeTile('local');
    }
    render();
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
  $('cohost-ask').onclick = () => stage.cohost('request').then(() => showError('asked the anchor; waiting')).catch(showError);
  $('cohost-leave').onclick = () => stage.cohost('end', me).catch(showError);
  $('invite-accept').onclick = () => { $('cohost-invite').hidden = true; stage.cohost('accept').catch(showError); };
  $('invite-decline').onclick = () => { $('cohost-invite').hidden = true; stage.cohost('decline').catch(showError); };
  render();
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
      const name = id === me ? 'you' : (room.members.get(id)?.name ?? id);
      const roles = [];
      if (id === room.owner) roles.push('owner');
      if (live?.anchor === id) roles.push('anchor');
      if ((live?.cohosts ?? []).includes(id)) roles.push('co-host');
      if (!live && stage.mode === 'broadcast' && stage.presenters.includes(id)) roles.push('presenter');
      if (stage.floor?.holder === id) roles.push('talking');
      li.textContent = `${name}${roles.length ? ` (${roles.join(', ')})` : ''} `;
      const action = (label, fn) => smallButton(li, label, () => fn().finally(render));
      if (id === me) return li;
      if (owner && !live && stage.mode === 'broadcast') {
        if (stage.presenters.includes(id)) action('stop presenting', () => stage.presenter(id, 'remove'));
        else action('make presenter', () => stage.presenter(id, 'add'));
      }
      if (anchor && (live.cohosts ?? []).includes(id)) action('end co-host', () => stage.cohost('end', id));
      else if (anchor) action('invite on stage', () => stage.cohost('invite', id));
      return li;
    }));
  };
  for (const ev of ['mode', 'floor', 'live', 'cohost']) stage.addEventListener(ev, render);
  for (const ev of ['member-joined', 'member-left', 'reentered']) room.addEventListener(ev, render);
  room.addEventListener('closed', () => { $('members-panel').hidden = true; });
  render();
}

function addCohostRequest(stage, clientId, render) {
  const li = document.createElement('li');
  li.textContent = `${clientId} asks to co-host `;
  for (const action of ['accept', 'decline']) {
    smallButton(li, action, () => { li.remove(); return stage.cohost(action, clientId).finally(render); });
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
  $('record-mix').hidden = !owner || room.architecture !== 'mcu';
  $('record-me').hidden = !room.localStream;
  $('recordings-panel').hidden = false;
  const render = () => {
    const active = [...rec.active.keys()];
    const shown = rec.mix ? [...active, 'the mix'] : active;
    $('rec-badge').hidden = !shown.length;
    $('rec-badge').textContent = `● REC ${shown.join(', ')}`;
    $('record-mix').textContent = rec.mix ? 'Stop recording mix' : 'Record mix';
    $('record-me').textContent = rec.isRecording(me) ? 'Stop recording me' : 'Record me';
    $('record-room').textContent = active.length ? 'Stop recording' : 'Record room';
    for (const t of document.querySelectorAll('.tile')) {
      const id = t.dataset.id === 'local' ? me : t.dataset.id;
      if (id.startsWith('call:')) continue;
      t.classList.toggle('recording', rec.isRecording(id));
      // The owner may record any member from its tile.
      const b = t.querySelector('button.rec');
      if (!b) continue;
      b.hidden = !owner || t.dataset.id === 'local';
      b.textContent = rec.isRecording(id) ? 'stop rec' : 'rec';
      b.onclick = () => (rec.isRecording(id) ? rec.stop(id) : rec.start(id)).catch(showError);
    }
  };
  rec.addEventListener('state', render);
  room.addEventListener('member-joined', render);
  room.addEventListener('track', render);
  rec.addEventListener('stopped', ({ detail }) => {
    if (detail.error) showError(`recording of ${detail.mix ? 'the mix' : detail.clientId} stopped: ${detail.error}`);
    refreshRecordings();
  });
  rec.addEventListener('local-file', () => refreshRecordings());
  rec.addEventListener('error', ({ detail }) => showError(detail));
  $('record-me').onclick = () => (rec.isRecording(me) ? rec.stop(me) : rec.start(me)).catch(showError);
  $('record-room').onclick = () => (rec.active.size ? rec.stop() : rec.start()).catch(showError);
  $('record-mix').onclick = () => (rec.mix ? rec.stopMix() : rec.startMix()).catch(showError);
  $('recordings-refresh').onclick = () => refreshRecordings();
  render();
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
    li.append(a, ` ${(bytes / 1024).toFixed(0)} KiB`);
    return li;
  };
  $('recordings').replaceChildren(
    ...files.map((f) => item(f.file, f.url, f.file.split('/').pop(), f.bytes)),
    ...room.recording.localFiles.map((f) => item(`${f.name} (recorded here)`, f.url, f.name, f.bytes)),
  );
}

/** &record=MS: record ourselves for MS ms, then list. The server takes our tracks a moment
 * after the publish answer (and a recording keeps the tracks it started with), so this waits
 * until the server holds our video, and retries "no media published yet" (3400) for a while. */
async function recordSelf(ms) {
  const room = state.room;
  const rec = room.recording;
  const me = state.signal.clientId;
  if (room.architecture !== 'mesh' && room.localStream?.getVideoTracks().length) {
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

function startReports(to) {
  const every = Number(params.get('reportMs') ?? 1000);
  setInterval(async () => {
    if (!state.signal?.registered) return;
    try {
      const body = { to, kind: 'taoyao-stats', clientId: state.signal.clientId };
      if (state.room) body.room = { roomId: state.room.roomId, peers: await state.room.stats() };
      if (state.call) body.call = { sessionId: state.call.sessionId, remoteId: state.call.remoteId, stats: await state.call.stats() };
      body.local = state.room && !state.room.localStream ? [] : state.local ? state.local.getTracks().map((t) => t.kind) : [];
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
      await state.signal.request('client::unicast', body);
    } catch (err) {
      console.warn('taoyao: report failed', err?.code ?? '', err?.message ?? String(err));
    }
  }, every);
}

// ---- wiring --------------------------------------------------------------------------------

function formData(form, submitter) {
  const d = Object.fromEntries(new FormData(form));
  if (submitter?.name) d[submitter.name] = submitter.value;
  return d;
}

$('server').value = params.get('server') ?? defaultServerUrl();
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const d = formData(e.target);
  connect({ clientId: d.clientId, name: d.name || undefined, clientType: 'WEB', username: d.username || undefined, password: d.password || undefined }, d.server).catch(showError);
});
$('room-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const d = formData(e.target, e.submitter);
  const go = d.action === 'create'
    ? createRoom({ name: d.room, password: d.password, architecture: d.architecture, mode: d.mode })
    : enterRoom({ roomId: d.room, password: d.password, architecture: d.architecture, mode: d.mode });
  go.catch(showError);
});
$('rooms-refresh').onclick = () => refreshRooms();
$('leave').onclick = () => state.room?.leave().catch(showError);
$('close-room').onclick = () => state.signal.request('room::close', { roomId: state.room.roomId }).then(() => state.room?.leave()).catch(showError);
$('toggle-mic').onclick = (e) => state.room && toggle(e.target, 'audio', state.room, ['Mute mic', 'Unmute mic']);
$('toggle-cam').onclick = (e) => state.room && toggle(e.target, 'video', state.room, ['Stop camera', 'Start camera']);
$('call-mic').onclick = (e) => state.call && toggle(e.target, 'audio', state.call, ['Mute mic', 'Unmute mic']);
$('call-cam').onclick = (e) => state.call && toggle(e.target, 'video', state.call, ['Stop camera', 'Start camera']);
$('hangup').onclick = () => state.call?.hangUp().catch(showError);
$('answer').onclick = () => answer().catch(showError);
$('decline').onclick = () => { state.ringing?.hangUp().catch(showError); };
$('disconnect').onclick = async () => {
  await state.room?.leave().catch(() => {});
  await state.call?.hangUp().catch(() => {});
  await state.signal?.close();
  location.href = location.pathname;
};

async function autostart() {
  const clientId = params.get('clientId');
  if (!clientId) return;
  const login = {
    clientId,
    name: params.get('name') ?? undefined,
    clientType: 'WEB',
    username: params.get('username') ?? undefined,
    password: params.get('password') ?? undefined,
  };
  const signal = await connect(login, params.get('server') ?? defaultServerUrl());
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
