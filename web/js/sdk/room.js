// A room as a client sees it: `Room.enter` and the mesh media strategy. One room model
// (RoomCore, room-core.js: members, events, re-entering) with two media strategies: this mesh
// Room (one Peer per other member, negotiation relayed through the server) and SfuRoom
// (sfu-room.js: publish and subscribe connections with the server, for sfu and mcu rooms).
// Events: see room-core.js.

import { Peer, swapTrack } from './peer.js';
import { SfuRoom } from './sfu-room.js';
import { Stage } from './stage.js';
import { Recording } from './recording.js';
import { Chat } from './chat.js';
import { RoomCore } from './room-core.js';

/** @typedef {import('./index.js').EnterOptions} EnterOptions */
/** @typedef {import('./index.js').AnyRoom} AnyRoom */
/** @typedef {import('./index.js').PeerStats} PeerStats */
/**
 * What a room's architecture offers, so the page asks the room instead of its name:
 * `serverMedia` (media goes through the server: publish / subscribe connections),
 * `live` (may go on air), `mix` (the server mixes audio: one "mix" track, volume notifications,
 * a mix recording), `serverRecording` (recordings are written by the server).
 * @param {string} architecture
 *   - 'mesh', 'sfu' or 'mcu'
 * @returns {{serverMedia: boolean, live: boolean, mix: boolean, serverRecording: boolean}}
 *   (the Capabilities of index.d.ts)
 */
export function capabilitiesOf(architecture) {
  const server = architecture === 'sfu' || architecture === 'mcu';
  return { serverMedia: server, live: server, mix: architecture === 'mcu', serverRecording: server };
}

/** The parts every room has, whatever its architecture: who may speak, recording, messages. */
function attachParts(room, signal, status, { password, architecture, mode }) {
  room.password = password;
  room.capabilities = capabilitiesOf(status.architecture);
  // Kept so a re-enter after a server restart makes the room again the same way.
  room.requested = { architecture: status.architecture ?? architecture, mode: status.mode ?? mode };
  room.stage = new Stage(signal, status);
  room.recording = new Recording(signal, status, () => room.localStream);
  room.chat = new Chat(signal, status.roomId);
}

/** A mesh room: one Peer per other member, negotiation relayed by the server
 * (media::exchange); the server never touches media. */
/**
 * Implements AnyRoom (index.d.ts); its events are RoomCore's, with `screen` true on 'track'
 * for a member's shared screen.
 * @extends RoomCore
 * @fires RoomCore#track - {clientId, stream, screen}
 * @fires RoomCore#peer-state - {clientId, state}
 */
export class Room extends RoomCore {
  /**
   * Makes the mesh room from the room::enter answer; Room.enter is the way in.
   * @param {import('./signal.js').SignalClient} signal
   * @param {object} status  the room::enter answer
   * @param {MediaStream|null} localStream
   */
  constructor(signal, status, localStream) {
    super(signal, status, localStream);
    this.peers = new Map();
  }

  /**
   * Enters (creating the room if needed) and starts its media: in a mesh room connects to
   * everyone already there; in an sfu or mcu room publishes to the server and receives what it
   * forwards (an SfuRoom, with the same events and methods).
   * @param {import('./signal.js').SignalClient} signal - a registered client
   * @param {EnterOptions} options - {roomId, password, architecture, mode}
   * @param {MediaStream|null} localStream - what we send (dropped if we may not publish)
   * @returns {Promise<AnyRoom>} a Room (mesh) or an SfuRoom (sfu, mcu)
   * @throws {import('./signal.js').SignalError} the server refused the enter
   */
  static async enter(signal, { roomId, password, architecture, mode }, localStream) {
    // The server sends the answer before any offer for this room (its room task is the one
    // writer to members), and the room below listens before the next message is read.
    const status = await signal.request('room::enter', { roomId, password, architecture, mode, subscribe: 'all' });
    // A listener in broadcast mode, or a live's viewer, sends nothing.
    if (status.mayPublish === false) localStream = null;
    if (capabilitiesOf(status.architecture).serverMedia) {
      const room = new SfuRoom(signal, status, localStream);
      attachParts(room, signal, status, { password, architecture, mode });
      await room.publish();
      return room;
    }
    const room = new Room(signal, status, localStream);
    attachParts(room, signal, status, { password, architecture, mode });
    room.connectToAll();
    return room;
  }

