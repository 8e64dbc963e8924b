//! The thin driver: one OS thread per shard with one UDP socket, commands in over a bounded
//! channel (each with a reply), events out over another.
//!
//! Everything that decides anything is in [`crate::shard`]; this file only moves bytes and
//! reads the clock. The thread sleeps in `ppoll(2)` on its socket and an eventfd that command
//! senders signal, with the shard's next deadline as the timeout, so it wakes for a datagram,
//! a command or a timer and never polls. Datagrams come in by `recvmmsg` batches and what one
//! batch makes the shard send goes out as one egress batch ([`crate::egress`]: GSO runs per
//! destination, the rest by `sendmmsg`). With ICE-TCP the thread also owns the TCP streams
//! the acceptor ([`crate::tcp`]) hands it: their fds are in the same `ppoll`, their frames go
//! to the shard as TCP datagrams, and the shard's TCP transmits are framed onto them (the
//! egress batch, GSO and `sendmmsg` are for UDP only).

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::egress::Egress;
use crate::error::EngineError;
use crate::shard::{
    ConnId, Event, OutputId, OutputPacket, SendLabels, Shard, ShardConfig, ShardStats, TapId,
    TrackCounters, TrackLevel, TrackRef, Transmit,
};
use crate::sys::RecvBatch;
use crate::tcp::{Adopted, TcpStreams};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::shared::TransportProtocol;
use taoyao_media::tap::Tap;

/// The longest sleep with no timer due (the shard has none only when it has no connection).
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// `recvmmsg` batches read per round before commands and timers get their turn.
const RECV_ROUNDS: usize = 2;
/// Commands queued before a sender blocks.
const COMMAND_QUEUE: usize = 256;
/// Events queued before the shard drops them (counted): the media path never waits for the
/// control plane.
const EVENT_QUEUE: usize = 4096;

type Reply<T> = SyncSender<Result<T, EngineError>>;

enum Command {
    AcceptOffer(String, Reply<(ConnId, String)>),
    OpenConnection(Reply<ConnId>),
    AddSubscriber(ConnId, Vec<TrackRef>, Reply<String>),
    AcceptAnswer(ConnId, String, Reply<()>),
    Close(ConnId, Reply<()>),
    AddTap(TrackRef, Tap, Reply<TapId>),
    RemoveTap(TrackRef, TapId, Reply<()>),
    AudioLevels(Vec<TrackRef>, Reply<Vec<TrackLevel>>),
    AcceptReoffer(ConnId, String, Reply<String>),
    AddRemoteCandidate(ConnId, RTCIceCandidateInit, Reply<()>),
    AddSends(ConnId, Vec<(TrackRef, SendLabels)>, Reply<()>),
    RemoveSend(ConnId, TrackRef, Reply<()>),
    Offer(ConnId, Reply<String>),
    AddOutput(ConnId, RtpCodecKind, SendLabels, Reply<OutputId>),
    RemoveOutput(ConnId, OutputId, Reply<()>),
    /// A mixer's packets (no reply: the writer never waits for the shard).
    WriteOutputs(Vec<OutputPacket>),
    /// Track paused (by its publisher) or gated (by the room): which, and the value.
    HoldTrack(TrackRef, Hold, bool, Reply<()>),
    SetSinkPaused(TrackRef, ConnId, bool, Reply<()>),
    RequestKeyframe(TrackRef),
    TrackCounters(Vec<TrackRef>, Reply<Vec<TrackCounters>>),
    Stats(Reply<ShardStats>),
    /// A new ICE-TCP stream from the acceptor (no reply: the acceptor never waits).
    AdoptTcp(Box<Adopted>),
    Stop,
}

/// What holds a track back from every subscriber ([`ShardHandle::hold_track`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Its publisher paused it ([`Shard::set_track_paused`]).
    Paused,
    /// The room's rules closed it ([`Shard::set_track_gated`]).
    Gated,
}

