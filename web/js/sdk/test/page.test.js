import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TABLES, pickLanguage } from '../../i18n.js';
import { capabilitiesOf } from '../room.js';
import { summarize } from '../peer.js';

test('English and Chinese have the same strings', () => {
  assert.deepEqual(Object.keys(TABLES['zh-CN']).sort(), Object.keys(TABLES.en).sort());
});

test('the language comes from the stored choice, else the browser', () => {
  assert.equal(pickLanguage(null, ['zh-TW', 'en']), 'zh-CN');
  assert.equal(pickLanguage(null, ['en-GB']), 'en');
  assert.equal(pickLanguage(null, ['fr']), 'en');
  assert.equal(pickLanguage('zh-CN', ['en']), 'zh-CN');
});

test('capability flags per architecture', () => {
  assert.deepEqual(capabilitiesOf('mesh'), { serverMedia: false, live: false, mix: false, serverRecording: false });
  assert.deepEqual(capabilitiesOf('sfu'), { serverMedia: true, live: true, mix: false, serverRecording: true });
  assert.equal(capabilitiesOf('mcu').mix, true);
});

test('getStats summaries add up per sender and carry the round trip', () => {
  const report = new Map([
    ['p', { type: 'candidate-pair', nominated: true, currentRoundTripTime: 0.042 }],
    ['v1', { type: 'inbound-rtp', kind: 'video', trackIdentifier: 'ann:video0', packetsReceived: 10, packetsLost: 1, framesDecoded: 5 }],
    ['a1', { type: 'inbound-rtp', kind: 'audio', trackIdentifier: 'ann:audio0', packetsReceived: 20, totalAudioEnergy: 0.5, audioLevel: 0.1 }],
    ['v2', { type: 'inbound-rtp', kind: 'video', trackIdentifier: 'bob:video0', packetsReceived: 3, framesDecoded: 1 }],
  ]);
  const out = summarize(report, () => 'connected', (s) => s.trackIdentifier.split(':')[0]);
  assert.equal(out.ann.rttMs, 42);
  assert.equal(out.ann.video.framesDecoded, 5);
  assert.equal(out.ann.video.packetsLost, 1);
  assert.equal(out.ann.audio.totalAudioEnergy, 0.5);
  assert.equal(out.bob.video.packetsReceived, 3);
  assert.equal(out.bob.connectionState, 'connected');
});
