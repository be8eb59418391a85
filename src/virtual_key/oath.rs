//! The OATH applet (YKOATH), card side: credentials, password, codes.
//!
//! Written from Yubico's YKOATH specification and the behaviour its reference
//! client (yubikit `oath.py`) relies on. Quirks kept on purpose: the `78`
//! property is one raw byte with no length; a PUT whose id exists overwrites
//! the credential; a failed VALIDATE keeps the card challenge (ykman retries
//! with the same session after a remembered key fails).

use super::command::{
    answer, status, Incoming, SW_CONDITIONS, SW_INS_NOT_SUPPORTED, SW_NO_SPACE, SW_NO_SUCH_OBJECT,
    SW_OK, SW_SECURITY, SW_WRONG_DATA, SW_WRONG_P1P2,
};
use super::touch::TouchPolicy;
use crate::secret::SecretBytes;
use crate::version::Version;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// AID of the OATH applet.
pub const AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

const TAG_NAME: u8 = 0x71;
const TAG_NAME_LIST: u8 = 0x72;
const TAG_KEY: u8 = 0x73;
const TAG_CHALLENGE: u8 = 0x74;
const TAG_RESPONSE: u8 = 0x75;
const TAG_TRUNCATED: u8 = 0x76;
const TAG_HOTP: u8 = 0x77;
const TAG_PROPERTY: u8 = 0x78;
const TAG_VERSION: u8 = 0x79;
const TAG_IMF: u8 = 0x7A;
const TAG_ALGORITHM: u8 = 0x7B;
const TAG_TOUCH: u8 = 0x7C;

const INS_PUT: u8 = 0x01;
const INS_DELETE: u8 = 0x02;
const INS_SET_CODE: u8 = 0x03;
const INS_RESET: u8 = 0x04;
const INS_RENAME: u8 = 0x05;
const INS_LIST: u8 = 0xA1;
const INS_CALCULATE: u8 = 0xA2;
const INS_VALIDATE: u8 = 0xA3;
const INS_CALCULATE_ALL: u8 = 0xA4;
const INS_SEND_REMAINING: u8 = 0xA5;

const PROP_REQUIRE_TOUCH: u8 = 0x02;
/// Longest credential id the key stores.
const MAX_ID_LEN: usize = 64;
/// Longest TOTP challenge accepted (Yubico's applet: one hash block).
const MAX_CHALLENGE_LEN: usize = 64;
/// Most data bytes in one answer; the rest waits for SEND REMAINING.
pub(crate) const CHUNK: usize = 0xFF;

/// The instruction's name, for logs.
pub(crate) fn ins_name(ins: u8) -> &'static str {
    match ins {
        INS_PUT => "OATH PUT",
        INS_DELETE => "OATH DELETE",
        INS_SET_CODE => "OATH SET CODE",
        INS_RESET => "OATH RESET",
        INS_RENAME => "OATH RENAME",
        INS_LIST => "OATH LIST",
        INS_CALCULATE => "OATH CALCULATE",
        INS_VALIDATE => "OATH VALIDATE",
        INS_CALCULATE_ALL => "OATH CALCULATE ALL",
        INS_SEND_REMAINING => "OATH SEND REMAINING",
        _ => "OATH unknown instruction",
    }
}

/// HOTP (counter) or TOTP (time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OathType {
    Hotp,
    Totp,
}

impl OathType {
    pub(crate) fn from_nibble(b: u8) -> Option<Self> {
        match b & 0xF0 {
            0x10 => Some(OathType::Hotp),
            0x20 => Some(OathType::Totp),
            _ => None,
        }
    }

    pub(crate) fn nibble(self) -> u8 {
        match self {
            OathType::Hotp => 0x10,
            OathType::Totp => 0x20,
        }
    }
}

/// The HMAC hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    pub(crate) fn from_nibble(b: u8) -> Option<Self> {
        match b & 0x0F {
            1 => Some(HashAlgo::Sha1),
            2 => Some(HashAlgo::Sha256),
            3 => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    pub(crate) fn nibble(self) -> u8 {
        match self {
            HashAlgo::Sha1 => 1,
            HashAlgo::Sha256 => 2,
            HashAlgo::Sha512 => 3,
        }
    }

    fn block_size(self) -> usize {
        match self {
            HashAlgo::Sha1 | HashAlgo::Sha256 => 64,
            HashAlgo::Sha512 => 128,
        }
    }
}

