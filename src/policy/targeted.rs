//! Targeted cache control (RFC 9213): which field decides this cache's policy for a response. The most specific
//! present and valid field wins: `Edgecache-Cache-Control` > `CDN-Cache-Control` > `Surrogate-Control` >
//! `Cache-Control`. The first two are Structured Field dictionaries (RFC 8941); an invalid one is ignored as if
//! absent. `Surrogate-Control` (Edge Architecture 1.0) uses the `Cache-Control` syntax, and a directive in it may
//! name the surrogate it is for: this cache announces its device token upstream in `Surrogate-Capability`
//! ([`SURROGATE_CAPABILITY`]) and obeys the directives that name it or no one.

use http::HeaderMap;
use http::header::HeaderName;

use super::directives::{Argument, CacheControl, split_outside_quotes};

/// The targeted fields this cache obeys, most specific first. The pipeline strips them before answering clients.
pub const TARGETED_FIELDS: [&str; 3] = ["edgecache-cache-control", "cdn-cache-control", "surrogate-control"];

/// The device token of every edgecache node (Edge Architecture 1.0): `Surrogate-Control: max-age=60;edgecache`
/// is for edgecache alone.
pub const SURROGATE_DEVICE_TOKEN: &str = "edgecache";

/// What a node adds to the `Surrogate-Capability` of each request it sends upstream, once per chain.
pub const SURROGATE_CAPABILITY: &str = "edgecache=\"Surrogate/1.0\"";

/// Which field a response's directives came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One of [`TARGETED_FIELDS`]: `Cache-Control` and `Expires` are ignored for this cache.
    Targeted(&'static str),
    /// `Cache-Control` (and `Expires`) as usual.
    CacheControl,
}

/// The directives that govern this cache for a response, and where they came from.
pub fn effective(response: &HeaderMap) -> (CacheControl, Source) {
    for name in TARGETED_FIELDS {
        if !response.contains_key(name) {
            continue;
        }
        let parsed = if name == "surrogate-control" {
            Some(surrogate_directives(response))
        } else {
            structured_dictionary(response, name).map(CacheControl::from_structured)
        };
        if let Some(directives) = parsed.filter(|d| !d.is_empty()) {
            return (directives, Source::Targeted(name));
        }
    }
    (CacheControl::of(response), Source::CacheControl)
}

/// The `Surrogate-Control` directives meant for this cache: those that name [`SURROGATE_DEVICE_TOKEN`] after a `;`
/// come first (so they win over the same directive for every device, the first occurrence winning), then those that
/// name no device; those for another device are left out.
fn surrogate_directives(response: &HeaderMap) -> CacheControl {
    let mut ours = Vec::new();
    let mut everyone = Vec::new();
    for line in response.get_all(HeaderName::from_static("surrogate-control")) {
        let text = String::from_utf8_lossy(line.as_bytes());
        for member in split_outside_quotes(&text, ',') {
            let mut parts = split_outside_quotes(member, ';').into_iter();
            let directive = parts.next().unwrap_or_default().trim().to_string();
            match parts.next().map(str::trim) {
                None => everyone.push(directive),
                Some(token) if token.eq_ignore_ascii_case(SURROGATE_DEVICE_TOKEN) => ours.push(directive),
                Some(_) => {}
            }
        }
    }
    ours.append(&mut everyone);
    CacheControl::parse_str(&ours.join(", "))
}

/// Parses every line of `name` as one Structured Field dictionary; `None` if it is not valid.
fn structured_dictionary(headers: &HeaderMap, name: &str) -> Option<Vec<(String, Option<Argument>)>> {
    let mut text = String::new();
    for line in headers.get_all(name) {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(line.to_str().ok()?);
    }
    Parser { input: text.as_bytes(), at: 0 }.dictionary()
}

/// A small RFC 8941 dictionary parser: enough to validate the whole field and keep each member's value.
struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

