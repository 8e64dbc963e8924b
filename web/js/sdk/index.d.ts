// Types of the taoyao web SDK (plain ES modules in this directory; no build step).
// The signaling protocol is docs/protocol.md.

export const PROTOCOL_VERSION: string;

/** A failed request: the server's code (docs/protocol.md, "Codes") and message. */
export class SignalError extends Error {
  constructor(code: string, message: string, signal?: string);
  code: string;
  reason: string;
  signal?: string;
}

export interface Login {
  clientId: string;
  name?: string;
  clientType?: 'WEB' | 'MOBILE' | 'CAMERA' | 'MEDIA' | 'OTHER';
  username?: string;
  password?: string;
  token?: string;
}

export interface SignalOptions {
  requestTimeoutMs?: number;
  /** Reconnect after a drop (default true). */
  reconnect?: boolean;
  /** First retry delay (default 500), doubled per try up to maxBackoffMs (default 4000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Stop trying after this long (default 300000) and emit 'failed'. */
  giveUpAfterMs?: number;
}

/**
 * One WebSocket to the server. Events (CustomEvent detail): 'closed' {code, reason},
 * 'reconnecting' {attempt, delayMs}, 'reconnected' {attempt}, 'failed' {reason, code},
 * 'config' (client::config body), 'error' (SignalError from platform::error).
 */
export class SignalClient extends EventTarget {
  constructor(url: string, login: Login, options?: SignalOptions);
  url: string;
  login: Login;
  clientId?: string;
  registered: boolean;
  config: { iceServers?: RTCIceServer[]; limits?: Record<string, number> } | null;
  /** Connects and registers; a refused register closes the socket and rejects. */
  connect(): Promise<Record<string, unknown>>;
  /** Calls fn for every notification or request with this signal; returns an unsubscribe. */
  on(signal: string, fn: (body: any, message: any) => void): () => void;
  request(signal: string, body?: Record<string, unknown>): Promise<any>;
  respond(message: any, body?: Record<string, unknown>, code?: string, text?: string): void;
  close(): Promise<void>;
}

/** What a room's architecture offers (ask these, not the architecture's name). */
export interface Capabilities {
  /** Media goes through the server (publish / subscribe connections): sfu, mcu. */
  serverMedia: boolean;
  /** The owner may go live. */
  live: boolean;
  /** The server mixes audio: one 'mix' track, 'volume' events, a mix recording. */
  mix: boolean;
  /** Recordings are written by the server (mesh: by each member's page). */
  serverRecording: boolean;
}
export function capabilitiesOf(architecture: string): Capabilities;

export interface Member {
  clientId: string;
  name: string;
  clientType: string;
  joinedAt: number;
  owner: boolean;
}

export interface MediaSummary {
  packetsReceived?: number;
  packetsLost?: number;
  bytesReceived?: number;
  framesDecoded?: number;
  totalSamplesReceived?: number;
  totalAudioEnergy?: number;
  audioLevel?: number;
}

/** getStats() summed per sender. */
export interface PeerStats {
  connectionState: string;
  rttMs?: number;
  video: MediaSummary;
  audio: MediaSummary;
}

export interface EnterOptions {
  roomId: string;
  password?: string;
  /** Used when the room is made by entering. */
  architecture?: 'mesh' | 'sfu' | 'mcu';
  mode?: 'meeting' | 'broadcast' | 'intercom';
}

/**
 * A room, whatever its architecture: one room model (room-core.js) with two media strategies,
 * the mesh Room and the server's SfuRoom (Room.enter returns the one the room needs). Events: 'member-joined' {member}, 'member-left' {clientId, reason},
 * 'track' {clientId, stream, screen?}, 'peer-state' {clientId, state},
 * 'media-state' {clientId, kind, action, streamId?}, 'volume' {volumes, speaker} (mix rooms),
 * 'reentered' {status}, 'error', 'closed' {reason}.
 */
export interface AnyRoom extends EventTarget {
  roomId: string;
  name: string;
  architecture: string;
  owner: string;
  capabilities: Capabilities;
  members: Map<string, Member>;
  localStream: MediaStream | null;
  password?: string;
  stage: Stage;
  recording: Recording;
  chat: Chat;
  /** sfu/mcu: what we receive, per publisher. */
  streams?: Map<string, MediaStream>;
  publish(localStream?: MediaStream | null): Promise<void>;
  unpublishLocal(): void | Promise<void>;
  replaceTrack(track: MediaStreamTrack): Promise<void>;
  setEnabled(kind: 'audio' | 'video', enabled: boolean): Promise<void>;
  shareScreen(stream: MediaStream): Promise<void>;
  stopScreen(): Promise<void>;
  stats(): Promise<Record<string, PeerStats>>;
  leave(): Promise<void>;
}

