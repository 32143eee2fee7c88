//! Tests of config loading: helpers shared by the test files, one file per concern.

mod errors;
mod files;
mod topology;
mod values;

use std::path::Path;

use super::*;

/// The environment the tests run in: a fixed host name and no token, whatever the real process has.
pub fn env() -> Env {
    Env { admin_token: None, hostname: Some("test-host".to_string()) }
}

/// The smallest valid standalone file.
pub const ORIGIN: &str = "[origin]\nurl = \"http://127.0.0.1:9000\"\n";

/// Parses `text` (relative paths against `base`) with [`env`].
pub fn parse_in(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, "t.toml", base, &env())
}

/// Parses `text`, which must be valid.
pub fn ok(text: &str) -> Config {
    match parse_in(text, Path::new("/nonexistent")) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}\n--- text:\n{text}"),
    }
}

/// Parses `text`, which must be invalid; every error as `t.toml:LINE: key: reason`.
pub fn errs(text: &str) -> Vec<String> {
    match parse_in(text, Path::new("/nonexistent")) {
        Ok(config) => panic!("expected errors, got {config:?}\n--- text:\n{text}"),
        Err(errors) => errors.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// Parses `text`, which must have exactly one error, starting with `prefix` (`t.toml:LINE: key:`).
pub fn one_err(text: &str, prefix: &str) -> String {
    let errors = errs(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert!(errors[0].starts_with(prefix), "expected {prefix:?}, got {:?}", errors[0]);
    errors[0].clone()
}
