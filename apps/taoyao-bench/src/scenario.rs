//! The load scenarios against a taoyao server. Each sets its clients up, waits until every
//! one of them receives what it should, then measures a window and returns a [`Report`]. The
//! binary and the smoke tests call these.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::media::TestMedia;
use crate::member::Member;
use crate::peer::{ClientPeer, PeerOptions, SendLog};
use crate::procstat;
use crate::report::{Percentiles, Report};
use crate::signal::SignalClient;

/// Where and how a scenario runs.
pub struct Bench {
    /// Signaling URL of the server under test.
    pub url: String,
    /// The server's pid, for its CPU and memory.
    pub pid: Option<u32>,
    pub username: String,
    pub password: String,
    pub media: Arc<TestMedia>,
    /// Options of every client peer (bind address; the shared send log for latency).
    pub peer: PeerOptions,
    /// Draw progress bars on the terminal.
    pub progress: bool,
    /// How long setup may take until every client receives what it should.
    pub ready_timeout: Duration,
}

impl Bench {
    pub fn new(url: &str, pid: Option<u32>, media: Arc<TestMedia>) -> Bench {
        Bench {
            url: url.to_owned(),
            pid,
            username: "taoyao".into(),
            password: "taoyao".into(),
            media,
            peer: PeerOptions {
                send_log: Some(Arc::new(SendLog::default())),
                ..PeerOptions::default()
            },
            progress: false,
            ready_timeout: Duration::from_secs(60),
        }
    }

    fn register(&self, id: &str) -> Value {
        json!({"clientId": id, "username": self.username, "password": self.password})
    }

    async fn member(&self, id: &str) -> anyhow::Result<Arc<Member>> {
        Member::connect(&self.url, self.register(id), self.peer.clone())
            .await
            .with_context(|| format!("member {id}"))
    }

    /// A progress bar (hidden unless `progress`).
    pub fn bar(&self, len: u64, prefix: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if self.progress {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_owned());
        bar
    }
}

/// A name no earlier run of this process used.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand::random::<u16>()
    )
}

/// Waits until `cond` holds.
pub async fn wait_until(
    within: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    recv_packets: u64,
    recv_bytes: u64,
    missing: u64,
    sent_packets: u64,
    sent_bytes: u64,
}

fn count(receivers: &[Arc<ClientPeer>], senders: &[Arc<ClientPeer>]) -> Counts {
    let mut c = Counts::default();
    for t in receivers.iter().flat_map(|r| r.received.tracks()) {
        c.recv_packets += t.packets();
        c.recv_bytes += t.bytes();
        c.missing += t.sequence_stats().1;
    }
    for s in senders {
        c.sent_packets += s.sent_packets.load(Ordering::Relaxed);
        c.sent_bytes += s.sent_bytes.load(Ordering::Relaxed);
    }
    c
}

/// Server and machine readings at the edges of a window.
struct Edges {
    proc: Option<procstat::ProcSample>,
    machine: procstat::MachineSample,
    at: Instant,
}

impl Edges {
    fn now(pid: Option<u32>) -> anyhow::Result<Edges> {
        Ok(Edges {
            proc: pid
                .map(procstat::sample)
                .transpose()
                .context("reading the server's /proc")?,
            machine: procstat::machine()?,
            at: Instant::now(),
        })
    }

    /// Fills window, server CPU / RSS and machine load.
    fn fill(&self, end: &Edges, r: &mut Report) {
        r.window_s = end.at.duration_since(self.at).as_secs_f64();
        if let (Some(a), Some(b)) = (self.proc, end.proc) {
            r.server_cpu = Some(procstat::core_share(&a, &b));
            r.server_rss_mb = Some(b.rss_bytes as f64 / 1e6);
        }
        r.machine_busy = procstat::machine_busy(&self.machine, &end.machine);
    }
}

/// Sleeps `seconds` with a progress bar showing `status()`.
async fn window(b: &Bench, seconds: f64, prefix: &str, status: impl Fn() -> String) {
    let bar = b.bar((seconds * 10.0).ceil() as u64, prefix);
    let start = Instant::now();
    loop {
        let e = start.elapsed().as_secs_f64();
        bar.set_position((e * 10.0) as u64);
        bar.set_message(status());
        if e >= seconds {
            break;
        }
        tokio::time::sleep(Duration::from_secs_f64((seconds - e).min(0.25))).await;
    }
    bar.finish_and_clear();
}

