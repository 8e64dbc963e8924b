//! The engine: `shards` shard threads (one UDP socket each, see [`crate::driver`]) and the
//! placement of rooms on them.
//!
//! A room is placed on one shard when it opens and every connection of that room is opened on
//! that shard, so forwarding inside a room never crosses threads. Placement picks the shard
//! with the fewest connections (each shard thread publishes its count after every command),
//! then the fewest rooms, then the lowest index: rooms that grow push later rooms elsewhere.
//! A [`Placement`] counts as one room on its shard until it is dropped.
//!
//! With [`EngineConfig::tcp_port`] the engine also opens one `TcpListener` for the node and
//! runs its acceptor thread ([`crate::tcp`]): every connection then offers a passive ICE-TCP
//! candidate beside its UDP one, and each accepted stream is handed to the shard its first
//! check's ufrag names.
//!
//! The server does not use the engine yet (issue 14 wires it in place of the per-connection
//! async plumbing of `taoyao-webrtc-sfu`); its settings become `[media]` keys then.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::driver::{self, ShardHandle, ShardThreadConfig};
use crate::error::EngineError;
use crate::shard::Event;
use crate::tcp::{Acceptor, TcpAcceptStats};

/// Which UDP port each shard binds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ShardPorts {
    /// Any free port (tests, or a host whose firewall opens the ephemeral range).
    #[default]
    Any,
    /// Shard `i` binds `base + i` (one small range to open in a firewall).
    Base(u16),
    /// Shard `i` binds `ports[i]`; the list's length must be the shard count.
    List(Vec<u16>),
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Shard threads; 0: one per core (`std::thread::available_parallelism`).
    pub shards: usize,
    /// The address every shard's socket binds.
    pub bind_ip: IpAddr,
    pub ports: ShardPorts,
    /// The address written into candidates (a public or NAT address); `None`: `bind_ip`.
    pub announced_ip: Option<IpAddr>,
    /// STUN checks kept per connection before its remote description is set.
    pub early_checks: usize,
    /// GSO sends for runs of datagrams to one destination (off: `sendmmsg` only).
    pub gso: bool,
    /// Passive ICE-TCP (RFC 6544) for clients whose UDP is blocked: one TCP listener on
    /// `bind_ip` at this port (0: any free port, for tests) and, in every connection's SDP, a
    /// `tcptype passive` host candidate at `announced_ip` and that port, prioritised below
    /// the UDP one. `None`: UDP only.
    pub tcp_port: Option<u16>,
    /// How long a new TCP stream may take to send its first frame (a STUN check) before it is
    /// dropped.
    pub tcp_first_frame_timeout: Duration,
    /// Bytes a TCP stream may have waiting for its kernel send buffer before it is closed (a
    /// client that stopped reading must not grow the shard's memory).
    pub tcp_send_limit: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: 0,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: ShardPorts::Any,
            announced_ip: None,
            early_checks: 8,
            gso: true,
            tcp_port: None,
            tcp_first_frame_timeout: Duration::from_secs(5),
            // About a second of a 2 Mbit/s stream.
            tcp_send_limit: 256 * 1024,
        }
    }
}

impl EngineConfig {
    /// The number of shard threads this configuration starts.
    pub fn shard_count(&self) -> usize {
        match (self.shards, &self.ports) {
            (0, ShardPorts::List(l)) if !l.is_empty() => l.len(),
            (0, _) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (n, _) => n,
        }
    }

    fn port(&self, i: usize) -> Result<u16, EngineError> {
        match &self.ports {
            ShardPorts::Any => Ok(0),
            ShardPorts::Base(b) => u16::try_from(*b as usize + i)
                .map_err(|_| EngineError::Config(format!("port base {b} + shard {i} > 65535"))),
            ShardPorts::List(l) => l.get(i).copied().ok_or_else(|| {
                EngineError::Config(format!("{} ports listed for shard {i}", l.len()))
            }),
        }
    }
}

struct Slot {
    handle: ShardHandle,
    events: Mutex<Option<Receiver<Event>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    rooms: Arc<AtomicUsize>,
}

