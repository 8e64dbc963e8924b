//! Passive ICE-TCP (RFC 6544) with RFC 4571 framing: every packet on a stream is a 2-byte
//! big-endian length and that many bytes of STUN, DTLS, RTP or RTCP.
//!
//! Two halves. The [`Acceptor`] is one thread per engine with the node's one `TcpListener`: it
//! accepts, reads each new stream's first frame (bounded in size and time, so a stranger who
//! sends junk or nothing is dropped and counted and holds up nobody), takes the server ufrag
//! from that STUN check's USERNAME, reads the owning shard's index from the ufrag's head and
//! hands the stream, non-blocking, to that shard thread over its command channel. A thread of
//! its own, not a shard's loop: accepting and waiting for strangers' first bytes stays off
//! every shard's media path, and no shard has to forward streams to another. `TcpStreams`
//! is the shard thread's side: its streams are polled beside its UDP socket, frames are cut
//! out of whatever each read returns and fed to the [`Shard`] as TCP datagrams, and what the
//! shard writes to a TCP peer is framed onto that stream, buffered while the kernel's send
//! buffer is full, and the stream closed when that backlog passes a byte limit.
//!
//! Routing by the ufrag's head instead of a shared ufrag -> shard map, or asking each shard:
//! the shard writes its index into every ufrag it makes (`Shard::new_conn`), so the acceptor
//! needs no lock, no map to keep in step with opens and closes, and no round trip to N
//! shards; a ufrag that names a shard but no live connection is dropped by that shard's
//! own routing (`unroutable`), as a stale UDP check is, and its stream closed
//! (`closed_unroutable`).
//!
//! The decoder is ours, not `rtc::shared::tcp_framing::TcpFrameDecoder`: that one has no
//! frame size limit (the acceptor needs one for a first frame), copies each packet into a new
//! `Vec` and shifts its buffer per packet; this one splits frames off a `BytesMut` without
//! copying. The constants are rtc's.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rtc::shared::tcp_framing::{FRAMING_HEADER_LEN, MAX_FRAMED_PACKET_SIZE};
use rustc_hash::FxHashMap;

use crate::driver::{ShardHandle, Waker, poll_fds};
use crate::shard::{Shard, Transmit, stun_server_ufrag, ufrag_shard};

/// The largest first frame a new stream may send: a binding request with USERNAME, PRIORITY,
/// ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY and FINGERPRINT is about 100 bytes.
pub const FIRST_FRAME_MAX: usize = 1024;
/// New streams waiting for their first frame; more are refused (counted) until some finish.
const MAX_PENDING: usize = 256;
/// Bytes read from one stream per wake before the others get their turn.
const READ_PER_ROUND: usize = 64 * 1024;
/// The longest sleep of the acceptor with no stream pending (it wakes for a stop at once).
const ACCEPT_MAX_BLOCK: Duration = Duration::from_secs(1);

/// Why a frame stream is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A frame's length header is over the decoder's limit.
    Oversize(usize),
}

/// Cuts RFC 4571 frames out of a byte stream that arrives in pieces of any size.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` (at most 65535, the format's own
    /// limit).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max: max_frame.min(MAX_FRAMED_PACKET_SIZE),
        }
    }

    /// Bytes held that are not a whole frame yet (or frames not taken yet).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, its header removed; `Ok(None)` until one is complete. A frame
    /// over the limit is an error as soon as its header is in (nothing of it is buffered).
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        if self.buf.len() < FRAMING_HEADER_LEN {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if len > self.max {
            return Err(FrameError::Oversize(len));
        }
        if self.buf.len() < FRAMING_HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(FRAMING_HEADER_LEN);
        Ok(Some(self.buf.split_to(len)))
    }

    /// The decoder with a new limit (the acceptor's small one gives way to the format's).
    fn with_max(mut self, max_frame: usize) -> Self {
        self.max = max_frame.min(MAX_FRAMED_PACKET_SIZE);
        self
    }
}

/// Appends `payload` as one frame; false (nothing appended) if it is too long to frame.
pub fn frame_into(out: &mut BytesMut, payload: &[u8]) -> bool {
    let Ok(len) = u16::try_from(payload.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    true
}

/// Why the acceptor dropped a new stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The first frame is not a STUN binding request with a USERNAME.
    NotACheck,
    /// Its server ufrag is not one of ours, or names a shard the engine does not have.
    UnknownUfrag,
}

