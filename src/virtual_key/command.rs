//! Decoding command APDUs as the card receives them (ISO 7816-4 cases 1 to 4,
//! short and extended forms), and building answers.

use zeroize::Zeroize;

/// One decoded command APDU. The data is zeroized on drop (it may hold keys).
pub(crate) struct Incoming {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl Incoming {
    /// Decodes raw bytes; `Err` carries the status word to answer (`6700` for
    /// any length that does not add up).
    pub fn parse(raw: &[u8]) -> Result<Incoming, u16> {
        let (header, body) = match raw {
            [cla, ins, p1, p2, body @ ..] => ([*cla, *ins, *p1, *p2], body),
            _ => return Err(SW_WRONG_LENGTH),
        };
        let data = decode_body(body).ok_or(SW_WRONG_LENGTH)?;
        Ok(Incoming {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data: data.to_vec(),
        })
    }

    pub fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }
}

/// The data field of an APDU body (everything after the header), or `None`
/// when the lengths are inconsistent. Le is accepted and ignored: the card
/// answers what it has and chains the rest with `61xx`.
fn decode_body(body: &[u8]) -> Option<&[u8]> {
    match body {
        // Case 1, or case 2 short (Le only).
        [] | [_] => Some(&[]),
        // Case 2 extended: 00 Le1 Le2.
        [0, _, _] => Some(&[]),
        [0, hi, lo, rest @ ..] if !rest.is_empty() => {
            // Case 3/4 extended: 00 Lc1 Lc2 data [Le1 Le2].
            let lc = u16::from_be_bytes([*hi, *lo]) as usize;
            if lc == 0 {
                return None;
            }
            match rest.len().checked_sub(lc)? {
                0 | 2 => rest.get(..lc),
                _ => None,
            }
        }
        [lc, rest @ ..] => {
            // Case 3/4 short: Lc data [Le].
            let lc = *lc as usize;
            if lc == 0 {
                return None;
            }
            match rest.len().checked_sub(lc)? {
                0 | 1 => rest.get(..lc),
                _ => None,
            }
        }
    }
}

pub(crate) const SW_OK: u16 = 0x9000;
pub(crate) const SW_MEMORY_FAILURE: u16 = 0x6581;
pub(crate) const SW_WRONG_LENGTH: u16 = 0x6700;
pub(crate) const SW_SECURITY: u16 = 0x6982;
pub(crate) const SW_CONDITIONS: u16 = 0x6985;
pub(crate) const SW_NO_SUCH_OBJECT: u16 = 0x6984;
pub(crate) const SW_WRONG_DATA: u16 = 0x6A80;
pub(crate) const SW_NOT_FOUND: u16 = 0x6A82;
pub(crate) const SW_NO_SPACE: u16 = 0x6A84;
pub(crate) const SW_WRONG_P1P2: u16 = 0x6B00;
pub(crate) const SW_INS_NOT_SUPPORTED: u16 = 0x6D00;
pub(crate) const SW_CLA_NOT_SUPPORTED: u16 = 0x6E00;

/// An answer with data and a status word.
pub(crate) fn answer(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

/// An answer that is only a status word.
pub(crate) fn status(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_of(raw: &[u8]) -> Result<Vec<u8>, u16> {
        Incoming::parse(raw).map(|c| c.data.clone())
    }

    #[test]
    fn all_four_cases_short_and_extended() {
        assert_eq!(data_of(&[0, 0xA1, 0, 0]), Ok(vec![]));
        assert_eq!(data_of(&[0, 0xA1, 0, 0, 0]), Ok(vec![]));
        assert_eq!(data_of(&[0, 0xA1, 0, 0, 0, 0, 0]), Ok(vec![]));
        assert_eq!(data_of(&[0, 1, 0, 0, 2, 7, 8]), Ok(vec![7, 8]));
        assert_eq!(data_of(&[0, 1, 0, 0, 2, 7, 8, 0]), Ok(vec![7, 8]));
        assert_eq!(data_of(&[0, 1, 0, 0, 0, 0, 2, 7, 8]), Ok(vec![7, 8]));
        assert_eq!(data_of(&[0, 1, 0, 0, 0, 0, 2, 7, 8, 0, 0]), Ok(vec![7, 8]));
        let mut long = vec![0, 1, 0, 0, 0, 0x01, 0x2C];
        long.extend(vec![5u8; 300]);
        assert_eq!(data_of(&long).map(|d| d.len()), Ok(300));
    }

    #[test]
    fn inconsistent_lengths_are_6700() {
        for bad in [
            &[][..],
            &[0, 1, 0],
            &[0, 1, 0, 0, 3, 1],
            &[0, 1, 0, 0, 1, 1, 2, 3],
            &[0, 1, 0, 0, 0, 0, 3, 1],
            &[0, 1, 0, 0, 0, 0, 0, 1],
            &[0, 1, 0, 0, 0, 0, 1, 1, 2],
        ] {
            assert_eq!(data_of(bad), Err(SW_WRONG_LENGTH), "{bad:?}");
        }
    }
}
