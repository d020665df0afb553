//! The `/nginx_status` text: nginx's `stub_status` format, four lines with trailing
//! spaces, which scrapers (ingress-nginx's own collector, Datadog, Telegraf...) parse.

use std::fmt;

/// Connection and request counters in stub_status terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StubStatus {
    /// Open client connections (reading + writing + waiting).
    pub active: u64,
    /// Connections accepted since start.
    pub accepts: u64,
    /// Connections handled since start (equal to accepts unless a limit refused some).
    pub handled: u64,
    /// Requests served since start.
    pub requests: u64,
    /// Connections whose request header is being read.
    pub reading: u64,
    /// Connections whose response is being written (includes in-flight requests).
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
}

impl fmt::Display for StubStatus {
    /// Renders the exact nginx text, trailing spaces included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
            self.active,
            self.accepts,
            self.handled,
            self.requests,
            self.reading,
            self.writing,
            self.waiting
        )
    }
}

/// The text was not stub_status output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not stub_status text: {0}")]
pub struct StubStatusParseError(String);

impl StubStatus {
    /// Parses stub_status text as tolerantly as ingress-nginx's scraper does:
    /// `Active connections: N`, the first line of three numbers, and the
    /// `Reading:`/`Writing:`/`Waiting:` values, whatever the whitespace.
    pub fn parse(text: &str) -> Result<StubStatus, StubStatusParseError> {
        let number_after = |label: &str| -> Result<u64, StubStatusParseError> {
            let start = text
                .find(label)
                .ok_or_else(|| StubStatusParseError(format!("missing {label:?}")))?
                + label.len();
            text[start..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| StubStatusParseError(format!("no number after {label:?}")))
        };
        let triple = text
            .lines()
            .find_map(|line| {
                let nums: Vec<u64> = line
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?;
                (nums.len() == 3).then(|| (nums[0], nums[1], nums[2]))
            })
            .ok_or_else(|| {
                StubStatusParseError("missing the accepts/handled/requests line".into())
            })?;
        Ok(StubStatus {
            active: number_after("Active connections:")?,
            accepts: triple.0,
            handled: triple.1,
            requests: triple.2,
            reading: number_after("Reading:")?,
            writing: number_after("Writing:")?,
            waiting: number_after("Waiting:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exact_nginx_text() {
        let s = StubStatus {
            active: 15,
            accepts: 1,
            handled: 2,
            requests: 3,
            reading: 4,
            writing: 5,
            waiting: 6,
        };
        insta::assert_snapshot!(s.to_string().replace(' ', "·"));
        assert_eq!(
            s.to_string(),
            "Active connections: 15 \nserver accepts handled requests\n 1 2 3 \nReading: 4 Writing: 5 Waiting: 6 \n"
        );
    }

    #[test]
    fn parses_like_the_ingress_nginx_scraper() {
        // The scraper's own test input (Part B §1.5), lines joined by " / ".
        let text = "Active connections: 15 \nserver accepts handled requests\n 1 2 3 \nReading: 4 Writing: 5 Waiting: 6 \n";
        let s = StubStatus::parse(text).unwrap();
        assert_eq!(
            (
                s.active, s.accepts, s.handled, s.requests, s.reading, s.writing, s.waiting
            ),
            (15, 1, 2, 3, 4, 5, 6)
        );
        assert!(StubStatus::parse("hello").is_err());
    }

    proptest::proptest! {
        #[test]
        fn render_then_parse_is_identity(a in 0u64..u64::MAX, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64) {
            let s = StubStatus { active: a, accepts: b, handled: c, requests: d, reading: e, writing: f, waiting: g };
            proptest::prop_assert_eq!(StubStatus::parse(&s.to_string()).unwrap(), s);
        }
    }
}
