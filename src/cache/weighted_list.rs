//! The variant-key form of a weighted list of case-insensitive tokens: `Accept-Language` (RFC 9110 §12.5.4) and
//! `Accept-Encoding` (§12.5.3). Such a list says what a client accepts and how much it prefers each (its `q`
//! weights, §12.4.2); the order of members of equal weight says nothing. So the key lists the members by weight,
//! highest first, and members of equal weight in byte order: `en, de` and `de, en` select one variant, as do
//! `de;q=0.5, EN` and `en,de; q=0.50`, while `en, de;q=0.5` and `de, en;q=0.5` stay two. Tokens and parameters are
//! lowercased, whitespace is dropped, empty members are skipped; a `q` that is not a valid qvalue is kept as text.

use http::{HeaderMap, HeaderName};

/// The weight of a member without `q`, in thousandths.
const FULL_WEIGHT: u16 = 1000;

/// Appends the members of every `field` line of `request` in key form (see the module doc).
pub fn push_sorted(key: &mut String, request: &HeaderMap, field: &HeaderName) {
    let mut members: Vec<(u16, String)> = Vec::new();
    for value in request.get_all(field) {
        for item in String::from_utf8_lossy(value.as_bytes()).split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if token.is_empty() {
                continue;
            }
            let mut weight = FULL_WEIGHT;
            let mut member = token;
            for parameter in parts {
                let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "q"
                    && let Some(q) = qvalue(value)
                {
                    weight = q;
                    continue;
                }
                member.push(';');
                member.push_str(&name);
                if !value.is_empty() {
                    member.push('=');
                    member.push_str(&value.to_ascii_lowercase());
                }
            }
            members.push((weight, member));
        }
    }
    members.sort_by(|(a_weight, a), (b_weight, b)| b_weight.cmp(a_weight).then_with(|| a.cmp(b)));
    for (index, (weight, member)) in members.iter().enumerate() {
        if index > 0 {
            key.push(',');
        }
        key.push_str(member);
        if *weight != FULL_WEIGHT {
            key.push_str(";q=");
            key.push_str(&weight.to_string());
        }
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2), in thousandths.
pub fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(FULL_WEIGHT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn sorted(lines: &[&'static str]) -> String {
        let mut request = HeaderMap::new();
        for line in lines {
            request.append(http::header::ACCEPT_LANGUAGE, HeaderValue::from_static(line));
        }
        let mut key = String::new();
        push_sorted(&mut key, &request, &http::header::ACCEPT_LANGUAGE);
        key
    }

    #[test]
    fn members_of_equal_weight_are_in_no_order_and_weights_order_the_rest() {
        assert_eq!(sorted(&["en, de"]), "de,en");
        assert_eq!(sorted(&["de, en"]), sorted(&["en, de"]));
        assert_eq!(sorted(&["de", "en"]), sorted(&["en,de"]), "the same list on two lines");
        assert_eq!(sorted(&["de;q=0.5, EN"]), "en,de;q=500");
        assert_eq!(sorted(&[" en ,de ; Q = 0.50 "]), "en,de;q=500");
        assert_ne!(sorted(&["en, de;q=0.5"]), sorted(&["de, en;q=0.5"]), "a weight is a preference");
        assert_eq!(sorted(&["en;q=1.000, de;q=1"]), "de,en");
        assert_eq!(sorted(&["en, , de,"]), "de,en", "empty members are skipped");
        assert_eq!(sorted(&["en;q=0"]), "en;q=0", "refused is not absent");
    }

    #[test]
    fn an_invalid_weight_is_kept_as_text() {
        assert_eq!(sorted(&["en;q=2"]), "en;q=2");
        assert_ne!(sorted(&["en;q=2"]), sorted(&["en;q=3"]));
        assert_eq!(sorted(&["en;q=0.1234"]), "en;q=0.1234");
        assert_eq!(qvalue("0.005"), Some(5));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue(""), None);
    }
}