/// Where to bind and what to announce.
#[derive(Debug, Clone)]
pub struct ShardThreadConfig {
    /// The socket's address (port 0: any free port).
    pub bind: SocketAddr,
    /// The address written into candidates; `None`: the bound address.
    pub announced_ip: Option<std::net::IpAddr>,
    pub early_checks: usize,
    /// Send runs of datagrams to one destination as one GSO `sendmsg` ([`crate::egress`]).
    pub gso: bool,
    /// The shard's index in its engine (the head of every ufrag it makes; 0 alone).
    pub index: usize,
    /// The announced address of the engine's ICE-TCP listener: every connection gets a
    /// passive TCP candidate there. `None`: UDP only.
    pub tcp: Option<SocketAddr>,
    /// Bytes a TCP stream may have waiting for the kernel's send buffer before it is closed.
    pub tcp_send_limit: usize,
}

/// A running shard thread. Cheap to clone; [`ShardHandle::stop`] ends the thread.
#[derive(Clone)]
pub struct ShardHandle {
    commands: SyncSender<Command>,
    waker: Arc<Waker>,
    local: SocketAddr,
    /// The shard's connection count, stored by its thread after every command.
    connections: Arc<AtomicUsize>,
}

/// An eventfd the shard thread polls beside its socket: a command sender writes to it after
/// queueing, so a command is seen at once however far the next timer is.
pub(crate) struct Waker(OwnedFd);