/// The running shards. Dropping it stops them.
pub struct Engine {
    slots: Vec<Slot>,
    /// The ICE-TCP acceptor and its listener's announced address, if configured.
    acceptor: Mutex<Option<Acceptor>>,
    tcp_addr: Option<SocketAddr>,
}

/// A room's shard. Counts as one room there until dropped.
pub struct Placement {
    index: usize,
    handle: ShardHandle,
    rooms: Arc<AtomicUsize>,
}

impl Placement {
    /// The shard's index in the engine.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The shard thread every connection of the room is opened on.
    pub fn shard(&self) -> &ShardHandle {
        &self.handle
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.rooms.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    /// Binds every shard's socket and starts its thread; if one cannot start, the ones started
    /// are stopped and the error says which.
    pub fn start(cfg: &EngineConfig) -> Result<Engine, EngineError> {
        let n = cfg.shard_count();
        if let ShardPorts::List(l) = &cfg.ports
            && l.len() != n
        {
            return Err(EngineError::Config(format!(
                "{} shards but {} ports listed",
                n,
                l.len()
            )));
        }
        // The listener first: its port goes into every shard's candidates.
        let listener = cfg
            .tcp_port
            .map(|port| {
                let bind = SocketAddr::new(cfg.bind_ip, port);
                std::net::TcpListener::bind(bind)
                    .map_err(|e| EngineError::Config(format!("ICE-TCP listener on {bind}: {e}")))
            })
            .transpose()?;
        let tcp_addr = match &listener {
            Some(l) => {
                let bound = l.local_addr()?;
                Some(SocketAddr::new(
                    cfg.announced_ip.unwrap_or(bound.ip()),
                    bound.port(),
                ))
            }
            None => None,
        };
        let mut engine = Engine {
            slots: Vec::with_capacity(n),
            acceptor: Mutex::new(None),
            tcp_addr,
        };
        for i in 0..n {
            let bind = SocketAddr::new(cfg.bind_ip, cfg.port(i)?);
            let (handle, events, thread) = driver::spawn(ShardThreadConfig {
                bind,
                announced_ip: cfg.announced_ip,
                early_checks: cfg.early_checks,
                gso: cfg.gso,
                index: i,
                tcp: tcp_addr,
                tcp_send_limit: cfg.tcp_send_limit,
            })
            .map_err(|e| EngineError::Config(format!("shard {i} on {bind}: {e}")))?;
            engine.slots.push(Slot {
                handle,
                events: Mutex::new(Some(events)),
                thread: Mutex::new(Some(thread)),
                rooms: Arc::new(AtomicUsize::new(0)),
            });
        }
        if let Some(listener) = listener {
            let shards = engine.slots.iter().map(|s| s.handle.clone()).collect();
            let acceptor = Acceptor::spawn(listener, shards, cfg.tcp_first_frame_timeout)
                .map_err(|e| EngineError::Config(format!("ICE-TCP acceptor: {e}")))?;
            *engine.acceptor.lock().expect("not poisoned yet") = Some(acceptor);
        }
        Ok(engine)
    }

    /// The ICE-TCP listener's announced address (what the TCP candidates say), if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// What the ICE-TCP acceptor did (zeros without ICE-TCP). Per-shard stream counters are in
    /// each shard's [`crate::ShardStats::tcp`].
    pub fn tcp_stats(&self) -> TcpAcceptStats {
        self.acceptor
            .lock()
            .ok()
            .and_then(|a| a.as_ref().map(Acceptor::stats))
            .unwrap_or_default()
    }

    pub fn shard_count(&self) -> usize {
        self.slots.len()
    }

    /// Shard `i`'s thread.
    pub fn shard(&self, i: usize) -> Option<&ShardHandle> {
        self.slots.get(i).map(|s| &s.handle)
    }

    /// Shard `i`'s events (once: the control plane's reader takes them).
    pub fn take_events(&self, i: usize) -> Option<Receiver<Event>> {
        self.slots.get(i)?.events.lock().ok()?.take()
    }

    /// Rooms placed on shard `i` and not dropped yet.
    pub fn rooms_on(&self, i: usize) -> usize {
        self.slots
            .get(i)
            .map_or(0, |s| s.rooms.load(Ordering::Relaxed))
    }

    /// Places a room on the least-loaded shard (fewest connections, then fewest rooms).
    pub fn place_room(&self) -> Placement {
        let (index, slot) = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(i, s)| (s.handle.connections(), s.rooms.load(Ordering::Relaxed), *i))
            .expect("an engine has at least one shard");
        slot.rooms.fetch_add(1, Ordering::Relaxed);
        Placement {
            index,
            handle: slot.handle.clone(),
            rooms: slot.rooms.clone(),
        }
    }

