//! A scripted card for unit tests: each expected exchange is either exact
//! command bytes with a canned answer, or a closure that checks the command
//! and computes the answer (for commands carrying random challenges). Any
//! unexpected command fails the test, and so does an exchange left unused.

use crate::apdu::hex;
use crate::transport::{Transport, TransportError};
use std::collections::VecDeque;

type Responder = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

enum Step {
    Exact { cmd: Vec<u8>, answer: Vec<u8> },
    Compute(Responder),
}

#[derive(Default)]
pub(crate) struct Script {
    steps: VecDeque<Step>,
    /// The INS of every command sent with its data marked as key material.
    secret_ins: Vec<u8>,
}

/// Hex with optional spaces to bytes.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Expects exactly `cmd` (hex) and answers `answer` (hex, with SW).
    pub fn expect(mut self, cmd: &str, answer: &str) -> Self {
        self.steps.push_back(Step::Exact {
            cmd: unhex(cmd),
            answer: unhex(answer),
        });
        self
    }

    /// Expects a command that `f` checks (asserting inside) and answers.
    pub fn expect_fn(mut self, f: impl FnMut(&[u8]) -> Vec<u8> + 'static) -> Self {
        self.steps.push_back(Step::Compute(Box::new(f)));
        self
    }

    pub fn sensitive_ins(&self) -> Vec<u8> {
        self.secret_ins.clone()
    }
}

impl Transport for Script {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.steps.pop_front() {
            None => panic!("unexpected command {}", hex(apdu)),
            Some(Step::Exact { cmd, answer }) => {
                assert_eq!(hex(apdu), hex(&cmd), "command differs from the script");
                Ok(answer)
            }
            Some(Step::Compute(mut f)) => Ok(f(apdu)),
        }
    }

    fn transmit_secret(
        &mut self,
        apdu: &[u8],
        _secret: std::ops::Range<usize>,
    ) -> Result<Vec<u8>, TransportError> {
        self.secret_ins.push(apdu.get(1).copied().unwrap_or(0));
        self.transmit(apdu)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.steps.is_empty() {
            panic!("{} scripted exchange(s) were never used", self.steps.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "never used")]
    fn an_unused_exchange_fails_the_test() {
        let _card = Script::new().expect("00 A1 00 00", "90 00");
    }

    #[test]
    #[should_panic(expected = "command differs")]
    fn a_different_command_fails_the_test() {
        let mut card = Script::new().expect("00 A1 00 00", "90 00");
        let _ = card.transmit(&[0, 0xA2, 0, 0]);
    }
}