/// The shard a new stream's first frame goes to: it must be a STUN binding request whose
/// server ufrag starts with the index of one of `shards` shards.
pub fn route_first_frame(frame: &[u8], shards: usize) -> Result<usize, Rejected> {
    // Binding request: method 0x001, class request (RFC 8489 5).
    if frame.len() < 2 || frame[..2] != [0x00, 0x01] {
        return Err(Rejected::NotACheck);
    }
    let ufrag = stun_server_ufrag(frame).ok_or(Rejected::NotACheck)?;
    match ufrag_shard(&ufrag) {
        Some(i) if i < shards => Ok(i),
        _ => Err(Rejected::UnknownUfrag),
    }
}

/// What the acceptor did, over the engine's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpAcceptStats {
    pub accepted: u64,
    /// Handed to the shard their first check names.
    pub routed: u64,
    /// Dropped: the first frame was oversize or not a check for one of our ufrags.
    pub dropped_junk: u64,
    /// Dropped: no whole first frame within the timeout.
    pub dropped_timeout: u64,
    /// Dropped: the peer closed (or reset) before its first frame was in.
    pub dropped_closed: u64,
    /// Dropped: too many streams were pending, or the shard's command queue was full.
    pub dropped_busy: u64,
}

#[derive(Default)]
struct AcceptCounters {
    accepted: AtomicU64,
    routed: AtomicU64,
    dropped_junk: AtomicU64,
    dropped_timeout: AtomicU64,
    dropped_closed: AtomicU64,
    dropped_busy: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A new stream and what the acceptor read of it, for the shard thread to take over.
pub(crate) struct Adopted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub first: BytesMut,
    /// Whatever came after the first frame in the same reads.
    pub rest: FrameDecoder,
}

struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    decoder: FrameDecoder,
    deadline: Instant,
}

/// The running acceptor thread. [`Acceptor::stop`] ends it.
pub struct Acceptor {
    local: SocketAddr,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    counters: Arc<AcceptCounters>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts the thread on `listener` (any blocking mode; it is set non-blocking), routing to
    /// `shards` by index.
    pub(crate) fn spawn(
        listener: TcpListener,
        shards: Vec<ShardHandle>,
        first_frame_timeout: Duration,
    ) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let waker = Arc::new(Waker::new()?);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(AcceptCounters::default());
        let thread = std::thread::Builder::new()
            .name(format!("ice-tcp-{}", local.port()))
            .spawn({
                let (waker, stop, counters) = (waker.clone(), stop.clone(), counters.clone());
                move || {
                    accept_loop(
                        &listener,
                        &shards,
                        first_frame_timeout,
                        &waker,
                        &stop,
                        &counters,
                    )
                }
            })?;
        Ok(Acceptor {
            local,
            waker,
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// The listener's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn stats(&self) -> TcpAcceptStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpAcceptStats {
            accepted: l(&c.accepted),
            routed: l(&c.routed),
            dropped_junk: l(&c.dropped_junk),
            dropped_timeout: l(&c.dropped_timeout),
            dropped_closed: l(&c.dropped_closed),
            dropped_busy: l(&c.dropped_busy),
        }
    }

