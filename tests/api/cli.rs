//! The binary as a lecturer starts it, its log read from a pipe (a file, a terminal multiplexer's
//! log, `make run 2> log.txt`): plain text, and a mistyped `--log` is reported, not ignored.

use std::process::Command;

/// Runs `clickgame --init-certs` (it logs, then exits) with `extra` flags; returns its stderr.
fn init_certs_log(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_clickgame"))
        .arg("--init-certs")
        .arg("--data-dir")
        .arg(dir.path())
        .args(extra)
        .output()
        .expect("clickgame runs");
    assert!(
        out.status.success(),
        "clickgame --init-certs failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_log_written_to_a_pipe_carries_no_terminal_colour_codes() {
    let log = init_certs_log(&[]);
    assert!(log.contains("TLS certificate"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log that is no terminal: {log:?}"
    );
}

#[test]
fn a_log_filter_that_does_not_parse_is_reported_and_info_is_used() {
    let log = init_certs_log(&["--log", "clickgame=[nonsense"]);
    assert!(log.contains("--log"), "no word about the bad --log: {log}");
    assert!(
        log.contains("TLS certificate"),
        "info lines still logged: {log}"
    );
}

#[test]
fn a_configuration_it_refuses_is_one_readable_line_and_a_failing_exit_status() {
    // `--lab` on every interface without `--lab-allow-remote`: refused before anything binds.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_clickgame"))
        .args(["--lab", "--no-tls", "--http-addr", "0.0.0.0:0"])
        .args(["--lab-attacker-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("clickgame runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: --lab on a listener other than loopback"),
        "{stderr}"
    );
    assert!(
        !last.contains("Custom {") && !last.contains("  "),
        "not for a human: {last}"
    );
}

#[test]
fn a_port_already_taken_names_the_address_and_its_flag() {
    // `make run` a second time, while the first server still runs: the lecturer must learn
    // which address, and what to do.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_clickgame"))
        .args(["--no-tls", "--http-addr", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("clickgame runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(
        last.contains(&addr) && last.contains("--http-addr"),
        "which address, which flag: {last}"
    );
    assert!(last.contains("in use"), "{last}");
}

/// Runs `clickgame` with `args` (and a throw-away --data-dir), expecting it to refuse to start;
/// returns the last line of its stderr, after checking it is one line for a human.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_clickgame"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("clickgame runs");
    assert!(!out.status.success(), "it started: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        !last.contains("Custom {") && !last.contains("  "),
        "not for a human: {last}"
    );
    last.to_string()
}

#[test]
fn the_lab_in_a_cluster_is_refused_naming_both_flags_and_why() {
    // Refused before anything binds or dials: nothing listens on Redis port 1.
    let last = refused(&[
        "--lab",
        "--redis-url",
        "redis://127.0.0.1:1",
        "--node-id",
        "a",
        "--no-tls",
        "--http-addr",
        "127.0.0.1:0",
        "--lab-attacker-addr",
        "127.0.0.1:0",
    ]);
    assert!(
        last.starts_with("error: --lab cannot be used with --redis-url"),
        "{last}"
    );
    assert!(last.contains("single-laptop"), "and why: {last}");
}

#[test]
fn a_public_url_with_a_path_or_another_scheme_is_refused_naming_the_flag() {
    for bad in [
        "http://class.example/game/",
        "ftp://class.example/",
        "class.example",
    ] {
        let last = refused(&[
            "--no-tls",
            "--http-addr",
            "127.0.0.1:0",
            "--public-url",
            bad,
        ]);
        assert!(last.contains("--public-url"), "{bad}: {last}");
        assert!(last.contains("scheme://host[:port]/"), "{bad}: {last}");
    }
}
