//! `taoyao-bench`: load scenarios against a running taoyao-server, with figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::report::{self, Report};
use taoyao_bench::scenario::{self, Bench};

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
    /// The address the bench's peer connections bind (and offer as their ICE candidate).
    #[arg(long, global = true, default_value = "127.0.0.1")]
    bind_ip: std::net::IpAddr,
    /// The bench peers' ICE check pacing in ms while connecting: 50 like browsers; 200 is
    /// webrtc-rs's default (it decides `join`'s connection time: see docs/benchmarks.md).
    #[arg(long, global = true, default_value_t = 50)]
    ice_check_ms: u64,
    /// Where ffmpeg-made media is cached.
    #[arg(long, global = true, default_value = "target/bench-media")]
    media_dir: std::path::PathBuf,
    /// Test video size and bitrate (Opus is 32 kbps).
    #[arg(long, global = true, default_value_t = 320)]
    width: u32,
    #[arg(long, global = true, default_value_t = 240)]
    height: u32,
    #[arg(long, global = true, default_value_t = 500)]
    video_kbps: u32,
    /// A keyframe at least every this many frames in the test video (30 = one a second).
    #[arg(long, global = true, default_value_t = 30)]
    keyframe_every: u32,
    /// The server under test: taoyao (at --server) or Janus (at --janus; sfu-fanout, meeting
    /// and mcu only).
    #[arg(long, global = true, value_enum, default_value = "taoyao")]
    target: Target,
    /// Janus's WebSocket API.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8188")]
    janus: String,
    /// Also write the figures as JSON here.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
    /// Run the scenario once per size (its subscribers, members, clients or joins).
    #[arg(long, global = true, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Draw the figures (cost and loss against size) as an SVG chart here; for sweeps and compare.
    #[arg(long, global = true)]
    chart: Option<std::path::PathBuf>,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    Taoyao,
    Janus,
}

#[derive(Subcommand, Clone)]
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
    /// taoyao against Janus from JSON files of earlier runs: cost per scenario and size, ratio.
    Compare {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// N WebSocket clients register, heartbeat and exchange room broadcasts.
    Signal {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Clients per room.
        #[arg(long, default_value_t = 10)]
        room_size: usize,
        /// room::broadcast messages each client sends per second.
        #[arg(long, default_value_t = 0.2)]
        rate: f64,
        /// Seconds between heartbeats.
        #[arg(long, default_value_t = 15.0)]
        heartbeat: f64,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Connect from 127.0.0.1 .. 127.0.0.N in turn (a loopback server only): one source
        /// address reaches one server port from at most ip_local_port_range ports (28,232).
        #[arg(long, default_value_t = 1)]
        source_ips: usize,
    },
    /// P publishers -> S subscribers in one sfu room.
    SfuFanout {
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        /// Measured window, after everyone is connected and receiving.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    /// N members in one sfu room, all publishing and subscribing to all.
    Meeting {
        #[arg(long, default_value_t = 4)]
        members: usize,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    /// N members in one mcu room, each sending Opus and receiving the mix.
    Mcu {
        #[arg(long, default_value_t = 8)]
        members: usize,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    /// Repeated joins to a publisher's sfu room: WebSocket connect -> first video packet / keyframe.
    Join {
        #[arg(long, default_value_t = 20)]
        joins: usize,
    },
}

impl Scenario {
    /// The same scenario at another size.
    fn sized(&self, n: usize) -> Scenario {
        let mut s = self.clone();
        match &mut s {
            Scenario::MixCost { participants, .. } => *participants = n,
            Scenario::Signal { clients, .. } => *clients = n,
            Scenario::SfuFanout { subscribers, .. } => *subscribers = n,
            Scenario::Meeting { members, .. } | Scenario::Mcu { members, .. } => *members = n,
            Scenario::Join { joins } => *joins = n,
            Scenario::Compare { .. } => {}
        }
        s
    }
}

async fn run(b: &Bench, target: Target, janus: &str, s: &Scenario) -> anyhow::Result<Report> {
    if target == Target::Janus {
        return match *s {
            Scenario::SfuFanout {
                publishers,
                subscribers,
                seconds,
            } => taoyao_bench::janus::sfu_fanout(b, janus, publishers, subscribers, seconds).await,
            Scenario::Meeting { members, seconds } => {
                taoyao_bench::janus::meeting(b, janus, members, seconds).await
            }
            Scenario::Mcu { members, seconds } => {
                taoyao_bench::janus::mcu(b, janus, members, seconds).await
            }
            _ => anyhow::bail!("--target janus runs sfu-fanout, meeting and mcu"),
        };
    }
    match *s {
        Scenario::MixCost { .. } | Scenario::Compare { .. } => {
            unreachable!("runs without a server")
        }
        Scenario::Signal {
            clients,
            room_size,
            rate,
            heartbeat,
            seconds,
            source_ips,
        } => {
            scenario::signal(
                b,
                clients,
                room_size,
                rate,
                Duration::from_secs_f64(heartbeat),
                seconds,
                source_ips,
            )
            .await
        }
        Scenario::SfuFanout {
            publishers,
            subscribers,
            seconds,
        } => scenario::sfu_fanout(b, publishers, subscribers, seconds).await,
        Scenario::Meeting { members, seconds } => scenario::meeting(b, members, seconds).await,
        Scenario::Mcu { members, seconds } => scenario::mcu(b, members, seconds).await,
        Scenario::Join { joins } => scenario::join(b, joins).await,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Scenario::MixCost {
        participants,
        talking,
        ticks,
    } = cli.scenario
    {
        return mix_cost(participants, talking, ticks);
    }
    if let Scenario::Compare { files } = &cli.scenario {
        let mut all = Vec::new();
        for f in files {
            all.extend(report::read_json(f)?);
        }
        all.sort_by(|a, b| (&a.scenario, a.size, &b.target).cmp(&(&b.scenario, b.size, &a.target)));
        print!("{}", report::table(&all));
        println!();
        print!("{}", report::compare(&all));
        if let Some(path) = &cli.chart {
            report::chart(path, &all)?;
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let media = Arc::new(TestMedia::make(
        &cli.media_dir,
        &MediaSpec {
            width: cli.width,
            height: cli.height,
            video_kbps: cli.video_kbps,
            keyframe_every: cli.keyframe_every,
            ..MediaSpec::default()
        },
    )?);
    let mut b = Bench::new(&cli.server, cli.server_pid, media);
    b.username = cli.username.clone();
    b.password = cli.password.clone();
    b.peer.bind_ip = cli.bind_ip;
    b.peer.ice_check_interval = std::time::Duration::from_millis(cli.ice_check_ms);
    b.progress = !cli.quiet;
    let runs: Vec<Scenario> = if cli.sweep.is_empty() {
        vec![cli.scenario.clone()]
    } else {
        cli.sweep.iter().map(|&n| cli.scenario.sized(n)).collect()
    };
    let mut reports = Vec::new();
    for (i, s) in runs.iter().enumerate() {
        if i > 0 {
            // Let the server finish closing the last run's connections.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let started = Instant::now();
        let r = run(&b, cli.target, &cli.janus, s).await?;
        eprintln!(
            "{} {} {}: done in {:.0} s",
            r.scenario,
            r.size,
            r.size_of,
            started.elapsed().as_secs_f64()
        );
        reports.push(r);
    }
    print!("{}", report::table(&reports));
    if let Some(path) = &cli.json {
        report::write_json(path, &reports)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &cli.chart {
        report::chart(path, &reports)?;
        println!("wrote {}", path.display());
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
            mixer.push(&i, 0, t as u16, p[t].clone())?;
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
