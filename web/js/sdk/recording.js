// Recording in a room, for any architecture. sfu / mcu rooms record on the server (one WebM
// per member; the list comes with signed download links). In mesh rooms the server asks the
// member's own client to record (control::client::record): we record our local camera and
// microphone with MediaRecorder and offer the file.
// Events: 'state' {active} whenever who is being recorded changes (active: Map clientId ->
// {file, by}; `mix` holds the mcu room's mix recording); 'stopped' {clientId, file, durationMs, error} (server: a file was finalized);
// 'local-file' {name, url, bytes, type, head} (mesh: our own recording is ready; url is a blob
// URL, head the first bytes in hex); 'error'.

/**
 * Recording state and requests of one room (`room.recording`).
 * @property {Map<string, {file: string|null, by: string}>} active - who is being recorded, by
 *   clientId
 * @property {{file: string, by: string}|null} mix - mcu: the room's mix recording, if one runs
 * @property {{name: string, url: string, bytes: number, type: string, head: string}[]} localFiles
 *   - mesh: our own finished recordings
 * @fires Recording#state - {active}: who is being recorded changed
 * @fires Recording#stopped - {clientId, file, durationMs, error}: the server finalized a file
 * @fires Recording#local-file - {name, url, bytes, type, head}: mesh, our own recording is ready
 * @fires Recording#error - an Error (mesh: no local media or MediaRecorder)
 */
export class Recording extends EventTarget {
  /**
   * Takes the running recordings of the room::enter answer and follows the room.
   * @param {import('./signal.js').SignalClient} signal
   * @param {object} status  the room::enter answer (its `recordings` are the running ones)
   * @param {() => MediaStream|null} localStream  what we send (for mesh local recording)
   */
  constructor(signal, status, localStream) {
    super();
    this.signal = signal;
    this.roomId = status.roomId;
    this.localStream = localStream;
    this.active = new Map();
    this.mix = null; // mcu: the room's mix recording {file, by}, if one runs
    for (const r of status.recordings ?? []) {
      if (r.mix) this.mix = { file: r.file, by: r.startedBy };
      else this.active.set(r.clientId, { file: r.file || null, by: r.startedBy });
    }
    this.localFiles = [];
    this.recorder = null;
    this.unsubscribe = [];
    const on = (s, fn) => this.unsubscribe.push(signal.on(s, (b) => b.roomId === this.roomId && fn(b)));
    on('record::start', (b) => {
      if (b.mix) this.mix = { file: b.file, by: b.by };
      else this.active.set(b.clientId, { file: b.file ?? null, by: b.by });
      this.#emit('state', { active: this.active });
    });
    on('record::stop', (b) => {
      if (b.mix) this.mix = null;
      else this.active.delete(b.clientId);
      this.#emit('state', { active: this.active });
      this.#emit('stopped', b);
    });
    on('control::client::record', (b) => {
      if (b.clientId !== signal.clientId) return;
      if (b.enabled) this.#startLocal(b);
      else this.#stopLocal();
    });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #req(signal, body = {}) {
    return this.signal.request(signal, { roomId: this.roomId, ...body });
  }

  /** Records a member (clientId), or (none: the owner only) every member. */
  /**
   * @param {string} [clientId] - the member (none: everyone, the owner only)
   * @returns {Promise<unknown>}
   */
  start(clientId) { return this.#req('record::start', clientId ? { clientId } : {}); }
  /** Stops recording a member, or (no clientId, owner) everyone; resolves once finalized. */
  /**
   * @param {string} [clientId] - the member (none: everyone, the owner only)
   * @returns {Promise<unknown>}
   */
  stop(clientId) { return this.#req('record::stop', clientId ? { clientId } : {}); }
  /** mcu, the owner: records (or stops recording) the room's mixed audio, one Opus file. */
  /** @returns {Promise<unknown>} */
  startMix() { return this.#req('record::start', { mix: true }); }
  /**
   * Stops the mix recording (mcu, the owner).
   * @returns {Promise<unknown>}
   */
  stopMix() { return this.#req('record::stop', { mix: true }); }
  /** The room's files on the server: [{file, bytes, modifiedAt, url}]. */
  /** @returns {Promise<{file: string, bytes: number, modifiedAt: number, url: string}[]>} */
  async list() { return (await this.#req('record::list')).files; }

  /**
   * Whether a member is being recorded.
   * @param {string} clientId - the member
   * @returns {boolean}
   */
  isRecording(clientId) { return this.active.has(clientId); }

  // ---- mesh: our own recording, made here ----

  #startLocal() {
    if (this.recorder) return;
    const stream = this.localStream?.();
    if (!stream || typeof MediaRecorder === 'undefined') {
      this.#emit('error', new Error('asked to record, but there is no local media (or no MediaRecorder) here'));
      return;
    }
    const types = ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm', 'audio/webm;codecs=opus'];
    const mimeType = types.find((t) => MediaRecorder.isTypeSupported(t)) ?? '';
    const rec = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const chunks = [];
    const started = new Date();
    rec.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    rec.onstop = async () => {
      const type = rec.mimeType || 'video/webm';
      const blob = new Blob(chunks, { type });
      const stamp = started.toISOString().replace(/[-:.]/g, '');
      const name = `${this.signal.clientId}-${stamp}.webm`;
      const head = [...new Uint8Array(await blob.slice(0, 4).arrayBuffer())].map((b) => b.toString(16).padStart(2, '0')).join('');
      const file = { name, url: URL.createObjectURL(blob), bytes: blob.size, type, head };
      this.localFiles.push(file);
      this.#emit('local-file', file);
    };
    rec.onerror = (e) => this.#emit('error', e.error ?? new Error('MediaRecorder failed'));
    rec.start(1000);
    this.recorder = rec;
  }

  #stopLocal() {
    const rec = this.recorder;
    this.recorder = null;
    if (rec && rec.state !== 'inactive') rec.stop();
  }

  /**
   * Stops our own recording (mesh) and stops following the room.
   * @returns {void}
   */
  close() {
    this.#stopLocal();
    for (const u of this.unsubscribe) u();
  }
}
