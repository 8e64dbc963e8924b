//! An interceptor that lets keyframe requests through to the application.
//!
//! In rtc 0.21 the interceptor chain ends in a terminus that drops every inbound RTCP packet
//! unless an interceptor marked it `Attribute::DeliverToApplication`. A forwarder must see a
//! subscriber's PLI / FIR (to ask the publisher for a keyframe), and nothing else of the RTCP
//! its chain already acts on (receiver reports, NACKs answered by the NACK responder): this marks
//! exactly the compound packets that carry a PLI or a FIR.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

/// Its place in the chain: application-ward of every standard interceptor.
pub const SLOT: usize = 14_000;

/// Marks inbound RTCP that asks for a keyframe for delivery to the application.
#[derive(Default)]
pub struct KeyframeFeedback {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl KeyframeFeedback {
    /// `registry` with this interceptor added.
    pub fn register(registry: Registry) -> Registry {
        registry.with(Slot::from(SLOT), KeyframeFeedback::default())
    }
}

/// True if the RTCP packets ask for a keyframe.
pub fn asks_for_keyframe(rtcp: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    rtcp.iter().any(|p| {
        let any = p.as_any();
        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
    })
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeFeedback {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(rtcp) = &msg.message.packet
            && asks_for_keyframe(rtcp)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for KeyframeFeedback {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
