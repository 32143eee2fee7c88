//! Configuration: the TOML file, its checks, and the validated model the rest of edgecache reads.
//!
//! [`load`] reads a file and returns either a [`Config`] or every problem found, each as `FILE:LINE: key: reason`,
//! in file order. [`to_effective_toml`] prints a [`Config`] back as TOML, defaults filled in.
//!
//! The work is done in passes, one file each: `document` parses the TOML into a spanned document and reports syntax
//! errors, unknown keys and wrongly typed values (the shape is described by the serde types in `file`); `validate`,
//! `topology` and `check` read the values into the model ([`model`]) and report what is wrong with them.
//!
//! Choices documented for operators (see `config/edgecache.toml`):
//! - `node.id` defaults to the host name (from `/proc/sys/kernel/hostname` or `/etc/hostname`) when it is usable as
//!   a name (letters, digits, `-`, `_`, `.`), else to `"edgecache"`.
//! - `admin.token`: the file wins; `EDGECACHE_ADMIN_TOKEN` fills in when the file has none.
//! - `admin.listen = "off"` turns the admin listener off.
//! - Relative paths (`server.tls` cert/key, `origin.ca_file`) are resolved against the config file's folder.
//! - With pops defined and `node.pop` omitted, the node belongs to the pop that lists its `node.id`.
//! - A node whose pop has a parent and no `origin.url` gets `parent_fallback = "error"` unless the file says
//!   otherwise (and `"origin"` written explicitly is then an error).

mod check;
mod document;
mod effective;
mod file;
pub mod model;
mod topology;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use validate::{ADMIN_OFF, ALGORITHMS, Env, MIN_HEADER_SIZE};

pub use model::*;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line; 0 when the problem has no place in the file (e.g. the file cannot be read).
    pub line: usize,
    /// Dotted key, e.g. `cache.memory` or `pops[1].nodes[0].url`.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.key, self.reason)
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Reads and validates the config file at `path`; relative paths in it are resolved against its folder.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: 0,
            key: "file".to_string(),
            reason: format!("cannot read: {e}"),
        }])
    })?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = absolute.parent().unwrap_or(Path::new("."));
    parse(&text, &file, base_dir)
}

/// Validates config `text`; `file_name` names it in errors and relative paths are resolved against `base_dir`.
/// Reads `EDGECACHE_ADMIN_TOKEN` and the host name from the running process.
pub fn parse(text: &str, file_name: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, file_name, base_dir, &Env::from_process())
}

/// [`parse`] with the environment given rather than read from the process (for tests and embedders).
pub fn parse_with_env(text: &str, file_name: &str, base_dir: &Path, env: &Env) -> Result<Config, ConfigErrors> {
    let doc = document::read(text);
    let mut ck = check::Checker::new(base_dir);
    let config = doc.file.and_then(|file| validate::validate(file, &mut ck, env));
    let mut problems = doc.problems;
    problems.extend(validate::keep_new(ck.problems, &doc.removed));
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            problems.sort_by_key(|p| p.pos);
            let errors = problems
                .into_iter()
                .map(|p| ConfigError {
                    file: file_name.to_string(),
                    line: line_of(text, p.pos),
                    key: p.key,
                    reason: p.reason,
                })
                .collect();
            Err(ConfigErrors(errors))
        }
    }
}

/// The 1-based line holding byte offset `pos` of `text`.
fn line_of(text: &str, pos: usize) -> usize {
    let end = pos.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Prints `cfg` as TOML with every default filled in; [`parse`] reads the result back to the same `Config`, except
/// that `cluster.secret` and `admin.token` are shown as `"<set>"` so that the output can go to logs.
pub fn to_effective_toml(cfg: &Config) -> String {
    effective::to_toml(cfg)
}
