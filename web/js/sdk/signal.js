// taoyao signaling client: one WebSocket, taoyao's envelope, request/response by id,
// notifications, heartbeats, and reconnection with re-register.
// No UI and no WebRTC here: usable on its own.
// Events: 'closed' {code, reason} (a registered connection dropped), 'reconnecting' {attempt,
// delayMs} (before each try), 'reconnected' {attempt}, 'failed' {reason} (reconnection gave up:
// the login is refused now, or `giveUpAfterMs` passed), 'config', 'error' (platform::error).

/** @typedef {import('./index.js').Login} Login */
/** @typedef {import('./index.js').SignalOptions} SignalOptions */
/**
 * The version of the signaling protocol this SDK speaks (the `v` of every header).
 * @type {string}
 */
export const PROTOCOL_VERSION = '1.0.0';

/** A failed request: the server's code and message. */
/**
 * @augments Error
 * @property {string} code - the server's code (docs/protocol.md, "Codes"); '2000' not
 *   connected or connection closed, '2001' no answer in time
 * @property {string} reason - the server's message
 * @property {string} [signal] - the signal of the failed request
 */
export class SignalError extends Error {
  /**
   * Makes the error of a failed request.
   * @param {string} code - the server's code
   * @param {string} message - the server's message (kept as `reason`)
   * @param {string} [signal] - the request's signal
   */
  constructor(code, message, signal) {
    super(`${code}: ${message}`);
    this.code = code;
    this.reason = message;
    this.signal = signal;
  }
}

/** Close codes after which reconnecting makes no sense. */
const FINAL_CLOSE = new Set([1000, 4000]);
/** Register answers that will not change by trying again (bad login, bad token). */
const FINAL_REGISTER = new Set(['3401', '1003']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One WebSocket to the server: taoyao's envelope, requests by id, notifications, heartbeats,
 * and reconnection with re-register. Events are CustomEvents (payload in `detail`).
 * @property {string} url - ws(s)://host/websocket.signal
 * @property {Login} login - what is sent on client::register
 * @property {string} [clientId] - our client id, once registered
 * @property {boolean} registered - whether the current socket is registered
 * @property {{iceServers?: RTCIceServer[], limits?: Record<string, number>}|null} config - the
 *   last client::config body
 * @fires SignalClient#closed - {code, reason}: a registered connection dropped
 * @fires SignalClient#reconnecting - {attempt, delayMs}: before each try
 * @fires SignalClient#reconnected - {attempt}: registered again
 * @fires SignalClient#failed - {reason, code}: reconnection gave up (login refused, replaced,
 *   or `giveUpAfterMs` passed)
 * @fires SignalClient#config - the client::config body
 * @fires SignalClient#error - a SignalError from platform::error
 */
export class SignalClient extends EventTarget {
  /**
   * Makes a client for one server and login; nothing is sent before connect().
   * @param {string} url  ws(s)://host/websocket.signal
   * @param {object} login  {clientId, name, clientType, username, password}
   * @param {object} [options]  {requestTimeoutMs, reconnect, backoffMs (first retry),
   *   maxBackoffMs, giveUpAfterMs}
   * Types as in index.d.ts: `login` is a {@link Login}, `options` a {@link SignalOptions}.
   */
  constructor(url, login, options = {}) {
    super();
    this.url = url;
    this.login = login;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this.reconnect = options.reconnect ?? true;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.config = null;
    this.registered = false;
    this.closedByUs = false;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 4000;
    this.giveUpAfterMs = options.giveUpAfterMs ?? 300000;
    this.reconnecting = false;
  }

  /** Connects and registers; resolves with the register answer's body. A refused register
   * closes this connection (and never reconnects), so a retry is a new SignalClient. */
  /**
   * @returns {Promise<Record<string, unknown>>} the register answer's body
   * @throws {SignalError} the socket could not open, or the register was refused
   */
  async connect() {
    this.closedByUs = false;
    try {
      await this.#open();
      return await this.#register();
    } catch (err) {
      this.closedByUs = true;
      this.ws?.close(1000);
      throw err;
    }
  }

  /** Calls `fn(body, message)` for every notification or request of this signal. */
  /**
   * @param {string} signal - the signal, e.g. 'room::enter'
   * @param {(body: any, message: any) => void} fn - called with the body and the whole message
   * @returns {() => void} unsubscribes `fn`
   */
  on(signal, fn) {
    if (!this.handlers.has(signal)) this.handlers.set(signal, new Set());
    this.handlers.get(signal).add(fn);
    return () => this.handlers.get(signal)?.delete(fn);
  }

