//! The load generator's own client code, scheduler and statistics, driven end to end against the
//! floor relay (no frontdesk server needed): every message offered comes back, with latencies.

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
