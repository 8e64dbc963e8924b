// A room whose media goes through the server (sfu; mcu too: there the server sends one mixed
// audio track, whose stream id is "mix", instead of one audio track per member). Two connections with the server:
// publish (we offer our camera and microphone) and subscribe (the server offers what we
// receive; we answer). Same events as the mesh Room: 'member-joined', 'member-left',
// 'track' {clientId, stream}, 'peer-state' {clientId, state}, 'media-state', 'closed'; and in
// mcu rooms 'volume' {volumes: [{clientId, volume (dBov, 0 loudest .. -127)}], speaker};
// 'reentered' {status} after the signaling connection came back and we entered and published
// again (new connections: the server's side of the old ones is gone).

import { summarize, swapTrack } from './peer.js';
import { Connection } from './connection.js';
import { RoomCore } from './room-core.js';

/** @typedef {import('./index.js').PeerStats} PeerStats */
/**
 * An sfu or mcu room: publish and subscribe connections with the server. Implements AnyRoom
 * (index.d.ts), with RoomCore's events and these.
 * @extends RoomCore
 * @property {Map<string, MediaStream>} streams - what we receive, per publisher's clientId
 * @fires RoomCore#track - {clientId, stream}
 * @fires RoomCore#peer-state - {clientId, state} (the subscribe connection's state, ', paused'
 *   when the member paused a stream)
 * @fires SfuRoom#volume - (mcu) {volumes: [{clientId, volume}], speaker}; volume in dBov,
 *   0 loudest .. -127
 */
export class SfuRoom extends RoomCore {
  /**
   * Makes the room from the room::enter answer; Room.enter is the way in (and publishes).
   * @param {import('./signal.js').SignalClient} signal - a registered client
   * @param {object} status - the room::enter answer
   * @param {MediaStream|null} localStream - what we publish
   */
  constructor(signal, status, localStream) {
    super(signal, status, localStream);
    this.streams = new Map(); // clientId -> MediaStream of what we receive from them
    this.paused = new Map(); // streamId -> paused
    // mcu rooms: the room's audio levels and active speaker, a few times a second.
    this.listen('media::audio::volume', ({ volumes, speaker }) => this.emit('volume', { volumes, speaker }));
    // We left a subscribe offer unanswered too long: the server closed its subscribe
    // connection and keeps our subscriptions for a new one.
    this.listen('media::subscribe::timeout', () => this.#replaceSubscribe().catch((err) => this.emit('error', err)));
  }

  #rtcConfig() {
    return { iceServers: this.signal.config?.iceServers ?? [], bundlePolicy: 'max-bundle' };
  }