    /// Ends the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(port = self.local.port(), "ICE-TCP acceptor panicked");
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: &TcpListener,
    shards: &[ShardHandle],
    first_frame_timeout: Duration,
    waker: &Waker,
    stop: &AtomicBool,
    counters: &AcceptCounters,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut scratch = vec![0u8; FIRST_FRAME_MAX + FRAMING_HEADER_LEN];
    let pollin = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        waker.reset();
        if stop.load(Ordering::Relaxed) {
            return;
        }
        fds.clear();
        fds.push(pollin(listener.as_raw_fd()));
        fds.push(pollin(waker.raw_fd()));
        fds.extend(pending.iter().map(|p| pollin(p.stream.as_raw_fd())));
        let now = Instant::now();
        let timeout = pending
            .iter()
            .map(|p| p.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(ACCEPT_MAX_BLOCK)
            .min(ACCEPT_MAX_BLOCK);
        poll_fds(&mut fds, timeout);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    bump(&counters.accepted);
                    if pending.len() >= MAX_PENDING || stream.set_nonblocking(true).is_err() {
                        bump(&counters.dropped_busy);
                        continue;
                    }
                    // Media on TCP: a small frame must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    pending.push(Pending {
                        stream,
                        peer,
                        decoder: FrameDecoder::new(FIRST_FRAME_MAX),
                        deadline: Instant::now() + first_frame_timeout,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // That one connection is gone before we took it; the listener is fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE / ENFILE / ENOBUFS: the connection stays queued and the listener
                    // readable, so the next ppoll returns at once; a short pause keeps this
                    // thread from spinning until descriptors are free.
                    tracing::warn!("ICE-TCP accept: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    break;
                }
            }
        }
        let now = Instant::now();
        // Newly accepted streams are tried at once too: their first frame may be in already.
        let mut i = 0;
        while i < pending.len() {
            match first_frame(&mut pending[i], &mut scratch, shards.len(), now) {
                Step::Wait => i += 1,
                Step::Drop(counter) => {
                    bump(counter(counters));
                    pending.swap_remove(i);
                }
                Step::Route(shard, first) => {
                    let p = pending.swap_remove(i);
                    let adopted = Adopted {
                        stream: p.stream,
                        peer: p.peer,
                        first,
                        rest: p.decoder.with_max(MAX_FRAMED_PACKET_SIZE),
                    };
                    match shards[shard].adopt_tcp(adopted) {
                        Ok(()) => bump(&counters.routed),
                        Err(_) => bump(&counters.dropped_busy),
                    }
                }
            }
        }
    }
}

enum Step {
    Wait,
    Drop(fn(&AcceptCounters) -> &AtomicU64),
    Route(usize, BytesMut),
}

/// Reads what a pending stream has (never more than its first frame can need: the rest stays
/// in the kernel for the shard) and decides its fate.
fn first_frame(p: &mut Pending, scratch: &mut [u8], shards: usize, now: Instant) -> Step {
    let want = FIRST_FRAME_MAX + FRAMING_HEADER_LEN - p.decoder.buffered();
    if want == 0 {
        // Not reached (a full buffer holds a whole first frame, taken below), but a zero-length
        // read would look like the peer's EOF.
        return Step::Drop(|c| &c.dropped_junk);
    }
    match p.stream.read(&mut scratch[..want]) {
        Ok(0) => return Step::Drop(|c| &c.dropped_closed),
        Ok(n) => p.decoder.extend(&scratch[..n]),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
        Err(_) => return Step::Drop(|c| &c.dropped_closed),
    }
    match p.decoder.next_frame() {
        Err(FrameError::Oversize(_)) => Step::Drop(|c| &c.dropped_junk),
        Ok(Some(frame)) => match route_first_frame(&frame, shards) {
            Ok(shard) => Step::Route(shard, frame),
            Err(_) => Step::Drop(|c| &c.dropped_junk),
        },
        Ok(None) if now >= p.deadline => Step::Drop(|c| &c.dropped_timeout),
        Ok(None) => Step::Wait,
    }
}

/// What a shard thread's ICE-TCP streams did, over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStreamStats {
    /// Streams taken over from the acceptor, and of those still open.
    pub adopted: u64,
    pub open: u64,
    /// Closed: the peer closed or reset it (or a read or write failed).
    pub closed_peer: u64,
    /// Closed: more than the send limit was waiting for the kernel's send buffer.
    pub closed_backlog: u64,
    /// Closed at once: the first frame reached no connection on the shard (a stale or forged
    /// ufrag that named this shard).
    pub closed_unroutable: u64,
    /// Closed because the connection it served was closed.
    pub closed_conn: u64,
    /// Frames queued for sending on streams, and their bytes with headers.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Transmits for a TCP peer that has no open stream here (it closed): dropped.
    pub no_stream: u64,
}

struct Stream {
    sock: TcpStream,
    decoder: FrameDecoder,
    /// Framed bytes the kernel has not taken yet.
    out: BytesMut,
}

/// The ICE-TCP streams of one shard thread, keyed by peer address.
pub(crate) struct TcpStreams {
    streams: FxHashMap<SocketAddr, Stream>,
    /// The peers in the order their fds were last put in the poll set.
    order: Vec<SocketAddr>,
    closing: Vec<(SocketAddr, Close)>,
    scratch: Vec<u8>,
    send_limit: usize,
    stats: TcpStreamStats,
}

