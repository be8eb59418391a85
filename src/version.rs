//! Firmware versions (`5.4.3`).

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version(pub u8, pub u8, pub u8);

impl Version {
    /// From the three bytes applets answer with.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        match b {
            [a, b, c] => Some(Version(*a, *b, *c)),
            _ => None,
        }
    }

    pub fn to_bytes(self) -> [u8; 3] {
        [self.0, self.1, self.2]
    }

    /// OATH credential slots of a YubiKey with this firmware: 32 before
    /// 5.7.0, 64 from it.
    pub fn oath_capacity(self) -> usize {
        if self >= Version(5, 7, 0) {
            64
        } else {
            32
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl std::str::FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let bad = || format!("\"{s}\" is not a firmware version like 5.7.1");
        if parts.len() != 3 {
            return Err(bad());
        }
        let n = |p: &str| p.parse::<u8>().map_err(|_| bad());
        Ok(Version(n(parts[0])?, n(parts[1])?, n(parts[2])?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        let v: Version = "5.7.1".parse().unwrap();
        assert_eq!(v, Version(5, 7, 1));
        assert!(Version(5, 4, 3) < Version(5, 7, 0));
        assert!("5.7".parse::<Version>().is_err());
        assert_eq!(v.to_string(), "5.7.1");
    }
}
