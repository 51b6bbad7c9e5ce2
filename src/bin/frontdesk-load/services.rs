//! The engines a multi-node run shares, and the CPU each process used: a fresh Postgres database
//! per cluster (created on the server `--postgres` names, dropped afterwards), and the processes
//! behind Postgres and Redis found by their port in `/proc`, so a step can say which of the
//! nodes, Postgres, Redis or the load tool itself ran out of CPU first.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::Connection;

/// A database of its own on the Postgres server, for one cluster; dropped by [`Database::drop`].
pub struct Database {
    admin: String,
    name: String,
    /// The URL the nodes use (`store.url`).
    pub url: String,
}

impl Database {
    /// Creates database `name` on the server `admin` connects to (its user may create databases:
    /// `scripts/with-postgres.sh` exports such a URL as FRONTDESK_TEST_POSTGRES).
    pub async fn create(admin: &str, name: &str) -> anyhow::Result<Self> {
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .context("connecting to --postgres (run under scripts/with-postgres.sh, or pass a URL whose user may create databases)")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE DATABASE {name} (the --postgres user must be allowed to create databases)"))?;
        conn.close().await.ok();
        let mut url = url::Url::parse(admin).context("--postgres is not a URL")?;
        url.set_path(name);
        Ok(Self {
            admin: admin.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        })
    }

    /// Drops the database (its nodes must be stopped); a failure is only reported.
    pub async fn drop(self) {
        let dropped = async {
            let mut conn = sqlx::PgConnection::connect(&self.admin).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await?;
            conn.close().await
        };
        if let Err(e) = dropped.await {
            eprintln!("  could not drop the database {}: {e}", self.name);
        }
    }
}

/// The port of a `postgres://` or `redis://` URL (the engines' defaults when it has none).
pub fn port_of(url: &str) -> Option<u16> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.port().or(match parsed.scheme() {
        "postgres" | "postgresql" => Some(5432),
        "redis" => Some(6379),
        _ => None,
    })
}

/// A group of processes whose CPU time is summed: a node, Postgres (the server and its
/// backends), Redis, this tool.
#[derive(Debug, Clone)]
pub enum Group {
    /// One process.
    Pid(u32),
    /// The Postgres server listening on this port and its children.
    Postgres(u16),
    /// The `redis-server` listening on this port.
    Redis(u16),
}

/// One process as /proc shows it.
struct Proc {
    pid: u32,
    ppid: u32,
    comm: String,
    args: Vec<String>,
    /// utime + stime, clock ticks.
    ticks: u64,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After comm: state(0) ppid(1) ... utime(11) stime(12).
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Proc {
        pid,
        ppid,
        comm,
        args,
        ticks: utime + stime,
    })
}

fn all_procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// Does `args` say it listens on `port` (`-p PORT`, `-pPORT`, `--port PORT` or `HOST:PORT`, as
/// Postgres's and Redis's command lines and Redis's retitled one do)?
fn listens_on(args: &[String], port: u16) -> bool {
    let port = port.to_string();
    let split = args
        .windows(2)
        .any(|w| (w[0] == "-p" || w[0] == "--port") && w[1] == port);
    split
        || args.iter().any(|a| {
            a.strip_prefix("-p") == Some(port.as_str())
                || a.split_whitespace()
                    .any(|w| w.rsplit_once(':').is_some_and(|(_, p)| p == port))
        })
}

/// CPU ticks used so far by each process of each group, by pid; groups whose process is not
/// found are absent.
pub fn sample(groups: &[(String, Group)]) -> HashMap<String, HashMap<u32, u64>> {
    let procs = all_procs();
    let mut out = HashMap::new();
    for (name, group) in groups {
        let members: HashMap<u32, u64> = match group {
            Group::Pid(pid) => procs
                .iter()
                .filter(|p| p.pid == *pid)
                .map(|p| (p.pid, p.ticks))
                .collect(),
            Group::Postgres(port) => {
                let Some(server) = procs
                    .iter()
                    .find(|p| p.comm.starts_with("postgres") && listens_on(&p.args, *port))
                else {
                    continue;
                };
                procs
                    .iter()
                    .filter(|p| p.pid == server.pid || p.ppid == server.pid)
                    .map(|p| (p.pid, p.ticks))
                    .collect()
            }
            Group::Redis(port) => procs
                .iter()
                .filter(|p| p.comm.starts_with("redis-server") && listens_on(&p.args, *port))
                .map(|p| (p.pid, p.ticks))
                .collect(),
        };
        if !members.is_empty() {
            out.insert(name.clone(), members);
        }
    }
    out
}

/// Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Per group, the CPU used between two samples as a percentage of one core over `seconds`
/// (processes that started in between count from zero; ones that ended are missed).
pub fn cpu_percent(
    before: &HashMap<String, HashMap<u32, u64>>,
    after: &HashMap<String, HashMap<u32, u64>>,
    seconds: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, procs)| {
            let earlier = before.get(name);
            let ticks: u64 = procs
                .iter()
                .map(|(pid, t)| {
                    t.saturating_sub(earlier.and_then(|b| b.get(pid)).copied().unwrap_or(0))
                })
                .sum();
            (
                name.clone(),
                ticks as f64 / TICKS_PER_SECOND / seconds.max(1e-9) * 100.0,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The machine's load averages (1, 5, 15 minutes) from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split('|').map(str::to_owned).collect()
    }

    #[test]
    fn engines_are_recognised_by_their_port_only() {
        let pg = args("/usr/lib/postgresql/15/bin/postgres|-D|/tmp/x/data|-p|5433|-k|/tmp/x");
        assert!(listens_on(&pg, 5433));
        assert!(!listens_on(&pg, 5432));
        assert!(!listens_on(&pg, 15));
        let redis = args("/usr/bin/redis-server 127.0.0.1:23456");
        assert!(listens_on(&redis, 23456));
        assert!(!listens_on(&redis, 2345));
        assert!(listens_on(&args("redis-server|--port|7000"), 7000));
    }

    #[test]
    fn cpu_counts_new_processes_from_zero_and_ignores_other_groups() {
        let before = HashMap::from([("pg".to_owned(), HashMap::from([(1, 100), (2, 50)]))]);
        let after = HashMap::from([
            ("pg".to_owned(), HashMap::from([(1, 150), (2, 60), (3, 40)])),
            ("redis".to_owned(), HashMap::from([(9, 20)])),
        ]);
        let cpu = cpu_percent(&before, &after, 2.0);
        // pg: 50 + 10 + 40 = 100 ticks = 1 s over 2 s = 50 %; redis from zero: 0.2 s = 10 %.
        assert_eq!(
            cpu,
            vec![("pg".to_owned(), 50.0), ("redis".to_owned(), 10.0)]
        );
    }

    #[test]
    fn this_process_is_found_and_the_ports_default() {
        let me = std::process::id();
        let s = sample(&[("me".into(), Group::Pid(me))]);
        assert!(s["me"].contains_key(&me));
        assert_eq!(port_of("redis://127.0.0.1"), Some(6379));
        assert_eq!(port_of("postgres://u@h:5555/db"), Some(5555));
    }
}
