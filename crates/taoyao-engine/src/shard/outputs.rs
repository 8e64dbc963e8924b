//! Send tracks the control plane writes to itself (the engine's side of the sfu's `AudioPath`:
//! the mcu's mix, one track per member). An output is negotiated like a forwarded leg (added,
//! offered, live once the client's answer covers it) but has no source on the shard: packets
//! come from another thread ([`crate::driver::ShardHandle::write_outputs`], without waiting) and
//! the shard only stamps the output's SSRC and negotiated payload type on them, as forwarding
//! does, and writes them. The writer keeps its own sequence numbers and timestamps.

use super::{
    ConnId, EngineError, Leg, RTCPeerConnectionState, RTCRtpSenderId, RtpCodecKind, SendLabels,
    Shard, add_send_track, sink_payload_type,
};
use std::time::Instant;

/// An output on one connection. Unique within the shard, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputId(pub u64);

/// One packet for an output. Its SSRC and payload type are the output's (whatever the writer
/// put there); header extensions are dropped (the output negotiated none).
#[derive(Debug, Clone)]
pub struct OutputPacket {
    pub conn: ConnId,
    pub output: OutputId,
    pub packet: rtc::rtp::packet::Packet,
}

/// What [`Shard::write_outputs`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputWrites {
    pub written: u64,
    /// Not yet writable (the client has not answered an offer with it, or the connection is
    /// not connected): dropped, as a live mix would be.
    pub waiting: u64,
    /// For a connection or output that is gone, or refused by rtc.
    pub failed: u64,
}

#[derive(Debug)]
pub(crate) struct Output {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// Looked up on the first write after the answer, as a sink's is.
    pt: Option<u8>,
    leg: Leg,
}

impl Output {
    pub(crate) fn offered(&mut self) {
        if self.leg == Leg::Added {
            self.leg = Leg::Offered;
        }
    }

    pub(crate) fn answered(&mut self) {
        if self.leg == Leg::Offered {
            self.leg = Leg::Live;
        }
    }
}

impl Shard {
    /// Adds a send track of `kind` to `conn` that the caller writes to ([`Shard::write_outputs`]),
    /// labelled `labels`. Like [`Shard::add_sends`] it goes to the client with the next
    /// [`Shard::offer`] and carries packets once the answer to that offer is applied.
    pub fn add_output(
        &mut self,
        now: Instant,
        conn: ConnId,
        kind: RtpCodecKind,
        labels: &SendLabels,
    ) -> Result<OutputId, EngineError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(EngineError::NoConnection(conn))?;
        let ssrc = rand::random::<u32>();
        let sender = add_send_track(&mut c.pc, kind, ssrc, labels)?;
        let id = OutputId(self.next_output);
        self.next_output += 1;
        c.outputs.insert(
            id,
            Output {
                sender,
                ssrc,
                pt: None,
                leg: Leg::Added,
            },
        );
        self.touch(now, conn);
        Ok(id)
    }

    /// Removes an output's send track (the client learns of it from the next offer).
    pub fn remove_output(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: OutputId,
    ) -> Result<(), EngineError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(EngineError::NoConnection(conn))?;
        let out = c
            .outputs
            .remove(&id)
            .ok_or(EngineError::NoOutput(conn, id))?;
        c.pc.remove_track(out.sender).map_err(EngineError::rtc)?;
        self.touch(now, conn);
        Ok(())
    }

    /// Writes a batch of output packets; every connection written to is drained once after.
    pub fn write_outputs(
        &mut self,
        now: Instant,
        packets: impl IntoIterator<Item = OutputPacket>,
    ) -> OutputWrites {
        let mut done = OutputWrites::default();
        for OutputPacket {
            conn,
            output,
            mut packet,
        } in packets
        {
            let Some(c) = self.conns.get_mut(&conn) else {
                done.failed += 1;
                continue;
            };
            let Some(out) = c.outputs.get_mut(&output) else {
                done.failed += 1;
                continue;
            };
            if out.leg != Leg::Live || c.state != RTCPeerConnectionState::Connected {
                done.waiting += 1;
                continue;
            }
            let pt = match out.pt {
                Some(pt) => pt,
                None => match sink_payload_type(&mut c.pc, out.sender) {
                    Some(pt) => *out.pt.insert(pt),
                    None => {
                        done.failed += 1;
                        continue;
                    }
                },
            };
            packet.header.ssrc = out.ssrc;
            packet.header.payload_type = pt;
            packet.header.extension = false;
            packet.header.extensions.clear();
            let Some(mut sender) = c.pc.rtp_sender(out.sender) else {
                done.failed += 1;
                continue;
            };
            match sender.write_rtp(now, packet) {
                Ok(()) => {
                    done.written += 1;
                    if !c.queued {
                        c.queued = true;
                        self.dirty.push(conn);
                    }
                }
                Err(_) => done.failed += 1,
            }
        }
        self.stats.outputs_written += done.written;
        self.stats.outputs_waiting += done.waiting;
        self.stats.outputs_failed += done.failed;
        self.drain_dirty(now);
        done
    }
}
