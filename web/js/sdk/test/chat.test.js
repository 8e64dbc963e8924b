import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSignal, next } from './fakes.js';
import { Chat } from '../chat.js';

test('messages go out on room::broadcast and come in with the sender', async () => {
  const signal = new FakeSignal('ann');
  const chat = new Chat(signal, 'r1');
  const mine = await chat.send('hello', 'Ann');
  assert.deepEqual(signal.requests[0].signal, 'room::broadcast');
  assert.equal(signal.requests[0].body.roomId, 'r1');
  assert.equal(signal.requests[0].body.kind, 'chat');
  assert.equal(mine.mine, true);
  const got = next(chat, 'message');
  signal.notify('room::broadcast', { roomId: 'r1', from: 'bob', kind: 'chat', text: 'hi', name: 'Bob', at: 5 });
  const m = await got;
  assert.deepEqual({ from: m.from, name: m.name, text: m.text, at: m.at, mine: m.mine }, { from: 'bob', name: 'Bob', text: 'hi', at: 5, mine: false });
  assert.equal(chat.messages.length, 2);
});

test('other rooms, our own echo and unknown kinds are ignored', () => {
  const signal = new FakeSignal('ann');
  const chat = new Chat(signal, 'r1');
  let n = 0;
  chat.addEventListener('message', () => { n += 1; });
  signal.notify('room::broadcast', { roomId: 'r2', from: 'bob', kind: 'chat', text: 'x' });
  signal.notify('room::broadcast', { roomId: 'r1', from: 'ann', kind: 'chat', text: 'x' });
  signal.notify('room::broadcast', { roomId: 'r1', from: 'bob', kind: 'nope', text: 'x' });
  signal.notify('room::broadcast', { roomId: 'r1', from: 'bob', kind: 'chat', text: 42 });
  assert.equal(n, 0);
});

test('hands and media state are tracked per member and forgotten when it leaves', async () => {
  const signal = new FakeSignal('ann');
  const chat = new Chat(signal, 'r1');
  signal.notify('room::broadcast', { roomId: 'r1', from: 'bob', kind: 'hand', raised: true });
  assert.ok(chat.hands.has('bob'));
  const st = next(chat, 'member-state');
  signal.notify('room::broadcast', { roomId: 'r1', from: 'cy', kind: 'state', mic: false, camera: true, hand: true });
  assert.deepEqual(await st, { clientId: 'cy', mic: false, camera: true });
  assert.ok(chat.hands.has('cy'));
  await chat.raiseHand(true);
  assert.ok(chat.hands.has('ann'));
  await chat.tellState({ mic: true, camera: false });
  assert.deepEqual(signal.requests.at(-1).body, { roomId: 'r1', kind: 'state', mic: true, camera: false, hand: true, screen: false });
  chat.forget('bob');
  assert.ok(!chat.hands.has('bob'));
  chat.close();
  signal.notify('room::broadcast', { roomId: 'r1', from: 'bob', kind: 'hand', raised: true });
  assert.ok(!chat.hands.has('bob'), 'closed: no more updates');
});