#[derive(Clone, Copy)]
enum Close {
    Peer,
    Backlog,
    Conn,
}

impl TcpStreams {
    pub fn new(send_limit: usize) -> Self {
        TcpStreams {
            streams: FxHashMap::default(),
            order: Vec::new(),
            closing: Vec::new(),
            scratch: vec![0u8; 16 * 1024],
            send_limit,
            stats: TcpStreamStats::default(),
        }
    }

    pub fn stats(&self) -> TcpStreamStats {
        TcpStreamStats {
            open: self.streams.len() as u64,
            ..self.stats
        }
    }

    /// Takes a stream over: its first frame and anything read after it go to the shard now. A
    /// stream whose first frame reaches no connection is closed at once: the acceptor only
    /// checked that its ufrag names this shard, and a stranger must not park streams here.
    pub fn adopt(&mut self, a: Adopted, shard: &mut Shard, now: Instant) {
        self.stats.adopted += 1;
        if !shard.handle_tcp_frame(now, a.peer, a.first) {
            self.stats.closed_unroutable += 1;
            return;
        }
        let mut stream = Stream {
            sock: a.stream,
            decoder: a.rest,
            out: BytesMut::new(),
        };
        drain_frames(&mut stream.decoder, a.peer, shard, now);
        // A peer address is unique among live connections to one listener; an entry there is a
        // stream that closed without us noticing yet, replaced.
        self.streams.insert(a.peer, stream);
    }

    /// Whether any stream is open (the thread polls with a zero timeout only then).
    pub fn has_streams(&self) -> bool {
        !self.streams.is_empty()
    }

    /// Adds one pollfd per stream (POLLOUT too while output waits) and remembers the order.
    pub fn poll_set(&mut self, fds: &mut Vec<libc::pollfd>) {
        self.order.clear();
        for (peer, s) in &self.streams {
            self.order.push(*peer);
            let mut events = libc::POLLIN;
            if !s.out.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: s.sock.as_raw_fd(),
                events,
                revents: 0,
            });
        }
    }

    /// Reads the streams `revents` (in [`TcpStreams::poll_set`]'s order) says are readable and
    /// writes those that can take output again.
    pub fn service(&mut self, revents: &[libc::pollfd], shard: &mut Shard, now: Instant) {
        let order = std::mem::take(&mut self.order);
        for (peer, fd) in order.iter().zip(revents) {
            if fd.revents == 0 {
                continue;
            }
            let Some(s) = self.streams.get_mut(peer) else {
                continue;
            };
            if fd.revents & libc::POLLOUT != 0 && write_out(s).is_err() {
                self.closing.push((*peer, Close::Peer));
                continue;
            }
            if fd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match read_in(s, &mut self.scratch, *peer, shard, now) {
                    Ok(()) => {}
                    Err(why) => self.closing.push((*peer, why)),
                }
            }
        }
        self.order = order;
        self.close_marked();
    }

    /// Frames a transmit onto its peer's stream (sent by [`TcpStreams::write_all`]).
    pub fn send(&mut self, t: &Transmit) {
        let Some(s) = self.streams.get_mut(&t.remote) else {
            self.stats.no_stream += 1;
            return;
        };
        // rtc writes MTU-sized packets; one over 65535 bytes cannot be framed and is not sent.
        if frame_into(&mut s.out, &t.payload) {
            self.stats.frames_out += 1;
            self.stats.bytes_out += (t.payload.len() + FRAMING_HEADER_LEN) as u64;
        }
    }

    /// Writes what each stream has queued until the kernel takes no more; a stream whose
    /// backlog stays over the send limit, or whose peer is gone, is closed.
    pub fn write_all(&mut self) {
        for (peer, s) in &mut self.streams {
            if s.out.is_empty() {
                continue;
            }
            if write_out(s).is_err() {
                self.closing.push((*peer, Close::Peer));
            } else if s.out.len() > self.send_limit {
                self.closing.push((*peer, Close::Backlog));
            }
        }
        self.close_marked();
    }

    /// Closes the streams of connections the shard closed.
    pub fn close_gone(&mut self, shard: &mut Shard) {
        while let Some(peer) = shard.poll_tcp_gone() {
            self.close(peer, Close::Conn);
        }
    }

    fn close_marked(&mut self) {
        while let Some((peer, why)) = self.closing.pop() {
            self.close(peer, why);
        }
    }

    fn close(&mut self, peer: SocketAddr, why: Close) {
        if self.streams.remove(&peer).is_none() {
            return;
        }
        match why {
            Close::Peer => self.stats.closed_peer += 1,
            Close::Backlog => self.stats.closed_backlog += 1,
            Close::Conn => self.stats.closed_conn += 1,
        }
        tracing::debug!(%peer, "ICE-TCP stream closed");
    }
}

