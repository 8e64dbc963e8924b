// One RTCPeerConnection as every part of the SDK uses it (mesh peers, calls, and the publish and
// subscribe connections of sfu/mcu rooms): made by `connections.create` (unit tests put a fake
// there), remote candidates queued until the remote description is set (a candidate may
// overtake its offer), local candidates passed to `sendCandidate`, held until `release()` when
// the other side cannot take them yet (sfu publish: not before the server's answer).

/** Where connections come from; tests replace `create`. */
/** @type {{create: (config: RTCConfiguration) => RTCPeerConnection}} */
export const connections = {
  /** @type {(config: RTCConfiguration) => RTCPeerConnection} */
  create: (config) => new RTCPeerConnection(config),
};

/**
 * One RTCPeerConnection with candidate queuing, as the SDK uses it (see the top of this file).
 * SDK plumbing: not in index.d.ts.
 * @property {RTCPeerConnection} pc - the connection (made by `connections.create`)
 */
export class Connection extends EventTarget {
  /**
   * Makes the connection and sends (or holds) its local candidates.
   * @param {RTCConfiguration} rtcConfig
   * @param {object} o
   * @param {(candidate: RTCIceCandidateInit) => void} o.sendCandidate
   * @param {boolean} [o.hold]  hold local candidates until release()
   */
  constructor(rtcConfig, { sendCandidate, hold = false }) {
    super();
    this.pc = connections.create(rtcConfig);
    this.remoteCandidates = [];
    this.localCandidates = hold ? [] : null;
    this.sendCandidate = sendCandidate;
    this.pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      const c = typeof candidate.toJSON === 'function' ? candidate.toJSON() : candidate;
      if (this.localCandidates) this.localCandidates.push(c);
      else this.sendCandidate(c);
    };
  }

  /** Sends the local candidates held so far, and from now on each as it comes. */
  /** @returns {void} */
  release() {
    const held = this.localCandidates ?? [];
    this.localCandidates = null;
    for (const c of held) this.sendCandidate(c);
  }

  /** Sets the remote description, then adds the candidates that came before it. */
  /**
   * @param {RTCSessionDescriptionInit} description - the remote offer or answer
   * @returns {Promise<void>}
   */
  async setRemote(description) {
    await this.pc.setRemoteDescription(description);
    for (const c of this.remoteCandidates.splice(0)) await this.pc.addIceCandidate(c);
  }

  /** Adds a remote candidate now, or once the remote description is there. */
  /**
   * @param {RTCIceCandidateInit} candidate - a candidate of the remote side
   * @returns {Promise<void>}
   */
  async addCandidate(candidate) {
    if (!this.pc.remoteDescription) this.remoteCandidates.push(candidate);
    else await this.pc.addIceCandidate(candidate);
  }

  /**
   * Closes the RTCPeerConnection.
   * @returns {void}
   */
  close() {
    this.pc.close();
  }
}
