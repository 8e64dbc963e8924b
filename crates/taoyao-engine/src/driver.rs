//! The thin driver: one OS thread per shard with one UDP socket, commands in over a bounded
//! channel (each with a reply), events out over another.
//!
//! Everything that decides anything is in [`crate::shard`]; this file only moves bytes and
//! reads the clock. Plain `recv_from` / `send_to` today; `recvmmsg` / GSO batching is the next
//! step (docs/architecture.md, "Engine (in progress)").

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::EngineError;
use crate::shard::{ConnId, Event, Shard, ShardConfig, ShardStats, TrackRef};

/// How long the thread blocks in `recv_from` at most when no timer is due sooner. Commands wait
/// at most this long to be seen: there is no waker on the socket yet (an eventfd with
/// `poll(2)` over both is the fix), so this bounds command latency and idle wakeups (200/s).
const MAX_BLOCK: Duration = Duration::from_millis(5);
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
    Stats(Reply<ShardStats>),
    Stop,
}

/// Where to bind and what to announce.
#[derive(Debug, Clone)]
pub struct ShardThreadConfig {
    /// The socket's address (port 0: any free port).
    pub bind: SocketAddr,
    /// The address written into candidates; `None`: the bound address.
    pub announced_ip: Option<std::net::IpAddr>,
    pub early_checks: usize,
}

/// A running shard thread. Cheap to clone; [`ShardHandle::stop`] ends the thread.
#[derive(Clone)]
pub struct ShardHandle {
    commands: SyncSender<Command>,
    local: SocketAddr,
}

/// Starts a shard thread. Returns its handle, its events and the thread's join handle.
pub fn spawn(
    cfg: ShardThreadConfig,
) -> Result<(ShardHandle, Receiver<Event>, JoinHandle<()>), EngineError> {
    let socket = UdpSocket::bind(cfg.bind)?;
    let bound = socket.local_addr()?;
    let announced = SocketAddr::new(cfg.announced_ip.unwrap_or(bound.ip()), bound.port());
    let mut shard_cfg = ShardConfig::new(announced);
    shard_cfg.early_checks = cfg.early_checks;
    let (ctx, crx) = mpsc::sync_channel(COMMAND_QUEUE);
    let (etx, erx) = mpsc::sync_channel(EVENT_QUEUE);
    let thread = std::thread::Builder::new()
        .name(format!("shard-{}", bound.port()))
        .spawn(move || run(socket, Shard::new(shard_cfg), crx, etx))?;
    Ok((
        ShardHandle {
            commands: ctx,
            local: announced,
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

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commands
            .send(make(tx))
            .map_err(|_| EngineError::Stopped)?;
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

    /// Asks the thread to end (join its handle to wait for it).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }
}

fn run(
    socket: UdpSocket,
    mut shard: Shard,
    commands: Receiver<Command>,
    events: SyncSender<Event>,
) {
    let mut buf = vec![0u8; 2048];
    let local = shard.config().announced;
    let mut dropped_events = 0u64;
    loop {
        // Commands first: they are rare and a reply is being waited for.
        loop {
            match commands.try_recv() {
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(cmd) => apply(&mut shard, Instant::now(), cmd),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        shard.handle_timeout(now);
        flush(&socket, &mut shard);
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
        let wait = shard
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_BLOCK)
            .clamp(Duration::from_micros(100), MAX_BLOCK);
        // A zero timeout means "block forever" to std: the clamp keeps it positive.
        let _ = socket.set_read_timeout(Some(wait));
        let mut first = true;
        loop {
            if !first {
                // Drain what is queued without blocking, then go back to timers and commands.
                let _ = socket.set_nonblocking(true);
            }
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    shard.handle_datagram(Instant::now(), local, from, BytesMut::from(&buf[..n]));
                    flush(&socket, &mut shard);
                }
                Err(e)
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                        || e.kind() == ErrorKind::Interrupted =>
                {
                    break;
                }
                // ICMP port unreachable from a gone client shows up as ECONNREFUSED on Linux.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!("shard recv: {e}");
                    break;
                }
            }
            first = false;
        }
        let _ = socket.set_nonblocking(false);
    }
}

fn apply(shard: &mut Shard, now: Instant, cmd: Command) {
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
        Command::Stats(r) => {
            let _ = r.send(Ok(shard.stats()));
        }
        Command::Stop => {}
    }
}

fn flush(socket: &UdpSocket, shard: &mut Shard) {
    while let Some(t) = shard.poll_transmit() {
        if let Err(e) = socket.send_to(&t.payload, t.remote) {
            tracing::debug!(to = %t.remote, "shard send: {e}");
        }
    }
}
