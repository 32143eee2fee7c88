//! `edgecache check`: a good file prints the effective config and exits 0; a bad one lists every problem as
//! `FILE:LINE: key: reason` and exits 2.

use std::process::Command;

fn check(text: &str) -> (Option<i32>, String, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_edgecache")).arg("check").arg("--config").arg(&path).output();
    let output = output.expect("run edgecache check");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code(), stdout, stderr, path.display().to_string())
}

#[test]
fn every_error_is_reported_with_its_line_and_exit_code_2() {
    let text = "[node]\nid = \"e1\"\ncolour = \"blue\"\n[origin]\nurl = \"http://127.0.0.1:9000\"\n\
                connect_timeout = \"soon\"\n[cache]\nmemory = \"lots\"\nmax_objekt_size = \"1MiB\"\n";
    let (code, _, stderr, path) = check(text);
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&path)).collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].starts_with(&format!("{path}:3: node.colour: ")), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("{path}:6: origin.connect_timeout: ")), "{}", lines[1]);
    assert!(lines[2].starts_with(&format!("{path}:8: cache.memory: ")), "{}", lines[2]);
    assert!(lines[3].starts_with(&format!("{path}:9: cache.max_objekt_size: ")), "{}", lines[3]);
}

#[test]
fn a_good_file_prints_the_effective_config() {
    let (code, stdout, stderr, _) = check("[origin]\nurl = \"http://127.0.0.1:9000\"\n[cache]\nmemory = \"64MiB\"\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("memory = \"64MiB\""), "{stdout}");
    assert!(stdout.contains("max_object_size = \"16MiB\""), "defaults are filled in: {stdout}");
}

#[test]
fn the_shipped_reference_config_passes_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/edgecache.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_edgecache")).args(["check", "--config", path]).output();
    let output = output.expect("run edgecache check");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
