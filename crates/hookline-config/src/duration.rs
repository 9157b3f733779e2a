//! Human durations (`500ms`, `5s`, `2m`, `1h`, `1d`) as the contract writes them.

use std::time::Duration;

/// Parses one duration such as `5s` or `250ms`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 5s, 2m, 1h or 1d"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m, h or d)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=366.0 * 86400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a comma-separated list such as `5s,30s,2m`.
pub fn parse_duration_list(text: &str) -> Result<Vec<Duration>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_duration).collect()
}

/// Formats a duration in the largest unit that divides it (`90s`, `2m`,
/// `1500ms`); used to name wait queues by their delay.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ladder_parses() {
        let ladder = parse_duration_list("5s,30s,2m,10m,1h,6h").unwrap();
        assert_eq!(ladder[2], Duration::from_secs(120));
        assert_eq!(ladder[5], Duration::from_secs(6 * 3600));
    }

    #[test]
    fn milliseconds_and_bare_seconds_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn an_unknown_unit_is_rejected() {
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn durations_format_in_their_largest_whole_unit() {
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(6 * 3600)), "6h");
    }
}
