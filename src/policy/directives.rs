//! `Cache-Control` parsing (RFC 9111 §5.2): directive names case-insensitive, arguments bare or quoted (both forms
//! accepted for every directive), empty list members and whitespace tolerated, the first of duplicate directives
//! wins. Delta-seconds are strict: digits only (leading zeros allowed), clamped to 2^31 (§1.2.2); anything else is
//! an invalid value, which the freshness rules read as "already stale".

use http::HeaderMap;
use http::header::HeaderName;

/// The largest delta-seconds value this cache represents (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// A directive's argument, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// `name=token` (or, in a Structured Field, an Integer or Token).
    Token(String),
    /// `name="text"`, unquoted (or, in a Structured Field, a String or an inner list of Strings joined by commas).
    Quoted(String),
}

impl Argument {
    /// The argument's text, without quotes.
    pub fn text(&self) -> &str {
        match self {
            Argument::Token(t) | Argument::Quoted(t) => t,
        }
    }
}

/// A delta-seconds directive as found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// The directive is not there.
    Absent,
    /// A valid value, in seconds (clamped).
    Seconds(u64),
    /// The directive is there but its value is missing or not a non-negative integer.
    Invalid,
}

/// The directives of every line of one `Cache-Control`-like field of a message, in order.
#[derive(Debug, Default, Clone)]
pub struct CacheControl {
    directives: Vec<(String, Option<Argument>)>,
    /// Structured-Field semantics (RFC 9213 targeted fields): a quoted number is a String, not a number.
    strict_numbers: bool,
}

impl CacheControl {
    /// Parses every line of the `name` header (normally `cache-control`).
    pub fn parse(headers: &HeaderMap, name: &HeaderName) -> CacheControl {
        let mut directives = Vec::new();
        for line in headers.get_all(name) {
            parse_into(&String::from_utf8_lossy(line.as_bytes()), &mut directives);
        }
        CacheControl { directives, strict_numbers: false }
    }

    /// Parses one field value.
    pub fn parse_str(text: &str) -> CacheControl {
        let mut directives = Vec::new();
        parse_into(text, &mut directives);
        CacheControl { directives, strict_numbers: false }
    }

    /// Directives already split by a Structured Field parser (targeted cache control).
    pub(crate) fn from_structured(directives: Vec<(String, Option<Argument>)>) -> CacheControl {
        CacheControl { directives, strict_numbers: true }
    }

    /// Parses a message's `Cache-Control`.
    pub fn of(headers: &HeaderMap) -> CacheControl {
        CacheControl::parse(headers, &http::header::CACHE_CONTROL)
    }

    /// Whether there are no directives at all.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }

    /// Whether the directive is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// The argument of the first occurrence of a directive: `None` when absent, `Some(None)` when bare.
    pub fn argument(&self, name: &str) -> Option<Option<&Argument>> {
        self.directives.iter().find(|(n, _)| n == name).map(|(_, a)| a.as_ref())
    }

    /// A delta-seconds directive (first occurrence wins; RFC 9111 §4.2.1 allows "first" or "stale").
    pub fn delta(&self, name: &str) -> Delta {
        match self.argument(name) {
            None => Delta::Absent,
            Some(None) => Delta::Invalid,
            Some(Some(argument)) => {
                if self.strict_numbers && matches!(argument, Argument::Quoted(_)) {
                    return Delta::Invalid;
                }
                parse_delta_seconds(argument.text()).map_or(Delta::Invalid, Delta::Seconds)
            }
        }
    }

    /// The directive's value as seconds; `None` when absent or not a valid non-negative integer.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        match self.delta(name) {
            Delta::Seconds(s) => Some(s),
            _ => None,
        }
    }

    /// For `max-stale`, whose value is optional: `Some(None)` means "any staleness"; an invalid value is ignored.
    pub fn optional_seconds(&self, name: &str) -> Option<Option<u64>> {
        match self.argument(name)? {
            None => Some(None),
            Some(_) => self.seconds(name).map(Some),
        }
    }

    /// The field names of a qualified `no-cache="a, b"` or `private="a"` (every occurrence), lowercased.
    /// Empty when the directive is absent or unqualified.
    pub fn field_names(&self, name: &str) -> Vec<HeaderName> {
        self.directives
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, a)| a.as_ref())
            .flat_map(|a| a.text().split(','))
            .filter_map(|f| HeaderName::from_bytes(f.trim().as_bytes()).ok())
            .collect()
    }

    /// Whether the directive is present without field names (`no-cache`, `private` in their unqualified form).
    /// A qualified form none of whose members is a valid field name (`private=""`, `no-cache="{x}"`) counts as
    /// unqualified: the origin asked for a restriction we cannot confine to named fields, so it applies whole.
    pub fn has_unqualified(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, a)| {
            n == name
                && a.as_ref()
                    .is_none_or(|a| !a.text().split(',').any(|f| HeaderName::from_bytes(f.trim().as_bytes()).is_ok()))
        })
    }
}

