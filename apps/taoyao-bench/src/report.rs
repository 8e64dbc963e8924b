//! What one run of a scenario measured, and how it is shown: a table, a JSON file.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// p50 / p99 / max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From microsecond samples; `None` when there are none.
    pub fn of_us(mut us: Vec<u32>) -> Option<Percentiles> {
        if us.is_empty() {
            return None;
        }
        us.sort_unstable();
        let at = |q: f64| {
            let i = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
            f64::from(us[i]) / 1000.0
        };
        Some(Percentiles {
            count: us.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: f64::from(*us.last().expect("not empty")) / 1000.0,
        })
    }
}

/// One scenario run at one size against one server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// `taoyao` or `janus`.
    pub target: String,
    /// The scenario's size (subscribers, members, clients or joins) and what it counts.
    pub size: usize,
    pub size_of: String,
    /// Length of the measured window.
    pub window_s: f64,
    /// Server CPU in the window as a share of one core (needs the server's pid).
    pub server_cpu: Option<f64>,
    pub server_rss_mb: Option<f64>,
    /// The whole machine's busy share of all its cores in the window (bench + server + others).
    pub machine_busy: f64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Sequence numbers missing at the receivers, in the window.
    pub lost: u64,
    pub loss_pct: f64,
    /// Send -> receive time of forwarded packets (same clock: the bench is both ends).
    pub latency: Option<Percentiles>,
    /// Server CPU time per packet received by the clients, microseconds (signal: per message
    /// the clients received).
    pub cpu_per_packet_us: Option<f64>,
    /// Server CPU per mixed participant, percent of a core (mcu).
    pub cpu_per_participant_pct: Option<f64>,
    /// Connect -> first video packet, and -> first keyframe (join).
    pub join_first_packet: Option<Percentiles>,
    pub join_first_keyframe: Option<Percentiles>,
    /// Signaling messages received by the clients per second (signal).
    pub messages_per_s: Option<f64>,
    /// Anything the run noticed that the figures do not say.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report of `scenario` against `target` (`taoyao` or `janus`) at `size` `size_of`.
    pub fn new(target: &str, scenario: &str, size: usize, size_of: &str) -> Report {
        Report {
            scenario: scenario.into(),
            target: target.into(),
            size,
            size_of: size_of.into(),
            ..Report::default()
        }
    }

    /// The mcu scenario's cost: server CPU per participant (`size` members).
    pub fn derive_per_participant(&mut self) {
        self.cpu_per_participant_pct = self.server_cpu.map(|c| c * 100.0 / self.size as f64);
    }

    /// Fills the derived figures from the counted ones.
    pub fn derive(&mut self) {
        let expected = self.packets_received + self.lost;
        self.loss_pct = if expected == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / expected as f64
        };
        if let Some(cpu) = self.server_cpu
            && self.packets_received > 0
        {
            self.cpu_per_packet_us = Some(cpu * self.window_s * 1e6 / self.packets_received as f64);
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn pct(p: &Option<Percentiles>) -> String {
    p.map_or("-".into(), |p| format!("{:.1}/{:.1}", p.p50_ms, p.p99_ms))
}

/// The reports as a Markdown table (readable in a terminal, pasteable into docs).
pub fn table(reports: &[Report]) -> String {
    let head = [
        "scenario",
        "target",
        "size",
        "window s",
        "server CPU %core",
        "CPU/pkt us",
        "CPU/participant %",
        "RSS MB",
        "pkts sent",
        "pkts recv",
        "MB recv",
        "lost",
        "latency p50/p99 ms",
        "join pkt p50/p99 ms",
        "join key p50/p99 ms",
        "msgs/s",
        "machine busy %",
    ];
    let mut out = format!("| {} |\n", head.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for r in reports {
        let row = [
            r.scenario.clone(),
            r.target.clone(),
            format!("{} {}", r.size, r.size_of),
            format!("{:.1}", r.window_s),
            opt(r.server_cpu.map(|c| c * 100.0), 1),
            opt(r.cpu_per_packet_us, 1),
            opt(r.cpu_per_participant_pct, 2),
            opt(r.server_rss_mb, 1),
            r.packets_sent.to_string(),
            r.packets_received.to_string(),
            format!("{:.1}", r.bytes_received as f64 / 1e6),
            format!("{} ({:.2}%)", r.lost, r.loss_pct),
            pct(&r.latency),
            pct(&r.join_first_packet),
            pct(&r.join_first_keyframe),
            opt(r.messages_per_s, 0),
            format!("{:.0}", r.machine_busy * 100.0),
        ];
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    for r in reports {
        for n in &r.notes {
            out.push_str(&format!(
                "note ({} {} {}): {n}\n",
                r.scenario, r.target, r.size
            ));
        }
    }
    out
}

/// Writes the reports as a JSON array.
pub fn write_json(path: &std::path::Path, reports: &[Report]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path)?;
    serde_json::to_writer_pretty(&mut f, reports)?;
    f.write_all(b"\n")?;
    Ok(())
}

/// Reads reports written by [`write_json`].
pub fn read_json(path: &std::path::Path) -> anyhow::Result<Vec<Report>> {
    let text = std::fs::read_to_string(path)?;
    Ok(serde_json::from_str(&text)?)
}

/// The figure a scenario is judged by: server CPU per forwarded packet (us), or per mixed
/// participant (% of a core) for mcu.
pub fn cost(r: &Report) -> Option<f64> {
    if r.scenario == "mcu" {
        r.cpu_per_participant_pct
    } else {
        r.cpu_per_packet_us
    }
}

/// taoyao against Janus, per scenario and size present for both: their costs and the ratio.
pub fn compare(reports: &[Report]) -> String {
    let mut out = String::from(
        "| scenario | size | taoyao cost | janus cost | taoyao/janus | taoyao loss | janus loss | taoyao latency p50/p99 ms | janus latency p50/p99 ms | machine busy % (taoyao, janus) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for t in reports.iter().filter(|r| r.target == "taoyao") {
        let Some(j) = reports
            .iter()
            .find(|j| j.target == "janus" && j.scenario == t.scenario && j.size == t.size)
        else {
            continue;
        };
        let unit = if t.scenario == "mcu" {
            "% core/participant"
        } else {
            "us/packet"
        };
        let ratio = match (cost(t), cost(j)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {} {} | {} {unit} | {} {unit} | {ratio} | {:.2}% | {:.2}% | {} | {} | {:.0}, {:.0} |\n",
            t.scenario,
            t.size,
            t.size_of,
            opt(cost(t), 2),
            opt(cost(j), 2),
            t.loss_pct,
            j.loss_pct,
            pct(&t.latency),
            pct(&j.latency),
            t.machine_busy * 100.0,
            j.machine_busy * 100.0,
        ));
    }
    out
}

/// An SVG chart of a sweep: per scenario, its cost (server CPU per forwarded packet, or per
/// mixed participant) and its loss against size, one line per target.
pub fn chart(path: &std::path::Path, reports: &[Report]) -> anyhow::Result<()> {
    draw(path, reports).map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

/// Reads one figure off a report.
type Figure = fn(&Report) -> Option<f64>;

fn draw(path: &std::path::Path, reports: &[Report]) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    // Scenarios with a cost figure (join has none).
    let mut scenarios: Vec<&str> = reports
        .iter()
        .filter(|r| cost(r).is_some())
        .map(|r| r.scenario.as_str())
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let rows = scenarios.len().max(1);
    let root = SVGBackend::new(path, (1000, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows, 2));
    for (row, scenario) in scenarios.iter().enumerate() {
        let of: Vec<&Report> = reports.iter().filter(|r| r.scenario == *scenario).collect();
        let mut targets: Vec<&str> = of.iter().map(|r| r.target.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        let cost_label = match *scenario {
            "mcu" => "server CPU per participant, % of a core",
            "signal" => "server CPU per message received, us",
            _ => "server CPU per forwarded packet, us",
        };
        let panels: [(&str, Figure); 2] = [(cost_label, cost), ("loss, %", |r| Some(r.loss_pct))];
        for (col, (label, value)) in panels.iter().enumerate() {
            let xmax = of.iter().map(|r| r.size).max().unwrap_or(1) as f64 * 1.05;
            let ymax = of
                .iter()
                .filter_map(|r| value(r))
                .fold(0.0f64, f64::max)
                .max(if col == 1 { 1.0 } else { 0.001 })
                * 1.15;
            let mut chart = ChartBuilder::on(&areas[row * 2 + col])
                .caption(format!("{scenario}: {label}"), ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
            chart
                .configure_mesh()
                .max_light_lines(0)
                .x_desc(of.first().map_or("size", |r| r.size_of.as_str()))
                .draw()?;
            for (i, target) in targets.iter().enumerate() {
                let mut pts: Vec<(f64, f64)> = of
                    .iter()
                    .filter(|r| r.target == *target)
                    .filter_map(|r| value(r).map(|v| (r.size as f64, v)))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let color = match *target {
                    "taoyao" => RGBColor(0x2a, 0x9d, 0x3c).to_rgba(),
                    "janus" => RGBColor(0xd6, 0x27, 0x28).to_rgba(),
                    _ => Palette99::pick(i + 2).to_rgba(),
                };
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                    .label(*target)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        assert_eq!(Percentiles::of_us(vec![]), None);
        let p = Percentiles::of_us((1..=100).map(|i| i * 1000).collect()).unwrap();
        assert_eq!(
            (p.count, p.p50_ms, p.p99_ms, p.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        let one = Percentiles::of_us(vec![2500]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (2.5, 2.5));
    }

    #[test]
    fn derive_computes_loss_and_cost() {
        let mut r = Report {
            window_s: 2.0,
            server_cpu: Some(0.5),
            packets_received: 990,
            lost: 10,
            ..Report::default()
        };
        r.derive();
        assert!((r.loss_pct - 1.0).abs() < 1e-9);
        // 0.5 core * 2 s = 1 s of CPU over 990 packets.
        assert!((r.cpu_per_packet_us.unwrap() - 1e6 / 990.0).abs() < 1e-6);
        let t = table(std::slice::from_ref(&r));
        assert!(t.contains("10 (1.00%)"), "{t}");
        let mut j = r.clone();
        j.target = "janus".into();
        j.cpu_per_packet_us = Some(r.cpu_per_packet_us.unwrap() * 4.0);
        let mut t = r;
        t.target = "taoyao".into();
        let c = compare(&[t.clone(), j.clone()]);
        assert!(c.contains("| 0.25 |"), "{c}");
        let svg = std::env::temp_dir().join(format!("bench-chart-{}.svg", std::process::id()));
        let mut t2 = t.clone();
        t2.size = 20;
        chart(&svg, &[t, t2, j]).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        std::fs::remove_file(&svg).ok();
        assert!(text.starts_with("<svg") && text.contains("taoyao") && text.contains("janus"));
    }
}
