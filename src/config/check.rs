//! Value checks shared by the section validators: each reads one spanned value from the file into its model type
//! and records a [`Problem`] at the value's place when it cannot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde_spanned::Spanned;

use super::document::Problem;
use super::file::{Field, RawSize};
use super::units;

/// Collects problems while values are read; knows the folder that relative paths are resolved against.
#[derive(Debug)]
pub struct Checker<'a> {
    /// Problems found so far, in the order found (sorted by place later).
    pub problems: Vec<Problem>,
    base_dir: &'a Path,
}

/// Where a section starts in the file (0 when it is absent), and its content (defaults when absent).
pub fn open<T: Default>(section: Field<T>) -> (usize, T) {
    match section {
        Some(s) => (s.span().start, s.into_inner()),
        None => (0, T::default()),
    }
}

/// Whether `s` is usable as a node id or pop name: it appears in `Cache-Status`, `Via` and metric labels.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl<'a> Checker<'a> {
    /// A checker resolving relative paths against `base_dir`.
    pub fn new(base_dir: &'a Path) -> Checker<'a> {
        Checker { problems: Vec::new(), base_dir }
    }

    /// Records a problem.
    pub fn report(&mut self, pos: usize, key: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem::new(pos, key, reason));
    }

    /// A size, `default` when absent; `min` is the smallest accepted value.
    pub fn size(&mut self, field: &Field<RawSize>, key: &str, default: u64, min: u64) -> u64 {
        let Some(value) = field else { return default };
        let parsed = match value.get_ref() {
            RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| "a size cannot be negative".to_string()),
            RawSize::Text(text) => units::parse_size(text).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(bytes) if bytes >= min => bytes,
            Ok(_) if min == 1 => {
                self.report(value.span().start, key, "must be greater than 0");
                default
            }
            Ok(_) => {
                self.report(value.span().start, key, format!("must be at least {}", units::format_size(min)));
                default
            }
            Err(reason) => {
                self.report(value.span().start, key, reason);
                default
            }
        }
    }

    /// A duration greater than zero, `default` when absent.
    pub fn duration(&mut self, field: &Field<String>, key: &str, default: Duration) -> Duration {
        let Some(value) = field else { return default };
        match units::parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.report(value.span().start, key, "must be greater than 0");
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.report(value.span().start, key, e.to_string());
                default
            }
        }
    }

    /// An integer in `min..=max`; `None` when absent or out of range.
    pub fn integer(&mut self, field: &Field<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = field.as_ref()?;
        let n = *value.get_ref();
        if n < min || n > max {
            let reason = match (min, max) {
                (1, _) if n < 1 => "must be greater than 0".to_string(),
                _ => format!("must be between {min} and {max}"),
            };
            self.report(value.span().start, key, reason);
            return None;
        }
        Some(n)
    }

    /// A listen address such as `127.0.0.1:8080` or `[::]:443`.
    pub fn socket_addr(&mut self, value: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match value.get_ref().trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let reason = format!(
                    "invalid address {:?}: expected IP:PORT, like \"127.0.0.1:8080\" or \"[::]:443\"",
                    value.get_ref()
                );
                self.report(value.span().start, key, reason);
                None
            }
        }
    }

    /// An absolute `http://` or `https://` URL naming a host, with no path, query or credentials.
    pub fn base_url(&mut self, value: &Spanned<String>, key: &str) -> Option<Uri> {
        match parse_base_url(value.get_ref()) {
            Ok(uri) => Some(uri),
            Err(reason) => {
                self.report(value.span().start, key, format!("invalid URL {:?}: {reason}", value.get_ref()));
                None
            }
        }
    }

    /// A file path, resolved against the config file's folder; the file must exist.
    pub fn existing_file(&mut self, value: &Spanned<String>, key: &str) -> PathBuf {
        let path = self.base_dir.join(value.get_ref());
        if value.get_ref().is_empty() {
            self.report(value.span().start, key, "must not be empty");
        } else if !path.is_file() {
            let what = if path.exists() { "is not a file" } else { "does not exist" };
            let reason =
                format!("{} {what} (relative paths are resolved against the config file's folder)", path.display());
            self.report(value.span().start, key, reason);
        }
        path
    }

    /// A node id or pop name (letters, digits, `-`, `_`, `.`).
    pub fn name(&mut self, value: &Spanned<String>, key: &str) -> String {
        if !is_name(value.get_ref()) {
            let reason = format!("invalid name {:?}: use 1 to 128 letters, digits, '-', '_' or '.'", value.get_ref());
            self.report(value.span().start, key, reason);
        }
        value.get_ref().clone()
    }

    /// A string that must not be empty when given (a secret or token).
    pub fn non_empty(&mut self, field: &Field<String>, key: &str) -> Option<String> {
        let value = field.as_ref()?;
        if value.get_ref().is_empty() {
            self.report(value.span().start, key, "must not be empty (omit the key instead)");
            return None;
        }
        Some(value.get_ref().clone())
    }
}

/// Reads an absolute `http://` or `https://` base URL (scheme and authority, path at most `/`).
pub fn parse_base_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!("scheme {other:?} is not supported; use http or https"));
        }
        None => return Err("must be absolute, like \"http://127.0.0.1:9000\"".to_string()),
    }
    let Some(authority) = uri.authority() else {
        return Err("the host is missing".to_string());
    };
    if authority.host().is_empty() {
        return Err("the host is missing".to_string());
    }
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not supported".to_string());
    }
    if uri.query().is_some() || !matches!(uri.path(), "" | "/") {
        return Err("a path or query is not supported; give only scheme://host[:port]".to_string());
    }
    Ok(uri)
}