/// Feeds every whole frame to the shard. An adopted stream's decoder has the format's own
/// limit (65535), which no length header can pass, so `next_frame` never errs here.
fn drain_frames(d: &mut FrameDecoder, peer: SocketAddr, shard: &mut Shard, now: Instant) {
    while let Ok(Some(frame)) = d.next_frame() {
        // An established stream's frames are routed by its address; the answer is for adopt.
        let _ = shard.handle_tcp_frame(now, peer, frame);
    }
}

fn read_in(
    s: &mut Stream,
    scratch: &mut [u8],
    peer: SocketAddr,
    shard: &mut Shard,
    now: Instant,
) -> Result<(), Close> {
    let mut read = 0;
    while read < READ_PER_ROUND {
        match s.sock.read(scratch) {
            Ok(0) => return Err(Close::Peer),
            Ok(n) => {
                read += n;
                s.decoder.extend(&scratch[..n]);
                drain_frames(&mut s.decoder, peer, shard, now);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Close::Peer),
        }
    }
    Ok(())
}

/// Writes until the kernel's buffer is full or nothing is left.
fn write_out(s: &mut Stream) -> io::Result<()> {
    while !s.out.is_empty() {
        match s.sock.write(&s.out) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => s.out.advance(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, TransactionId};
    use rtc::stun::textattrs::Username;

    fn stun(typ: rtc::stun::message::MessageType, username: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[
            Box::new(typ),
            Box::new(TransactionId::new()),
            Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        ])
        .unwrap();
        m.raw
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        assert!(frame_into(&mut out, payload));
        out.to_vec()
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let (a, b) = (framed(b"first frame"), framed(&[7u8; 300]));
        let wire: Vec<u8> = a.iter().chain(&b).copied().collect();
        // Every split point of the two frames, fed in two reads.
        for cut in 0..=wire.len() {
            let mut d = FrameDecoder::new(MAX_FRAMED_PACKET_SIZE);
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                d.extend(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f.to_vec());
                }
            }
            assert_eq!(
                got,
                vec![b"first frame".to_vec(), vec![7u8; 300]],
                "cut {cut}"
            );
            assert_eq!(d.buffered(), 0);
        }
        // One byte at a time: nothing until the last byte of each frame.
        let mut d = FrameDecoder::new(MAX_FRAMED_PACKET_SIZE);
        let mut frames = 0;
        for (i, byte) in wire.iter().enumerate() {
            d.extend(std::slice::from_ref(byte));
            if let Some(f) = d.next_frame().unwrap() {
                frames += 1;
                assert!(
                    i + 1 == a.len() || i + 1 == wire.len(),
                    "frame ended at {i}"
                );
                assert!(!f.is_empty());
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn an_oversize_frame_is_refused_from_its_header() {
        let mut d = FrameDecoder::new(FIRST_FRAME_MAX);
        d.extend(&[0x04, 0x01]); // 1025 bytes announced
        assert_eq!(d.next_frame(), Err(FrameError::Oversize(1025)));
        let mut d = FrameDecoder::new(FIRST_FRAME_MAX);
        d.extend(&framed(&[1u8; FIRST_FRAME_MAX]));
        assert_eq!(d.next_frame().unwrap().unwrap().len(), FIRST_FRAME_MAX);
        // The format's own limit: a payload over 65535 cannot be framed.
        let mut out = BytesMut::new();
        assert!(!frame_into(&mut out, &vec![0u8; 65536]));
        assert!(out.is_empty());
    }

    #[test]
    fn the_first_frame_names_the_shard() {
        assert_eq!(
            route_first_frame(&stun(BINDING_REQUEST, "2t1abcd1234:client"), 3),
            Ok(2)
        );
        assert_eq!(
            route_first_frame(&stun(BINDING_REQUEST, "at7deadbeef:c"), 11),
            Ok(10)
        );
        // A shard this engine does not have, a ufrag we did not make.
        assert_eq!(
            route_first_frame(&stun(BINDING_REQUEST, "3t1abcd1234:c"), 3),
            Err(Rejected::UnknownUfrag)
        );
        assert_eq!(
            route_first_frame(&stun(BINDING_REQUEST, "someone:else"), 3),
            Err(Rejected::UnknownUfrag)
        );
        // Not a binding request: a response, HTTP, TLS, nothing.
        assert_eq!(
            route_first_frame(&stun(BINDING_SUCCESS, "0t1abcd1234:c"), 3),
            Err(Rejected::NotACheck)
        );
        assert_eq!(
            route_first_frame(b"GET / HTTP/1.1\r\n", 3),
            Err(Rejected::NotACheck)
        );
        assert_eq!(
            route_first_frame(&[0x16, 0x03, 0x01, 0, 5, 1, 0, 0, 1, 0], 3),
            Err(Rejected::NotACheck)
        );
        assert_eq!(route_first_frame(&[], 3), Err(Rejected::NotACheck));
        // A binding request cut short (the header says more than there is).
        let mut short = stun(BINDING_REQUEST, "0t1abcd1234:c");
        short.truncate(24);
        assert_eq!(route_first_frame(&short, 3), Err(Rejected::NotACheck));
    }

    /// The acceptor's decision for one stream, on a real socket pair.
    fn decide(bytes: &[u8], timeout: Duration) -> Step {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        client.write_all(bytes).unwrap();
        let mut p = Pending {
            stream,
            peer,
            decoder: FrameDecoder::new(FIRST_FRAME_MAX),
            deadline: Instant::now() + timeout,
        };
        let mut scratch = vec![0u8; FIRST_FRAME_MAX + FRAMING_HEADER_LEN];
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(5));
            match first_frame(&mut p, &mut scratch, 2, Instant::now()) {
                Step::Wait if start.elapsed() < Duration::from_secs(5) => {}
                step => return step,
            }
        }
    }

    fn dropped_as(step: Step) -> u64 {
        let c = AcceptCounters::default();
        match step {
            Step::Drop(f) => bump(f(&c)),
            Step::Wait => panic!("still waiting"),
            Step::Route(..) => panic!("routed"),
        }
        [
            &c.dropped_junk,
            &c.dropped_timeout,
            &c.dropped_closed,
            &c.dropped_busy,
        ]
        .iter()
        .position(|a| a.load(Ordering::Relaxed) == 1)
        .unwrap() as u64
    }

    /// A shard-side stream on a real socket pair, `first` its first frame: the test holds the
    /// client end.
    fn adopted(
        streams: &mut TcpStreams,
        shard: &mut Shard,
        first: &[u8],
    ) -> (TcpStream, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        stream.set_nonblocking(true).unwrap();
        let mut rest = FrameDecoder::new(MAX_FRAMED_PACKET_SIZE);
        rest.extend(&framed(b"second"));
        let a = Adopted {
            stream,
            peer,
            first: BytesMut::from(first),
            rest,
        };
        streams.adopt(a, shard, Instant::now());
        (client, peer)
    }

    /// Polls and services the streams until `done` (5 s at most).
    fn service_until(
        streams: &mut TcpStreams,
        shard: &mut Shard,
        done: impl Fn(&TcpStreams, &Shard) -> bool,
    ) {
        let start = Instant::now();
        while !done(streams, shard) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{:?}",
                streams.stats()
            );
            let mut fds = Vec::new();
            streams.poll_set(&mut fds);
            poll_fds(&mut fds, Duration::from_millis(10));
            streams.service(&fds, shard, Instant::now());
        }
    }

    #[test]
    fn a_stream_is_closed_when_its_peer_goes_or_stops_reading() {
        let mut cfg = crate::ShardConfig::new("127.0.0.1:4000".parse().unwrap());
        cfg.tcp = Some("127.0.0.1:4443".parse().unwrap());
        let mut shard = Shard::new(cfg);
        let now = Instant::now();
        let conn = shard.open_connection(now).unwrap();
        let check = stun(
            BINDING_REQUEST,
            &format!("{}:c", shard.ufrag_of(conn).unwrap()),
        );
        let mut streams = TcpStreams::new(64 * 1024);
        // A first frame that reaches no connection: closed at once.
        let (_stranger, _) = adopted(&mut streams, &mut shard, b"first");
        assert_eq!(shard.stats().tcp_frames_in, 1);
        assert_eq!(
            (streams.stats().open, streams.stats().closed_unroutable),
            (0, 1)
        );
        // A check for the connection (kept: no remote description yet) and the frame read
        // behind it both reach the shard; the stream stays.
        let (mut client, _) = adopted(&mut streams, &mut shard, &check);
        assert_eq!(shard.stats().tcp_frames_in, 3);
        assert_eq!(shard.stats().early_checks_kept, 1);
        assert_eq!(streams.stats().open, 1);
        // Two frames in one write, then a third cut in half across two writes.
        let mut wire = framed(b"a");
        wire.extend_from_slice(&framed(b"bb"));
        let third = framed(&[3u8; 100]);
        wire.extend_from_slice(&third[..40]);
        client.write_all(&wire).unwrap();
        service_until(&mut streams, &mut shard, |_, sh| {
            sh.stats().tcp_frames_in >= 5
        });
        // One more round after the rest of the write had time to land: still four.
        std::thread::sleep(Duration::from_millis(20));
        let mut fds = Vec::new();
        streams.poll_set(&mut fds);
        poll_fds(&mut fds, Duration::ZERO);
        streams.service(&fds, &mut shard, Instant::now());
        assert_eq!(shard.stats().tcp_frames_in, 5, "the half frame is held");
        client.write_all(&third[40..]).unwrap();
        service_until(&mut streams, &mut shard, |_, sh| {
            sh.stats().tcp_frames_in >= 6
        });
        // The peer goes: the stream is closed at its EOF.
        drop(client);
        service_until(&mut streams, &mut shard, |s, _| s.stats().open == 0);
        assert_eq!(streams.stats().closed_peer, 1);

        // A peer that never reads: what the kernel cannot take piles up to the limit, then the
        // stream is closed instead of growing.
        let (_client, peer) = adopted(&mut streams, &mut shard, &check);
        let t = Transmit {
            local: "127.0.0.1:4000".parse().unwrap(),
            remote: peer,
            protocol: rtc::shared::TransportProtocol::TCP,
            payload: BytesMut::from(&[9u8; 1200][..]),
        };
        let mut sent = 0;
        while streams.stats().open == 1 {
            assert!(sent < 100_000, "never closed: {:?}", streams.stats());
            streams.send(&t);
            streams.write_all();
            sent += 1;
        }
        let st = streams.stats();
        assert_eq!(st.closed_backlog, 1, "{st:?}");
        assert_eq!(st.frames_out, sent);
        // After the close its transmits have nowhere to go: counted, not queued.
        streams.send(&t);
        assert_eq!(streams.stats().no_stream, 1);

        // The connection closes: its streams go with it.
        let (mut last, _) = adopted(&mut streams, &mut shard, &check);
        assert_eq!(streams.stats().open, 1);
        shard.close(now, conn).unwrap();
        streams.close_gone(&mut shard);
        assert_eq!((streams.stats().open, streams.stats().closed_conn), (0, 1));
        last.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 8];
        assert!(
            matches!(last.read(&mut buf), Ok(0)),
            "the client sees the close"
        );
    }

    #[test]
    fn strangers_are_dropped_for_the_right_reason_and_checks_routed() {
        let long = Duration::from_secs(5);
        // Junk: HTTP's "GE" reads as a 18245-byte frame, over the first-frame limit.
        assert_eq!(dropped_as(decide(b"GET / HTTP/1.1\r\n\r\n", long)), 0);
        // A whole small frame that is not a check.
        assert_eq!(dropped_as(decide(&framed(b"hello"), long)), 0);
        // Half a frame, then nothing: the timeout.
        let check = framed(&stun(BINDING_REQUEST, "1t5abcd1234:c"));
        let step = decide(&check[..10], Duration::from_millis(50));
        assert_eq!(dropped_as(step), 1);
        // A check, and the next frame already behind it: routed, the rest kept for the shard.
        let mut two = check.clone();
        two.extend_from_slice(&framed(b"next"));
        match decide(&two, long) {
            Step::Route(shard, first) => {
                assert_eq!(shard, 1);
                assert_eq!(&first[..], &check[2..]);
            }
            _ => panic!("not routed"),
        }
    }
}