/// Strict delta-seconds: ASCII digits only (leading zeros allowed), clamped to [`DELTA_SECONDS_MAX`].
pub fn parse_delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(DELTA_SECONDS_MAX).min(DELTA_SECONDS_MAX))
}

fn parse_into(text: &str, directives: &mut Vec<(String, Option<Argument>)>) {
    for item in split_outside_quotes(text, ',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (name, argument) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), Some(argument(v.trim()))),
            None => (item, None),
        };
        if name.is_empty() {
            continue;
        }
        directives.push((name.to_ascii_lowercase(), argument));
    }
}

/// Splits at each `separator` that is not inside a quoted string (with `\` escapes inside quotes).
pub(super) fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == separator && !in_quotes => {
                parts.push(&text[start..i]);
                start = i + separator.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn argument(value: &str) -> Argument {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut text = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        text.push(next);
                    }
                } else {
                    text.push(c);
                }
            }
            Argument::Quoted(text)
        }
        None => Argument::Token(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cc(v: &'static str) -> CacheControl {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static(v));
        CacheControl::of(&h)
    }

    #[test]
    fn names_are_case_insensitive() {
        let c = cc("Max-Age=60, NO-STORE");
        assert_eq!(c.seconds("max-age"), Some(60));
        assert!(c.has("no-store"));
    }

    #[test]
    fn quoted_values_are_accepted() {
        assert_eq!(cc("max-age=\"60\"").seconds("max-age"), Some(60));
    }

    #[test]
    fn first_duplicate_wins() {
        assert_eq!(cc("max-age=60, max-age=5").seconds("max-age"), Some(60));
        assert_eq!(cc("max-age=5, max-age=60").seconds("max-age"), Some(5));
    }

    #[test]
    fn leading_zeros_are_accepted() {
        assert_eq!(cc("max-age=0060").seconds("max-age"), Some(60));
    }

    #[test]
    fn invalid_numbers_are_invalid_not_absent() {
        for v in ["max-age=-1", "max-age=1.5", "max-age=abc", "max-age=", "max-age", "max-age=1 0"] {
            let mut h = HeaderMap::new();
            h.insert("cache-control", HeaderValue::from_str(v).expect("value"));
            assert_eq!(CacheControl::of(&h).delta("max-age"), Delta::Invalid, "{v}");
        }
        assert_eq!(cc("public").delta("max-age"), Delta::Absent);
    }

    #[test]
    fn huge_numbers_are_clamped_to_2_pow_31() {
        assert_eq!(cc("max-age=99999999999999999999").seconds("max-age"), Some(DELTA_SECONDS_MAX));
        assert_eq!(cc("max-age=2147483649").seconds("max-age"), Some(DELTA_SECONDS_MAX));
    }

    #[test]
    fn commas_and_whitespace_anywhere() {
        let c = cc(" ,, max-age=60 ,  , public ,");
        assert_eq!(c.seconds("max-age"), Some(60));
        assert!(c.has("public"));
    }

    #[test]
    fn extensions_are_kept_but_harmless() {
        let c = cc("foo=\"a, max-age=1\", max-age=60, bar");
        assert_eq!(c.seconds("max-age"), Some(60));
        assert!(c.has("bar"));
    }

    #[test]
    fn qualified_forms_list_field_names() {
        let c = cc("no-cache=\"Set-Cookie, X-Foo\", private=x-bar");
        assert_eq!(c.field_names("no-cache"), vec!["set-cookie", "x-foo"]);
        assert_eq!(c.field_names("private"), vec!["x-bar"]);
        assert!(!c.has_unqualified("no-cache"));
        assert!(cc("no-cache").has_unqualified("no-cache"));
        assert!(cc("private=\"\"").has_unqualified("private"));
        assert!(cc("private=\"{bad}, \"").has_unqualified("private"));
        assert!(!cc("private=\"{bad}, x-user\"").has_unqualified("private"));
    }

    #[test]
    fn max_stale_value_is_optional() {
        assert_eq!(cc("max-stale").optional_seconds("max-stale"), Some(None));
        assert_eq!(cc("max-stale=7").optional_seconds("max-stale"), Some(Some(7)));
        assert_eq!(cc("max-stale=x").optional_seconds("max-stale"), None);
    }

    #[test]
    fn several_lines_are_one_list() {
        let mut h = HeaderMap::new();
        h.append("cache-control", HeaderValue::from_static("public"));
        h.append("cache-control", HeaderValue::from_static("max-age=9"));
        let c = CacheControl::of(&h);
        assert!(c.has("public"));
        assert_eq!(c.seconds("max-age"), Some(9));
    }
}
