//! The example policies in `policies/` stay valid, and `weir check` reports a broken policy
//! in both formats.
//!
//! Every `policies/*.toml` is checked (new examples are covered without editing this file):
//! `weir check` must exit 0 and name each channel and the policy's fingerprint, in text and
//! in JSON. A deliberately broken policy must exit 1 with `file:line:column` locations, and
//! its `--format json` output must list the same errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weir_check(file: &Path, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["check", "--format", format])
        .arg(file)
        .output()
        .expect("run weir check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example_policies() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_policy_is_valid() {
    let files = example_policies();
    for name in ["loopback", "historian", "syslog", "telemetry", "reference"] {
        assert!(
            files
                .iter()
                .any(|file| file.file_stem().is_some_and(|stem| stem == name)),
            "policies/{name}.toml is missing: {files:?}"
        );
    }
    for file in files {
        let policy = weir::policy::load(&file).unwrap_or_else(|error| panic!("{error}"));
        assert!(!policy.channels.is_empty(), "{}", file.display());
        let fingerprint = policy.fingerprint.to_string();

        let output = weir_check(&file, "text");
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "weir check {} failed:\n{stdout}{}",
            file.display(),
            text(&output.stderr)
        );
        assert!(stdout.contains(": valid"), "{stdout}");
        assert!(stdout.contains(&fingerprint), "{stdout}");
        for header in [
            "SOURCE",
            "ALLOW",
            "FILTERS",
            "RATE",
            "PRIO",
            "MAX MESSAGE",
            "SINKS",
        ] {
            assert!(stdout.contains(header), "{header} missing:\n{stdout}");
        }
        assert!(stdout.contains("symbol size"), "{stdout}");
        for channel in &policy.channels {
            assert!(
                stdout
                    .lines()
                    .any(|line| line.starts_with(&format!("{} ", channel.name))),
                "channel {} missing:\n{stdout}",
                channel.name
            );
        }

        let output = weir_check(&file, "json");
        assert!(output.status.success(), "{}", file.display());
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["valid"], true);
        assert_eq!(json["fingerprint"], fingerprint.as_str());
        assert_eq!(json["errors"], serde_json::json!([]));
        assert!(json["derived"]["symbol_size"].as_u64().unwrap() > 0);
        let names: Vec<&str> = json["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|channel| channel["name"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = policy.channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, expected, "{}", file.display());
    }
}

const BROKEN: &str = r#"[link]
key_file = "link.key"
bandwidth = "100 Mbit/s"

[[channel]]
name = "syslog"
source = { udp = "127.0.0.1:5514" }
allow_from = []
filter = { pattern = '^(<' }
on_violation = "close"
rate = { bytes = "200 Mbit/s" }
priority = 4
"#;

#[test]
fn a_broken_policy_is_reported_in_text_and_json() {
    let dir = std::env::temp_dir().join(format!("weir-policies-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(&file, BROKEN).unwrap();

    let output = weir_check(&file, "text");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    for (line, column, field) in [
        (8, 14, "channel[0].allow_from"),
        (9, 22, "channel[0].filter.pattern"),
        (10, 16, "channel[0].on_violation"),
        (11, 18, "channel[0].rate.bytes"),
        (12, 12, "channel[0].priority"),
    ] {
        let expected = format!("{}:{line}:{column}: {field}: ", file.display());
        assert!(stderr.contains(&expected), "{expected} missing:\n{stderr}");
    }
    assert!(stderr.contains("invalid (5 error(s))"), "{stderr}");

    let output = weir_check(&file, "json");
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["file"], file.to_string_lossy().as_ref());
    let errors = json["errors"].as_array().unwrap();
    let fields: Vec<(u64, &str)> = errors
        .iter()
        .map(|error| (error["line"].as_u64().unwrap(), error["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            (8, "channel[0].allow_from"),
            (9, "channel[0].filter.pattern"),
            (10, "channel[0].on_violation"),
            (11, "channel[0].rate.bytes"),
            (12, "channel[0].priority"),
        ]
    );
    for error in errors {
        assert!(error["column"].as_u64().unwrap() > 0);
        assert!(!error["message"].as_str().unwrap().is_empty());
        assert!(error["hint"].is_string(), "{error}");
    }

    std::fs::remove_dir_all(&dir).unwrap();
}