/// Measures a media window: what `senders` send and `receivers` get, loss, latency and the
/// server's CPU and memory.
pub async fn measure_media(
    b: &Bench,
    mut report: Report,
    seconds: f64,
    receivers: &[Arc<ClientPeer>],
    senders: &[Arc<ClientPeer>],
) -> anyhow::Result<Report> {
    for t in receivers.iter().flat_map(|r| r.received.tracks()) {
        t.take_latencies();
    }
    let c0 = count(receivers, senders);
    let e0 = Edges::now(b.pid)?;
    window(b, seconds, &report.scenario, || {
        let c = count(receivers, senders);
        format!(
            "{} packets received, {} lost",
            c.recv_packets - c0.recv_packets,
            c.missing.saturating_sub(c0.missing)
        )
    })
    .await;
    let c1 = count(receivers, senders);
    let e1 = Edges::now(b.pid)?;
    e0.fill(&e1, &mut report);
    report.packets_sent = c1.sent_packets - c0.sent_packets;
    report.bytes_sent = c1.sent_bytes - c0.sent_bytes;
    report.packets_received = c1.recv_packets - c0.recv_packets;
    report.bytes_received = c1.recv_bytes - c0.recv_bytes;
    report.lost = c1.missing.saturating_sub(c0.missing);
    let lat: Vec<u32> = receivers
        .iter()
        .flat_map(|r| r.received.tracks())
        .flat_map(|t| t.take_latencies())
        .collect();
    report.latency = Percentiles::of_us(lat);
    report.derive();
    Ok(report)
}

/// A group of like members in a scenario's room.
struct Group<'a> {
    /// Members are named `{room}-{prefix}{i}`.
    prefix: &'a str,
    count: usize,
    /// Their `room::enter` subscribe policy.
    subscribe: &'a str,
    /// What each publishes of the bench media (nothing when both are false).
    video: bool,
    audio: bool,
}

/// Connects the group's members into `room` on `architecture`, ticking `bar` once per member.
async fn members_in(
    b: &Bench,
    bar: &ProgressBar,
    room: &str,
    architecture: &str,
    g: Group<'_>,
) -> anyhow::Result<Vec<Arc<Member>>> {
    let mut all = Vec::with_capacity(g.count);
    for i in 0..g.count {
        let m = b.member(&format!("{room}-{}{i}", g.prefix)).await?;
        m.enter_with(
            json!({"roomId": room, "architecture": architecture, "subscribe": g.subscribe}),
        )
        .await?;
        if g.video || g.audio {
            m.publish(b.media.clone(), g.video, g.audio)
                .await
                .context("publishing")?;
        }
        all.push(m);
        bar.inc(1);
    }
    Ok(all)
}

async fn close(members: &[Arc<Member>]) {
    for m in members {
        m.close_peers().await;
    }
}

fn receives_video_of(m: &Member, from: &[Arc<Member>]) -> bool {
    from.iter().filter(|p| p.id != m.id).all(|p| {
        m.sub()
            .received
            .find(&p.id, true)
            .is_some_and(|t| t.packets() > 0)
    })
}

/// `publishers` members publish VP8 + Opus into one sfu room; `subscribers` others receive all.
pub async fn sfu_fanout(
    b: &Bench,
    publishers: usize,
    subscribers: usize,
    seconds: f64,
) -> anyhow::Result<Report> {
    let room = unique("fanout");
    let bar = b.bar((publishers + subscribers) as u64, "connecting");
    let subs = Group {
        prefix: "sub-",
        count: subscribers,
        subscribe: "all",
        video: false,
        audio: false,
    };
    let subs = members_in(b, &bar, &room, "sfu", subs).await?;
    let pubs = Group {
        prefix: "pub-",
        count: publishers,
        subscribe: "none",
        video: true,
        audio: true,
    };
    let pubs = members_in(b, &bar, &room, "sfu", pubs).await?;
    bar.finish_and_clear();
    let result = async {
        wait_until(b.ready_timeout, "every subscriber to receive video", || {
            subs.iter().all(|s| receives_video_of(s, &pubs))
        })
        .await?;
        let receivers: Vec<_> = subs.iter().map(|m| m.sub()).collect();
        let senders: Vec<_> = pubs.iter().filter_map(|m| m.publisher()).collect();
        measure_media(
            b,
            Report::new("taoyao", "sfu-fanout", subscribers, "subscribers"),
            seconds,
            &receivers,
            &senders,
        )
        .await
    }
    .await;
    close(&subs).await;
    close(&pubs).await;
    result
}