  /** Sends a request; resolves with the answer's body, rejects with a SignalError. */
  /**
   * @param {string} signal - the request's signal
   * @param {Record<string, unknown>} [body] - the request's body (default {})
   * @returns {Promise<any>} the answer's body
   * @throws {SignalError} '2000' not connected or closed, '2001' no answer in time, or the
   *   server's code
   */
  request(signal, body = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new SignalError('2000', 'not connected', signal));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError('2001', `no answer to ${signal}`, signal));
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, signal });
      this.ws.send(JSON.stringify({ header: { v: PROTOCOL_VERSION, id, signal }, body }));
    });
  }

  /** Answers a request the server sent (same id and signal). */
  /**
   * @param {any} message - the server's request (its header is sent back)
   * @param {Record<string, unknown>} [body] - the answer's body (default {})
   * @param {string} [code] - the answer's code (default '0000')
   * @param {string} [text] - the answer's message (default 'success')
   * @returns {void}
   */
  respond(message, body = {}, code = '0000', text = 'success') {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ code, message: text, header: message.header, body }));
  }

  /** Closes for good (no reconnect). */
  /**
   * Says client::close (if it can), then closes the socket.
   * @returns {Promise<void>}
   */
  async close() {
    this.closedByUs = true;
    clearInterval(this.heartbeat);
    try { await this.request('client::close'); } catch (_) { /* closing anyway */ }
    this.ws?.close(1000);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new SignalError('2000', `cannot connect to ${this.url}`));
      // A socket we replaced may still report: only the current one counts.
      ws.onmessage = (e) => ws === this.ws && this.#onMessage(e.data);
      ws.onclose = (e) => ws === this.ws && this.#onClose(e);
    });
  }

  async #register() {
    const body = await this.request('client::register', this.login);
    this.registered = true;
    this.clientId = body.clientId;
    return body;
  }

  #onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (_) { return; }
    const { header } = msg;
    if (!header) return;
    const waiting = msg.code !== undefined ? this.pending.get(header.id) : undefined;
    if (waiting && waiting.signal === header.signal) {
      this.pending.delete(header.id);
      clearTimeout(waiting.timer);
      if (msg.code === '0000') waiting.resolve(msg.body ?? {});
      else waiting.reject(new SignalError(msg.code, msg.message, header.signal));
      return;
    }
    if (header.signal === 'client::config') this.#configure(msg.body);
    if (header.signal === 'platform::error') {
      this.#emit('error', new SignalError(msg.code, msg.message, header.signal));
    }
    for (const fn of this.handlers.get(header.signal) ?? []) {
      try { fn(msg.body ?? {}, msg); } catch (err) { console.error(header.signal, err); }
    }
  }

  #configure(config) {
    this.config = config;
    clearInterval(this.heartbeat);
    const every = config?.limits?.heartbeatIntervalMs ?? 20000;
    this.heartbeat = setInterval(() => {
      this.request('client::heartbeat').catch(() => {});
    }, every);
    this.#emit('config', config);
  }

  #onClose(e) {
    clearInterval(this.heartbeat);
    const wasRegistered = this.registered;
    this.registered = false;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new SignalError('2000', 'connection closed', p.signal));
    }
    this.pending.clear();
    if (!wasRegistered) return; // a try that failed: the reconnect loop goes on
    this.#emit('closed', { code: e.code, reason: e.reason });
    if (this.closedByUs || !this.reconnect) return;
    if (FINAL_CLOSE.has(e.code)) {
      this.#emit('failed', { reason: e.code === 4000 ? 'replaced' : 'closed', code: e.code });
      return;
    }
    this.#reconnectLoop();
  }

  /** Tries again and again, backing off (with a little jitter) up to `maxBackoffMs`, until the
   * server takes us back, refuses the login, or `giveUpAfterMs` has passed. */
  async #reconnectLoop() {
    if (this.reconnecting) return;
    this.reconnecting = true;
    const started = Date.now();
    try {
      for (let attempt = 1; !this.closedByUs; attempt++) {
        const delayMs = Math.min(this.backoffMs * 2 ** (attempt - 1), this.maxBackoffMs) + Math.floor(Math.random() * 200);
        this.#emit('reconnecting', { attempt, delayMs });
        await sleep(delayMs);
        if (this.closedByUs) return;
        try {
          await this.#open();
          await this.#register();
          this.#emit('reconnected', { attempt });
          return;
        } catch (err) {
          const ws = this.ws;
          this.ws = null;
          try { ws?.close(); } catch (_) { /* already closed */ }
          if (FINAL_REGISTER.has(err?.code)) {
            this.#emit('failed', { reason: err.reason ?? err.message, code: err.code });
            return;
          }
          if (Date.now() - started > this.giveUpAfterMs) {
            this.#emit('failed', { reason: 'gave up', code: err?.code });
            return;
          }
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }
}
