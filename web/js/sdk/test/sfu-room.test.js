import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSignal, FakePeerConnection, FakeMediaStream, FakeTrack, fakePcs } from './fakes.js';
import { connections } from '../connection.js';
import { Room } from '../room.js';

connections.create = (config) => new FakePeerConnection(config);

const tick = () => new Promise((r) => setTimeout(r, 5));

/** A signal client whose server answers room::enter and media::publish like an sfu room. */
function sfuServer() {
  const signal = new FakeSignal('ann', (s, body) => {
    if (s === 'room::enter') {
      return { roomId: body.roomId, name: body.roomId, architecture: 'sfu', owner: 'ann', mode: 'meeting', members: [{ clientId: 'ann' }, { clientId: 'bob', name: 'Bob' }], streams: [] };
    }
    if (s === 'media::publish') return { roomId: body.roomId, transport: 'publish', type: 'answer', sdp: 'server answer' };
    return {};
  });
  return signal;
}

const camera = () => new FakeMediaStream([new FakeTrack('audio'), new FakeTrack('video')]);
const sent = (signal, name) => signal.requests.filter((r) => r.signal === name);

beforeEach(() => { fakePcs.length = 0; });

test('an sfu room publishes on its own connection; its candidates wait for the answer', async () => {
  const signal = sfuServer();
  const room = await Room.enter(signal, { roomId: 'r', architecture: 'sfu' }, camera());
  assert.equal(room.capabilities.serverMedia, true);
  assert.equal(fakePcs.length, 1);
  const pub = fakePcs[0];
  assert.deepEqual(pub.transceivers.map((t) => [t.sender.track.kind, t.direction]), [['audio', 'sendonly'], ['video', 'sendonly']]);
  assert.equal(sent(signal, 'media::publish')[0].body.sdp, 'offer 2');
  assert.equal(pub.remoteDescription.sdp, 'server answer');
  pub.gather({ candidate: 'c1', sdpMid: '0' });
  await tick();
  assert.deepEqual(sent(signal, 'media::exchange').map((r) => [r.body.transport, r.body.candidate.candidate]), [['publish', 'c1']]);
  await room.leave();
  assert.equal(pub.closed, true);
});

test('a subscribe candidate that overtakes its offer is queued until the offer is set', async () => {
  const signal = sfuServer();
  const room = await Room.enter(signal, { roomId: 'r' }, null);
  assert.equal(fakePcs.length, 0, 'nothing to publish without media');
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'candidate', candidate: { candidate: 'early' } });
  await tick();
  const sub = fakePcs[0];
  assert.deepEqual(sub.candidates, [], 'not added before the remote description');
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'offer', sdp: 'server offer' });
  await tick();
  assert.deepEqual(sub.candidates, [{ candidate: 'early' }]);
  const answer = sent(signal, 'media::exchange').find((r) => r.body.type === 'answer');
  assert.equal(answer.body.transport, 'subscribe');
  room.leave();
});

test('stopping and starting to send again says so and publishes from a new connection', async () => {
  const signal = sfuServer();
  const local = camera();
  const room = await Room.enter(signal, { roomId: 'r' }, local);
  const first = fakePcs[0];
  await room.unpublishLocal();
  assert.equal(sent(signal, 'media::unpublish').length, 1);
  assert.equal(first.closed, true);
  assert.equal(room.localStream, null);
  await room.publish(local);
  assert.equal(fakePcs.length, 2, 'a new connection');
  assert.equal(sent(signal, 'media::publish').length, 2);
  room.leave();
});

test('after a reconnect it enters again (the room made as before) and publishes anew', async () => {
  const signal = sfuServer();
  const room = await Room.enter(signal, { roomId: 'r', password: 'pw', architecture: 'sfu', mode: 'meeting' }, camera());
  const old = fakePcs[0];
  let reentered = 0;
  room.addEventListener('reentered', () => { reentered += 1; });
  signal.dispatchEvent(new CustomEvent('reconnected', { detail: { attempt: 1 } }));
  await tick();
  await tick();
  assert.equal(reentered, 1);
  const enters = sent(signal, 'room::enter');
  assert.equal(enters.length, 2);
  assert.deepEqual([enters[1].body.password, enters[1].body.architecture, enters[1].body.mode], ['pw', 'sfu', 'meeting']);
  assert.equal(old.closed, true);
  assert.equal(fakePcs.length, 2);
  assert.equal(fakePcs[1].remoteDescription.sdp, 'server answer');
  room.leave();
});