/// HMAC of `msg` under `key`.
pub(crate) fn hmac(algo: HashAlgo, key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length: this cannot fail.
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match algo {
        HashAlgo::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        HashAlgo::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        HashAlgo::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 dynamic truncation: 31 bits from the offset in the last nibble.
fn truncate(mac: &[u8]) -> [u8; 4] {
    let offset = mac.last().map_or(0, |b| (b & 0x0F) as usize);
    let mut out = [0u8; 4];
    if let Some(w) = mac.get(offset..offset + 4) {
        out.copy_from_slice(w);
    }
    out[0] &= 0x7F;
    out
}

/// One stored credential.
pub(crate) struct Credential {
    pub id: Vec<u8>,
    pub oath_type: OathType,
    pub algo: HashAlgo,
    pub digits: u8,
    pub key: SecretBytes,
    pub touch: bool,
    /// HOTP moving factor (unused for TOTP).
    pub counter: u64,
}

/// What tests may see of a credential: everything but the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub id: Vec<u8>,
    pub oath_type: OathType,
    pub algorithm: HashAlgo,
    pub digits: u8,
    pub touch: bool,
    pub counter: u64,
}

/// The access key set with SET CODE (derived from the password by the host).
pub(crate) struct AccessKey {
    pub algo: HashAlgo,
    pub key: SecretBytes,
}

/// What the key keeps across power cycles (and what `--state` persists).
pub(crate) struct OathData {
    pub salt: [u8; 8],
    pub access_key: Option<AccessKey>,
    pub credentials: Vec<Credential>,
}

impl std::fmt::Debug for OathData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OathData({} credentials, password: {}, keys redacted)",
            self.credentials.len(),
            self.access_key.is_some()
        )
    }
}

impl OathData {
    pub fn empty() -> Self {
        OathData {
            salt: random8(),
            access_key: None,
            credentials: Vec::new(),
        }
    }
}

/// Eight random bytes (salt, challenges).
fn random8() -> [u8; 8] {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the clock, good enough for a test card.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED);
        b = t.to_be_bytes();
    }
    b
}

/// The applet: stored data plus the session (unlock, pending answer).
pub(crate) struct OathApplet {
    version: Version,
    capacity: usize,
    pub data: OathData,
    /// Card challenge of this session, while a password is set and not yet validated.
    challenge: Option<[u8; 8]>,
    unlocked: bool,
    pending: Zeroizing<Vec<u8>>,
    pub touch: TouchPolicy,
    pub touches: u64,
    dirty: bool,
}

impl OathApplet {
    pub fn new(version: Version, data: OathData, touch: TouchPolicy) -> Self {
        let capacity = version.oath_capacity();
        OathApplet {
            version,
            capacity,
            data,
            challenge: None,
            unlocked: false,
            pending: Zeroizing::new(Vec::new()),
            touch,
            touches: 0,
            dirty: false,
        }
    }

    /// True once after a command changed stored data.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Power off or another applet selected: the session ends.
    pub fn end_session(&mut self) {
        self.challenge = None;
        self.unlocked = false;
        self.pending.clear();
    }

    fn authorized(&self) -> bool {
        self.data.access_key.is_none() || self.unlocked
    }

    /// SELECT: a new session, locked when a password is set.
    pub fn select(&mut self) -> Vec<u8> {
        self.end_session();
        let mut out = Vec::new();
        crate::tlv::push(&mut out, TAG_VERSION, &self.version.to_bytes());
        crate::tlv::push(&mut out, TAG_NAME, &self.data.salt);
        if let Some(ak) = &self.data.access_key {
            let chal = random8();
            self.challenge = Some(chal);
            crate::tlv::push(&mut out, TAG_CHALLENGE, &chal);
            crate::tlv::push(&mut out, TAG_ALGORITHM, &[ak.algo.nibble()]);
        }
        answer(out, SW_OK)
    }

