//! `frontdesk eval --kb DIR --questions FILE`, as an operator checks their own help centre: the
//! binary plays the file's questions and conversations against the base over the widget's
//! socket and prints the table; a file naming a page the base does not have is refused with a
//! message that says what to fix.

mod common;

use std::process::{Command, Output};

/// Runs the binary's `eval` on the demo knowledge base with the question file `yaml`.
fn eval(yaml: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("questions.yaml");
    std::fs::write(&file, yaml).expect("the question file");
    let cache = dir.path().join("embeddings.cache");
    // The embeddings the in-process tests computed, if any: the base is ready sooner.
    let _ = std::fs::copy(common::root().join("target/test-embeddings.cache"), &cache);
    let kb = common::root().join("knowledge_base");
    // An empty settings file: the defaults, whatever frontdesk.toml the repository holds.
    let settings = dir.path().join("frontdesk.toml");
    std::fs::write(&settings, "").expect("an empty settings file");
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(common::root())
        .env("FRONTDESK_CONFIG", &settings)
        .env("FRONTDESK_KB__EMBEDDING_CACHE", &cache)
        .env("FRONTDESK_NLU__RETRAIN_STALE", "false")
        .env("RUST_LOG", "warn")
        .args(["eval", "--kb"])
        .arg(&kb)
        .arg("--questions")
        .arg(&file)
        .args(extra)
        .output()
        .expect("the frontdesk binary runs")
}

/// The numbers after `label` on its line of the table (`n`, then the percentages).
fn row(out: &str, label: &str) -> Vec<f64> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn an_operators_question_file_is_played_over_the_socket_and_scored() {
    let output = eval(
        r#"
name: operator-check
questions:
  - {text: "forgot my password and the reset email never arrives", expect: answer, pages: [account/reset-password.md]}
  - {text: "my card expired, where do i put the new one", expect: answer, pages: [billing/update-payment-method.md]}
  - {text: "what is the capital city of the moon", expect: decline}
  - {text: "this is the THIRD time i'm writing and nobody helps. i want a real person right now", expect: escalate}
conversations:
  - turns:
      - text: "hi there"
      - text: "how often should i descale the machine"
        pages: [brewer-how-to/descale.md]
    outcome: bot
"#,
        &["--mistakes"],
    );
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "eval failed:\n{out}\n{err}");
    assert!(out.contains("question set \"operator-check\""), "{out}");
    // n, right, first, choices, wrong, declined, escalated
    let all = row(&out, "all");
    assert_eq!(
        (all[0], all[1]),
        (2.0, 100.0),
        "both answerable questions cited right:\n{out}"
    );
    let declined = row(&out, "decline set");
    assert_eq!((declined[0], declined[1]), (1.0, 100.0), "{out}");
    let escalated = row(&out, "escalate set");
    assert_eq!((escalated[0], escalated[1]), (1.0, 100.0), "{out}");
    let kept = row(&out, "kept by bot");
    assert_eq!(
        (kept[0], kept[1]),
        (1.0, 100.0),
        "the conversation stays with the bot:\n{out}"
    );
    assert!(!out.contains("mistakes ("), "no mistakes to list:\n{out}");
}

#[test]
fn a_question_file_naming_a_page_the_base_lacks_says_what_to_fix() {
    let output = eval(
        r#"
name: typo-in-a-path
questions:
  - {text: "how do i reset my password", expect: answer, pages: [account/reset-pasword.md]}
"#,
        &[],
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a missing page must fail the run");
    assert!(
        err.contains("account/reset-pasword.md") && err.contains("paths are relative to"),
        "the message names the page and how paths are read: {err}"
    );
}
