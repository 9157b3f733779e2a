//! Subscription URL rules: scheme, userinfo, length, control characters and
//! the SSRF guard for literal addresses and `localhost`.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::Url;

use super::Rules;
use crate::error::ApiError;

/// Longest accepted URL, in characters.
pub(crate) const MAX_URL_LEN: usize = 2048;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_url", message)
}

/// Checks a subscription URL. Names other than `localhost` are checked again
/// at every connect by the deliverer's guarded resolver, so DNS rebinding
/// cannot slip past this create-time check.
pub(crate) fn url(text: &str, rules: &Rules) -> Result<(), ApiError> {
    if text.chars().count() > MAX_URL_LEN {
        return Err(invalid(format!(
            "url must be at most {MAX_URL_LEN} characters"
        )));
    }
    // The URL parser silently strips CR, LF and tabs, so look at the raw text.
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "url must not contain whitespace or control characters (CR/LF)",
        ));
    }
    let parsed =
        Url::parse(text).map_err(|e| invalid(format!("url is not a valid absolute URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if rules.allow_insecure_urls => {}
        "http" => return Err(invalid("url must use https")),
        other => return Err(invalid(format!("url must use https, not `{other}`"))),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("url must not contain a user name or password"));
    }
    let refused = |what: String| {
        invalid(format!(
            "url points to {what}, which deliveries may not reach"
        ))
    };
    // The parser normalises every IPv4 spelling (`2130706433`, `0x7f.1`) to
    // dotted form and brackets IPv6, so parsing the host text catches them all.
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("url must have a host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if !rules.guard.permits(ip) {
            return Err(refused(format!("the internal address {ip}")));
        }
    } else {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let loopback = name == "localhost" || name.ends_with(".localhost");
        if loopback && !rules.guard.permits(IpAddr::V4(Ipv4Addr::LOCALHOST)) {
            return Err(refused(format!("`{name}` (loopback)")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hookline_model::ssrf::Guard;

    use super::*;

    fn rules(allow_insecure_urls: bool, allowed: &[&str]) -> Rules {
        Rules {
            allow_insecure_urls,
            guard: Guard::new(allowed.iter().map(|n| n.parse().unwrap()).collect()),
            max_headers: 20,
        }
    }

    fn code(text: &str, rules: &Rules) -> Option<&'static str> {
        match url(text, rules) {
            Ok(()) => None,
            Err(ApiError::Invalid { code, .. }) => Some(code),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_https_url_to_a_public_host_is_accepted() {
        assert_eq!(
            code("https://crm.example.com/hooks?a=1", &rules(false, &[])),
            None
        );
        assert_eq!(
            code("https://93.184.216.34:8443/x", &rules(false, &[])),
            None
        );
    }

    #[test]
    fn plain_http_needs_allow_insecure_urls() {
        assert_eq!(
            code("http://crm.example.com/", &rules(false, &[])),
            Some("invalid_url")
        );
        assert_eq!(code("http://crm.example.com/", &rules(true, &[])), None);
    }

    #[test]
    fn a_scheme_other_than_http_is_rejected() {
        for text in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com",
            "example.com/hook",
        ] {
            assert_eq!(code(text, &rules(true, &[])), Some("invalid_url"), "{text}");
        }
    }

    #[test]
    fn a_url_with_userinfo_is_rejected() {
        assert_eq!(
            code("https://user:pw@example.com/", &rules(false, &[])),
            Some("invalid_url")
        );
        assert_eq!(
            code("https://user@example.com/", &rules(false, &[])),
            Some("invalid_url")
        );
    }

    #[test]
    fn a_url_with_cr_or_lf_is_rejected() {
        assert_eq!(
            code("https://example.com/a\r\nHost: evil", &rules(false, &[])),
            Some("invalid_url")
        );
        assert_eq!(
            code("https://exam\nple.com/", &rules(false, &[])),
            Some("invalid_url")
        );
    }

    #[test]
    fn a_url_longer_than_2048_characters_is_rejected() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(code(&long, &rules(false, &[])), Some("invalid_url"));
        let fits = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(code(&fits, &rules(false, &[])), None);
    }

    #[test]
    fn a_literal_internal_address_is_rejected_in_every_spelling() {
        for text in [
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://2130706433/",
            "https://0x7f.0.0.1/",
        ] {
            assert_eq!(
                code(text, &rules(false, &[])),
                Some("invalid_url"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_allowed_network_lets_its_literal_addresses_through() {
        let rules = rules(true, &["127.0.0.0/8"]);
        assert_eq!(code("http://127.0.0.1:9000/hook", &rules), None);
        assert_eq!(code("http://10.0.0.1/hook", &rules), Some("invalid_url"));
    }

    #[test]
    fn localhost_is_refused_unless_loopback_is_allowed() {
        for text in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
        ] {
            assert_eq!(
                code(text, &rules(false, &[])),
                Some("invalid_url"),
                "{text}"
            );
        }
        assert_eq!(
            code("http://localhost:9000/", &rules(true, &["127.0.0.0/8"])),
            None
        );
    }
}
