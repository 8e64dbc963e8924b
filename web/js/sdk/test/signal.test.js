import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWebSocket, fakeServer, next } from './fakes.js';

globalThis.WebSocket = FakeWebSocket;
const { SignalClient } = await import('../signal.js');

const login = { clientId: 'ann', name: 'Ann', username: 'taoyao', password: 'taoyao' };
const fast = { backoffMs: 5, maxBackoffMs: 20 };

beforeEach(() => {
  fakeServer.up = true;
  fakeServer.acceptLogin = true;
  fakeServer.sockets = [];
  fakeServer.registers = 0;
});

test('a refused login closes its socket and never reports the connection closed', async () => {
  fakeServer.acceptLogin = false;
  const s = new SignalClient('ws://x', login, fast);
  let closed = 0;
  s.addEventListener('closed', () => { closed += 1; });
  await assert.rejects(s.connect(), (err) => err.code === '3401');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fakeServer.sockets.length, 1);
  assert.equal(fakeServer.sockets[0].readyState, FakeWebSocket.CLOSED, 'the failed socket is closed');
  assert.equal(closed, 0, 'no "closed" for a connection that never registered');
  assert.equal(fakeServer.sockets.length, 1, 'and no reconnect');
});

test('after a drop it keeps trying, backing off, until the server is back', async () => {
  const s = new SignalClient('ws://x', login, fast);
  await s.connect();
  fakeServer.up = false;
  const delays = [];
  s.addEventListener('reconnecting', ({ detail }) => {
    delays.push(detail.delayMs);
    if (detail.attempt === 4) fakeServer.up = true;
  });
  const back = next(s, 'reconnected');
  fakeServer.sockets[0].drop();
  const { attempt } = await back;
  assert.equal(attempt, 4, 'three failed tries did not stop it');
  assert.ok(delays[1] >= 10 && delays[2] >= 20, `backs off: ${delays}`);
  assert.ok(delays.every((d) => d <= 20 + 200), `capped: ${delays}`);
  assert.equal(s.registered, true);
  assert.equal(fakeServer.registers, 2, 'registered again once');
  await s.close();
});

test('it gives up (failed) when the login is refused after a drop', async () => {
  const s = new SignalClient('ws://x', login, fast);
  await s.connect();
  fakeServer.acceptLogin = false;
  const failed = next(s, 'failed');
  fakeServer.sockets[0].drop();
  const { code } = await failed;
  assert.equal(code, '3401');
});

test('replaced by another connection (4000) is final', async () => {
  const s = new SignalClient('ws://x', login, fast);
  await s.connect();
  const failed = next(s, 'failed');
  fakeServer.sockets[0].drop(4000);
  assert.equal((await failed).reason, 'replaced');
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(fakeServer.sockets.length, 1, 'no reconnect');
});

test('closing it ourselves does not reconnect', async () => {
  const s = new SignalClient('ws://x', login, fast);
  await s.connect();
  let tries = 0;
  s.addEventListener('reconnecting', () => { tries += 1; });
  await s.close();
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(tries, 0);
});
