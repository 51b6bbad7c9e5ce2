//! The load generator's own client code, scheduler and statistics, driven end to end against the
//! floor relay (no frontdesk server needed): every message offered comes back, with latencies;
//! then against real servers, one node and three (on Postgres and Redis when they are there).

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn the_relay_profile_measures_the_floor_relay_end_to_end() {
    let output = Command::new(env!("CARGO_BIN_EXE_frontdesk-load"))
        .args([
            "relay",
            "--target",
            "floor",
            "--conversations",
            "4",
            "--rates",
            "100,200",
        ])
        .args(["--seconds", "1", "--warmup", "0", "--json"])
        .output()
        .expect("frontdesk-load runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["profile"], "relay");
    let rows = report["results"].as_array().expect("rows");
    // Two rates × two ways, floor only.
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in rows {
        assert!(row["series"].as_str().unwrap().starts_with("floor"));
        let m = &row["median"];
        let sent = m["sent"].as_u64().unwrap();
        assert!(sent >= 50, "half of 100/s or 200/s for a second: {m}");
        assert_eq!(m["lost"], 0, "{m}");
        assert_eq!(m["received"].as_u64(), Some(sent));
        let (p50, p99, max) = (
            m["p50_ms"].as_f64().unwrap(),
            m["p99_ms"].as_f64().unwrap(),
            m["max_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max && max < 1000.0, "{m}");
    }
}

#[test]
fn a_server_setting_that_is_not_one_is_refused_with_what_to_write() {
    let output = Command::new(env!("CARGO_BIN_EXE_frontdesk-load"))
        .args(["idle", "--server-env", "PORT=1"])
        .output()
        .expect("frontdesk-load runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FRONTDESK_SECTION__KEY=VALUE"), "{stderr}");
}

/// Against the real (debug) server: the report carries what the server measured itself, read
/// from its `/metrics` around the step, and it matches what the clients sent.
#[test]
fn the_relay_profile_reads_the_server_s_own_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_frontdesk-load"))
        .args(["relay", "--target", "frontdesk", "--direction", "a2c"])
        .args(["--conversations", "4", "--agents", "2", "--rates", "20"])
        .args(["--seconds", "1", "--warmup", "0", "--json"])
        .args(["--server-bin", env!("CARGO_BIN_EXE_frontdesk")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("frontdesk-load runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let sent = report["results"][0]["median"]["sent"].as_f64().unwrap();
    let server = &report["server"]["frontdesk @ 20/s"][0];
    assert_eq!(server["messages"].as_f64(), Some(sent), "{report}");
    assert!(
        server["store_append_p99_ms"].as_f64().unwrap() > 0.0,
        "{server}"
    );
}

/// The relay across real nodes: one node, then three on one Postgres and Redis, in one run;
/// every message arrives, each step says what each process used, and the report gives the ratio.
#[test]
fn the_nodes_profile_relays_across_one_and_three_nodes() {
    let Some(urls) = common::services(
        "load_tool.rs",
        "the_nodes_profile_relays_across_one_and_three_nodes",
        &["FRONTDESK_TEST_POSTGRES", "FRONTDESK_TEST_REDIS"],
    ) else {
        return;
    };
    let output = Command::new(env!("CARGO_BIN_EXE_frontdesk-load"))
        .args([
            "nodes",
            "--nodes",
            "1,3",
            "--postgres",
            &urls[0],
            "--redis",
            &urls[1],
        ])
        .args(["--conversations", "6", "--agents", "2", "--rates", "20"])
        .args(["--seconds", "1", "--warmup", "0", "--json"])
        .args(["--server-bin", env!("CARGO_BIN_EXE_frontdesk")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("frontdesk-load runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["profile"], "nodes");
    let rows = report["results"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, nodes) in rows.iter().zip([1, 3]) {
        assert_eq!(row["nodes"], nodes, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
        assert!(row["achieved_per_s"].as_f64().unwrap() > 0.0, "{row}");
        let groups: Vec<&str> = row["cpu"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g[0].as_str().unwrap())
            .collect();
        for group in ["node 1", "postgres", "redis", "load tool"] {
            assert!(groups.contains(&group), "{group} missing: {groups:?}");
        }
        assert_eq!(groups.contains(&"node 3"), nodes == 3, "{groups:?}");
    }
    let ratios = report["results"]["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 1, "{report}");
    assert!(ratios[0]
        .as_str()
        .unwrap()
        .starts_with("throughput 3 nodes : 1 node"));
}