/// A member's value: `None` for boolean true, `Some(arg)` otherwise; `false` members are dropped.
enum Member {
    True,
    False,
    Value(Argument),
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.at += 1;
        }
    }

    fn dictionary(mut self) -> Option<Vec<(String, Option<Argument>)>> {
        let mut members: Vec<(String, Option<Argument>)> = Vec::new();
        self.skip(|b| b == b' ');
        if self.peek().is_none() {
            return Some(members);
        }
        loop {
            let key = self.key()?;
            let member = if self.peek() == Some(b'=') {
                self.at += 1;
                self.member_value()?
            } else {
                self.parameters()?;
                Member::True
            };
            // Later members of the same name override earlier ones (RFC 8941 §4.2.2).
            members.retain(|(k, _)| *k != key);
            match member {
                Member::True => members.push((key, None)),
                Member::Value(arg) => members.push((key, Some(arg))),
                Member::False => {}
            }
            self.skip(|b| b == b' ' || b == b'\t');
            match self.peek() {
                None => return Some(members),
                Some(b',') => self.at += 1,
                Some(_) => return None,
            }
            self.skip(|b| b == b' ' || b == b'\t');
            self.peek()?; // a trailing comma is invalid
        }
    }

    fn key(&mut self) -> Option<String> {
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_lowercase() || b == b'*' => self.at += 1,
            _ => return None,
        }
        self.skip(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*'));
        Some(String::from_utf8_lossy(&self.input[start..self.at]).into_owned())
    }

    fn member_value(&mut self) -> Option<Member> {
        if self.peek() == Some(b'(') {
            self.at += 1;
            let mut items = Vec::new();
            loop {
                self.skip(|b| b == b' ');
                if self.peek() == Some(b')') {
                    self.at += 1;
                    break;
                }
                match self.bare_item()? {
                    Member::Value(a) => items.push(a.text().to_string()),
                    _ => items.push(String::new()),
                }
                self.parameters()?;
                match self.peek() {
                    Some(b' ') | Some(b')') => {}
                    _ => return None,
                }
            }
            self.parameters()?;
            return Some(Member::Value(Argument::Quoted(items.join(","))));
        }
        let item = self.bare_item()?;
        self.parameters()?;
        Some(item)
    }

    fn parameters(&mut self) -> Option<()> {
        while self.peek() == Some(b';') {
            self.at += 1;
            self.skip(|b| b == b' ');
            self.key()?;
            if self.peek() == Some(b'=') {
                self.at += 1;
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn bare_item(&mut self) -> Option<Member> {
        let start = self.at;
        match self.peek()? {
            b'-' | b'0'..=b'9' => {
                self.at += 1;
                self.skip(|b| b.is_ascii_digit() || b == b'.');
                let text = std::str::from_utf8(&self.input[start..self.at]).ok()?;
                let digits = text.trim_start_matches('-');
                let valid = match digits.split_once('.') {
                    None => !digits.is_empty() && digits.len() <= 15,
                    Some((i, f)) => !i.is_empty() && i.len() <= 12 && !f.is_empty() && f.len() <= 3 && !f.contains('.'),
                };
                valid.then(|| Member::Value(Argument::Token(text.to_string())))
            }
            b'"' => {
                self.at += 1;
                let mut text = String::new();
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.at += 1;
                            return Some(Member::Value(Argument::Quoted(text)));
                        }
                        b'\\' => {
                            self.at += 1;
                            let c = self.peek().filter(|c| *c == b'"' || *c == b'\\')?;
                            text.push(c as char);
                            self.at += 1;
                        }
                        c if (0x20..0x7f).contains(&c) => {
                            text.push(c as char);
                            self.at += 1;
                        }
                        _ => return None,
                    }
                }
            }
            b'?' => {
                self.at += 1;
                let b = self.peek()?;
                self.at += 1;
                match b {
                    b'1' => Some(Member::True),
                    b'0' => Some(Member::False),
                    _ => None,
                }
            }
            b':' => {
                self.at += 1;
                self.skip(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                (self.peek()? == b':').then(|| {
                    self.at += 1;
                    Member::Value(Argument::Quoted(String::new()))
                })
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                self.at += 1;
                self.skip(|b| b.is_ascii_alphanumeric() || b":/!#$%&'*+-.^_`|~".contains(&b));
                let text = String::from_utf8_lossy(&self.input[start..self.at]).into_owned();
                Some(Member::Value(Argument::Token(text)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::directives::Delta;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn most_specific_valid_field_wins() {
        let h = headers(&[
            ("cache-control", "max-age=1"),
            ("surrogate-control", "max-age=2"),
            ("cdn-cache-control", "max-age=3"),
            ("edgecache-cache-control", "max-age=4"),
        ]);
        let (cc, source) = effective(&h);
        assert_eq!(cc.seconds("max-age"), Some(4));
        assert_eq!(source, Source::Targeted("edgecache-cache-control"));
        let h = headers(&[("cache-control", "private"), ("cdn-cache-control", "max-age=30")]);
        let (cc, _) = effective(&h);
        assert!(!cc.has("private"));
        assert_eq!(cc.seconds("max-age"), Some(30));
    }

    #[test]
    fn an_invalid_targeted_field_is_ignored() {
        for bad in ["max-age=30,", "Max-Age=30", "max-age=30 garbage", "max-age=\"30", "no-store=?2"] {
            let mut h = headers(&[("cache-control", "max-age=1")]);
            h.insert("cdn-cache-control", HeaderValue::from_str(bad).expect("value"));
            let (cc, source) = effective(&h);
            assert_eq!(source, Source::CacheControl, "{bad}");
            assert_eq!(cc.seconds("max-age"), Some(1));
        }
    }

    #[test]
    fn structured_values() {
        let h = headers(&[("cdn-cache-control", "max-age=60;a=1, no-store=?0, private=(\"x-a\" \"x-b\"), public")]);
        let (cc, _) = effective(&h);
        assert_eq!(cc.seconds("max-age"), Some(60));
        assert!(!cc.has("no-store"));
        assert_eq!(cc.field_names("private"), vec!["x-a", "x-b"]);
        assert!(cc.has("public"));
        // A String is not an Integer: the directive's value is invalid (stale), unlike in Cache-Control.
        let h = headers(&[("cdn-cache-control", "max-age=\"60\"")]);
        assert_eq!(effective(&h).0.delta("max-age"), Delta::Invalid);
        let h = headers(&[("cdn-cache-control", "max-age=1.5")]);
        assert_eq!(effective(&h).0.delta("max-age"), Delta::Invalid);
    }

    #[test]
    fn surrogate_control_uses_cache_control_syntax() {
        let h = headers(&[("cache-control", "no-store"), ("surrogate-control", "Max-Age=\"20\"")]);
        let (cc, source) = effective(&h);
        assert_eq!(source, Source::Targeted("surrogate-control"));
        assert_eq!(cc.seconds("max-age"), Some(20));
    }

    #[test]
    fn surrogate_control_directives_for_this_device_win_and_those_for_another_are_ignored() {
        let h = headers(&[("cache-control", "no-store"), ("surrogate-control", "max-age=10000;edgecache")]);
        let (cc, source) = effective(&h);
        assert_eq!(source, Source::Targeted("surrogate-control"));
        assert_eq!(cc.seconds("max-age"), Some(10000));
        let h = headers(&[("surrogate-control", "max-age=60, max-age=600;EdgeCache, no-store;other")]);
        let (cc, _) = effective(&h);
        assert_eq!(cc.seconds("max-age"), Some(600), "a directive naming this device wins");
        assert!(!cc.has("no-store"), "a directive for another device is not ours");
        let h = headers(&[("cache-control", "max-age=5"), ("surrogate-control", "max-age=60;other")]);
        let (cc, source) = effective(&h);
        assert_eq!(source, Source::CacheControl, "nothing in Surrogate-Control is for us");
        assert_eq!(cc.seconds("max-age"), Some(5));
    }
}