    pub fn handle(&mut self, cmd: &Incoming) -> Vec<u8> {
        let known = matches!(
            cmd.ins,
            INS_PUT
                | INS_DELETE
                | INS_SET_CODE
                | INS_RESET
                | INS_RENAME
                | INS_LIST
                | INS_CALCULATE
                | INS_VALIDATE
                | INS_CALCULATE_ALL
                | INS_SEND_REMAINING
        );
        if !known || (cmd.ins == INS_RENAME && self.version < Version(5, 3, 1)) {
            self.pending.clear();
            return status(SW_INS_NOT_SUPPORTED);
        }
        let needs_auth = !matches!(cmd.ins, INS_RESET | INS_VALIDATE);
        if needs_auth && !self.authorized() {
            self.pending.clear();
            return status(SW_SECURITY);
        }
        let p1p2_ok = match cmd.ins {
            INS_RESET => cmd.p1p2() == 0xDEAD,
            INS_CALCULATE | INS_CALCULATE_ALL => cmd.p1 == 0 && cmd.p2 <= 1,
            INS_SEND_REMAINING => true,
            _ => cmd.p1p2() == 0,
        };
        if !p1p2_ok {
            self.pending.clear();
            return status(SW_WRONG_P1P2);
        }
        if cmd.ins == INS_SEND_REMAINING {
            return self.send_remaining();
        }
        self.pending.clear();
        let result = match cmd.ins {
            INS_PUT => self.put(&cmd.data).map(|()| Vec::new()),
            INS_DELETE => self.delete(&cmd.data).map(|()| Vec::new()),
            INS_SET_CODE => self.set_code(&cmd.data).map(|()| Vec::new()),
            INS_RESET => self.reset().map(|()| Vec::new()),
            INS_RENAME => self.rename(&cmd.data).map(|()| Vec::new()),
            INS_LIST => Ok(self.list()),
            INS_CALCULATE => self.calculate(&cmd.data, cmd.p2),
            INS_VALIDATE => self.validate(&cmd.data),
            _ => self.calculate_all(&cmd.data, cmd.p2),
        };
        match result {
            Ok(data) => self.respond(Zeroizing::new(data)),
            Err(sw) => status(sw),
        }
    }

    /// Sends what fits and keeps the rest for SEND REMAINING (`61xx`).
    fn respond(&mut self, data: Zeroizing<Vec<u8>>) -> Vec<u8> {
        if data.len() <= CHUNK {
            return answer(data.to_vec(), SW_OK);
        }
        let first = data[..CHUNK].to_vec();
        self.pending = Zeroizing::new(data[CHUNK..].to_vec());
        let sw = more_data_sw(self.pending.len());
        answer(first, sw)
    }

