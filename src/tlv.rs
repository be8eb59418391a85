//! Simple BER-TLV with one-byte tags, as the YubiKey applets use it
//! (lengths up to 65 535 in the `81`/`82` long forms).

/// Errors reading a TLV stream from a card answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed TLV at offset {offset}: {what}")]
pub(crate) struct TlvError {
    pub offset: usize,
    pub what: &'static str,
}

/// Appends one TLV (tag, length, value) to `out`.
pub(crate) fn push(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// Appends a BER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        let l = len.min(0xFFFF) as u16;
        out.push(0x82);
        out.extend_from_slice(&l.to_be_bytes());
    }
}

/// Iterates over `(tag, value)` pairs. Yields an error once and stops on a
/// truncated or malformed stream; never panics.
pub(crate) fn parse(data: &[u8]) -> Tlvs<'_> {
    Tlvs {
        data,
        pos: 0,
        failed: false,
    }
}

/// Parses all TLVs, failing on the first malformed one.
pub(crate) fn parse_all(data: &[u8]) -> Result<Vec<(u8, &[u8])>, TlvError> {
    parse(data).collect()
}

/// The value of the first TLV with `tag`.
pub(crate) fn find(data: &[u8], tag: u8) -> Result<Option<&[u8]>, TlvError> {
    for item in parse(data) {
        let (t, v) = item?;
        if t == tag {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

pub(crate) struct Tlvs<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<(u8, &'a [u8]), TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let fail = |s: &mut Self, what| {
            s.failed = true;
            Some(Err(TlvError {
                offset: start,
                what,
            }))
        };
        let tag = self.data[self.pos];
        let Some(&first) = self.data.get(self.pos + 1) else {
            return fail(self, "tag without a length");
        };
        let (len, hdr) = match first {
            0x00..=0x7F => (first as usize, 2),
            0x81 => match self.data.get(self.pos + 2) {
                Some(&l) => (l as usize, 3),
                None => return fail(self, "truncated length"),
            },
            0x82 => match self.data.get(self.pos + 2..self.pos + 4) {
                Some(l) => (u16::from_be_bytes([l[0], l[1]]) as usize, 4),
                None => return fail(self, "truncated length"),
            },
            _ => return fail(self, "unsupported length form"),
        };
        let vstart = self.pos + hdr;
        let Some(value) = self.data.get(vstart..vstart + len) else {
            return fail(self, "value runs past the end");
        };
        self.pos = vstart + len;
        Some(Ok((tag, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_short_and_long() {
        let mut out = Vec::new();
        push(&mut out, 0x71, b"name");
        push(&mut out, 0x73, &[7u8; 200]);
        push(&mut out, 0x74, &[1u8; 300]);
        let items = parse_all(&out).unwrap();
        assert_eq!(items[0], (0x71, &b"name"[..]));
        assert_eq!(items[1].1.len(), 200);
        assert_eq!(&out[6..9], &[0x73, 0x81, 200]);
        assert_eq!(items[2].1.len(), 300);
        assert_eq!(find(&out, 0x74).unwrap().unwrap().len(), 300);
        assert_eq!(find(&out, 0x99).unwrap(), None);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x71][..],
            &[0x71, 5, 1, 2],
            &[0x71, 0x81],
            &[0x71, 0x82, 1],
            &[0x71, 0x83, 0, 0, 1],
        ] {
            assert!(parse_all(bad).is_err(), "{bad:?}");
        }
    }
}
