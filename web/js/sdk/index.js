// The taoyao web SDK: import what you need; none of it touches the page.
// Types: index.d.ts. Connection and connections (connection.js) are the SDK's own plumbing,
// exported for tests; they are not in index.d.ts.
export { SignalClient, SignalError, PROTOCOL_VERSION } from './signal.js';
export { Peer, summarize } from './peer.js';
export { Room, capabilitiesOf } from './room.js';
export { SfuRoom } from './sfu-room.js';
export { Call } from './call.js';
export { Stage } from './stage.js';
export { Recording } from './recording.js';
export { Chat } from './chat.js';
export { Connection, connections } from './connection.js';

/** The signaling URL of the server that served this page. */
/**
 * @param {Location} [loc] - the page's location (default globalThis.location)
 * @returns {string} ws(s)://host/websocket.signal (wss on an https page)
 */
export function defaultServerUrl(loc = globalThis.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/websocket.signal`;
}

/** Camera and microphone, or whatever of them is available (null if neither). */
/**
 * Tries both, then audio only, then video only.
 * @param {{audio?: boolean|MediaTrackConstraints, video?: boolean|MediaTrackConstraints}} [o] -
 *   what to ask for (both by default)
 * @returns {Promise<MediaStream|null>} the stream, or null if nothing could be had
 */
export async function localMedia({ audio = true, video = true } = {}) {
  const tries = [{ audio, video }, { audio, video: false }, { audio: false, video }];
  for (const c of tries) {
    if (!c.audio && !c.video) continue;
    try { return await navigator.mediaDevices.getUserMedia(c); } catch (_) { /* try less */ }
  }
  return null;
}