/// `members` members in one sfu room, each publishing VP8 + Opus and receiving everyone else.
pub async fn meeting(b: &Bench, members: usize, seconds: f64) -> anyhow::Result<Report> {
    let room = unique("meeting");
    let bar = b.bar(members as u64, "connecting");
    let group = Group {
        prefix: "m",
        count: members,
        subscribe: "all",
        video: true,
        audio: true,
    };
    let all = members_in(b, &bar, &room, "sfu", group).await?;
    bar.finish_and_clear();
    let result = async {
        wait_until(
            b.ready_timeout,
            "every member to receive every other's video",
            || all.iter().all(|m| receives_video_of(m, &all)),
        )
        .await?;
        let receivers: Vec<_> = all.iter().map(|m| m.sub()).collect();
        let senders: Vec<_> = all.iter().filter_map(|m| m.publisher()).collect();
        measure_media(
            b,
            Report::new("taoyao", "meeting", members, "members"),
            seconds,
            &receivers,
            &senders,
        )
        .await
    }
    .await;
    close(&all).await;
    result
}

/// `members` members in one mcu room, each sending Opus and receiving the mix of the others.
pub async fn mcu(b: &Bench, members: usize, seconds: f64) -> anyhow::Result<Report> {
    let room = unique("mcu");
    let bar = b.bar(members as u64, "connecting");
    let group = Group {
        prefix: "m",
        count: members,
        subscribe: "all",
        video: false,
        audio: true,
    };
    let all = members_in(b, &bar, &room, "mcu", group).await?;
    bar.finish_and_clear();
    let result = async {
        wait_until(b.ready_timeout, "every member to receive the mix", || {
            all.iter().all(|m| {
                m.sub()
                    .received
                    .find("mix", false)
                    .is_some_and(|t| t.packets() > 0)
            })
        })
        .await?;
        let receivers: Vec<_> = all.iter().map(|m| m.sub()).collect();
        let senders: Vec<_> = all.iter().filter_map(|m| m.publisher()).collect();
        let mut r = measure_media(
            b,
            Report::new("taoyao", "mcu", members, "members"),
            seconds,
            &receivers,
            &senders,
        )
        .await?;
        r.derive_per_participant();
        Ok(r)
    }
    .await;
    close(&all).await;
    result
}

