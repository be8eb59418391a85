//! What happens when a credential asks for a touch: the test decides.

use std::time::Duration;

/// How the virtual key answers a touch request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TouchPolicy {
    /// The user touches at once.
    #[default]
    Approve,
    /// Nobody touches: the key gives up and answers `69 82`, as a real key
    /// does after about 15 s (here at once).
    Timeout,
    /// The user touches after this many milliseconds.
    DelayMs(u64),
}

impl TouchPolicy {
    /// Waits for the touch as the policy says; `true` when touched.
    pub fn wait_for_touch(self) -> bool {
        match self {
            TouchPolicy::Approve => true,
            TouchPolicy::Timeout => false,
            TouchPolicy::DelayMs(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                true
            }
        }
    }
}

impl std::str::FromStr for TouchPolicy {
    type Err = String;

    /// `approve`, `timeout` or `delay-ms=N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("\"{s}\" is not a touch policy: use approve, timeout or delay-ms=N");
        match s.trim() {
            "approve" => Ok(TouchPolicy::Approve),
            "timeout" => Ok(TouchPolicy::Timeout),
            other => other
                .strip_prefix("delay-ms=")
                .and_then(|n| n.parse::<u64>().ok())
                .map(TouchPolicy::DelayMs)
                .ok_or_else(bad),
        }
    }
}

impl std::fmt::Display for TouchPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TouchPolicy::Approve => f.write_str("approve"),
            TouchPolicy::Timeout => f.write_str("timeout"),
            TouchPolicy::DelayMs(ms) => write!(f, "delay-ms={ms}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for p in [
            TouchPolicy::Approve,
            TouchPolicy::Timeout,
            TouchPolicy::DelayMs(250),
        ] {
            assert_eq!(p.to_string().parse::<TouchPolicy>(), Ok(p));
        }
        assert!("delay-ms=x".parse::<TouchPolicy>().is_err());
        assert!("maybe".parse::<TouchPolicy>().is_err());
    }

    #[test]
    fn policies_decide_and_delay() {
        assert!(TouchPolicy::Approve.wait_for_touch());
        assert!(!TouchPolicy::Timeout.wait_for_touch());
        let t = std::time::Instant::now();
        assert!(TouchPolicy::DelayMs(30).wait_for_touch());
        assert!(t.elapsed() >= Duration::from_millis(30));
    }
}
