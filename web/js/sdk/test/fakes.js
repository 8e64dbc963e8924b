// Test doubles for the SDK's unit tests (node --test, no browser): a fake WebSocket speaking
// taoyao's envelope to a scriptable fake server, and a fake signal client.

// Node 18 (Debian 12's) has no global CustomEvent; the SDK's events use it.
globalThis.CustomEvent ??= class CustomEvent extends Event {
  constructor(type, options = {}) {
    super(type, options);
    this.detail = options.detail ?? null;
  }
};

/** The server the fake sockets reach: `up` (accepts connections), `acceptLogin`. */
export const fakeServer = { up: true, acceptLogin: true, sockets: [], registers: 0 };

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    fakeServer.sockets.push(this);
    setTimeout(() => {
      if (fakeServer.up) {
        this.readyState = FakeWebSocket.OPEN;
        this.onopen?.();
      } else {
        this.readyState = FakeWebSocket.CLOSED;
        this.onerror?.();
        this.onclose?.({ code: 1006, reason: '' });
      }
    }, 1);
  }

  send(text) {
    const msg = JSON.parse(text);
    const { header, body } = msg;
    const reply = (code, message, b = {}) => setTimeout(() => this.onmessage?.({ data: JSON.stringify({ code, message, header, body: b }) }), 1);
    if (header.signal === 'client::register') {
      fakeServer.registers += 1;
      if (fakeServer.acceptLogin) reply('0000', 'success', { clientId: body.clientId });
      else reply('3401', 'bad username or password');
    } else {
      reply('0000', 'success', {});
    }
  }

  close(code = 1000) {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.readyState = FakeWebSocket.CLOSED;
    setTimeout(() => this.onclose?.({ code, reason: '' }), 1);
  }

  /** The server side drops the connection. */
  drop(code = 1006) {
    this.close(code);
  }
}

/** A signal client double: records requests, answers them with `answer(signal, body)`, and
 * delivers notifications with `notify(signal, body)`. */
export class FakeSignal extends EventTarget {
  constructor(clientId = 'me', answer = () => ({})) {
    super();
    this.clientId = clientId;
    this.login = { clientId, name: clientId };
    this.answer = answer;
    this.requests = [];
    this.handlers = new Map();
  }

  on(signal, fn) {
    if (!this.handlers.has(signal)) this.handlers.set(signal, new Set());
    this.handlers.get(signal).add(fn);
    return () => this.handlers.get(signal)?.delete(fn);
  }

  async request(signal, body = {}) {
    this.requests.push({ signal, body });
    return this.answer(signal, body);
  }

  notify(signal, body) {
    for (const fn of this.handlers.get(signal) ?? []) fn(body, { header: { signal }, body });
  }
}

/** Resolves with the next `type` event's detail from `target`. */
export function next(target, type, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
    target.addEventListener(type, (e) => { clearTimeout(timer); resolve(e.detail); }, { once: true });
  });
}
