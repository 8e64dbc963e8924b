// A 1:1 P2P call (session::): the caller offers, the callee answers; the server only relays.
// Events: 'track' {stream}, 'state' {state}, 'remote-pause' / 'remote-resume' {type}, 'closed' {reason}.

import { Peer } from './peer.js';

export class Call extends EventTarget {
  constructor(signal, { sessionId, remoteId, localStream, caller }) {
    super();
    this.signal = signal;
    this.sessionId = sessionId;
    this.remoteId = remoteId;
    this.localStream = localStream;
    this.caller = caller;
    this.queued = [];
    this.peer = new Peer({
      remoteId,
      polite: !caller,
      rtcConfig: { iceServers: signal.config?.iceServers ?? [], bundlePolicy: 'max-bundle' },
      send: (n) => signal.request('session::exchange', { sessionId, ...n }),
    });
    this.peer.addEventListener('track', (e) => this.#emit('track', { stream: e.detail.stream }));
    this.peer.addEventListener('state', (e) => this.#emit('state', e.detail));
    const mine = (fn) => (b) => b.sessionId === sessionId && fn(b);
    this.unsubscribe = [
      signal.on('session::exchange', mine((b) => this.#onExchange(b))),
      signal.on('session::pause', mine((b) => this.#emit('remote-pause', { type: b.type }))),
      signal.on('session::resume', mine((b) => this.#emit('remote-resume', { type: b.type }))),
      signal.on('session::close', mine((b) => this.#end(b.reason ?? 'closed'))),
    ];
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Calls a client; the call starts negotiating at once. */
  static async dial(signal, clientId, localStream, { audio = true, video = true } = {}) {
    const r = await signal.request('session::call', { clientId, audio, video });
    const call = new Call(signal, { sessionId: r.sessionId, remoteId: clientId, localStream, caller: true });
    call.peer.start(localStream, { offerer: true });
    call.accepted = true;
    return call;
  }

  /** An incoming call (from a session::call notification), not yet answered. */
  static incoming(signal, body) {
    return new Call(signal, { sessionId: body.sessionId, remoteId: body.clientId, localStream: null, caller: false });
  }

  /** Answers an incoming call with our media; offers that arrived while ringing are handled now. */
  async accept(localStream) {
    this.localStream = localStream;
    this.accepted = true;
    for (const n of this.queued.splice(0)) await this.peer.receive(n, this.localStream);
  }

  async #onExchange({ from: _from, sessionId: _s, ...n }) {
    if (!this.accepted) {
      this.queued.push(n);
      return;
    }
    try { await this.peer.receive(n, this.localStream); } catch (err) { this.#emit('error', err); }
  }

  async setEnabled(type, enabled) {
    for (const t of this.localStream?.getTracks() ?? []) if (t.kind === type) t.enabled = enabled;
    await this.signal.request(enabled ? 'session::resume' : 'session::pause', { sessionId: this.sessionId, type });
  }

  async stats() {
    return this.peer.stats();
  }

  async hangUp() {
    try { await this.signal.request('session::close', { sessionId: this.sessionId }); } finally { this.#end('hung up'); }
  }

  #end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.peer.close();
    for (const u of this.unsubscribe) u();
    this.#emit('closed', { reason });
  }
}
