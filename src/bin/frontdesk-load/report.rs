//! What a run reports: the machine, the settings, medians over runs; as tables or JSON.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::stats::Summary;
use crate::Common;

/// The machine a report was measured on.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Memory, MiB.
    pub mem_total_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// Open-files limit of this process (and the server it starts).
    pub open_files_limit: u64,
    /// Commit the server was built from (the working tree's HEAD).
    pub commit: String,
    /// The server binary.
    pub server_bin: String,
}

impl Machine {
    /// Reads the machine's facts from /proc (and git for the commit).
    pub fn read(common: &Common) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = kib_field(&meminfo, "MemTotal:").unwrap_or(0) / 1024;
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&common.root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_mib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            open_files_limit: crate::ws::open_files_limit(),
            commit,
            server_bin: common.server_bin.display().to_string(),
        }
    }

    /// One line for the top of a table.
    pub fn line(&self) -> String {
        format!(
            "{} × {} ({} MiB, Linux {}), server {} at {}",
            self.cpus,
            self.cpu_model,
            self.mem_total_mib,
            self.kernel,
            self.server_bin,
            if self.commit.is_empty() {
                "?"
            } else {
                &self.commit
            }
        )
    }
}

/// A `Name:   1234 kB` field of a /proc file, in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A profile's report.
#[derive(Debug, Serialize)]
pub struct Report<T: Serialize> {
    /// Which profile.
    pub profile: &'static str,
    /// Where it ran.
    pub machine: Machine,
    /// Runs the medians are over.
    pub runs: usize,
    /// The profile's options and the server settings it changed.
    pub settings: Value,
    /// What the reader must know to read the figures.
    pub notes: Vec<String>,
    /// The figures.
    pub results: T,
    /// What the server measured itself (its `/metrics`), by step; `null` when not read.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub server: Value,
}

impl<T: Serialize> Report<T> {
    /// Writes the JSON to `--out` if given, then prints JSON (`--json`) or calls `table`.
    pub fn emit(&self, common: &Common, table: impl FnOnce(&Self)) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        if let Some(out) = &common.out {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(out, &json).with_context(|| format!("writing {}", out.display()))?;
        }
        if common.json {
            println!("{json}");
        } else {
            println!("{} — {}", self.profile, self.machine.line());
            if self.runs > 1 {
                println!("medians over {} runs", self.runs);
            }
            table(self);
            for note in &self.notes {
                println!("note: {note}");
            }
        }
        Ok(())
    }
}

/// One row of latencies: the median over runs, and each run.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    /// What was measured, e.g. `frontdesk agent→customer @ 200/s`.
    pub label: String,
    /// The series, e.g. `frontdesk agent→customer` (for plots).
    pub series: String,
    /// The total offered rate of the step, per second, when the row is one step of a sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Medians over runs.
    pub median: Summary,
    /// Each run.
    pub runs: Vec<Summary>,
    /// Median p50 and p99 as multiples of the floor relay's in the same runs, if measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_floor: Option<(f64, f64)>,
}

impl LatencyRow {
    /// The row of `series` for `runs`, medians computed.
    pub fn new(series: impl Into<String>, runs: Vec<Summary>) -> Self {
        let series = series.into();
        Self {
            label: series.clone(),
            series,
            rate: None,
            median: Summary::median_of(&runs),
            runs,
            vs_floor: None,
        }
    }

    /// The row of `series` at a total offered `rate` of a sweep.
    pub fn at(series: impl Into<String>, rate: f64, runs: Vec<Summary>) -> Self {
        let mut row = Self::new(series, runs);
        row.label = format!("{} @ {rate}/s", row.series);
        row.rate = Some(rate);
        row
    }
}

/// Prints latency rows as a table.
pub fn latency_table(rows: &[LatencyRow]) {
    let with_floor = rows.iter().any(|r| r.vs_floor.is_some());
    let mut headers = vec![
        "what",
        "offered/s",
        "achieved/s",
        "sent",
        "lost",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ];
    if with_floor {
        headers.extend(["p50 ×floor", "p99 ×floor"]);
    }
    let mut table = Table::new(&headers);
    for r in rows {
        let m = &r.median;
        let mut cells = vec![
            if m.saturated() {
                format!("{} (saturated)", r.label)
            } else {
                r.label.clone()
            },
            format!("{:.0}", m.offered_per_s),
            format!("{:.0}", m.achieved_per_s),
            m.sent.to_string(),
            m.lost.to_string(),
            ms(m.p50_ms),
            ms(m.p90_ms),
            ms(m.p99_ms),
            ms(m.max_ms),
        ];
        if with_floor {
            let (p50, p99) = r.vs_floor.unwrap_or((f64::NAN, f64::NAN));
            cells.extend([ratio(p50), ratio(p99)]);
        }
        table.row(cells);
    }
    table.print();
}

/// Milliseconds for a table cell.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

fn ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}×")
    } else {
        "–".into()
    }
}

/// A plain text table with aligned columns.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints it to stdout.
    pub fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            println!("{}", padded.join("  ").trim_end());
        };
        line(&self.headers);
        for row in &self.rows {
            line(row);
        }
    }
}

/// The path as given, or made absolute against the current directory.
pub fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
