//! One egress batch out of a shard's socket: datagrams grouped by destination, and each run of
//! datagrams to one destination sent as a single GSO `sendmsg` (UDP_SEGMENT: the kernel cuts
//! one buffer into the datagrams), the rest by `sendmmsg`. A fan-out batch is mostly runs: one
//! receive batch of a publisher's packets becomes, for every subscriber, a train of same-sized
//! video packets, with the smaller audio packets closing a run (GSO allows a shorter last
//! segment). Per destination the order of the batch is kept; across destinations it does not
//! matter. GSO's sends go through quinn-udp (`UdpSocketState::try_send`), which also turns it
//! off for the socket when the kernel or the device refuses it (EIO / EINVAL); then every
//! datagram goes by `sendmmsg`.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use crate::sys::send_batch;

/// The kernel's limit on segments in one GSO send (UDP_MAX_SEGMENTS).
const MAX_SEGMENTS: usize = 64;
/// Bytes in one GSO send: under the 64 KiB an IP datagram can carry, headers included.
const MAX_BYTES: usize = 60_000;

/// What one flush did, added up over the socket's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressStats {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Of those, datagrams sent inside GSO runs.
    pub in_runs: u64,
    /// GSO sends (one syscall each).
    pub runs: u64,
    /// Datagrams dropped: the socket's send buffer was full, or the kernel refused one.
    pub dropped: u64,
}

/// The egress side of one socket; its buffers are reused from flush to flush.
pub struct Egress {
    gso: Option<quinn_udp::UdpSocketState>,
    order: Vec<u32>,
    runs: Vec<(usize, usize)>,
    train: Vec<u8>,
    stats: EgressStats,
}

impl Egress {
    /// Egress for `socket` (set non-blocking). `gso: false` sends every datagram by `sendmmsg`
    /// (also what happens where the kernel has no UDP GSO).
    pub fn new(socket: &UdpSocket, gso: bool) -> io::Result<Egress> {
        let gso = if gso {
            let state = quinn_udp::UdpSocketState::new(socket.into())?;
            (state.max_gso_segments() > 1).then_some(state)
        } else {
            socket.set_nonblocking(true)?;
            None
        };
        Ok(Egress {
            gso,
            order: Vec::new(),
            runs: Vec::new(),
            train: Vec::with_capacity(MAX_BYTES),
            stats: EgressStats::default(),
        })
    }

    /// Whether runs go out by GSO on this socket (now: the kernel may turn it off later).
    pub fn uses_gso(&self) -> bool {
        self.gso.as_ref().is_some_and(|s| s.max_gso_segments() > 1)
    }

    pub fn stats(&self) -> EgressStats {
        self.stats
    }

    /// Sends the datagrams (`(destination, payload)`; the order per destination is kept).
    /// What the socket cannot take now is dropped and counted, as a router would drop it; RTP
    /// repairs its own losses.
    pub fn send<P: AsRef<[u8]>>(&mut self, socket: &UdpSocket, datagrams: &[(SocketAddr, P)]) {
        let max_segments = match &self.gso {
            Some(s) => s.max_gso_segments().min(MAX_SEGMENTS),
            None => 1,
        };
        if max_segments <= 1 || datagrams.len() < 2 {
            self.send_singles(socket, datagrams);
            return;
        }
        self.order.clear();
        self.order.extend(0..datagrams.len() as u32);
        // Stable: a destination's datagrams stay in their order.
        self.order.sort_by_key(|&i| datagrams[i as usize].0);
        plan(
            self.order.iter().map(|&i| {
                let (to, p) = &datagrams[i as usize];
                (*to, p.as_ref().len())
            }),
            max_segments,
            &mut self.runs,
        );
        let mut singles: Vec<(SocketAddr, &[u8])> = Vec::new();
        let (runs, order) = (
            std::mem::take(&mut self.runs),
            std::mem::take(&mut self.order),
        );
        let at = |k: usize| {
            let (to, p) = &datagrams[order[k] as usize];
            (*to, p.as_ref())
        };
        for &(start, end) in &runs {
            let (to, first) = at(start);
            if end - start == 1 {
                singles.push((to, first));
                continue;
            }
            // Singles to this destination queued before the run go first (its order).
            if singles.last().is_some_and(|(d, _)| *d == to) {
                self.send_singles(socket, &singles);
                singles.clear();
            }
            self.train.clear();
            for k in start..end {
                self.train.extend_from_slice(at(k).1);
            }
            let transmit = quinn_udp::Transmit {
                destination: to,
                ecn: None,
                contents: &self.train,
                segment_size: Some(first.len()),
                src_ip: None,
            };
            let gso = self.gso.as_ref().expect("runs are planned only with GSO");
            match gso.try_send(socket.into(), &transmit) {
                Ok(()) => {
                    let n = (end - start) as u64;
                    self.stats.sent += n;
                    self.stats.in_runs += n;
                    self.stats.runs += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stats.dropped += (end - start) as u64;
                }
                // Refused (GSO is now off if that was why): the run goes datagram by datagram.
                Err(e) => {
                    tracing::debug!(%to, "gso send: {e}");
                    singles.extend((start..end).map(at));
                }
            }
        }
        (self.runs, self.order) = (runs, order);
        if !singles.is_empty() {
            self.send_singles(socket, &singles);
        }
    }