  /**
   * The Peer for a member, made (and wired to this room's events) on first use.
   * @param {string} remoteId - the member's clientId
   * @returns {Peer}
   */
  peerFor(remoteId) {
    let peer = this.peers.get(remoteId);
    if (peer) return peer;
    const rtcConfig = { iceServers: this.signal.config?.iceServers ?? [], bundlePolicy: 'max-bundle' };
    peer = new Peer({
      remoteId,
      // The peer whose id sorts first yields when both offer at once.
      polite: this.signal.clientId < remoteId,
      rtcConfig,
      send: (n) => this.signal.request('media::exchange', { roomId: this.roomId, to: remoteId, ...n }),
    });
    peer.addEventListener('track', (e) => this.emit('track', { clientId: remoteId, stream: e.detail.stream, screen: e.detail.extra }));
    peer.addEventListener('state', (e) => this.emit('peer-state', { clientId: remoteId, state: e.detail.state }));
    peer.addEventListener('error', (e) => this.emit('error', e.detail));
    this.peers.set(remoteId, peer);
    return peer;
  }

  /** The newcomer offers to every member already in the room. */
  /** @returns {void} */
  connectToAll() {
    for (const id of this.members.keys()) {
      const p = this.peerFor(id);
      p.start(this.localStream, { offerer: true });
      if (this.screen) p.addExtra(this.screen.getVideoTracks()[0], this.screen);
    }
  }

  /**
   * Strategy hook (RoomCore): a media::exchange from a member (offer, answer or candidate).
   * @param {{from: string} & Record<string, unknown>} body - the notification's body
   * @returns {Promise<void>}
   */
  async onExchange({ from, ...n }) {
    if (!from) return;
    const p = this.peerFor(from);
    await p.receive(n, this.localStream);
    // A newcomer also gets our shared screen, once its first offer is answered.
    if (this.screen && n.type === 'offer') p.addExtra(this.screen.getVideoTracks()[0], this.screen);
  }

  /** Shares `stream` (getDisplayMedia) as a second video on every member's connection. */
  /**
   * @param {MediaStream} stream - the screen (getDisplayMedia)
   * @returns {Promise<void>}
   */
  async shareScreen(stream) {
    this.screen = stream;
    for (const p of this.peers.values()) p.addExtra(stream.getVideoTracks()[0], stream);
  }

  /** Stops sharing the screen (the tracks are the caller's to stop). */
  /** @returns {Promise<void>} */
  async stopScreen() {
    this.screen = null;
    for (const p of this.peers.values()) p.removeExtra();
  }

  /**
   * Closes and forgets a member's Peer.
   * @param {string} id - the member's clientId
   * @returns {void}
   */
  dropPeer(id) {
    const p = this.peers.get(id);
    if (p) {
      p.close();
      this.peers.delete(id);
    }
  }

  /** Starts sending `localStream` to every member (e.g. made presenter in broadcast mode). */
  /**
   * @param {MediaStream|null} [localStream] - what to send (default: the room's localStream)
   * @returns {Promise<void>}
   */
  async publish(localStream = this.localStream) {
    this.localStream = localStream;
    await Promise.all([...this.peers.values()].map((p) => p.setLocal(localStream)));
  }

  /** Sends `track` instead of our current track of its kind (another camera or microphone)
   * on every connection, without renegotiating. */
  /**
   * @param {MediaStreamTrack} track - the new camera or microphone track
   * @returns {Promise<void>}
   */
  async replaceTrack(track) {
    swapTrack(this.localStream, track);
    await Promise.all([...this.peers.values()].map((p) => p.replaceTrack(track)));
  }

  /** Stops sending to every member; what we receive goes on. */
  /** @returns {void} */
  unpublishLocal() {
    this.localStream = null;
    for (const p of this.peers.values()) p.setLocal(null).catch((err) => this.emit('error', err));
  }

  /**
   * Strategy hook (RoomCore): a member left; closes its Peer.
   * @param {string} clientId - the member
   * @returns {void}
   */
  onMemberLeft(clientId) {
    this.dropPeer(clientId);
  }

  /**
   * Strategy hook (RoomCore): closes every Peer.
   * @returns {void}
   */
  dropMedia() {
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
  }

  /**
   * Strategy hook (RoomCore): after re-entering, offers to every member again.
   * @returns {Promise<void>}
   */
  async restartMedia() {
    this.connectToAll();
  }

  /** Per remote member, a summary of its connection's getStats(). */
  /** @returns {Promise<Record<string, PeerStats>>} keyed by the member's clientId */
  async stats() {
    const out = {};
    for (const [id, p] of this.peers) out[id] = await p.stats();
    return out;
  }
}