    /// Stops the ICE-TCP acceptor and every shard thread, and waits for them.
    pub fn stop(&self) {
        // The acceptor first: it hands streams to the shards.
        let acceptor = self.acceptor.lock().ok().and_then(|mut a| a.take());
        if let Some(mut a) = acceptor {
            a.stop();
        }
        for s in &self.slots {
            s.handle.stop();
        }
        for s in &self.slots {
            let thread = s.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(t) = thread
                && t.join().is_err()
            {
                tracing::error!(port = s.handle.local_addr().port(), "shard thread panicked");
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_and_ports_follow_the_config() {
        let cfg = EngineConfig {
            shards: 3,
            ports: ShardPorts::Base(40000),
            ..EngineConfig::default()
        };
        assert_eq!(cfg.shard_count(), 3);
        assert_eq!(cfg.port(2).unwrap(), 40002);
        let cfg = EngineConfig {
            ports: ShardPorts::List(vec![5000, 5002]),
            ..EngineConfig::default()
        };
        assert_eq!(cfg.shard_count(), 2, "a list sets the count");
        let cfg = EngineConfig {
            shards: 2,
            ports: ShardPorts::Base(65535),
            ..EngineConfig::default()
        };
        assert!(matches!(cfg.port(1), Err(EngineError::Config(_))));
        let cfg = EngineConfig::default();
        assert!(cfg.shard_count() >= 1);
    }

    #[test]
    fn a_port_list_of_the_wrong_length_is_refused() {
        let cfg = EngineConfig {
            shards: 3,
            ports: ShardPorts::List(vec![0, 0]),
            ..EngineConfig::default()
        };
        let err = Engine::start(&cfg).err().expect("refused");
        assert!(err.to_string().contains("3 shards but 2 ports"), "{err}");
    }

    #[test]
    fn a_taken_port_is_an_error_that_names_the_shard() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let cfg = EngineConfig {
            ports: ShardPorts::List(vec![0, port]),
            ..EngineConfig::default()
        };
        let err = Engine::start(&cfg).err().expect("refused");
        assert!(err.to_string().contains("shard 1"), "{err}");
    }

    #[test]
    fn a_taken_tcp_port_is_an_error_that_names_the_listener() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cfg = EngineConfig {
            shards: 1,
            tcp_port: Some(taken.local_addr().unwrap().port()),
            ..EngineConfig::default()
        };
        let err = Engine::start(&cfg).err().expect("refused");
        assert!(err.to_string().contains("ICE-TCP listener"), "{err}");
        let engine = Engine::start(&EngineConfig {
            shards: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        assert_eq!(engine.tcp_addr(), None);
        assert_eq!(engine.tcp_stats(), TcpAcceptStats::default());
    }

    #[test]
    fn rooms_go_to_the_shard_with_the_fewest_rooms_when_none_has_connections() {
        let engine = Engine::start(&EngineConfig {
            shards: 3,
            ..EngineConfig::default()
        })
        .unwrap();
        let a = engine.place_room();
        let b = engine.place_room();
        let c = engine.place_room();
        let mut got = [a.index(), b.index(), c.index()];
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!((0..3).map(|i| engine.rooms_on(i)).sum::<usize>(), 3);
        let freed = b.index();
        drop(b);
        assert_eq!(engine.rooms_on(freed), 0);
        assert_eq!(
            engine.place_room().index(),
            freed,
            "the freed shard is next"
        );
        let ports: std::collections::HashSet<u16> = (0..3)
            .map(|i| engine.shard(i).unwrap().local_addr().port())
            .collect();
        assert_eq!(ports.len(), 3, "one port per shard");
    }
}
