// What members tell each other through the room, on `room::broadcast` (the server relays any
// body to every other member, adding `from`): chat messages, raised hands and each member's
// microphone / camera state. The payloads are a client convention documented in
// docs/protocol.md ("Room messages between web clients"); the server does not read them.
// Events: 'message' {from, name, text, at, mine}, 'hand' {clientId, raised},
// 'member-state' {clientId, mic, camera}, 'screen' {clientId, on}.

/** @typedef {import('./index.js').ChatMessage} ChatMessage */
/**
 * Room messages on room::broadcast: chat, raised hands, microphone / camera / screen state
 * (`room.chat`).
 * @property {ChatMessage[]} messages - the chat so far
 * @property {Set<string>} hands - clientIds with a raised hand
 * @property {Set<string>} screens - clientIds sharing their screen
 * @property {Map<string, {mic: boolean, camera: boolean}>} states - each member's last told state
 * @fires Chat#message - a ChatMessage
 * @fires Chat#hand - {clientId, raised}
 * @fires Chat#member-state - {clientId, mic, camera}
 * @fires Chat#screen - {clientId, on}
 */
export class Chat extends EventTarget {
  /**
   * Follows one room's room::broadcast notifications.
   * @param {import('./signal.js').SignalClient} signal
   * @param {string} roomId
   */
  constructor(signal, roomId) {
    super();
    this.signal = signal;
    this.roomId = roomId;
    /** @type {{from: string, name: string, text: string, at: number, mine: boolean}[]} */
    this.messages = [];
    /** clientIds with a raised hand (ours too) */
    this.hands = new Set();
    /** clientId -> {mic, camera} as last told */
    this.states = new Map();
    /** clientIds sharing their screen (ours too) */
    this.screens = new Set();
    this.unsubscribe = [signal.on('room::broadcast', (b) => b.roomId === roomId && this.#onBroadcast(b))];
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #onBroadcast(b) {
    const from = b.from;
    if (!from || from === this.signal.clientId) return;
    if (b.kind === 'chat' && typeof b.text === 'string') {
      const m = { from, name: String(b.name ?? from), text: b.text.slice(0, 2000), at: Number(b.at) || Date.now(), mine: false };
      this.messages.push(m);
      this.#emit('message', m);
    } else if (b.kind === 'hand') {
      this.#setHand(from, !!b.raised);
    } else if (b.kind === 'screen') {
      this.#setScreen(from, !!b.on);
    } else if (b.kind === 'state') {
      this.states.set(from, { mic: b.mic !== false, camera: b.camera !== false });
      this.#emit('member-state', { clientId: from, mic: b.mic !== false, camera: b.camera !== false });
      if (b.hand !== undefined) this.#setHand(from, !!b.hand);
      if (b.screen !== undefined) this.#setScreen(from, !!b.screen);
    }
  }

  #setHand(clientId, raised) {
    if (raised === this.hands.has(clientId)) return;
    if (raised) this.hands.add(clientId); else this.hands.delete(clientId);
    this.#emit('hand', { clientId, raised });
  }

  #setScreen(clientId, on) {
    if (on === this.screens.has(clientId)) return;
    if (on) this.screens.add(clientId); else this.screens.delete(clientId);
    this.#emit('screen', { clientId, on });
  }

  /** Tells the room we started (or stopped) sharing our screen. */
  /**
   * @param {boolean} on - whether we share our screen now
   * @fires Chat#screen
   * @returns {Promise<void>}
   */
  async tellScreen(on) {
    this.#setScreen(this.signal.clientId, on);
    await this.#send({ kind: 'screen', on });
  }

  #send(body) {
    return this.signal.request('room::broadcast', { roomId: this.roomId, ...body });
  }

  /** Sends a chat message to everyone in the room; resolves once the server took it. */
  /**
   * @param {string} text - the message
   * @param {string} [name] - the name shown (default: the login's name, or our clientId)
   * @fires Chat#message
   * @returns {Promise<ChatMessage>} the message as sent
   */
  async send(text, name = this.signal.login?.name ?? this.signal.clientId) {
    const m = { from: this.signal.clientId, name, text, at: Date.now(), mine: true };
    await this.#send({ kind: 'chat', text, name, at: m.at });
    this.messages.push(m);
    this.#emit('message', m);
    return m;
  }

  /** Raises or lowers our hand, for everyone. */
  /**
   * @param {boolean} raised - true raises, false lowers
   * @fires Chat#hand
   * @returns {Promise<void>}
   */
  async raiseHand(raised) {
    await this.#send({ kind: 'hand', raised });
    this.#setHand(this.signal.clientId, raised);
  }

  /** Tells the room our microphone and camera state (and hand): after a change, and to a
   * newcomer, who cannot learn it otherwise in a mesh room. */
  /**
   * @param {{mic: boolean, camera: boolean}} state - our microphone and camera, true when on
   * @returns {Promise<unknown>}
   */
  tellState({ mic, camera }) {
    const me = this.signal.clientId;
    return this.#send({ kind: 'state', mic, camera, hand: this.hands.has(me), screen: this.screens.has(me) });
  }

  /** A member left: forget its hand and state. */
  /**
   * @param {string} clientId - the member who left
   * @returns {void}
   */
  forget(clientId) {
    this.states.delete(clientId);
    this.#setHand(clientId, false);
    this.#setScreen(clientId, false);
  }

  /**
   * Stops following the room.
   * @returns {void}
   */
  close() {
    for (const u of this.unsubscribe) u();
  }
}
