//! Human units in the config file: sizes like `"256MiB"` and durations like `"250ms"`.

use std::time::Duration;

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