    /// Datagrams one by one (`sendmmsg` batches), counted.
    fn send_singles<P: AsRef<[u8]>>(&mut self, socket: &UdpSocket, datagrams: &[(SocketAddr, P)]) {
        let sent = send_batch(socket.as_raw_fd(), datagrams);
        self.stats.sent += sent as u64;
        self.stats.dropped += (datagrams.len() - sent) as u64;
    }
}

/// Cuts datagrams, given as `(destination, length)` already grouped by destination, into runs
/// `[start, end)` that one GSO send can carry: one destination, every segment as long as the
/// first but the last, which may be shorter (and then ends the run), at most `max_segments`
/// and [`MAX_BYTES`] in all. A run of one is a datagram sent on its own.
fn plan(
    datagrams: impl Iterator<Item = (SocketAddr, usize)>,
    max_segments: usize,
    runs: &mut Vec<(usize, usize)>,
) {
    runs.clear();
    // The open run: its start, destination, segment size, bytes; and whether it is closed to
    // more (a shorter segment ended it).
    let mut open: Option<(usize, SocketAddr, usize, usize, bool)> = None;
    let mut total = 0;
    for (i, (to, len)) in datagrams.enumerate() {
        total = i + 1;
        if let Some((start, dest, seg, bytes, closed)) = &mut open {
            let fits = !*closed
                && *dest == to
                && len <= *seg
                && i - *start < max_segments
                && *bytes + len <= MAX_BYTES;
            if fits {
                *bytes += len;
                *closed = len < *seg;
                continue;
            }
            runs.push((*start, i));
        }
        open = Some((i, to, len, len, false));
    }
    if let Some((start, ..)) = open {
        runs.push((start, total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(datagrams: &[(u16, usize)], max_segments: usize) -> Vec<(usize, usize)> {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut runs = Vec::new();
        plan(
            datagrams.iter().map(|&(p, len)| (addr(p), len)),
            max_segments,
            &mut runs,
        );
        runs
    }

    #[test]
    fn runs_keep_one_destination_and_one_segment_size_but_a_shorter_last() {
        // Video, video, audio (shorter: closes the run), video.
        assert_eq!(
            runs_of(&[(1, 1200), (1, 1200), (1, 120), (1, 1200)], 64),
            [(0, 3), (3, 4)]
        );
        // A shorter first packet cannot lead longer ones.
        assert_eq!(
            runs_of(&[(1, 100), (1, 1200), (1, 1200)], 64),
            [(0, 1), (1, 3)]
        );
        // Another destination starts another run.
        assert_eq!(
            runs_of(&[(1, 1200), (1, 1200), (2, 1200), (2, 900), (3, 50)], 64),
            [(0, 2), (2, 4), (4, 5)]
        );
        assert_eq!(runs_of(&[], 64), []);
        assert_eq!(runs_of(&[(1, 1200)], 64), [(0, 1)]);
    }

    #[test]
    fn runs_stop_at_the_segment_and_byte_limits() {
        let five = [(1, 1000); 5];
        assert_eq!(runs_of(&five, 2), [(0, 2), (2, 4), (4, 5)]);
        let many = [(1, 1200); 120];
        let runs = runs_of(&many, 64);
        // 60,000 bytes: 50 segments of 1200 per run.
        assert_eq!(runs, [(0, 50), (50, 100), (100, 120)]);
        // No limit: one datagram each.
        assert_eq!(runs_of(&five, 1).len(), 5);
    }

    /// Every datagram of a batch reaches its destination whole and in its order there, with
    /// GSO and without; with GSO (where the kernel has it: loopback does) most go in runs.
    #[test]
    fn a_mixed_batch_arrives_whole_and_in_order_at_each_destination() {
        for gso in [true, false] {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            let receivers: Vec<UdpSocket> = (0..3)
                .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            for r in &receivers {
                r.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                    .unwrap();
            }
            let mut egress = Egress::new(&sender, gso).unwrap();
            // Interleaved as a fan-out batch is: each packet to every receiver in turn;
            // video-sized with an audio-sized one every fourth, a tiny one first for one.
            let mut datagrams: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
            let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); receivers.len()];
            for n in 0..40u8 {
                for (k, r) in receivers.iter().enumerate() {
                    let len = match (n, k) {
                        (0, 2) => 10,
                        (n, _) if n % 4 == 3 => 90 + k,
                        _ => 1100 + k,
                    };
                    let payload: Vec<u8> = (0..len).map(|i| n ^ (i as u8) ^ (k as u8)).collect();
                    expected[k].push(payload.clone());
                    datagrams.push((r.local_addr().unwrap(), payload));
                }
            }
            egress.send(&sender, &datagrams);
            let stats = egress.stats();
            eprintln!("gso {gso} (in use: {}): {stats:?}", egress.uses_gso());
            assert_eq!(
                (stats.sent, stats.dropped),
                (120, 0),
                "gso {gso}: {stats:?}"
            );
            if gso && egress.uses_gso() {
                assert!(stats.in_runs >= 100 && stats.runs <= 40, "{stats:?}");
            } else {
                assert_eq!((stats.in_runs, stats.runs), (0, 0));
            }
            for (k, r) in receivers.iter().enumerate() {
                let mut buf = [0u8; 2048];
                for (i, want) in expected[k].iter().enumerate() {
                    let n = r.recv(&mut buf).unwrap();
                    assert_eq!(
                        &buf[..n],
                        &want[..],
                        "gso {gso}: receiver {k}, datagram {i}"
                    );
                }
            }
        }
    }
}