/** A mesh room; `Room.enter` returns it or an SfuRoom. */
export interface Room extends AnyRoom {}
export class Room extends EventTarget {
  static enter(signal: SignalClient, options: EnterOptions, localStream: MediaStream | null): Promise<AnyRoom>;
}

/** An sfu or mcu room (publish and subscribe connections with the server). */
export interface SfuRoom extends AnyRoom {
  streams: Map<string, MediaStream>;
}
export class SfuRoom extends EventTarget {}

/** Modes, presenters, floor and live. Events: 'mode', 'floor', 'live', 'cohost', 'may-publish'
 * {mayPublish}, 'live-stopped', 'live-paused'. */
export class Stage extends EventTarget {
  mode: 'meeting' | 'broadcast' | 'intercom';
  presenters: string[];
  floor: { holder: string | null; queue: string[] };
  live: { anchor: string; cohosts: string[]; viewers: number; paused: boolean; startedAt: number } | null;
  mayPublish: boolean;
  update(status: Record<string, unknown>): void;
  holdsFloor(): boolean;
  setMode(mode: string): Promise<unknown>;
  presenter(clientId: string, action?: 'add' | 'remove' | 'handover'): Promise<unknown>;
  requestFloor(): Promise<unknown>;
  releaseFloor(): Promise<unknown>;
  startLive(): Promise<unknown>;
  stopLive(): Promise<unknown>;
  cohost(action: 'request' | 'invite' | 'accept' | 'decline' | 'end', clientId?: string): Promise<unknown>;
  close(): void;
}

/** Recording state and requests. Events: 'state', 'stopped', 'local-file', 'error'. */
export class Recording extends EventTarget {
  active: Map<string, { file: string | null; by: string }>;
  mix: { file: string; by: string } | null;
  localFiles: { name: string; url: string; bytes: number; type: string; head: string }[];
  isRecording(clientId: string): boolean;
  start(clientId?: string): Promise<unknown>;
  stop(clientId?: string): Promise<unknown>;
  startMix(): Promise<unknown>;
  stopMix(): Promise<unknown>;
  list(): Promise<{ file: string; bytes: number; modifiedAt: number; url: string }[]>;
  close(): void;
}

export interface ChatMessage {
  from: string;
  name: string;
  text: string;
  at: number;
  mine: boolean;
}

/** Room messages on room::broadcast (docs/protocol.md, "Room messages between web clients").
 * Events: 'message' (ChatMessage), 'hand' {clientId, raised}, 'member-state' {clientId, mic,
 * camera}, 'screen' {clientId, on}. */
export class Chat extends EventTarget {
  constructor(signal: SignalClient, roomId: string);
  messages: ChatMessage[];
  hands: Set<string>;
  screens: Set<string>;
  states: Map<string, { mic: boolean; camera: boolean }>;
  send(text: string, name?: string): Promise<ChatMessage>;
  raiseHand(raised: boolean): Promise<void>;
  tellState(state: { mic: boolean; camera: boolean }): Promise<unknown>;
  tellScreen(on: boolean): Promise<void>;
  forget(clientId: string): void;
  close(): void;
}

/** One RTCPeerConnection with perfect negotiation (mesh rooms and calls). */
export class Peer extends EventTarget {
  constructor(o: { remoteId: string; polite: boolean; rtcConfig: RTCConfiguration; send: (n: object) => Promise<unknown> });
  pc: RTCPeerConnection;
  stream: MediaStream;
  start(localStream: MediaStream | null, o: { offerer: boolean }): void;
  setLocal(localStream: MediaStream | null): Promise<void>;
  replaceTrack(track: MediaStreamTrack): Promise<void>;
  addExtra(track: MediaStreamTrack, stream: MediaStream): void;
  removeExtra(): void;
  receive(n: object, localStream: MediaStream | null): Promise<void>;
  stats(): Promise<PeerStats>;
  close(): void;
}

/** A 1:1 call. Events: 'track' {stream}, 'state' {state}, 'remote-pause' / 'remote-resume' {type}, 'closed' {reason}. */
export class Call extends EventTarget {
  static dial(signal: SignalClient, clientId: string, localStream: MediaStream | null, o?: { audio?: boolean; video?: boolean }): Promise<Call>;
  static incoming(signal: SignalClient, body: Record<string, unknown>): Call;
  sessionId: string;
  remoteId: string;
  accept(localStream: MediaStream | null): Promise<void>;
  setEnabled(type: 'audio' | 'video', enabled: boolean): Promise<void>;
  stats(): Promise<PeerStats>;
  hangUp(): Promise<void>;
}

export function summarize(report: RTCStatsReport | Map<string, any>, connectionState: () => string, keyOf?: (stat: any) => string): Record<string, PeerStats>;
export function defaultServerUrl(loc?: Location): string;
export function localMedia(o?: { audio?: boolean | MediaTrackConstraints; video?: boolean | MediaTrackConstraints }): Promise<MediaStream | null>;
