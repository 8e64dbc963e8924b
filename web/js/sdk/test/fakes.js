// Test doubles for the SDK's unit tests (node --test, no browser): a fake WebSocket speaking
// taoyao's envelope to a scriptable fake server, and a fake signal client.

// Node 18 (Debian 12's) has no global CustomEvent; the SDK's events use it.
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, options = {}) {
    super(type, options);
    this.detail = options.detail ?? null;
  }
};

/** The server the fake sockets reach: `up` (accepts connections), `acceptLogin`. */
export const fakeServer = { up: true, acceptLogin: true, sockets: [], registers: 0 };

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    fakeServer.sockets.push(this);
    setTimeout(() => {
      if (fakeServer.up) {
        this.readyState = FakeWebSocket.OPEN;
        this.onopen?.();
      } else {
        this.readyState = FakeWebSocket.CLOSED;
        this.onerror?.();
        this.onclose?.({ code: 1006, reason: '' });
      }
    }, 1);
  }

  send(text) {
    const msg = JSON.parse(text);
    const { header, body } = msg;
    const reply = (code, message, b = {}) => setTimeout(() => this.onmessage?.({ data: JSON.stringify({ code, message, header, body: b }) }), 1);
    if (header.signal === 'client::register') {
      fakeServer.registers += 1;
      if (fakeServer.acceptLogin) reply('0000', 'success', { clientId: body.clientId });
      else reply('3401', 'bad username or password');
    } else {
      reply('0000', 'success', {});
    }
  }

  close(code = 1000) {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.readyState = FakeWebSocket.CLOSED;
    setTimeout(() => this.onclose?.({ code, reason: '' }), 1);
  }

  /** The server side drops the connection. */
  drop(code = 1006) {
    this.close(code);
  }
}

/** A signal client double: records requests, answers them with `answer(signal, body)`, and
 * delivers notifications with `notify(signal, body)`. */
export class FakeSignal extends EventTarget {
  constructor(clientId = 'me', answer = () => ({})) {
    super();
    this.clientId = clientId;
    this.registered = true;
    this.login = { clientId, name: clientId };
    this.answer = answer;
    this.requests = [];
    this.handlers = new Map();
  }

  on(signal, fn) {
    if (!this.handlers.has(signal)) this.handlers.set(signal, new Set());
    this.handlers.get(signal).add(fn);
    return () => this.handlers.get(signal)?.delete(fn);
  }

  async request(signal, body = {}) {
    this.requests.push({ signal, body });
    return this.answer(signal, body);
  }

  notify(signal, body) {
    for (const fn of this.handlers.get(signal) ?? []) fn(body, { header: { signal }, body });
  }
}

/** Resolves with the next `type` event's detail from `target`. */
export function next(target, type, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
    target.addEventListener(type, (e) => { clearTimeout(timer); resolve(e.detail); }, { once: true });
  });
}

/** A MediaStream / track double (enough for the SDK's bookkeeping). */
let nextTrack = 0;
export class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `${kind}-${nextTrack++}`;
    this.enabled = true;
    this.readyState = 'live';
  }

  stop() { this.readyState = 'ended'; }
}

export class FakeMediaStream {
  constructor(tracks = []) {
    this.id = `stream-${nextTrack++}`;
    this.tracks = [...tracks];
  }

  getTracks() { return [...this.tracks]; }
  getAudioTracks() { return this.tracks.filter((t) => t.kind === 'audio'); }
  getVideoTracks() { return this.tracks.filter((t) => t.kind === 'video'); }
  addTrack(t) { if (!this.tracks.includes(t)) this.tracks.push(t); }
  removeTrack(t) { this.tracks = this.tracks.filter((x) => x !== t); }
}
globalThis.MediaStream ??= FakeMediaStream;

/** The fake connection factory's connections, newest last. */
export const fakePcs = [];

/** An RTCPeerConnection double: records what the SDK does with it; `addIceCandidate` before
 * a remote description throws, as a browser does. */
export class FakePeerConnection {
  constructor(config) {
    this.config = config;
    this.transceivers = [];
    this.candidates = [];
    this.remoteDescription = null;
    this.localDescription = null;
    this.connectionState = 'new';
    this.signalingState = 'stable';
    this.closed = false;
    fakePcs.push(this);
  }

  addTransceiver(trackOrKind, o = {}) {
    const track = typeof trackOrKind === 'string' ? null : trackOrKind;
    const t = { direction: o.direction, sender: { track, replaceTrack: async (x) => { t.sender.track = x; } }, receiver: { track: { kind: track?.kind ?? trackOrKind } } };
    this.transceivers.push(t);
    return t;
  }

  getTransceivers() { return this.transceivers; }
  getSenders() { return this.transceivers.map((t) => t.sender); }
  async createOffer() { return { type: 'offer', sdp: `offer ${this.transceivers.length}` }; }
  async createAnswer() { return { type: 'answer', sdp: 'answer' }; }
  async setLocalDescription(d) {
    // No argument: the implicit offer or answer, as a browser makes it.
    this.localDescription = d ?? (this.remoteDescription?.type === 'offer' ? await this.createAnswer() : await this.createOffer());
  }
  async setRemoteDescription(d) { this.remoteDescription = d; }

  async addIceCandidate(c) {
    if (!this.remoteDescription) throw new Error('InvalidStateError: no remote description');
    this.candidates.push(c);
  }

  async getStats() { return new Map(); }
  close() { this.closed = true; this.connectionState = 'closed'; }

  /** Test side: the browser found a local candidate. */
  gather(candidate) { this.onicecandidate?.({ candidate }); }
}
