//! Human units in the config file: sizes like `"256MiB"` and durations like `"250ms"`.
//!
//! Sizes: a plain integer is bytes; a string is a number and an optional unit. `B`, `KiB`, `MiB`, `GiB`, `TiB` are
//! binary, and so are `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` (nginx and Varnish read `256M` as MiB, so do we). Units are
//! case-insensitive; fractions such as `"1.5GiB"` are rounded to the nearest byte.
//!
//! Durations: a string of one or more number-unit pairs (`"250ms"`, `"30s"`, `"5m"`, `"1h30m"`), units as the
//! `humantime` crate reads them (`ms`, `s`, `m`, `h`, `d`, ...). A bare number has no unit and is rejected.

use std::time::Duration;

/// Why a size or duration string could not be read; its `Display` is the reason shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The string is not a size.
    #[error("invalid size {0:?}: expected bytes or a number with a unit, like \"512KiB\", \"256MiB\" or \"2GiB\"")]
    Size(String),
    /// The string is not a duration.
    #[error("invalid duration {0:?}: expected a number with a unit, like \"250ms\", \"30s\" or \"5m\" ({1})")]
    Duration(String, String),
}

/// Reads a size string (`"512KiB"`, `"256MiB"`, `"2GiB"`, `"1500"`) into bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('-') {
        return Err(UnitError::Size(text.to_string()));
    }
    parse_size::Config::new().with_binary().parse_size(trimmed).map_err(|_| UnitError::Size(text.to_string()))
}

/// Reads a duration string (`"250ms"`, `"30s"`, `"5m"`, `"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnitError::Duration(text.to_string(), "the unit is missing".to_string()));
    }
    humantime::parse_duration(trimmed).map_err(|e| UnitError::Duration(text.to_string(), e.to_string()))
}

/// Prints a byte count the way an operator would write it (`"256MiB"`, `"1500B"`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, unit) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{}", bytes / unit, name);
        }
    }
    format!("{bytes}B")
}

/// Prints a duration the way an operator would write it (`"250ms"`, `"30s"`, `"5m"`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_binary_units() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("1500B"), Ok(1500));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size(" 16 MiB "), Ok(16 << 20));
    }

    #[test]
    fn nginx_style_units_are_binary() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in ["", "   ", "lots", "12 parsecs", "-1KiB", "1..5MiB", "MiB"] {
            assert_eq!(parse_size(bad), Err(UnitError::Size(bad.to_string())), "{bad:?}");
        }
        assert!(parse_size("99999999999EiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2days"), Ok(Duration::from_secs(2 * 86400)));
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in ["", "30", "soon", "5 parsecs", "-5s", "s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(matches!(err, UnitError::Duration(ref t, _) if t == bad), "{bad:?}: {err}");
        }
        let missing = parse_duration("30").expect_err("bare number");
        assert!(missing.to_string().contains("unit is missing"), "{missing}");
    }

    #[test]
    fn formatting_round_trips() {
        for bytes in [0, 1, 1023, 1024, 1500, 64 * 1024, 256 << 20, 3 << 30, 5 << 40, (1 << 20) + 1] {
            let text = format_size(bytes);
            assert_eq!(parse_size(&text), Ok(bytes), "{text}");
        }
        assert_eq!(format_size(256 << 20), "256MiB");
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_secs(300),
            Duration::from_millis(1500),
            Duration::from_secs(5400),
            Duration::from_secs(90061),
        ] {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
    }
}
