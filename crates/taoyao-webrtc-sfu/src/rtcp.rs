//! Hands keyframe requests (PLI, FIR) that subscribers send to the application, which forwards
//! them, rate-limited, to the publisher. webrtc-rs delivers inbound RTCP to the application only
//! when an interceptor marks it `DeliverToApplication`; everything else it consumed already
//! (NACK responder, reports, TWCC) stays inside the chain.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

#[derive(Default)]
pub struct KeyframeRequestInterceptor {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// Where the NACKs the far end sends are counted (the server's connections).
    counters: Option<std::sync::Arc<crate::forwarder::MediaCounters>>,
}

impl KeyframeRequestInterceptor {
    /// Also counts the NACKs that arrive (in `counters.nacks_received`).
    pub fn counting(counters: std::sync::Arc<crate::forwarder::MediaCounters>) -> Self {
        KeyframeRequestInterceptor {
            counters: Some(counters),
            ..Default::default()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if let Some(c) = &self.counters {
                let nacks = packets
                    .iter()
                    .filter(|p| p.as_any().is::<TransportLayerNack>())
                    .count();
                crate::forwarder::MediaCounters::add(&c.nacks_received, nacks as u64);
            }
            let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| {
                    p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
                })
                .map(|p| p.cloned())
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestInterceptor {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
