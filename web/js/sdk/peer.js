// One RTCPeerConnection to one remote peer, with "perfect negotiation": either side may
// renegotiate, and when both offer at once the polite peer yields.

import { Connection } from './connection.js';

/** @typedef {import('./index.js').PeerStats} PeerStats */
/**
 * One RTCPeerConnection to one remote peer, with perfect negotiation (mesh rooms and calls).
 * @property {RTCPeerConnection} pc - the connection
 * @property {MediaStream} stream - the remote's camera and microphone
 * @property {string} remoteId - the remote's clientId
 * @fires Peer#track - {track, stream, extra}: `extra` is true for a second stream (a screen)
 * @fires Peer#state - {state}: the connection state ('closed' after close())
 * @fires Peer#error - an Error from negotiating
 */
export class Peer extends EventTarget {
  /**
   * Makes the connection; nothing is sent before start() or the first receive().
   * @param {object} o
   * @param {string} o.remoteId
   * @param {boolean} o.polite
   * @param {RTCConfiguration} o.rtcConfig
   * @param {(negotiation: object) => Promise<void>} o.send  sends {type, sdp} or {type:'candidate', candidate}
   */
  constructor({ remoteId, polite, rtcConfig, send }) {
    super();
    this.remoteId = remoteId;
    this.polite = polite;
    this.send = send;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.stream = new MediaStream();
    this.conn = new Connection(rtcConfig, {
      sendCandidate: (candidate) => { this.send({ type: 'candidate', candidate }).catch(() => {}); },
    });
    this.pc = this.conn.pc;
    // The remote's camera and microphone share one stream (`this.stream`); a track of another
    // stream (a shared screen) comes in a stream of its own.
    this.extra = new Map();
    this.pc.ontrack = ({ track, streams }) => {
      const id = streams[0]?.id;
      this.mainId ??= id;
      let stream = this.stream;
      if (id && id !== this.mainId) {
        if (!this.extra.has(id)) this.extra.set(id, new MediaStream());
        stream = this.extra.get(id);
      }
      stream.addTrack(track);
      this.#emit('track', { track, stream, extra: stream !== this.stream });
    };
    this.pc.onconnectionstatechange = () => this.#emit('state', { state: this.pc.connectionState });
    this.pc.onnegotiationneeded = async () => {
      if (!this.mayOffer) return;
      try {
        this.makingOffer = true;
        await this.pc.setLocalDescription();
        await this.send({ type: this.pc.localDescription.type, sdp: this.pc.localDescription.sdp });
      } catch (err) {
        this.#emit('error', err);
      } finally {
        this.makingOffer = false;
      }
    };
    // The side that did not start the connection waits for the first offer (see docs/protocol.md).
    this.mayOffer = false;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Adds the local tracks (or receive-only slots where there is none) and, as the offerer, offers. */
  /**
   * @param {MediaStream|null} localStream - what we send (null: receive only)
   * @param {{offerer: boolean}} o - `offerer`: we make the first offer
   * @returns {void}
   */
  start(localStream, { offerer }) {
    this.mayOffer = offerer;
    this.addLocal(localStream);
  }

  /**
   * Adds the local tracks once (receive-only slots for a missing kind); start() and receive()
   * call it.
   * @param {MediaStream|null} localStream - what we send
   * @returns {void}
   */
  addLocal(localStream) {
    if (this.localAdded) return;
    this.localAdded = true;
    const tracks = localStream ? localStream.getTracks() : [];
    for (const kind of ['audio', 'video']) {
      const track = tracks.find((t) => t.kind === kind);
      if (track) this.pc.addTrack(track, localStream);
      else if (!this.pc.getTransceivers().some((t) => t.receiver.track.kind === kind)) {
        this.pc.addTransceiver(kind, { direction: 'recvonly' });
      }
    }
  }

  /**
   * Starts or stops sending on a running connection (a listener made presenter, a presenter
   * back to listening): each kind's transceiver gets the new track (or none) and its direction,
   * which renegotiates. Before the first offer the tracks go in with it (addLocal).
   * @param {MediaStream|null} localStream - what to send now (null: stop sending)
   * @returns {Promise<void>}
   */
  async setLocal(localStream) {
    if (!this.localAdded) return;
    const tracks = localStream ? localStream.getTracks() : [];
    for (const kind of ['audio', 'video']) {
      const track = tracks.find((t) => t.kind === kind) ?? null;
      const t = this.pc.getTransceivers().find((x) => x.receiver.track.kind === kind);
      if (!t) {
        if (track) this.pc.addTrack(track, localStream);
        continue;
      }
      await t.sender.replaceTrack(track);
      if (track) t.sender.setStreams(localStream);
      t.direction = track ? 'sendrecv' : 'recvonly';
    }
  }

  /** Sends a second video (a shared screen) in a stream of its own; renegotiates. */
  /**
   * @param {MediaStreamTrack} track - the screen's video track
   * @param {MediaStream} stream - its stream
   * @returns {void}
   */
  addExtra(track, stream) {
    if (this.extraSender) return;
    this.extraSender = this.pc.addTrack(track, stream);
  }

  /** Stops sending the second video; renegotiates. */
  /** @returns {void} */
  removeExtra() {
    if (!this.extraSender) return;
    try { this.pc.removeTrack(this.extraSender); } catch (_) { /* closed */ }
    this.extraSender = null;
  }

  /** Sends `track` instead of the current track of its kind, without renegotiating. */
  /**
   * @param {MediaStreamTrack} track - the new camera or microphone track
   * @returns {Promise<void>}
   */
  async replaceTrack(track) {
    const t = this.pc.getTransceivers().find((x) => x.sender.track?.kind === track.kind && x.sender !== this.extraSender);
    if (t) await t.sender.replaceTrack(track);
  }

  /** Handles an offer, answer or candidate from the remote side. */
  /**
   * @param {object} n - {type: 'offer'|'answer', sdp} or {type: 'candidate', candidate}
   * @param {MediaStream|null} localStream - what we send (added when answering a first offer)
   * @returns {Promise<void>}
   */
  async receive(n, localStream) {
    const pc = this.pc;
    if (n.type === 'candidate') {
      try { await this.conn.addCandidate(n.candidate); } catch (err) { if (!this.ignoreOffer) throw err; }
      return;
    }
    const collision = n.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    await this.conn.setRemote({ type: n.type, sdp: n.sdp });
    if (n.type === 'offer') {
      // Our tracks go in after the offer is applied, so they ride on its transceivers.
      this.addLocal(localStream);
      await pc.setLocalDescription();
      await this.send({ type: pc.localDescription.type, sdp: pc.localDescription.sdp });
      // From now on either side may renegotiate.
      this.mayOffer = true;
    }
  }

  /** A compact summary of getStats() for this connection. */
  /** @returns {Promise<PeerStats>} */
  async stats() {
    const all = summarize(await this.pc.getStats(), () => this.pc.connectionState);
    return all['*'] ?? { connectionState: this.pc.connectionState, video: {}, audio: {} };
  }

  /**
   * Closes the connection.
   * @fires Peer#state - {state: 'closed'}
   * @returns {void}
   */
  close() {
    this.conn.close();
    this.#emit('state', { state: 'closed' });
  }
}

/**
 * Sums a getStats() report's inbound streams per sender: `keyOf(stat)` names whose it is
 * ('*' when the connection carries one member). Each summary: {connectionState, rttMs,
 * video: {packetsReceived, packetsLost, bytesReceived, framesDecoded},
 * audio: {packetsReceived, packetsLost, bytesReceived, totalSamplesReceived, totalAudioEnergy, audioLevel}}.
 * @param {RTCStatsReport|Map<string, any>} report - a getStats() report
 * @param {() => string} connectionState - gives the connection's state
 * @param {(stat: any) => string} [keyOf] - names an inbound-rtp stat's sender (default '*')
 * @returns {Record<string, PeerStats>} a summary per sender
 */
export function summarize(report, connectionState, keyOf = () => '*') {
  const out = {};
  let rttMs;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) rttMs = Math.round(s.currentRoundTripTime * 1000);
  });
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const key = keyOf(s);
    const p = (out[key] ??= { connectionState: connectionState(), rttMs, video: {}, audio: {} });
    const o = s.kind === 'video' ? p.video : p.audio;
    const add = (name) => { o[name] = (o[name] ?? 0) + (s[name] ?? 0); };
    add('packetsReceived');
    add('packetsLost');
    add('bytesReceived');
    if (s.kind === 'video') add('framesDecoded');
    else {
      add('totalSamplesReceived');
      add('totalAudioEnergy');
      o.audioLevel = Math.max(o.audioLevel ?? 0, s.audioLevel ?? 0);
    }
  });
  return out;
}

/** Puts `track` into `stream` in place of the stream's track of the same kind (stopped). */
/**
 * SDK plumbing (not in index.d.ts).
 * @param {MediaStream|null} stream - the stream to change (nothing happens if null)
 * @param {MediaStreamTrack} track - the new track
 * @returns {void}
 */
export function swapTrack(stream, track) {
  if (!stream) return;
  for (const old of stream.getTracks()) {
    if (old.kind === track.kind && old !== track) {
      track.enabled = old.enabled;
      stream.removeTrack(old);
      old.stop();
    }
  }
  if (!stream.getTracks().includes(track)) stream.addTrack(track);
}