/// One publisher in an sfu room; `joins` members join one after another, each timed from
/// WebSocket connect to its first video packet and first keyframe, then leave.
pub async fn join(b: &Bench, joins: usize) -> anyhow::Result<Report> {
    let room = unique("join");
    let publisher = b.member(&format!("{room}-pub")).await?;
    publisher
        .enter_with(json!({"roomId": room, "architecture": "sfu", "subscribe": "none"}))
        .await?;
    publisher
        .publish(b.media.clone(), true, true)
        .await
        .context("publishing")?;
    let mut first_packet = Vec::new();
    let mut first_key = Vec::new();
    // Connect + register, room::enter answered, subscribe connection connected.
    // Then: first subscribe offer received, last answer accepted.
    let mut phases: [Vec<u32>; 5] = Default::default();
    let mut offer_counts = Vec::new();
    let mut r = Report::new("taoyao", "join", joins, "joins");
    let bar = b.bar(joins as u64, "join");
    let e0 = Edges::now(b.pid)?;
    let mut received = (0u64, 0u64, 0u64);
    let result: anyhow::Result<()> = async {
        for i in 0..joins {
            let start = Instant::now();
            let since = |at: Instant| at.duration_since(start).as_micros() as u32;
            let m = b.member(&format!("{room}-j{i}")).await?;
            phases[0].push(since(Instant::now()));
            m.enter_with(json!({"roomId": room, "architecture": "sfu", "subscribe": "all"}))
                .await?;
            phases[1].push(since(Instant::now()));
            if m.sub().connected(Duration::from_secs(10)).await.is_ok() {
                phases[2].push(since(Instant::now()));
            }
            let got = wait_until(
                Duration::from_secs(10),
                "the joiner's first keyframe",
                || {
                    m.sub()
                        .received
                        .find(&publisher.id, true)
                        .is_some_and(|t| t.keyframes() > 0)
                },
            )
            .await;
            let offers = m.subscribe_offers();
            if let Some((offered, _)) = offers.first() {
                phases[3].push(since(*offered));
            }
            if let Some((_, accepted)) = offers.last() {
                phases[4].push(since(*accepted));
            }
            offer_counts.push(offers.len());
            if let Some(t) = m.sub().received.find(&publisher.id, true) {
                let log = t.log();
                if let Some(p) = log.first() {
                    first_packet.push(p.at.duration_since(start).as_micros() as u32);
                }
                if let Some(p) = log.iter().find(|p| p.keyframe) {
                    first_key.push(p.at.duration_since(start).as_micros() as u32);
                }
                received.0 += t.packets();
                received.1 += t.bytes();
                received.2 += t.sequence_stats().1;
            }
            m.close_peers().await;
            drop(m);
            got.with_context(|| format!("join {i}"))?;
            bar.inc(1);
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    let e1 = Edges::now(b.pid)?;
    publisher.close_peers().await;
    result?;
    e0.fill(&e1, &mut r);
    r.packets_received = received.0;
    r.bytes_received = received.1;
    r.lost = received.2;
    r.join_first_packet = Percentiles::of_us(first_packet);
    r.join_first_keyframe = Percentiles::of_us(first_key);
    let names = [
        "registered",
        "entered",
        "subscribe connection up",
        "first subscribe offer",
        "last answer accepted",
    ];
    let phases: Vec<String> = names
        .iter()
        .zip(phases)
        .filter_map(|(n, v)| {
            Percentiles::of_us(v).map(|p| format!("{n} {:.1}/{:.1}", p.p50_ms, p.p99_ms))
        })
        .collect();
    r.notes.push(format!(
        "phases from connect, p50/p99 ms: {}; subscribe offers per join: {:?}; keyframe requests reaching the publisher: {}",
        phases.join(", "),
        offer_counts,
        publisher
            .publisher()
            .map_or(0, |p| p.keyframe_requests.load(Ordering::Relaxed))
    ));
    r.derive();
    // The joiners leave at their first keyframe: packets per CPU second says nothing here.
    r.cpu_per_packet_us = None;
    Ok(r)
}

/// Signaling load: `clients` WebSocket clients register, enter rooms of `room_size`, heartbeat
/// every `heartbeat`, and each sends `rate` `room::broadcast`s per second, stamped with the
/// bench's clock so the receivers measure delivery latency.
/// Raises this process's open-file limit to its hard limit (each client is a socket); returns
/// the limit now in force.
pub fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}

type NoteRx = tokio::sync::mpsc::UnboundedReceiver<Value>;

/// The server's CPU time so far (user + system), when its pid is known.
fn server_cpu(pid: Option<u32>) -> anyhow::Result<Option<Duration>> {
    Ok(pid
        .map(procstat::sample)
        .transpose()
        .context("reading the server's /proc")?
        .map(|p| p.cpu))
}

/// The local address client `i` connects from: 127.0.0.1 .. 127.0.0.n in turn when the server
/// is on loopback and `source_ips` > 1 (one address reaches one server port from at most
/// `ip_local_port_range` ports), else whatever the system picks.
fn source_ip(url: &str, source_ips: usize, i: usize) -> Option<std::net::IpAddr> {
    let loopback = url.contains("://127.") || url.contains("://localhost");
    (loopback && source_ips > 1).then(|| {
        let n = (i % source_ips.min(254)) as u8;
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1 + n))
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn signal(
    b: &Bench,
    clients: usize,
    room_size: usize,
    rate: f64,
    heartbeat: Duration,
    seconds: f64,
    source_ips: usize,
) -> anyhow::Result<Report> {
    let run = unique("sig");
    let epoch = Instant::now();
    let open_files = raise_open_files();
    if open_files > 0 && (clients as u64) + 64 > open_files {
        bail!(
            "{clients} clients need as many sockets, but this process may open {open_files} files \
             (ulimit -n; the hard limit caps it)"
        );
    }
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let broadcasts = Arc::new(AtomicU64::new(0));
    let recording = Arc::new(AtomicBool::new(false));
    let bar = b.bar(clients as u64, "registering");
    let room_size = room_size.max(1);
    // Phase 1: every client connects and registers (what presence costs is paid here).
    let cpu0 = server_cpu(b.pid)?;
    let started = Instant::now();
    let registered: Vec<anyhow::Result<(SignalClient, NoteRx)>> =
        futures_util::stream::iter(0..clients)
            .map(|i| {
                let (run, bar) = (run.clone(), bar.clone());
                async move {
                    let from = source_ip(&b.url, source_ips, i);
                    let (c, notes) = SignalClient::connect_from(&b.url, heartbeat, from)
                        .await
                        .with_context(|| format!("client {i}"))?;
                    let r = c
                        .request("client::register", b.register(&format!("{run}-{i}")))
                        .await?;
                    if r["code"] != "0000" {
                        bail!("register {i}: {r}");
                    }
                    bar.inc(1);
                    Ok((c, notes))
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
    bar.finish_and_clear();
    let registered_in = started.elapsed();
    let register_cpu = server_cpu(b.pid)?
        .zip(cpu0)
        .map(|(a, b)| (a - b).as_secs_f64());
    let rss_registered = b
        .pid
        .map(procstat::sample)
        .transpose()
        .context("reading the server's /proc")?
        .map(|p| p.rss_bytes as f64 / 1e6);
    // Phase 2: each enters its room.
    let bar = b.bar(clients as u64, "entering");
    let started = Instant::now();
    let connected: Vec<anyhow::Result<(SignalClient, String)>> =
        futures_util::stream::iter(registered.into_iter().enumerate())
            .map(|(i, c)| {
                let (run, bar) = (run.clone(), bar.clone());
                let (lat, n, rec) = (latencies.clone(), broadcasts.clone(), recording.clone());
                async move {
                    let (c, mut notes) = c?;
                    let room = format!("{run}-room{}", i / room_size);
                    let r = c
                        .request(
                            "room::enter",
                            json!({"roomId": room, "architecture": "mesh"}),
                        )
                        .await?;
                    if r["code"] != "0000" {
                        bail!("enter {room}: {r}");
                    }
                    tokio::spawn(async move {
                        while let Some(m) = notes.recv().await {
                            if m["header"]["signal"] != "room::broadcast"
                                || !rec.load(Ordering::Relaxed)
                            {
                                continue;
                            }
                            let Some(sent) = m["body"]["sentUs"].as_u64() else {
                                continue;
                            };
                            let now = epoch.elapsed().as_micros() as u64;
                            n.fetch_add(1, Ordering::Relaxed);
                            let mut l = lat.lock().expect("latency lock");
                            if l.len() < 2_000_000 {
                                l.push(now.saturating_sub(sent) as u32);
                            }
                        }
                    });
                    bar.inc(1);
                    Ok((c, room))
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
    bar.finish_and_clear();
    let entered_in = started.elapsed();
    let mut all = Vec::with_capacity(clients);
    for c in connected {
        all.push(c?);
    }
    let registered = format!(
        "registered {clients} clients (connect + client::register, 64 at a time) in {:.2} s{}; server RSS then: {}; all entered rooms of {room_size} in {:.2} s more",
        registered_in.as_secs_f64(),
        register_cpu.map_or(String::new(), |c| format!(" (server CPU {c:.2} s)")),
        rss_registered.map_or("unknown (no --server-pid)".to_owned(), |m| format!(
            "{m:.0} MB"
        )),
        entered_in.as_secs_f64(),
    );
    println!("{registered}");
    // Senders: each client broadcasts `rate` times a second, phases spread over the period.
    let stop = Arc::new(AtomicBool::new(false));
    if rate > 0.0 {
        let period = Duration::from_secs_f64(1.0 / rate);
        for (i, (c, room)) in all.iter().enumerate() {
            let (link, room, stop) = (c.link.clone(), room.clone(), stop.clone());
            let phase = period.mul_f64(i as f64 / clients.max(1) as f64);
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sent = epoch.elapsed().as_micros() as u64;
                    if link
                        .send("room::broadcast", json!({"roomId": room, "sentUs": sent}))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        // One period for every sender to be going.
        tokio::time::sleep(period).await;
    }
    let frames = |all: &[(SignalClient, String)]| -> u64 {
        all.iter()
            .map(|(c, _)| c.received.load(Ordering::Relaxed))
            .sum()
    };
    let f0 = frames(&all);
    recording.store(true, Ordering::Relaxed);
    let e0 = Edges::now(b.pid)?;
    window(b, seconds, "signal", || {
        format!("{} broadcasts received", broadcasts.load(Ordering::Relaxed))
    })
    .await;
    recording.store(false, Ordering::Relaxed);
    let e1 = Edges::now(b.pid)?;
    let f1 = frames(&all);
    stop.store(true, Ordering::Relaxed);
    let mut r = Report::new("taoyao", "signal", clients, "clients");
    e0.fill(&e1, &mut r);
    r.notes.push(registered);
    r.packets_received = broadcasts.load(Ordering::Relaxed);
    r.messages_per_s = Some((f1 - f0) as f64 / r.window_s);
    r.latency = Percentiles::of_us(std::mem::take(&mut *latencies.lock().expect("lock")));
    // Every member of a room hears every other member's broadcasts.
    let (full, rest) = (clients / room_size, clients % room_size);
    let pairs = full * room_size * (room_size - 1) + rest * rest.saturating_sub(1);
    let expected = pairs as f64 * rate * r.window_s;
    r.notes.push(format!(
        "{} room::broadcast notifications received in the window, about {expected:.0} expected",
        r.packets_received
    ));
    r.derive();
    r.cpu_per_packet_us = r
        .server_cpu
        .map(|c| c * r.window_s * 1e6 / (f1 - f0).max(1) as f64);
    drop(all);
    Ok(r)
}