  /**
   * Strategy hook (RoomCore): a media:: publish / unpublish / pause / resume; re-emits
   * 'peer-state' for the member.
   * @param {{clientId: string, streamId?: string}} body - the notification's body
   * @param {string} action - 'publish', 'unpublish', 'pause' or 'resume'
   * @returns {void}
   */
  onMediaState({ clientId, streamId }, action) {
    if (streamId) this.paused.set(streamId, action === 'pause');
    queueMicrotask(() => this.emit('peer-state', { clientId, state: this.#stateOf(clientId) }));
  }

  /**
   * Strategy hook (RoomCore): a member left; forgets its stream.
   * @param {string} clientId - the member
   * @returns {void}
   */
  onMemberLeft(clientId) {
    this.streams.delete(clientId);
  }

  /**
   * Strategy hook (RoomCore): closes both connections and forgets what we received.
   * @returns {void}
   */
  dropMedia() {
    this.pub?.close();
    this.pub = null;
    this.sub?.close();
    this.sub = null;
    this.streams.clear();
    this.paused.clear();
  }

  /**
   * Strategy hook (RoomCore): after re-entering, publishes again if we may.
   * @param {{mayPublish?: boolean}} status - the new room::enter answer
   * @returns {Promise<void>}
   */
  async restartMedia(status) {
    if (status.mayPublish !== false) await this.publish();
  }

  #stateOf(clientId) {
    const base = this.sub?.connectionState ?? 'new';
    const paused = [...this.paused.entries()].some(([id, p]) => p && id.startsWith(`${clientId}:`));
    return paused ? `${base}, paused` : base;
  }

  /** Publishes our camera and microphone on the publish connection (again after unpublish). */
  /**
   * @param {MediaStream|null} [localStream] - what to publish (default: the room's localStream)
   * @returns {Promise<void>}
   */
  async publish(localStream = this.localStream) {
    this.localStream = localStream;
    if (!this.localStream || this.pub) return;
    // Our candidates wait for the server's answer: the server's publish connection for this
    // offer exists only then.
    const conn = new Connection(this.#rtcConfig(), { sendCandidate: (c) => this.#sendCandidate('publish', c), hold: true });
    const pc = conn.pc;
    this.pub = pc;
    this.pubConn = conn;
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && this.signal.registered) this.#replacePublish(pc).catch((err) => this.emit('error', err));
    };
    for (const track of this.localStream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await this.signal.request('media::publish', { roomId: this.roomId, sdp: pc.localDescription.sdp });
    await conn.setRemote({ type: 'answer', sdp: answer.sdp });
    conn.release();
  }

  #sendCandidate(transport, candidate) {
    this.signal.request('media::exchange', { roomId: this.roomId, transport, type: 'candidate', candidate }).catch(() => {});
  }

  #subscribePc() {
    if (this.sub) return this.sub;
    const conn = new Connection(this.#rtcConfig(), { sendCandidate: (c) => this.#sendCandidate('subscribe', c) });
    const pc = conn.pc;
    this.sub = pc;
    this.subConn = conn;
    pc.ontrack = ({ track, streams }) => {
      // The server labels each forwarded track with its publisher's client id.
      const clientId = streams[0]?.id ?? 'unknown';
      let stream = this.streams.get(clientId);
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(clientId, stream);
      }
      stream.addTrack(track);
      track.onended = () => stream.removeTrack(track);
      this.emit('track', { clientId, stream });
    };
    pc.onconnectionstatechange = () => {
      for (const id of this.members.keys()) this.emit('peer-state', { clientId: id, state: this.#stateOf(id) });
      // (Without signaling, re-entering after the reconnect makes new connections anyway.)
      if (pc.connectionState === 'failed' && this.sub === pc && this.signal.registered) this.#replaceSubscribe().catch((err) => this.emit('error', err));
    };
    return pc;
  }

  /** The subscribe connection failed: close it and ask the server for a new one carrying the
   * same subscriptions (media::restart); its offer is answered from a new connection. */
  async #replaceSubscribe() {
    const old = this.sub;
    this.sub = null;
    this.subConn = null;
    this.streams.clear();
    old?.close();
    await this.signal.request('media::restart', { roomId: this.roomId, transport: 'subscribe' });
  }

  /** The publish connection failed: publish again from a new connection (the server takes
   * an offer from a new connection as one, and ends the old one's streams). */
  async #replacePublish(pc) {
    if (this.pub !== pc) return;
    this.pub = null;
    this.pubConn = null;
    pc.close();
    await this.publish();
  }

