//! Shared presentation helpers for the web view and the CLI: image
//! references, sizes and times shown the way Docker users read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Split `name:tag` or `name@digest` (a bare name means `:latest`).
pub fn split_reference(s: &str) -> (&str, &str) {
    if let Some((name, digest)) = s.split_once('@') {
        return (name, digest);
    }
    match s.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (s, "latest"),
    }
}

/// `name:tag` or `name@digest`, whichever `reference` is.
pub fn join_reference(name: &str, reference: &str) -> String {
    if reference.contains(':') {
        format!("{name}@{reference}")
    } else {
        format!("{name}:{reference}")
    }
}

/// Decimal units with three significant digits, like `docker images`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        let text = format!("{value:.3}");
        let text = text
            .chars()
            .take(if value >= 100.0 { 3 } else { 4 })
            .collect::<String>();
        format!("{}{}", text.trim_end_matches('.'), UNITS[unit])
    }
}

pub fn unix_to_rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "3 hours ago" from an RFC 3339 timestamp, in the words `docker history`
/// uses (go-units' HumanDuration).
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| humantime::parse_rfc3339_weak(s).ok()) else {
        return "N/A".to_owned();
    };
    let d = SystemTime::now().duration_since(t).unwrap_or_default();
    format!("{} ago", human_duration(d))
}

fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = ((d.as_secs_f64() / 3600.0) + 0.5) as u64;
    match seconds {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        2..=59 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// `sha256:0123456789ab…` shortened to its first 12 hex characters.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    hex.chars().take(12).collect()
}

/// Truncate with an ellipsis, as `docker history` does without --no-trunc.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// `s` with control characters shown as escapes (`\u{1b}`), so that a
/// name from a layer (attacker-controlled) cannot move a terminal's cursor,
/// change its colours or its title, or hide itself on a page.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control()) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(split_reference("a/b:v1"), ("a/b", "v1"));
        assert_eq!(split_reference("a/b"), ("a/b", "latest"));
        assert_eq!(split_reference("a@sha256:ab"), ("a", "sha256:ab"));
        assert_eq!(join_reference("a", "sha256:ab"), "a@sha256:ab");
        assert_eq!(join_reference("a", "v1"), "a:v1");
    }

    #[test]
    fn sizes_and_text() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234), "1.23kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ago(None), "N/A");
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
