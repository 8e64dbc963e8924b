//! `taoyao-bench`: load scenarios against a running taoyao-server, with figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::member::Member;
use taoyao_bench::peer::PeerOptions;
use taoyao_bench::procstat;

#[derive(Parser)]
#[command(version, about = "taoyao-rs load generator and measurement tool")]
struct Cli {
    /// Signaling URL of the server under test.
    #[arg(
        long,
        global = true,
        default_value = "ws://127.0.0.1:8888/websocket.signal"
    )]
    server: String,
    /// The server's process id, to sample its CPU and memory from /proc.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Login used to register (the development default).
    #[arg(long, global = true, default_value = "taoyao")]
    username: String,
    #[arg(long, global = true, default_value = "taoyao")]
    password: String,
    /// Where ffmpeg-made media is cached.
    #[arg(long, global = true, default_value = "target/bench-media")]
    media_dir: std::path::PathBuf,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// The MCU's audio mixing cost, in process (no server): per participant per 20 ms tick, and
    /// how many mixed participants one core sustains.
    MixCost {
        #[arg(long, default_value_t = 50)]
        participants: usize,
        /// How many of them talk at once (the rest send silence).
        #[arg(long, default_value_t = 3)]
        talking: usize,
        #[arg(long, default_value_t = 500)]
        ticks: usize,
    },
    /// P publishers -> S subscribers in one sfu room.
    SfuFanout {
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        /// Measured window, after everyone is connected.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::MixCost {
            participants,
            talking,
            ticks,
        } => mix_cost(participants, talking, ticks),
        Scenario::SfuFanout {
            publishers,
            subscribers,
            seconds,
        } => {
            sfu_fanout(
                &cli.server,
                cli.server_pid,
                &cli.username,
                &cli.password,
                &cli.media_dir,
                publishers,
                subscribers,
                seconds,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn sfu_fanout(
    url: &str,
    pid: Option<u32>,
    user: &str,
    pass: &str,
    media_dir: &std::path::Path,
    publishers: usize,
    subscribers: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let media = Arc::new(TestMedia::make(media_dir, &MediaSpec::default())?);
    let room = format!("bench-{}", std::process::id());
    let register = |id: String| json!({"clientId": id, "username": user, "password": pass});
    let mut subs = Vec::new();
    for i in 0..subscribers {
        let m = Member::connect(url, register(format!("sub-{i}")), PeerOptions::default()).await?;
        m.request("room::create", json!({"name": room, "architecture": "sfu"}))
            .await
            .ok();
        m.enter_with(json!({"roomId": room, "architecture": "sfu", "subscribe": "all"}))
            .await?;
        subs.push(m);
    }
    let mut pubs = Vec::new();
    for i in 0..publishers {
        let m = Member::connect(url, register(format!("pub-{i}")), PeerOptions::default()).await?;
        m.enter(&room, "none").await?;
        m.publish(media.clone(), true, true)
            .await
            .context("publishing")?;
        pubs.push(m);
    }
    // Everyone receives every publisher's video before the window starts.
    let ready = Instant::now();
    while !subs.iter().all(|s| {
        pubs.iter().all(|p| {
            s.sub
                .received
                .find(&p.id, true)
                .is_some_and(|t| t.packets() > 0)
        })
    }) {
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("subscribers did not all receive media within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |subs: &[Arc<Member>]| -> (u64, u64) {
        subs.iter()
            .flat_map(|s| s.sub.received.tracks())
            .fold((0, 0), |(p, m), t| {
                let (_, missing) = t.sequence_stats();
                (p + t.packets(), m + missing)
            })
    };
    let (p0, _) = count(&subs);
    let cpu0 = pid.map(procstat::sample).transpose()?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (p1, missing) = count(&subs);
    let cpu1 = pid.map(procstat::sample).transpose()?;
    let forwarded = p1 - p0;
    println!(
        "sfu-fanout: {publishers} publisher(s) -> {subscribers} subscriber(s), {seconds} s window"
    );
    println!(
        "  packets received by subscribers: {forwarded} ({:.0}/s)",
        forwarded as f64 / seconds as f64
    );
    println!("  sequence gaps at subscribers (whole run): {missing}");
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let share = procstat::core_share(&a, &b);
        println!("  server CPU: {:.1}% of a core", share * 100.0);
        println!(
            "  server CPU per forwarded packet: {:.1} us",
            share * seconds as f64 * 1e6 / forwarded.max(1) as f64
        );
        println!("  server RSS: {:.1} MB", b.rss_bytes as f64 / 1e6);
    }
    for m in subs.iter().chain(pubs.iter()) {
        m.close_peers().await;
    }
    Ok(())
}

fn mix_cost(participants: usize, talking: usize, ticks: usize) -> anyhow::Result<()> {
    use taoyao_media::mixer::{AudioMixer, FRAME, MixerConfig};
    let mut mixer = AudioMixer::new(MixerConfig::default())?;
    let mut encoders = Vec::new();
    for i in 0..participants {
        mixer.add(i)?;
        let mut e = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
        e.set_bitrate(opus::Bitrate::Bits(32_000))?;
        encoders.push(e);
    }
    // Pre-encode what each participant sends (client work, not measured).
    let packets: Vec<Vec<bytes::Bytes>> = encoders
        .iter_mut()
        .enumerate()
        .map(|(i, e)| {
            (0..ticks)
                .map(|t| {
                    let hz = 300.0 + 37.0 * i as f64;
                    let pcm: Vec<i16> = (0..FRAME)
                        .map(|k| {
                            if i >= talking {
                                return 0;
                            }
                            let x = (t * FRAME + k) as f64 / 48_000.0;
                            (6000.0 * (2.0 * std::f64::consts::PI * hz * x).sin()) as i16
                        })
                        .collect();
                    bytes::Bytes::from(e.encode_vec(&pcm, 1500).expect("encode"))
                })
                .collect()
        })
        .collect();
    let mut spent = Duration::ZERO;
    let mut encodes = 0usize;
    for t in 0..ticks {
        for (i, p) in packets.iter().enumerate() {
            mixer.push(&i, t as u16, p[t].clone());
        }
        let start = Instant::now();
        let out = mixer.tick()?;
        spent += start.elapsed();
        encodes += out.encodes;
    }
    let per_tick = spent / ticks as u32;
    let per_participant = per_tick.as_secs_f64() / participants as f64;
    println!("mix-cost: {participants} participants, {talking} talking, {ticks} ticks of 20 ms");
    println!(
        "  mixing time per tick: {:.1} us ({:.2}% of a core)",
        per_tick.as_secs_f64() * 1e6,
        per_tick.as_secs_f64() / 0.020 * 100.0
    );
    println!(
        "  per participant per tick: {:.1} us",
        per_participant * 1e6
    );
    println!(
        "  encodes per tick: {:.1} (speakers' N-1 mixes + one shared)",
        encodes as f64 / ticks as f64
    );
    println!(
        "  participants one core sustains at this mix: {:.0}",
        0.020 / per_participant
    );
    Ok(())
}
