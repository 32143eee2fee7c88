//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3): q-values, `q=0`, `identity`, `*`, case. Chooses the coding
//! to send among those the client accepts, and gives the request's *encoding class*: the one token that stands
//! for its whole `Accept-Encoding` in cache keys and towards the upstream, so that arbitrary header values map onto
//! at most one stored variant per coding.

use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

use super::coding::Coding;
use crate::cache::map_lookup;

/// Members of one `Accept-Encoding` looked at; the rest are ignored (a real client sends a handful).
const MAX_MEMBERS: usize = 32;

/// A request's `Accept-Encoding`, parsed. Weights are in thousandths (`q=0.5` is 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptEncoding {
    /// Weights given to the codings edgecache knows, by [`Coding::index`].
    known: [Option<u16>; 3],
    identity: Option<u16>,
    star: Option<u16>,
}

impl AcceptEncoding {
    /// Reads every `Accept-Encoding` line of a request; `None` when it sends none (then any coding is acceptable,
    /// and edgecache sends the response as it is).
    pub fn of(headers: &HeaderMap) -> Option<AcceptEncoding> {
        let mut lines = map_lookup::all(headers, &ACCEPT_ENCODING).peekable();
        lines.peek()?;
        let mut accept = AcceptEncoding { known: [None; 3], identity: None, star: None };
        let members = lines.flat_map(|line| line.as_bytes().split(|&b| b == b',')).take(MAX_MEMBERS);
        for member in members {
            let member = String::from_utf8_lossy(member);
            let mut parts = member.split(';');
            let token = parts.next().unwrap_or_default().trim();
            if token.is_empty() {
                continue;
            }
            let weight = weight(parts);
            let slot = if token == "*" {
                &mut accept.star
            } else if token.eq_ignore_ascii_case("identity") {
                &mut accept.identity
            } else if let Some(coding) = Coding::from_token(token) {
                &mut accept.known[coding.index()]
            } else {
                continue;
            };
            // The same coding listed twice: the first weight counts.
            slot.get_or_insert(weight);
        }
        Some(accept)
    }

    /// The weight this request gives `coding`: its own entry, else `*`'s, else 0 (not acceptable).
    pub fn weight(&self, coding: Coding) -> u16 {
        self.known[coding.index()].or(self.star).unwrap_or(0)
    }

    /// Whether `coding` is acceptable (weight above 0).
    pub fn accepts(&self, coding: Coding) -> bool {
        self.weight(coding) > 0
    }

    /// Whether an unencoded body is acceptable: unless `identity;q=0`, or `*;q=0` without an `identity` entry.
    pub fn accepts_identity(&self) -> bool {
        self.identity.or(self.star.filter(|&w| w == 0)).is_none_or(|w| w > 0)
    }

    /// The coding to send among `preference` (the `compression.algorithms` order): the acceptable one of highest
    /// weight, ties going to the earlier in `preference`. `None` when the client accepts none of them.
    pub fn choose(&self, preference: &[Coding]) -> Option<Coding> {
        let mut best: Option<(Coding, u16)> = None;
        for &coding in preference {
            let w = self.weight(coding);
            if w > 0 && best.is_none_or(|(_, b)| w > b) {
                best = Some((coding, w));
            }
        }
        best.map(|(coding, _)| coding)
    }
}

/// Parses the parameters after a coding: `q=` with up to three decimals; a missing `q` is 1, a malformed one 0.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> u16 {
    for param in params {
        let Some((name, value)) = param.split_once('=') else { continue };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        return crate::cache::weighted_list::qvalue(value.trim()).unwrap_or(0);
    }
    1000
}

/// The encoding class of a request: the token of the coding it would be sent in (`br`, `gzip`, `zstd`), or
/// `identity`. Requests of one class get the same answer from the cache and send the same `Accept-Encoding`
/// upstream, so a URL whose responses `Vary: Accept-Encoding` has at most one stored variant per class.
pub fn class(accept: &AcceptEncoding, preference: &[Coding]) -> &'static str {
    accept.choose(preference).map_or("identity", Coding::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(value: &'static str) -> AcceptEncoding {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
        AcceptEncoding::of(&headers).expect("a header")
    }

    const PREF: [Coding; 3] = [Coding::Br, Coding::Gzip, Coding::Zstd];

    #[test]
    fn absent_header_is_none() {
        assert_eq!(AcceptEncoding::of(&HeaderMap::new()), None);
    }

    #[test]
    fn preference_breaks_ties_and_weights_win() {
        assert_eq!(parse("gzip, br").choose(&PREF), Some(Coding::Br));
        assert_eq!(parse("gzip, deflate, br, zstd").choose(&[Coding::Gzip, Coding::Br]), Some(Coding::Gzip));
        assert_eq!(parse("br;q=0.5, gzip").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse("br;q=0.5, gzip;q=0.4").choose(&PREF), Some(Coding::Br));
        assert_eq!(parse("deflate").choose(&PREF), None);
        assert_eq!(parse("zstd").choose(&[Coding::Br, Coding::Gzip]), None, "only configured codings");
    }

    #[test]
    fn q_zero_star_identity_and_case() {
        assert_eq!(parse("br;q=0, gzip").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse("GZIP;Q=1.0").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse("*").choose(&PREF), Some(Coding::Br));
        assert_eq!(parse("*;q=0.1, gzip").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse("br;q=0, *").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse("identity").choose(&PREF), None);
        assert!(parse("gzip").accepts_identity());
        assert!(!parse("gzip, identity;q=0").accepts_identity());
        assert!(!parse("*;q=0").accepts_identity());
        assert!(parse("*;q=0, identity").accepts_identity());
    }

    #[test]
    fn malformed_weights_are_not_acceptable() {
        assert_eq!(parse("br;q=2, gzip;q=0.0001").choose(&PREF), None);
        assert_eq!(parse("br;q=abc, gzip;q=0.001").choose(&PREF), Some(Coding::Gzip));
        assert_eq!(parse(" , ,br ; q=0.9 ,").choose(&PREF), Some(Coding::Br));
    }

    #[test]
    fn classes_are_one_per_coding() {
        for value in ["br, gzip", "gzip, deflate, br", "BR", "br;q=1.000, gzip;q=0.9", "*"] {
            assert_eq!(class(&parse(value), &PREF), "br", "{value}");
        }
        assert_eq!(class(&parse("gzip, deflate"), &PREF), "gzip");
        assert_eq!(class(&parse("deflate, identity"), &PREF), "identity");
    }
}