    fn send_remaining(&mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            return status(SW_CONDITIONS);
        }
        let n = self.pending.len().min(CHUNK);
        let chunk: Vec<u8> = self.pending.drain(..n).collect();
        let sw = if self.pending.is_empty() {
            SW_OK
        } else {
            more_data_sw(self.pending.len())
        };
        answer(chunk, sw)
    }

    fn find(&self, id: &[u8]) -> Option<usize> {
        self.data.credentials.iter().position(|c| c.id == id)
    }

    /// INS 01 PUT: `71 id` `73 [type|algo][digits][key]` `[78 prop]` `[7A 04 imf]`.
    fn put(&mut self, data: &[u8]) -> Result<(), u16> {
        let mut id = None;
        let mut key_tlv = None;
        let mut prop = 0u8;
        let mut imf = None;
        let mut pos = 0;
        while pos < data.len() {
            let tag = data[pos];
            if tag == TAG_PROPERTY {
                // Raw property byte, no length.
                prop = *data.get(pos + 1).ok_or(SW_WRONG_DATA)?;
                pos += 2;
                continue;
            }
            let (value, next) = read_tlv(data, pos).ok_or(SW_WRONG_DATA)?;
            match tag {
                TAG_NAME => id = Some(value),
                TAG_KEY => key_tlv = Some(value),
                TAG_IMF => imf = Some(value),
                _ => return Err(SW_WRONG_DATA),
            }
            pos = next;
        }
        let id = id.ok_or(SW_WRONG_DATA)?;
        let key_tlv = key_tlv.ok_or(SW_WRONG_DATA)?;
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(SW_WRONG_DATA);
        }
        let (&kind, rest) = key_tlv.split_first().ok_or(SW_WRONG_DATA)?;
        let (&digits, key) = rest.split_first().ok_or(SW_WRONG_DATA)?;
        let oath_type = OathType::from_nibble(kind).ok_or(SW_WRONG_DATA)?;
        let algo = HashAlgo::from_nibble(kind).ok_or(SW_WRONG_DATA)?;
        if algo == HashAlgo::Sha512 && self.version < Version(4, 3, 1) {
            return Err(SW_WRONG_DATA);
        }
        if !(6..=8).contains(&digits) {
            return Err(SW_WRONG_DATA);
        }
        // Keys shorter than 14 bytes are accepted as Yubico's applet does (HMAC
        // pads with zeros anyway); longer than a block the client must hash.
        if key.len() > algo.block_size() {
            return Err(SW_WRONG_DATA);
        }
        if prop & !0x03 != 0 {
            return Err(SW_WRONG_DATA);
        }
        let touch = prop & PROP_REQUIRE_TOUCH != 0;
        if touch && self.version < Version(4, 2, 4) {
            return Err(SW_WRONG_DATA);
        }
        let counter = match imf {
            None => 0,
            Some(v) => {
                let b: [u8; 4] = v.try_into().map_err(|_| SW_WRONG_DATA)?;
                u32::from_be_bytes(b) as u64
            }
        };
        let cred = Credential {
            id: id.to_vec(),
            oath_type,
            algo,
            digits,
            key: SecretBytes::new(key.to_vec()),
            touch,
            counter,
        };
        match self.find(id) {
            Some(i) => self.data.credentials[i] = cred,
            None if self.data.credentials.len() >= self.capacity => return Err(SW_NO_SPACE),
            None => self.data.credentials.push(cred),
        }
        self.dirty = true;
        Ok(())
    }

    /// INS 02 DELETE: `71 id`.
    fn delete(&mut self, data: &[u8]) -> Result<(), u16> {
        let id = first_tag(data, TAG_NAME)?;
        let i = self.find(id).ok_or(SW_NO_SUCH_OBJECT)?;
        self.data.credentials.remove(i);
        self.dirty = true;
        Ok(())
    }

    /// INS 05 RENAME: `71 old` `71 new`; `new` must be an id no credential has.
    fn rename(&mut self, data: &[u8]) -> Result<(), u16> {
        let names = all_tlvs(data)?;
        let [(TAG_NAME, old), (TAG_NAME, new)] = names.as_slice() else {
            return Err(SW_WRONG_DATA);
        };
        if new.is_empty() || new.len() > MAX_ID_LEN {
            return Err(SW_WRONG_DATA);
        }
        let i = self.find(old).ok_or(SW_NO_SUCH_OBJECT)?;
        // Any credential already holding the new id refuses the rename,
        // the renamed one included (firmware 5.3+ answers an error when a
        // credential is renamed onto its own id; yubikit's device tests
        // require it). Which status word is not documented: 6A80 here, as
        // for an id another credential holds.
        if self.find(new).is_some() {
            return Err(SW_WRONG_DATA);
        }
        self.data.credentials[i].id = new.to_vec();
        self.dirty = true;
        Ok(())
    }

    /// INS A1 LIST: `72 len [type|algo] id` per credential.
    fn list(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.data.credentials {
            let mut v = vec![c.oath_type.nibble() | c.algo.nibble()];
            v.extend_from_slice(&c.id);
            crate::tlv::push(&mut out, TAG_NAME_LIST, &v);
        }
        out
    }

    /// The answer for one credential: `75` full or `76` truncated, with the
    /// digits byte first.
    fn code(cred: &Credential, msg: &[u8], truncated: bool) -> Vec<u8> {
        let mac = Zeroizing::new(hmac(cred.algo, cred.key.expose(), msg));
        let mut v = vec![cred.digits];
        let mut out = Vec::new();
        if truncated {
            v.extend_from_slice(&truncate(&mac));
            crate::tlv::push(&mut out, TAG_TRUNCATED, &v);
        } else {
            v.extend_from_slice(&mac);
            crate::tlv::push(&mut out, TAG_RESPONSE, &v);
        }
        out
    }

    /// INS A2 CALCULATE: `71 id` `74 challenge`; P2 01 truncated, 00 full.
    /// HOTP ignores the challenge but, like Yubico's applet, wants the tag.
    fn calculate(&mut self, data: &[u8], p2: u8) -> Result<Vec<u8>, u16> {
        let truncated = p2 == 1;
        let tlvs = all_tlvs(data)?;
        let id = tag_value(&tlvs, TAG_NAME).ok_or(SW_WRONG_DATA)?;
        let challenge = tag_value(&tlvs, TAG_CHALLENGE).ok_or(SW_WRONG_DATA)?;
        let i = self.find(id).ok_or(SW_NO_SUCH_OBJECT)?;
        let cred = &self.data.credentials[i];
        let msg = match cred.oath_type {
            OathType::Totp => totp_challenge(challenge)?.to_vec(),
            OathType::Hotp => cred.counter.to_be_bytes().to_vec(),
        };
        if cred.touch {
            self.touches += 1;
            if !self.touch.wait_for_touch() {
                return Err(SW_SECURITY);
            }
        }
        let out = Self::code(cred, &msg, truncated);
        if cred.oath_type == OathType::Hotp {
            let c = &mut self.data.credentials[i];
            c.counter = c.counter.wrapping_add(1);
            self.dirty = true;
        }
        Ok(out)
    }

    /// INS A4 CALCULATE ALL: `74 challenge`; per credential `71 id` then a
    /// code, or `77` (HOTP) / `7C` (touch) with the digits and no code.
    fn calculate_all(&mut self, data: &[u8], p2: u8) -> Result<Vec<u8>, u16> {
        let truncated = p2 == 1;
        let challenge = totp_challenge(first_tag(data, TAG_CHALLENGE)?)?;
        let mut out = Vec::new();
        for c in &self.data.credentials {
            crate::tlv::push(&mut out, TAG_NAME, &c.id);
            if c.oath_type == OathType::Hotp {
                crate::tlv::push(&mut out, TAG_HOTP, &[c.digits]);
            } else if c.touch {
                crate::tlv::push(&mut out, TAG_TOUCH, &[c.digits]);
            } else {
                out.extend_from_slice(&Self::code(c, challenge, truncated));
            }
        }
        Ok(out)
    }

    /// INS A3 VALIDATE: `75 hmac(key, card challenge)` `74 host challenge`;
    /// answers `75 hmac(key, host challenge)`.
    fn validate(&mut self, data: &[u8]) -> Result<Vec<u8>, u16> {
        let (Some(ak), Some(card_chal)) = (&self.data.access_key, self.challenge) else {
            return Err(SW_NO_SUCH_OBJECT);
        };
        let tlvs = all_tlvs(data)?;
        let response = tag_value(&tlvs, TAG_RESPONSE).ok_or(SW_WRONG_DATA)?;
        let host_chal = tag_value(&tlvs, TAG_CHALLENGE).ok_or(SW_WRONG_DATA)?;
        if host_chal.len() < 8 {
            return Err(SW_WRONG_DATA);
        }
        let expected = Zeroizing::new(hmac(ak.algo, ak.key.expose(), &card_chal));
        if !bool::from(expected.as_slice().ct_eq(response)) {
            self.unlocked = false;
            return Err(SW_WRONG_DATA);
        }
        let mut out = Vec::new();
        crate::tlv::push(
            &mut out,
            TAG_RESPONSE,
            &hmac(ak.algo, ak.key.expose(), host_chal),
        );
        self.challenge = None;
        self.unlocked = true;
        Ok(out)
    }

    /// INS 03 SET CODE: `73 [type|algo] key` `74 chal` `75 hmac(key, chal)`;
    /// an empty `73` removes the password.
    fn set_code(&mut self, data: &[u8]) -> Result<(), u16> {
        let tlvs = all_tlvs(data)?;
        let key_tlv = tag_value(&tlvs, TAG_KEY).ok_or(SW_WRONG_DATA)?;
        let Some((&kind, key)) = key_tlv.split_first() else {
            self.data.access_key = None;
            self.challenge = None;
            self.dirty = true;
            return Ok(());
        };
        let algo = HashAlgo::from_nibble(kind).ok_or(SW_WRONG_DATA)?;
        if key.is_empty() || key.len() > algo.block_size() {
            return Err(SW_WRONG_DATA);
        }
        let chal = tag_value(&tlvs, TAG_CHALLENGE).ok_or(SW_WRONG_DATA)?;
        let resp = tag_value(&tlvs, TAG_RESPONSE).ok_or(SW_WRONG_DATA)?;
        let expected = Zeroizing::new(hmac(algo, key, chal));
        if resp.len() != expected.len() {
            return Err(SW_WRONG_DATA);
        }
        // A well-formed response that does not match: 6984, as Yubico's applet.
        if !bool::from(expected.as_slice().ct_eq(resp)) {
            return Err(SW_NO_SUCH_OBJECT);
        }
        self.data.access_key = Some(AccessKey {
            algo,
            key: SecretBytes::new(key.to_vec()),
        });
        // The session that set the password stays unlocked.
        self.unlocked = true;
        self.challenge = None;
        self.dirty = true;
        Ok(())
    }

    /// INS 04 RESET (P1 P2 = DE AD): wipes credentials and password, new salt.
    fn reset(&mut self) -> Result<(), u16> {
        self.data = OathData::empty();
        self.end_session();
        self.dirty = true;
        Ok(())
    }

    pub fn credential_infos(&self) -> Vec<CredentialInfo> {
        self.data
            .credentials
            .iter()
            .map(|c| CredentialInfo {
                id: c.id.clone(),
                oath_type: c.oath_type,
                algorithm: c.algo,
                digits: c.digits,
                touch: c.touch,
                counter: c.counter,
            })
            .collect()
    }
}

