// taoyao signaling client: one WebSocket, taoyao's envelope, request/response by id,
// notifications, heartbeats, and reconnection with re-register.
// No UI and no WebRTC here: usable on its own.

export const PROTOCOL_VERSION = '1.0.0';

/** A failed request: the server's code and message. */
export class SignalError extends Error {
  constructor(code, message, signal) {
    super(`${code}: ${message}`);
    this.code = code;
    this.reason = message;
    this.signal = signal;
  }
}

/** Close codes after which reconnecting makes no sense. */
const FINAL_CLOSE = new Set([1000, 4000]);

export class SignalClient extends EventTarget {
  /**
   * @param {string} url  ws(s)://host/websocket.signal
   * @param {object} login  {clientId, name, clientType, username, password}
   * @param {object} [options]  {requestTimeoutMs, reconnect}
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
    this.backoffMs = 500;
  }

  /** Connects and registers; resolves with the register answer's body. */
  async connect() {
    this.closedByUs = false;
    await this.#open();
    return this.#register();
  }

  /** Calls `fn(body, message)` for every notification or request of this signal. */
  on(signal, fn) {
    if (!this.handlers.has(signal)) this.handlers.set(signal, new Set());
    this.handlers.get(signal).add(fn);
    return () => this.handlers.get(signal)?.delete(fn);
  }

  /** Sends a request; resolves with the answer's body, rejects with a SignalError. */
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
  respond(message, body = {}, code = '0000', text = 'success') {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ code, message: text, header: message.header, body }));
  }

  /** Closes for good (no reconnect). */
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
      ws.onopen = () => { this.backoffMs = 500; resolve(); };
      ws.onerror = () => reject(new SignalError('2000', `cannot connect to ${this.url}`));
      ws.onmessage = (e) => this.#onMessage(e.data);
      ws.onclose = (e) => this.#onClose(e);
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
    this.#emit('closed', { code: e.code, reason: e.reason });
    if (this.closedByUs || !this.reconnect || FINAL_CLOSE.has(e.code) || !wasRegistered) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 10000);
    setTimeout(async () => {
      try {
        await this.#open();
        await this.#register();
        this.#emit('reconnected', {});
      } catch (_) {
        this.ws?.close();
      }
    }, delay);
  }
}
