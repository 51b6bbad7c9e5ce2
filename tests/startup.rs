//! What an operator meets when the start goes wrong, with the real binary: a port another process
//! holds is said before the models load (not after them, tens of seconds later), and a
//! misspelled setting stops the start with its name.

mod common;

use std::process::{Command, Output};

/// `frontdesk serve` from the repository with an empty settings file and `env`.
fn serve(env: &[(&str, String)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("frontdesk.toml");
    std::fs::write(&settings, "").expect("an empty settings file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    command
        .arg("serve")
        .current_dir(common::root())
        .env("FRONTDESK_CONFIG", &settings)
        .env("FRONTDESK_SERVER__HOST", "127.0.0.1")
        .env(
            "FRONTDESK_STORE__URL",
            format!("sqlite://{}/fd.db", dir.path().display()),
        )
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("frontdesk runs")
}

#[test]
fn a_port_another_process_holds_is_said_before_the_models_load() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().unwrap().port();
    let out = serve(&[("FRONTDESK_SERVER__PORT", port.to_string())]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
    assert!(said.contains("another server is using the port"), "{said}");
    assert!(
        !said.contains("language models loaded") && !said.contains("knowledge base loaded"),
        "the port was tried only after the models and the knowledge base loaded: {said}"
    );
}

#[test]
fn a_misspelled_setting_stops_the_start_with_its_name() {
    let out = serve(&[("FRONTDESK_LIMITS__MESAGE_BURST", "10".into())]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("mesage_burst"), "{said}");
    assert!(
        said.contains("message_burst"),
        "the known keys are listed: {said}"
    );
}