/// A TOTP challenge: 1 to 64 bytes, else `6A80`.
fn totp_challenge(c: &[u8]) -> Result<&[u8], u16> {
    if c.is_empty() || c.len() > MAX_CHALLENGE_LEN {
        return Err(SW_WRONG_DATA);
    }
    Ok(c)
}

/// `61xx` with the bytes still waiting (00 for 256 or more).
fn more_data_sw(remaining: usize) -> u16 {
    0x6100
        | if remaining > 0xFF {
            0
        } else {
            remaining as u16
        }
}

/// One TLV at `pos` (one-byte tag; short, `81` or `82` length): its value
/// and where the next starts.
fn read_tlv(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let first = *data.get(pos.checked_add(1)?)?;
    let (len, hdr) = match first {
        0x00..=0x7F => (first as usize, 2),
        0x81 => (*data.get(pos + 2)? as usize, 3),
        0x82 => (
            u16::from_be_bytes([*data.get(pos + 2)?, *data.get(pos + 3)?]) as usize,
            4,
        ),
        _ => return None,
    };
    let start = pos + hdr;
    let end = start.checked_add(len)?;
    Some((data.get(start..end)?, end))
}

/// All TLVs, `6A80` if malformed.
fn all_tlvs(data: &[u8]) -> Result<Vec<(u8, &[u8])>, u16> {
    crate::tlv::parse_all(data).map_err(|_| SW_WRONG_DATA)
}

fn tag_value<'a>(tlvs: &[(u8, &'a [u8])], tag: u8) -> Option<&'a [u8]> {
    tlvs.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// The first value with `tag`, `6A80` when absent or malformed.
fn first_tag(data: &[u8], tag: u8) -> Result<&[u8], u16> {
    tag_value(&all_tlvs(data)?, tag).ok_or(SW_WRONG_DATA)
}