impl Waker {
    pub(crate) fn new() -> std::io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a negative return is an error, checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own and nothing else closes.
        Ok(Waker(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }

    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. A full counter (EAGAIN)
        // means a wake is pending anyway.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn reset(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// `ppoll(2)` on `fds` for at most `timeout` (0: just look); the result is in `revents`.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: fds and ts outlive the call; the count is the slice's; no signal mask.
    let _ = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
}

/// Sleeps until the socket or a TCP stream is ready, the waker is signalled, or `timeout`
/// passes. `fds` is reused from wake to wake: the socket, the waker, then the streams in
/// [`TcpStreams::poll_set`]'s order.
fn wait(
    socket: &UdpSocket,
    waker: &Waker,
    tcp: &mut TcpStreams,
    fds: &mut Vec<libc::pollfd>,
    timeout: Duration,
) {
    fds.clear();
    for fd in [socket.as_raw_fd(), waker.raw_fd()] {
        fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    tcp.poll_set(fds);
    poll_fds(fds, timeout);
}

/// Starts a shard thread. Returns its handle, its events and the thread's join handle.
pub fn spawn(
    cfg: ShardThreadConfig,
) -> Result<(ShardHandle, Receiver<Event>, JoinHandle<()>), EngineError> {
    let socket = UdpSocket::bind(cfg.bind)?;
    socket.set_nonblocking(true)?;
    let egress = Egress::new(&socket, cfg.gso)?;
    let bound = socket.local_addr()?;
    let waker = Arc::new(Waker::new()?);
    let announced = SocketAddr::new(cfg.announced_ip.unwrap_or(bound.ip()), bound.port());
    let mut shard_cfg = ShardConfig::new(announced);
    shard_cfg.early_checks = cfg.early_checks;
    shard_cfg.index = cfg.index;
    shard_cfg.tcp = cfg.tcp;
    let tcp = TcpStreams::new(cfg.tcp_send_limit);
    let (ctx, crx) = mpsc::sync_channel(COMMAND_QUEUE);
    let (etx, erx) = mpsc::sync_channel(EVENT_QUEUE);
    let connections = Arc::new(AtomicUsize::new(0));
    let thread = std::thread::Builder::new()
        .name(format!("shard-{}", bound.port()))
        .spawn({
            let waker = waker.clone();
            let connections = connections.clone();
            move || {
                run(
                    socket,
                    egress,
                    tcp,
                    &waker,
                    Shard::new(shard_cfg),
                    crx,
                    etx,
                    &connections,
                )
            }
        })?;
    Ok((
        ShardHandle {
            commands: ctx,
            waker,
            local: announced,
            connections,
        },
        erx,
        thread,
    ))
}

impl ShardHandle {
    /// The shard's announced address (every connection's host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The shard's connections, as of its last command (what room placement weighs).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commands
            .send(make(tx))
            .map_err(|_| EngineError::Stopped)?;
        self.waker.wake();
        rx.recv().map_err(|_| EngineError::Stopped)?
    }

    /// See [`Shard::accept_offer`]. Blocks until the shard answers (call it from a blocking
    /// context in async code).
    pub fn accept_offer(&self, offer: String) -> Result<(ConnId, String), EngineError> {
        self.call(|r| Command::AcceptOffer(offer, r))
    }

    pub fn open_connection(&self) -> Result<ConnId, EngineError> {
        self.call(Command::OpenConnection)
    }

    pub fn add_subscriber(
        &self,
        sink: ConnId,
        sources: Vec<TrackRef>,
    ) -> Result<String, EngineError> {
        self.call(|r| Command::AddSubscriber(sink, sources, r))
    }

    pub fn accept_answer(&self, conn: ConnId, answer: String) -> Result<(), EngineError> {
        self.call(|r| Command::AcceptAnswer(conn, answer, r))
    }

    pub fn close(&self, conn: ConnId) -> Result<(), EngineError> {
        self.call(|r| Command::Close(conn, r))
    }

    pub fn stats(&self) -> Result<ShardStats, EngineError> {
        self.call(Command::Stats)
    }

    /// See [`Shard::add_tap`]: the shard thread `try_send`s every packet of `track` to `tap`.
    pub fn add_tap(&self, track: TrackRef, tap: Tap) -> Result<TapId, EngineError> {
        self.call(|r| Command::AddTap(track, tap, r))
    }

    /// See [`Shard::remove_tap`].
    pub fn remove_tap(&self, track: TrackRef, tap: TapId) -> Result<(), EngineError> {
        self.call(|r| Command::RemoveTap(track, tap, r))
    }

    /// See [`Shard::take_audio_levels`]: a room reads its publishers' levels on its own
    /// interval (`webrtc.audio_level_interval_ms`) and feeds them to its `LevelWindow`.
    pub fn audio_levels(&self, tracks: Vec<TrackRef>) -> Result<Vec<TrackLevel>, EngineError> {
        self.call(|r| Command::AudioLevels(tracks, r))
    }

    /// See [`Shard::accept_reoffer`]: a publisher's new offer on its connection.
    pub fn accept_reoffer(&self, conn: ConnId, offer: String) -> Result<String, EngineError> {
        self.call(|r| Command::AcceptReoffer(conn, offer, r))
    }

    /// See [`Shard::add_remote_candidate`].
    pub fn add_remote_candidate(
        &self,
        conn: ConnId,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), EngineError> {
        self.call(|r| Command::AddRemoteCandidate(conn, candidate, r))
    }

    /// See [`Shard::add_sends`]: send tracks added, not offered yet.
    pub fn add_sends(
        &self,
        sink: ConnId,
        sends: Vec<(TrackRef, SendLabels)>,
    ) -> Result<(), EngineError> {
        self.call(|r| Command::AddSends(sink, sends, r))
    }

    /// See [`Shard::remove_send`].
    pub fn remove_send(&self, sink: ConnId, src: TrackRef) -> Result<(), EngineError> {
        self.call(|r| Command::RemoveSend(sink, src, r))
    }

    /// See [`Shard::offer`]: the subscriber connection's send tracks as they are now.
    pub fn offer(&self, sink: ConnId) -> Result<String, EngineError> {
        self.call(|r| Command::Offer(sink, r))
    }

    /// See [`Shard::add_output`].
    pub fn add_output(
        &self,
        conn: ConnId,
        kind: RtpCodecKind,
        labels: SendLabels,
    ) -> Result<OutputId, EngineError> {
        self.call(|r| Command::AddOutput(conn, kind, labels, r))
    }

    /// See [`Shard::remove_output`].
    pub fn remove_output(&self, conn: ConnId, output: OutputId) -> Result<(), EngineError> {
        self.call(|r| Command::RemoveOutput(conn, output, r))
    }

    /// Hands the thread a batch of output packets ([`Shard::write_outputs`]) without waiting: a
    /// full command queue or a stopped shard gives the batch back (the writer drops it and
    /// counts, as a mixer that fell behind must).
    pub fn write_outputs(&self, packets: Vec<OutputPacket>) -> Result<(), Vec<OutputPacket>> {
        match self.commands.try_send(Command::WriteOutputs(packets)) {
            Ok(()) => {
                self.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(Command::WriteOutputs(p)))
            | Err(TrySendError::Disconnected(Command::WriteOutputs(p))) => Err(p),
            Err(_) => unreachable!("the command sent was WriteOutputs"),
        }
    }

    /// Pauses (publisher) or gates (room) `track` for every subscriber, or lifts that hold.
    pub fn hold_track(&self, track: TrackRef, hold: Hold, on: bool) -> Result<(), EngineError> {
        self.call(|r| Command::HoldTrack(track, hold, on, r))
    }

    /// See [`Shard::set_sink_paused`].
    pub fn set_sink_paused(
        &self,
        track: TrackRef,
        sink: ConnId,
        paused: bool,
    ) -> Result<(), EngineError> {
        self.call(|r| Command::SetSinkPaused(track, sink, paused, r))
    }

    /// See [`Shard::request_keyframe`] (a recording starting). No reply: rate-limited anyway.
    pub fn request_keyframe(&self, track: TrackRef) -> Result<(), EngineError> {
        self.commands
            .send(Command::RequestKeyframe(track))
            .map_err(|_| EngineError::Stopped)?;
        self.waker.wake();
        Ok(())
    }

    /// See [`Shard::track_counters`].
    pub fn track_counters(&self, tracks: Vec<TrackRef>) -> Result<Vec<TrackCounters>, EngineError> {
        self.call(|r| Command::TrackCounters(tracks, r))
    }

    /// Hands the thread a new ICE-TCP stream without waiting; gives it back if the command
    /// queue is full or the thread is gone.
    pub(crate) fn adopt_tcp(&self, adopted: Adopted) -> Result<(), Box<Adopted>> {
        match self.commands.try_send(Command::AdoptTcp(Box::new(adopted))) {
            Ok(()) => {
                self.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(Command::AdoptTcp(a)))
            | Err(TrySendError::Disconnected(Command::AdoptTcp(a))) => Err(a),
            Err(_) => unreachable!("the command sent was AdoptTcp"),
        }
    }

    /// Asks the thread to end (join its handle to wait for it).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        self.waker.wake();
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    socket: UdpSocket,
    mut egress: Egress,
    mut tcp: TcpStreams,
    waker: &Waker,
    mut shard: Shard,
    commands: Receiver<Command>,
    events: SyncSender<Event>,
    connections: &AtomicUsize,
) {
    let mut rx = RecvBatch::new();
    let mut transmits: Vec<Transmit> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let local = shard.config().announced;
    let mut dropped_events = 0u64;
    loop {
        // Commands first: they are rare and a reply is being waited for. Reset the waker
        // before draining, so a command queued after the drain wakes the next sleep.
        waker.reset();
        loop {
            match commands.try_recv() {
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(cmd) => {
                    apply(&mut shard, &egress, &mut tcp, Instant::now(), cmd);
                    connections.store(shard.connection_count(), Ordering::Relaxed);
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        shard.handle_timeout(now);
        flush(&socket, &mut shard, &mut egress, &mut tcp, &mut transmits);
        while let Some(ev) = shard.poll_event() {
            match events.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    dropped_events += 1;
                    if dropped_events.is_power_of_two() {
                        tracing::warn!(dropped_events, "shard event queue full");
                    }
                }
                // Nobody listens: keep forwarding media anyway.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        let timeout = shard
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_BLOCK)
            .min(MAX_BLOCK);
        if !timeout.is_zero() || tcp.has_streams() {
            // Also with a zero timeout (a timer due now) while TCP streams are open: the poll
            // is what says which are ready, and a steady UDP load must not starve them.
            wait(&socket, waker, &mut tcp, &mut fds, timeout);
        } else {
            // A timer is due and only UDP is open: straight to the socket, no syscall spent
            // looking (and no readiness left from an earlier round for `service` below).
            fds.clear();
        }
        // Read what is queued, a few batches at most, then back to commands and timers (under
        // a steady flood the socket is never empty: timers must still run).
        for _ in 0..RECV_ROUNDS {
            let now = Instant::now();
            let read = rx.recv(socket.as_raw_fd(), |from, bytes| {
                shard.handle_datagram(now, local, from, BytesMut::from(bytes))
            });
            match read {
                // One egress batch per receive batch.
                Ok(_) => flush(&socket, &mut shard, &mut egress, &mut tcp, &mut transmits),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    break;
                }
                // ICMP port unreachable from a gone client shows up as ECONNREFUSED on Linux.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!("shard recv: {e}");
                    break;
                }
            }
        }
        if fds.len() > 2 {
            tcp.service(&fds[2..], &mut shard, Instant::now());
            flush(&socket, &mut shard, &mut egress, &mut tcp, &mut transmits);
        }
    }
}

fn apply(shard: &mut Shard, egress: &Egress, tcp: &mut TcpStreams, now: Instant, cmd: Command) {
    // A reply nobody waits for any more is not an error of the shard's.
    match cmd {
        Command::AcceptOffer(sdp, r) => {
            let _ = r.send(shard.accept_offer(now, sdp));
        }
        Command::OpenConnection(r) => {
            let _ = r.send(shard.open_connection(now));
        }
        Command::AddSubscriber(sink, sources, r) => {
            let _ = r.send(shard.add_subscriber(now, sink, &sources));
        }
        Command::AcceptAnswer(conn, sdp, r) => {
            let _ = r.send(shard.accept_answer(now, conn, sdp));
        }
        Command::Close(conn, r) => {
            let _ = r.send(shard.close(now, conn));
        }
        Command::AddTap(track, tap, r) => {
            let _ = r.send(shard.add_tap(&track, tap));
        }
        Command::RemoveTap(track, tap, r) => {
            let _ = r.send(shard.remove_tap(&track, tap));
        }
        Command::AudioLevels(tracks, r) => {
            let _ = r.send(Ok(shard.take_audio_levels(&tracks)));
        }
        Command::AcceptReoffer(conn, sdp, r) => {
            let _ = r.send(shard.accept_reoffer(now, conn, sdp));
        }
        Command::AddRemoteCandidate(conn, c, r) => {
            let _ = r.send(shard.add_remote_candidate(now, conn, c));
        }
        Command::AddSends(sink, sends, r) => {
            let _ = r.send(shard.add_sends(now, sink, &sends));
        }
        Command::RemoveSend(sink, src, r) => {
            let _ = r.send(shard.remove_send(now, sink, &src));
        }
        Command::Offer(sink, r) => {
            let _ = r.send(shard.offer(now, sink));
        }
        Command::AddOutput(conn, kind, labels, r) => {
            let _ = r.send(shard.add_output(now, conn, kind, &labels));
        }
        Command::RemoveOutput(conn, id, r) => {
            let _ = r.send(shard.remove_output(now, conn, id));
        }
        Command::WriteOutputs(packets) => {
            shard.write_outputs(now, packets);
        }
        Command::HoldTrack(track, hold, on, r) => {
            let _ = r.send(match hold {
                Hold::Paused => shard.set_track_paused(now, &track, on),
                Hold::Gated => shard.set_track_gated(now, &track, on),
            });
        }
        Command::SetSinkPaused(track, sink, paused, r) => {
            let _ = r.send(shard.set_sink_paused(now, &track, sink, paused));
        }
        Command::RequestKeyframe(track) => shard.request_keyframe(now, &track),
        Command::TrackCounters(tracks, r) => {
            let _ = r.send(Ok(shard.track_counters(&tracks)));
        }
        Command::Stats(r) => {
            let _ = r.send(Ok(ShardStats {
                egress: egress.stats(),
                tcp: tcp.stats(),
                ..shard.stats()
            }));
        }
        Command::AdoptTcp(a) => tcp.adopt(*a, shard, now),
        Command::Stop => {}
    }
}

fn flush(
    socket: &UdpSocket,
    shard: &mut Shard,
    egress: &mut Egress,
    tcp: &mut TcpStreams,
    transmits: &mut Vec<Transmit>,
) {
    transmits.extend(std::iter::from_fn(|| shard.poll_transmit()));
    if transmits.is_empty() {
        tcp.close_gone(shard);
        return;
    }
    // TCP transmits are framed onto their stream; only UDP ones make the egress batch.
    let mut framed = false;
    let mut batch: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(transmits.len());
    for t in transmits.iter() {
        match t.protocol {
            TransportProtocol::TCP => {
                tcp.send(t);
                framed = true;
            }
            _ => batch.push((t.remote, &t.payload[..])),
        }
    }
    if !batch.is_empty() {
        egress.send(socket, &batch);
    }
    drop(batch);
    if framed {
        tcp.write_all();
    }
    // After the writes: a closed connection's last words (DTLS close_notify) go out first.
    tcp.close_gone(shard);
    transmits.clear();
}