  /**
   * Strategy hook (RoomCore): the server's offer or candidate for the subscribe connection.
   * @param {{transport: string, type: string, sdp?: string, candidate?: RTCIceCandidateInit}} body
   *   - the media::exchange body
   * @returns {Promise<void>}
   */
  async onExchange({ transport, type, sdp, candidate }) {
    if (transport !== 'subscribe') return;
    const pc = this.#subscribePc();
    const conn = this.subConn;
    if (type === 'offer') {
      await conn.setRemote({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await this.signal.request('media::exchange', {
        roomId: this.roomId, transport: 'subscribe', type: 'answer', sdp: pc.localDescription.sdp,
      });
    } else if (type === 'candidate') {
      await conn.addCandidate(candidate);
    }
  }

  /** Per publisher, a summary of what we receive from it (same shape as the mesh Room's). */
  /** @returns {Promise<Record<string, PeerStats>>} keyed by the publisher's clientId */
  async stats() {
    const sub = this.sub;
    if (!sub) return {};
    // The server's track ids are stream ids, "clientId:videoN".
    return summarize(await sub.getStats(), () => sub.connectionState, (s) => String(s.trackIdentifier ?? '').split(':')[0] || 'unknown');
  }

  /** Offers the publish connection again (a track added or stopped) and applies the answer. */
  async #renegotiate() {
    const pc = this.pub;
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await this.signal.request('media::publish', { roomId: this.roomId, sdp: pc.localDescription.sdp });
    await this.pubConn.setRemote({ type: 'answer', sdp: answer.sdp });
  }

  /**
   * Shares `stream` (getDisplayMedia) as a second video on the publish connection: the server
   * makes it a stream of ours like the camera (`clientId:videoN`, a later N), which the others
   * receive in our stream, after our camera.
   * @param {MediaStream} stream - the screen (getDisplayMedia)
   * @returns {Promise<void>}
   * @throws {Error} 'not publishing' when there is no publish connection
   */
  async shareScreen(stream) {
    if (!this.pub) throw new Error('not publishing');
    const before = await this.#myVideoStreams();
    this.screenTransceiver = this.pub.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly', streams: [this.localStream ?? stream] });
    await this.#renegotiate();
    // Which of our streams is the screen: the one the server adds now.
    for (let i = 0; i < 25 && !this.screenStreamId; i++) {
      this.screenStreamId = (await this.#myVideoStreams()).find((id) => !before.includes(id));
      if (!this.screenStreamId) await new Promise((r) => setTimeout(r, 200));
    }
  }

  async #myVideoStreams() {
    const status = await this.signal.request('room::status', { roomId: this.roomId });
    return (status.streams ?? []).filter((st) => st.clientId === this.signal.clientId && st.kind === 'video').map((st) => st.streamId);
  }

  /** Stops sharing: ends the screen's stream on the server (media::unpublish) and makes its
   * section inactive, so sharing again adds a new one. */
  /** @returns {Promise<void>} */
  async stopScreen() {
    const t = this.screenTransceiver;
    if (!t) return;
    this.screenTransceiver = null;
    const streamId = this.screenStreamId;
    this.screenStreamId = null;
    await t.sender.replaceTrack(null);
    if (streamId) await this.signal.request('media::unpublish', { roomId: this.roomId, streamId }).catch(() => {});
    if (this.pub) {
      t.direction = 'inactive';
      await this.#renegotiate().catch((err) => this.emit('error', err));
    }
  }

  /** Sends `track` instead of our current track of its kind, without renegotiating. */
  /**
   * @param {MediaStreamTrack} track - the new camera or microphone track
   * @returns {Promise<void>}
   */
  async replaceTrack(track) {
    swapTrack(this.localStream, track);
    const sender = this.pub?.getSenders().find((x) => x.track?.kind === track.kind && x !== this.screenTransceiver?.sender);
    if (sender) await sender.replaceTrack(track);
  }

  /** Stops publishing (e.g. taken off stage): says so (media::unpublish: the server ends our
   * streams; it may have done so already) and closes the publish connection. Publishing again
   * offers on a new connection (docs/protocol.md, "SFU rooms"). */
  /** @returns {Promise<void>} */
  async unpublishLocal() {
    const pc = this.pub;
    this.pub = null;
    this.localStream = null;
    this.screenTransceiver = null;
    this.screenStreamId = null;
    if (!pc) return;
    await this.signal.request('media::unpublish', { roomId: this.roomId }).catch(() => {});
    pc.close();
  }
}