test('a mesh room says what it offers through capabilities', async () => {
  const signal = new FakeSignal('ann', (s, body) => (s === 'room::enter'
    ? { roomId: body.roomId, name: body.roomId, architecture: 'mesh', owner: 'ann', members: [{ clientId: 'ann' }] }
    : {}));
  const room = await Room.enter(signal, { roomId: 'm' }, null);
  assert.deepEqual(room.capabilities, { serverMedia: false, live: false, mix: false, serverRecording: false });
  room.leave();
});

test('a mesh peer (and a call) queues a candidate that comes before the offer, then answers', async () => {
  const { Peer } = await import('../peer.js');
  const out = [];
  const peer = new Peer({ remoteId: 'bob', polite: true, rtcConfig: {}, send: async (n) => { out.push(n); } });
  const pc = fakePcs.at(-1);
  await peer.receive({ type: 'candidate', candidate: { candidate: 'early' } }, null);
  assert.deepEqual(pc.candidates, []);
  await peer.receive({ type: 'offer', sdp: 'bob offer' }, null);
  assert.deepEqual(pc.candidates, [{ candidate: 'early' }]);
  assert.equal(pc.remoteDescription.sdp, 'bob offer');
  assert.deepEqual(pc.transceivers.map((t) => t.direction), ['recvonly', 'recvonly'], 'receive-only without media');
  assert.equal(out.length, 1, 'answered');
  pc.gather({ candidate: 'mine' });
  assert.deepEqual(out.at(-1), { type: 'candidate', candidate: { candidate: 'mine' } });
  peer.close();
  assert.equal(pc.closed, true);
});

test('a failed subscribe connection is replaced (media::restart), a failed publish one republished', async () => {
  const signal = sfuServer();
  const room = await Room.enter(signal, { roomId: 'r' }, camera());
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'offer', sdp: 'server offer' });
  await tick();
  const [pub, sub] = fakePcs;
  sub.connectionState = 'failed';
  sub.onconnectionstatechange();
  await tick();
  assert.equal(sub.closed, true);
  assert.deepEqual(sent(signal, 'media::restart').map((r) => r.body), [{ roomId: 'r', transport: 'subscribe' }]);
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'offer', sdp: 'new offer' });
  await tick();
  assert.equal(fakePcs.length, 3, 'the new offer is answered from a new connection');
  assert.equal(fakePcs[2].remoteDescription.sdp, 'new offer');

  pub.connectionState = 'failed';
  pub.onconnectionstatechange();
  await tick();
  assert.equal(pub.closed, true);
  assert.equal(fakePcs.length, 4);
  assert.equal(sent(signal, 'media::publish').length, 2, 'published again from the new one');
  assert.equal(room.pub, fakePcs[3]);
  room.leave();
});

test('an unanswered subscribe offer the server gave up on is replaced (media::restart)', async () => {
  const signal = sfuServer();
  const room = await Room.enter(signal, { roomId: 'r' }, null);
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'offer', sdp: 'server offer' });
  await tick();
  const [sub] = fakePcs;
  signal.notify('media::subscribe::timeout', { roomId: 'other', transport: 'subscribe', code: '2001', message: 'x' });
  await tick();
  assert.equal(sent(signal, 'media::restart').length, 0, 'another room is not this one');
  signal.notify('media::subscribe::timeout', { roomId: 'r', transport: 'subscribe', code: '2001', message: 'x' });
  await tick();
  assert.equal(sub.closed, true);
  assert.deepEqual(sent(signal, 'media::restart').map((r) => r.body), [{ roomId: 'r', transport: 'subscribe' }]);
  signal.notify('media::exchange', { roomId: 'r', transport: 'subscribe', type: 'offer', sdp: 'new offer' });
  await tick();
  assert.equal(fakePcs.length, 2, 'the new offer is answered from a new connection');
  assert.equal(fakePcs[1].remoteDescription.sdp, 'new offer');
  room.leave();
});
