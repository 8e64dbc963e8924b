// Who may speak in a room: meeting modes (meeting / broadcast / intercom floor) and live
// streaming (anchor, viewers, co-hosts). One Stage per room, for any architecture.
// Events: 'mode' {mode, presenters, floor}, 'floor' {mode state + event}, 'live' {state|null},
// 'cohost' {action, clientId, from, by}, 'may-publish' {mayPublish}, 'republish' (our streams
// were ended by the server though we may still publish: publish again).

/**
 * Modes, presenters, floor and live of one room (`room.stage`).
 * @property {'meeting'|'broadcast'|'intercom'} mode - the meeting mode
 * @property {string[]} presenters - who may publish in broadcast mode
 * @property {{holder: string|null, queue: string[]}} floor - intercom: who holds the floor,
 *   who waits
 * @property {{anchor: string, cohosts: string[], viewers: number, paused: boolean, startedAt: number}|null} live
 *   - the live, if one runs
 * @property {boolean} mayPublish - whether we may publish now
 * @fires Stage#mode - {mode, presenters, floor}
 * @fires Stage#floor - the mode state and the floor event
 * @fires Stage#live - the live's state, or null
 * @fires Stage#live-stopped - the live::stop body
 * @fires Stage#live-paused - the live::pause body
 * @fires Stage#cohost - {action, clientId, from, by}
 * @fires Stage#may-publish - {mayPublish}
 * @fires Stage#republish - {}: the server ended our streams though we may still publish
 */
export class Stage extends EventTarget {
  /**
   * Takes the stage state of a room::enter answer and follows the room's notifications.
   * @param {import('./signal.js').SignalClient} signal - the room's client
   * @param {object} status - the room::enter answer
   */
  constructor(signal, status) {
    super();
    this.signal = signal;
    this.roomId = status.roomId;
    this.mode = status.mode ?? 'meeting';
    this.presenters = status.presenters ?? [];
    this.floor = status.floor ?? { holder: null, queue: [] };
    this.live = status.live ?? null;
    this.mayPublish = status.mayPublish !== false;
    this.unsubscribe = [];
    const on = (s, fn) => this.unsubscribe.push(signal.on(s, (b) => b.roomId === this.roomId && fn(b)));
    const modeState = (b) => {
      this.mode = b.mode;
      this.presenters = b.presenters;
      this.floor = b.floor;
    };
    on('room::mode', (b) => { modeState(b); this.#emit('mode', b); this.#recheck(); });
    on('room::presenter', (b) => { modeState(b); this.#emit('mode', b); this.#recheck(); });
    on('room::floor', (b) => { modeState(b); this.#emit('floor', b); });
    on('live::start', (b) => { this.live = b; this.#emit('live', b); this.#recheck(); });
    on('live::stop', (b) => {
      // The server ends co-hosts' streams when the live stops, though they may go on
      // publishing in the meeting: they must publish again (a new connection).
      const wasCohost = (this.live?.cohosts ?? []).includes(signal.clientId);
      this.live = null;
      this.#emit('live', null);
      this.#emit('live-stopped', b);
      this.#recheck();
      if (wasCohost && this.mayPublish) this.#emit('republish', {});
    });
    on('live::pause', (b) => { if (this.live) this.live.paused = true; this.#emit('live', this.live); this.#emit('live-paused', b); });
    on('live::resume', () => { if (this.live) this.live.paused = false; this.#emit('live', this.live); });
    on('live::cohost', (b) => {
      if (this.live && b.action === 'accept') this.live.cohosts = [...new Set([...(this.live.cohosts ?? []), b.clientId])];
      if (this.live && b.action === 'end') this.live.cohosts = (this.live.cohosts ?? []).filter((c) => c !== b.clientId);
      this.#emit('cohost', b);
      this.#recheck();
    });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Recomputes whether we may publish, as the server does, and tells when it changed. */
  #recheck() {
    const me = this.signal.clientId;
    const may = this.live
      ? this.live.anchor === me || (this.live.cohosts ?? []).includes(me)
      : this.mode !== 'broadcast' || this.presenters.includes(me);
    if (may !== this.mayPublish) {
      this.mayPublish = may;
      this.#emit('may-publish', { mayPublish: may });
    }
  }

  /** Takes the state of a fresh room::enter answer (after re-entering). */
  /**
   * @param {Record<string, unknown>} status - the room::enter answer
   * @fires Stage#mode
   * @fires Stage#live
   * @returns {void}
   */
  update(status) {
    this.mode = status.mode ?? 'meeting';
    this.presenters = status.presenters ?? [];
    this.floor = status.floor ?? { holder: null, queue: [] };
    this.live = status.live ?? null;
    this.#emit('mode', { mode: this.mode, presenters: this.presenters, floor: this.floor });
    this.#emit('live', this.live);
    this.#recheck();
  }

  /**
   * Whether we hold the floor (intercom mode).
   * @returns {boolean}
   */
  holdsFloor() {
    return this.floor?.holder === this.signal.clientId;
  }

  #req(signal, body = {}) {
    return this.signal.request(signal, { roomId: this.roomId, ...body });
  }

  /**
   * Sets the room's mode (the owner; room::mode).
   * @param {string} mode - 'meeting', 'broadcast' or 'intercom'
   * @returns {Promise<unknown>}
   */
  setMode(mode) { return this.#req('room::mode', { mode }); }
  /**
   * Adds, removes or hands over to a presenter (broadcast mode; room::presenter).
   * @param {string} clientId - the member
   * @param {'add'|'remove'|'handover'} [action] - default 'add'
   * @returns {Promise<unknown>}
   */
  presenter(clientId, action = 'add') { return this.#req('room::presenter', { clientId, action }); }
  /**
   * Asks for the floor (intercom mode), or a place in its queue.
   * @returns {Promise<unknown>}
   */
  requestFloor() { return this.#req('room::floor', { action: 'request' }); }
  /**
   * Gives the floor back (intercom mode).
   * @returns {Promise<unknown>}
   */
  releaseFloor() { return this.#req('room::floor', { action: 'release' }); }
  /**
   * Goes live (the owner of an sfu or mcu room; live::start).
   * @fires Stage#live
   * @returns {Promise<unknown>} the live's state
   */
  async startLive() {
    this.live = await this.#req('live::start');
    this.#emit('live', this.live);
    return this.live;
  }
  /**
   * Ends the live (live::stop).
   * @returns {Promise<unknown>}
   */
  stopLive() { return this.#req('live::stop'); }
  /** action: request | invite | accept | decline | end; clientId: the viewer (anchor's side). */
  /**
   * @param {'request'|'invite'|'accept'|'decline'|'end'} action - the co-host step
   * @param {string} [clientId] - the viewer (on the anchor's side)
   * @returns {Promise<unknown>}
   */
  cohost(action, clientId) { return this.#req('live::cohost', clientId ? { action, clientId } : { action }); }

  /**
   * Stops following the room.
   * @returns {void}
   */
  close() {
    for (const u of this.unsubscribe) u();
  }
}
