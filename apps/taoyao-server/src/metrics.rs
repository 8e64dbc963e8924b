//! `GET /metrics`: the server's state in Prometheus text (OpenMetrics) format.
//!
//! One [`Metrics`] (one `prometheus-client` registry) per server, never a global recorder, so
//! several servers in one process (the tests) each count their own. Two kinds of values:
//! counters moved as things happen (signals answered, rooms opened, recordings finished,
//! webhook deliveries), fed by the signal hub's [`SignalObserver`] and the rooms'
//! `RoomObserver`; and gauges read when scraped from what the parts already report (the hub's
//! client count, room summaries, each media room's `stats()`, `/proc/self`), so nothing here
//! reaches into a backend. Labels are bounded: architecture, mode, signal name from the fixed
//! handler table, result code, outcome; never a room or client id.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use taoyao_boot::Code;
use taoyao_meeting::{RoomEvent, RoomEventKind};
use taoyao_signal::SignalObserver;

use crate::Parts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoomLabels {
    architecture: String,
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArchLabels {
    architecture: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

/// Every metric of one server. Cheap to share (`Arc`); counters are atomics.
pub struct Metrics {
    registry: Registry,
    // Read at scrape time.
    clients_online: Gauge,
    connections_open: Gauge,
    rooms: Family<RoomLabels, Gauge>,
    room_members: Family<RoomLabels, Gauge>,
    live_rooms: Family<ArchLabels, Gauge>,
    live_viewers: Family<ArchLabels, Gauge>,
    peer_connections: Family<ArchLabels, Gauge>,
    published_streams: Family<ArchLabels, Gauge>,
    subscriptions: Family<ArchLabels, Gauge>,
    packets_received: Family<ArchLabels, Gauge>,
    packets_forwarded: Family<ArchLabels, Gauge>,
    media_tasks: Gauge,
    recordings_active: Gauge,
    resident_memory: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    // The media engine's running totals, caught up at scrape time.
    forwarded_packets: Counter,
    forwarded_bytes: Counter,
    publisher_packets_lost: Counter,
    keyframe_requests: Counter,
    nacks_received: Counter,
    mix_ticks_late: Counter,
    mix_ticks_skipped: Counter,
    mix_packets_dropped: Counter,
    // Moved as things happen.
    signals: Family<SignalLabels, Counter>,
    rate_limited: Counter,
    connections_refused: Counter,
    tls_failures: Counter,
    room_events: Family<EventLabels, Counter>,
    recordings_finished: Family<OutcomeLabels, Counter>,
    recording_bytes: Counter,
    webhook_events: Family<OutcomeLabels, Counter>,
    admin_requests: Family<OutcomeLabels, Counter>,
    /// Serializes scrapes: gauges are set, then encoded, as one snapshot.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            clients_online: Gauge::default(),
            connections_open: Gauge::default(),
            rooms: Family::default(),
            room_members: Family::default(),
            live_rooms: Family::default(),
            live_viewers: Family::default(),
            peer_connections: Family::default(),
            published_streams: Family::default(),
            subscriptions: Family::default(),
            packets_received: Family::default(),
            packets_forwarded: Family::default(),
            media_tasks: Gauge::default(),
            recordings_active: Gauge::default(),
            resident_memory: Gauge::default(),
            cpu_seconds: Counter::default(),
            forwarded_packets: Counter::default(),
            forwarded_bytes: Counter::default(),
            publisher_packets_lost: Counter::default(),
            keyframe_requests: Counter::default(),
            nacks_received: Counter::default(),
            mix_ticks_late: Counter::default(),
            mix_ticks_skipped: Counter::default(),
            mix_packets_dropped: Counter::default(),
            signals: Family::default(),
            rate_limited: Counter::default(),
            connections_refused: Counter::default(),
            tls_failures: Counter::default(),
            room_events: Family::default(),
            recordings_finished: Family::default(),
            recording_bytes: Counter::default(),
            webhook_events: Family::default(),
            admin_requests: Family::default(),
            scrape: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        r.register(
            "taoyao_clients_online",
            "Registered signaling clients",
            m.clients_online.clone(),
        );
        r.register(
            "taoyao_connections_open",
            "Open signaling WebSocket connections, registered or not",
            m.connections_open.clone(),
        );
        r.register(
            "taoyao_rooms",
            "Open rooms by media architecture and meeting mode",
            m.rooms.clone(),
        );
        r.register(
            "taoyao_room_members",
            "Members of open rooms by media architecture and meeting mode",
            m.room_members.clone(),
        );
        r.register("taoyao_live_rooms", "Rooms on air", m.live_rooms.clone());
        r.register(
            "taoyao_live_viewers",
            "Members of rooms on air who are not on stage",
            m.live_viewers.clone(),
        );
        r.register(
            "taoyao_peer_connections",
            "Server-side WebRTC peer connections (sfu, mcu)",
            m.peer_connections.clone(),
        );
        r.register(
            "taoyao_published_streams",
            "Streams the server receives from publishers",
            m.published_streams.clone(),
        );
        r.register(
            "taoyao_subscriptions",
            "Stream-to-subscriber forwardings",
            m.subscriptions.clone(),
        );
        // Gauges, not counters: the backends count per stream, and an ended stream's count
        // leaves with it (see MediaRoomStats).
        r.register(
            "taoyao_stream_packets_received",
            "RTP packets received on the streams published now, since each started",
            m.packets_received.clone(),
        );
        r.register(
            "taoyao_stream_packets_forwarded",
            "RTP packets sent to subscribers of the streams published now, since each started",
            m.packets_forwarded.clone(),
        );
        r.register(
            "taoyao_media_tasks",
            "Forwarder and feedback tasks of the media backends",
            m.media_tasks.clone(),
        );
        r.register(
            "taoyao_recordings_active",
            "Server-side recordings being written",
            m.recordings_active.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the server process",
            Unit::Bytes,
            m.resident_memory.clone(),
        );
        r.register_with_unit(
            "process_cpu",
            "User and system CPU time of the server process",
            Unit::Seconds,
            m.cpu_seconds.clone(),
        );
        r.register(
            "taoyao_media_forwarded_packets",
            "RTP packets the server wrote to subscribers (sfu and mcu video), since it started",
            m.forwarded_packets.clone(),
        );
        r.register_with_unit(
            "taoyao_media_forwarded",
            "RTP payload bytes the server wrote to subscribers, since it started",
            Unit::Bytes,
            m.forwarded_bytes.clone(),
        );
        r.register(
            "taoyao_media_publisher_packets_lost",
            "RTP packets missing from publishers' streams as they arrived (sequence gaps)",
            m.publisher_packets_lost.clone(),
        );
        r.register(
            "taoyao_media_keyframe_requests",
            "Keyframe requests (PLI) the server sent to publishers",
            m.keyframe_requests.clone(),
        );
        r.register(
            "taoyao_media_nacks_received",
            "NACK packets (retransmission requests) received from subscribers",
            m.nacks_received.clone(),
        );
        r.register(
            "taoyao_mixer_ticks_late",
            "mcu mixer: 20 ms ticks mixed late, after a late wakeup",
            m.mix_ticks_late.clone(),
        );
        r.register(
            "taoyao_mixer_ticks_skipped",
            "mcu mixer: 20 ms ticks skipped after a stall (their audio is lost)",
            m.mix_ticks_skipped.clone(),
        );
        r.register(
            "taoyao_mixer_packets_dropped",
            "mcu mixer: publishers' audio packets dropped because a room's mixer was mcu.queue_packets behind",
            m.mix_packets_dropped.clone(),
        );
        r.register(
            "taoyao_signals_handled",
            "Signaling requests answered, by signal and result code",
            m.signals.clone(),
        );
        r.register(
            "taoyao_signals_rate_limited",
            "Messages refused by the per-connection rate limit",
            m.rate_limited.clone(),
        );
        r.register(
            "taoyao_connections_refused",
            "WebSocket upgrades refused at signal.max_connections",
            m.connections_refused.clone(),
        );
        r.register(
            "taoyao_tls_handshake_failures",
            "TLS connections whose handshake failed or timed out (server.tls)",
            m.tls_failures.clone(),
        );
        r.register(
            "taoyao_room_events",
            "Room events (as webhooks name them) that happened",
            m.room_events.clone(),
        );
        r.register(
            "taoyao_recordings_finished",
            "Recordings that ended, by outcome (ok, failed)",
            m.recordings_finished.clone(),
        );
        r.register_with_unit(
            "taoyao_recording_written",
            "Bytes in finished recording files",
            Unit::Bytes,
            m.recording_bytes.clone(),
        );
        r.register(
            "taoyao_webhook_events",
            "Webhook deliveries by outcome (delivered, failed after retries, dropped: queue full)",
            m.webhook_events.clone(),
        );
        r.register(
            "taoyao_admin_requests",
            "Admin API requests by outcome (ok, refused: 401/403, error)",
            m.admin_requests.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// A webhook delivery ended: "delivered", "failed" (after its retries) or "dropped".
    pub fn webhook(&self, outcome: &'static str) {
        self.webhook_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// An admin API request ended: "ok", "refused" (no or a non-admin token) or "error".
    pub fn admin_request(&self, outcome: &'static str) {
        self.admin_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a room event (and a finished recording's outcome and size).
    pub fn room_event(&self, e: &RoomEvent) {
        let name = event_name(&e.kind);
        self.room_events
            .get_or_create(&EventLabels { event: name })
            .inc();
        if let RoomEventKind::RecordingFinished { bytes, error, .. } = &e.kind {
            let outcome = if error.is_some() { "failed" } else { "ok" };
            self.recordings_finished
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
            self.recording_bytes.inc_by(*bytes);
        }
    }

    /// Reads every gauge from the server's parts, then encodes the registry.
    pub async fn render(&self, parts: &Parts) -> String {
        let _one = self.scrape.lock().await;
        self.clients_online.set(parts.hub.client_count() as i64);
        self.connections_open
            .set(parts.hub.connection_count() as i64);
        // Label sets of architectures or modes with no room left must disappear.
        for f in [&self.rooms, &self.room_members] {
            f.clear();
        }
        for f in [
            &self.live_rooms,
            &self.live_viewers,
            &self.peer_connections,
            &self.published_streams,
            &self.subscriptions,
            &self.packets_received,
            &self.packets_forwarded,
        ] {
            f.clear();
        }
        for s in parts.rooms.summaries() {
            let str_of = |k: &str| s[k].as_str().unwrap_or("unknown").to_owned();
            let labels = RoomLabels {
                architecture: str_of("architecture"),
                mode: str_of("mode"),
            };
            self.rooms.get_or_create(&labels).inc();
            self.room_members
                .get_or_create(&labels)
                .inc_by(s["memberCount"].as_i64().unwrap_or(0));
            if s["live"].is_object() {
                let arch = ArchLabels {
                    architecture: labels.architecture.clone(),
                };
                self.live_rooms.get_or_create(&arch).inc();
                self.live_viewers
                    .get_or_create(&arch)
                    .inc_by(s["live"]["viewers"].as_i64().unwrap_or(0));
            }
        }
        for (kind, st) in parts.rooms.all_media_stats().await {
            let arch = ArchLabels {
                architecture: kind.as_str().to_owned(),
            };
            self.peer_connections
                .get_or_create(&arch)
                .inc_by(st.peer_connections as i64);
            self.published_streams
                .get_or_create(&arch)
                .inc_by(st.streams as i64);
            self.subscriptions
                .get_or_create(&arch)
                .inc_by(st.subscriptions as i64);
            self.packets_received
                .get_or_create(&arch)
                .inc_by(st.packets_received as i64);
            self.packets_forwarded
                .get_or_create(&arch)
                .inc_by(st.packets_forwarded as i64);
        }
        self.media_tasks
            .set((parts.sfu.stats().tasks + parts.mcu.stats().tasks) as i64);
        // The sfu and the mcu share one factory, so one of them gives the totals.
        let totals = parts.sfu.media_counters();
        for (c, total) in [
            (&self.forwarded_packets, totals.forwarded_packets),
            (&self.forwarded_bytes, totals.forwarded_bytes),
            (&self.publisher_packets_lost, totals.publisher_packets_lost),
            (&self.keyframe_requests, totals.keyframe_requests),
            (&self.nacks_received, totals.nacks_received),
            (&self.mix_ticks_late, totals.mix_ticks_late),
            (&self.mix_ticks_skipped, totals.mix_ticks_skipped),
            (&self.mix_packets_dropped, totals.mix_packets_dropped),
        ] {
            c.inc_by(total.saturating_sub(c.get()));
        }
        self.recordings_active
            .set(parts.rooms.recordings_running() as i64);
        if let Some(p) = read_proc_self() {
            self.resident_memory.set(p.rss_bytes as i64);
            let seen = self.cpu_seconds.get();
            if p.cpu_seconds > seen {
                self.cpu_seconds.inc_by(p.cpu_seconds - seen);
            }
        }
        self.encode()
    }

    /// The registry as it stands, without reading the gauges first (counters are current;
    /// gauges hold what the last [`Metrics::render`] read): for a server that has stopped.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl SignalObserver for Metrics {
    fn handled(&self, signal: &'static str, code: Code) {
        self.signals
            .get_or_create(&SignalLabels {
                signal,
                code: code.as_str(),
            })
            .inc();
    }

    fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    fn connection_refused(&self) {
        self.connections_refused.inc();
    }
}

/// Wraps the listener's TLS acceptor to count the handshakes that fail (a client that does
/// not trust the certificate, speaks plain HTTP to the TLS port, or stalls past the timeout).
#[derive(Clone)]
pub struct CountFailures<A> {
    inner: A,
    metrics: Arc<Metrics>,
}

impl<A> CountFailures<A> {
    pub fn new(inner: A, metrics: Arc<Metrics>) -> Self {
        CountFailures { inner, metrics }
    }
}

impl<A, I, S> axum_server::accept::Accept<I, S> for CountFailures<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = std::io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let handshake = self.inner.accept(stream, service);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let r = handshake.await;
            if r.is_err() {
                metrics.tls_failures.inc();
            }
            r
        })
    }
}

/// The webhook name of an event (also its metrics label).
pub fn event_name(k: &RoomEventKind) -> &'static str {
    match k {
        RoomEventKind::RoomStarted { .. } => "room_started",
        RoomEventKind::RoomFinished => "room_finished",
        RoomEventKind::ParticipantJoined { .. } => "participant_joined",
        RoomEventKind::ParticipantLeft { .. } => "participant_left",
        RoomEventKind::TrackPublished { .. } => "track_published",
        RoomEventKind::TrackUnpublished { .. } => "track_unpublished",
        RoomEventKind::RecordingStarted { .. } => "recording_started",
        RoomEventKind::RecordingFinished { .. } => "recording_finished",
        RoomEventKind::LiveStarted { .. } => "live_started",
        RoomEventKind::LiveFinished { .. } => "live_finished",
        _ => "other",
    }
}

struct ProcSelf {
    cpu_seconds: f64,
    rss_bytes: u64,
}

/// CPU time from `/proc/self/stat` (utime + stime, fields 14 and 15, in clock ticks: Linux
/// reports them in USER_HZ, which is 100 on every architecture it runs on) and resident memory
/// from `/proc/self/status` (VmRSS, in kB, so no page size is needed). None off Linux.
fn read_proc_self() -> Option<ProcSelf> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so utime (14) and stime (15) are its 12th and 13th.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcSelf {
        cpu_seconds: (utime + stime) / USER_HZ,
        rss_bytes: rss_kb * 1024,
    })
}

/// `GET /metrics`.
pub fn router(metrics: Arc<Metrics>, parts: Parts) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, parts))
}

async fn scrape(State((metrics, parts)): State<(Arc<Metrics>, Parts)>) -> Response {
    let body = metrics.render(&parts).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = read_proc_self().expect("linux /proc");
        assert!(p.rss_bytes > 1024 * 1024, "{}", p.rss_bytes);
        // Burn a little CPU so the reading is above zero whatever the tick.
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(read_proc_self().unwrap().cpu_seconds > 0.0);
    }
}
