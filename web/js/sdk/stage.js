// Who may speak in a room: meeting modes (meeting / broadcast / intercom floor) and live
// streaming (anchor, viewers, co-hosts). One Stage per room, for any architecture.
// Events: 'mode' {mode, presenters, floor}, 'floor' {mode state + event}, 'live' {state|null},
// 'cohost' {action, clientId, from, by}, 'may-publish' {mayPublish}, 'republish' (our streams
// were ended by the server though we may still publish: publish again).

export class Stage extends EventTarget {
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
  update(status) {
    this.mode = status.mode ?? 'meeting';
    this.presenters = status.presenters ?? [];
    this.floor = status.floor ?? { holder: null, queue: [] };
    this.live = status.live ?? null;
    this.#emit('mode', { mode: this.mode, presenters: this.presenters, floor: this.floor });
    this.#emit('live', this.live);
    this.#recheck();
  }

  holdsFloor() {
    return this.floor?.holder === this.signal.clientId;
  }

  #req(signal, body = {}) {
    return this.signal.request(signal, { roomId: this.roomId, ...body });
  }

  setMode(mode) { return this.#req('room::mode', { mode }); }
  presenter(clientId, action = 'add') { return this.#req('room::presenter', { clientId, action }); }
  requestFloor() { return this.#req('room::floor', { action: 'request' }); }
  releaseFloor() { return this.#req('room::floor', { action: 'release' }); }
  async startLive() {
    this.live = await this.#req('live::start');
    this.#emit('live', this.live);
    return this.live;
  }
  stopLive() { return this.#req('live::stop'); }
  /** action: request | invite | accept | decline | end; clientId: the viewer (anchor's side). */
  cohost(action, clientId) { return this.#req('live::cohost', clientId ? { action, clientId } : { action }); }

  close() {
    for (const u of this.unsubscribe) u();
  }
}
