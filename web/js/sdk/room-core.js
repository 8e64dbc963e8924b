// What every room is, whatever carries its media: membership from room:: notifications, the
// room's end, muting, leaving, and entering again after the signaling connection came back.
// The media strategy is the subclass: `Room` (mesh: a connection per member, room.js) or
// `SfuRoom` (server: publish + subscribe connections with the server, sfu-room.js). It
// implements onExchange(body), onMemberLeft(clientId), dropMedia() and restartMedia(status).
// Events: 'member-joined' {member}, 'member-left' {clientId, reason}, 'media-state' {clientId,
// kind, action, streamId?}, 'reentered' {status}, 'error', 'closed' {reason}, and the
// strategy's 'track' {clientId, stream, screen?} and 'peer-state' {clientId, state}.

/** @typedef {import('./index.js').Member} Member */
/** @typedef {import('./index.js').Capabilities} Capabilities */
/**
 * The room model both media strategies share: what index.d.ts calls {@link AnyRoom} (Room and
 * SfuRoom extend it; RoomCore itself is not in index.d.ts). Room.enter also attaches
 * `password`, `capabilities`, `stage`, `recording` and `chat`.
 * @abstract
 * @property {string} roomId - the room's id
 * @property {string} name - the room's name
 * @property {string} architecture - 'mesh', 'sfu' or 'mcu'
 * @property {string} owner - the owner's clientId
 * @property {Map<string, Member>} members - the other members, by clientId
 * @property {MediaStream|null} localStream - what we send
 * @fires RoomCore#member-joined - {member}
 * @fires RoomCore#member-left - {clientId, reason}
 * @fires RoomCore#media-state - {clientId, kind, action, streamId?}
 * @fires RoomCore#reentered - {status}: entered again after the signaling connection came back
 * @fires RoomCore#error - an Error from negotiating
 * @fires RoomCore#closed - {reason}
 * @fires RoomCore#track - (the strategy's) {clientId, stream, screen?}
 * @fires RoomCore#peer-state - (the strategy's) {clientId, state}
 */
export class RoomCore extends EventTarget {
  /**
   * Takes the members of the room::enter answer (all but us) and follows the room.
   * @param {import('./signal.js').SignalClient} signal
   * @param {object} status  the room::enter answer
   * @param {MediaStream|null} localStream
   */
  constructor(signal, status, localStream) {
    super();
    this.signal = signal;
    this.roomId = status.roomId;
    this.name = status.name;
    this.architecture = status.architecture;
    this.owner = status.owner;
    this.localStream = localStream;
    this.members = new Map();
    this.unsubscribe = [];
    this.#setMembers(status);
    this.#listen();
  }

  /**
   * Dispatches a CustomEvent of this room (for the media strategies).
   * @param {string} type - the event's name
   * @param {any} [detail] - its detail
   * @returns {void}
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Calls `fn(body)` for `signal` notifications about this room, until the room ends. */
  /**
   * @param {string} signal - a room notification's signal
   * @param {(body: any) => void} fn - called with its body
   * @returns {void}
   */
  listen(signal, fn) {
    this.unsubscribe.push(this.signal.on(signal, (b) => b.roomId === this.roomId && fn(b)));
  }

  #setMembers(status) {
    this.members.clear();
    for (const m of status.members ?? []) if (m.clientId !== this.signal.clientId) this.members.set(m.clientId, m);
  }

  #listen() {
    this.listen('room::enter', ({ client }) => {
      this.members.set(client.clientId, client);
      this.emit('member-joined', { member: client });
    });
    this.listen('room::leave', ({ clientId, reason }) => {
      this.members.delete(clientId);
      this.onMemberLeft(clientId);
      this.emit('member-left', { clientId, reason });
    });
    this.listen('room::close', ({ reason }) => this.end(reason));
    this.listen('room::expel', ({ reason }) => this.end(reason));
    this.listen('media::exchange', (b) => {
      Promise.resolve().then(() => this.onExchange(b)).catch((err) => this.emit('error', err));
    });
    for (const action of ['publish', 'unpublish', 'pause', 'resume']) {
      this.listen(`media::${action}`, (b) => {
        this.onMediaState?.(b, action);
        this.emit('media-state', { clientId: b.clientId, kind: b.kind, action, streamId: b.streamId });
      });
    }
    // After a reconnect the server has dropped our membership (or, restarted, the room):
    // enter again, the room made the same way if it is gone, and start the media anew.
    const again = () => this.#reenter().catch((err) => this.end(`could not re-enter: ${err.message}`));
    this.signal.addEventListener('reconnected', again);
    this.unsubscribe.push(() => this.signal.removeEventListener('reconnected', again));
  }

  async #reenter() {
    this.dropMedia();
    // The server's first offers may come before the answer: onExchange makes what they need.
    const status = await this.signal.request('room::enter', { roomId: this.roomId, password: this.password, subscribe: 'all', ...this.requested });
    this.#setMembers(status);
    this.stage?.update(status);
    await this.restartMedia(status);
    this.emit('reentered', { status });
  }

  /** Mutes or unmutes our own audio or video, and tells the room (in sfu/mcu rooms the
   * server also stops forwarding it). */
  /**
   * @param {'audio'|'video'} kind - which of our tracks
   * @param {boolean} enabled - false mutes
   * @returns {Promise<void>}
   */
  async setEnabled(kind, enabled) {
    for (const t of this.localStream?.getTracks() ?? []) if (t.kind === kind) t.enabled = enabled;
    await this.signal.request(enabled ? 'media::resume' : 'media::pause', { roomId: this.roomId, kind });
  }

  /**
   * Leaves the room (room::leave) and ends it here, even if the request fails.
   * @fires RoomCore#closed
   * @returns {Promise<void>}
   */
  async leave() {
    try { await this.signal.request('room::leave', { roomId: this.roomId }); } finally { this.end('left'); }
  }

  /**
   * Ends the room here (once): drops the media, stops listening, closes stage, recording, chat.
   * @param {string} reason - why (the 'closed' event's reason)
   * @fires RoomCore#closed
   * @returns {void}
   */
  end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.dropMedia();
    for (const u of this.unsubscribe) u();
    this.stage?.close();
    this.recording?.close();
    this.chat?.close();
    this.emit('closed', { reason });
  }
}
