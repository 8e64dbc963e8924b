// A 1:1 P2P call (session::): the caller offers, the callee answers; the server only relays.
// Events: 'track' {stream}, 'state' {state}, 'remote-pause' / 'remote-resume' {type}, 'closed' {reason}.

import { Peer } from './peer.js';

/** @typedef {import('./index.js').PeerStats} PeerStats */
/**
 * A 1:1 P2P call: make one with Call.dial or Call.incoming.
 * @property {string} sessionId - the session's id
 * @property {string} remoteId - the other side's clientId
 * @fires Call#track - {stream}: the other side's media
 * @fires Call#state - {state}: the connection state
 * @fires Call#remote-pause - {type}: the other side muted 'audio' or 'video'
 * @fires Call#remote-resume - {type}: and unmuted it
 * @fires Call#error - an Error from negotiating
 * @fires Call#closed - {reason}
 */
export class Call extends EventTarget {
  /**
   * Use Call.dial or Call.incoming (not in index.d.ts).
   * @param {import('./signal.js').SignalClient} signal - a registered client
   * @param {{sessionId: string, remoteId: string, localStream: MediaStream|null, caller: boolean}} o
   *   - the session, the other side, our media, whether we called
   */
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
  /**
   * @param {import('./signal.js').SignalClient} signal - a registered client
   * @param {string} clientId - whom to call
   * @param {MediaStream|null} localStream - what we send
   * @param {{audio?: boolean, video?: boolean}} [o] - what the call carries (both by default)
   * @returns {Promise<Call>}
   * @throws {import('./signal.js').SignalError} the server refused the call
   */
  static async dial(signal, clientId, localStream, { audio = true, video = true } = {}) {
    const r = await signal.request('session::call', { clientId, audio, video });
    const call = new Call(signal, { sessionId: r.sessionId, remoteId: clientId, localStream, caller: true });
    call.peer.start(localStream, { offerer: true });
    call.accepted = true;
    return call;
  }

  /** An incoming call (from a session::call notification), not yet answered. */
  /**
   * @param {import('./signal.js').SignalClient} signal - a registered client
   * @param {Record<string, unknown>} body - the session::call notification's body
   * @returns {Call}
   */
  static incoming(signal, body) {
    return new Call(signal, { sessionId: body.sessionId, remoteId: body.clientId, localStream: null, caller: false });
  }

  /** Answers an incoming call with our media; offers that arrived while ringing are handled now. */
  /**
   * @param {MediaStream|null} localStream - what we send
   * @returns {Promise<void>}
   */
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

  /**
   * Mutes or unmutes our audio or video, and tells the other side.
   * @param {'audio'|'video'} type - which of our tracks
   * @param {boolean} enabled - false mutes
   * @returns {Promise<void>}
   */
  async setEnabled(type, enabled) {
    for (const t of this.localStream?.getTracks() ?? []) if (t.kind === type) t.enabled = enabled;
    await this.signal.request(enabled ? 'session::resume' : 'session::pause', { sessionId: this.sessionId, type });
  }

  /**
   * A summary of the call's getStats().
   * @returns {Promise<PeerStats>}
   */
  async stats() {
    return this.peer.stats();
  }

  /**
   * Ends the call (session::close), here even if the request fails.
   * @fires Call#closed
   * @returns {Promise<void>}
   */
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
