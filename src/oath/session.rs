//! [`OathSession`]: one SELECT of the OATH applet and the operations on it.
//! Status words get their meaning here, at the operation that received them.

use super::{
    commands, otp, password, tag, Code, CodeResult, Credential, CredentialData, CredentialId,
    HashAlgorithm, OathError, OathType, CHALLENGE_LEN, DEFAULT_PERIOD,
};
use crate::apdu::{transmit_chained, Command, Sw};
use crate::secret::{SecretBytes, SecretString};
use crate::transport::Transport;
use crate::version::Version;
#[cfg(test)]
use sha2::Digest;
use std::collections::HashMap;

/// What SELECT told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SelectInfo {
    pub version: Version,
    /// Salt of the password derivation; also the source of the device id.
    pub salt: Vec<u8>,
    /// The card's VALIDATE challenge; present only when a password is set.
    pub challenge: Option<Vec<u8>>,
    /// Algorithm of the access key (tag `7B`, newer firmware).
    pub key_algorithm: Option<HashAlgorithm>,
}

/// A selected OATH applet. Unlocking lasts until the next SELECT (a new
/// session) or power cycle.
pub(crate) struct OathSession<'t> {
    t: &'t mut dyn Transport,
    info: SelectInfo,
    has_key: bool,
    locked: bool,
}

impl std::fmt::Debug for OathSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OathSession")
            .field("version", &self.info.version)
            .field("has_password", &self.has_key)
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

const HOTP_VALID_TO: u64 = i64::MAX as u64;

/// Firmware that can overwrite a credential whose id starts with the new id
/// (ykman refuses such names on YubiKey 4 between these, exclusive).
const PREFIX_BUG: (Version, Version) = (Version(4, 0, 0), Version(4, 3, 5));

impl<'t> OathSession<'t> {
    /// SELECTs the applet. `6A82` (and `6999`, `6B00`, `6D00`, as yubikit
    /// reads them): no OATH applet, or it is disabled.
    pub(crate) fn select(t: &'t mut dyn Transport) -> Result<Self, OathError> {
        let info = select_applet(t)?;
        let has_key = info.challenge.is_some();
        Ok(OathSession {
            t,
            info,
            has_key,
            locked: has_key,
        })
    }

    #[cfg(test)]
    pub(crate) fn info(&self) -> &SelectInfo {
        &self.info
    }

    #[cfg(test)]
    pub fn version(&self) -> Version {
        self.info.version
    }

    /// Whether RENAME is there (firmware 5.3.1 and later).
    pub(crate) fn supports_rename(&self) -> bool {
        self.info.version >= Version(5, 3, 1)
    }

    /// A password (access key) is set.
    pub(crate) fn has_password(&self) -> bool {
        self.has_key
    }

    /// A password is set and this session has not unlocked it yet.
    pub(crate) fn is_locked(&self) -> bool {
        self.locked
    }

    /// ykman's device id: base64 (no padding) of the first 16 bytes of
    /// SHA-256 of the salt. Changes with every RESET.
    #[cfg(test)]
    pub fn device_id(&self) -> String {
        let digest = sha2::Sha256::digest(&self.info.salt);
        base64_no_pad(&digest[..16])
    }

    /// How many credentials the applet holds: 32 before firmware 5.7.0, 64
    /// from 5.7.0.
    pub(crate) fn capacity(&self) -> usize {
        self.info.version.oath_capacity()
    }

    /// The access key for `password` on this key (PBKDF2 with its salt).
    pub(crate) fn derive_key(&self, password: &SecretString) -> SecretBytes {
        password::derive_key(password, &self.info.salt)
    }

    /// Derives the access key and unlocks with it.
    pub(crate) fn unlock(&mut self, password: &SecretString) -> Result<(), OathError> {
        if !self.locked {
            return Ok(());
        }
        let key = self.derive_key(password);
        self.unlock_with_key(&key)
    }

    /// VALIDATE: proves the key to the card (HMAC of its challenge) and
    /// checks, in constant time, the card's proof of our random challenge.
    /// Does nothing when the session is not locked.
    pub(crate) fn unlock_with_key(&mut self, key: &SecretBytes) -> Result<(), OathError> {
        let Some(card_challenge) = self.info.challenge.clone().filter(|_| self.locked) else {
            return Ok(());
        };
        let alg = self.info.key_algorithm.unwrap_or(HashAlgorithm::Sha1);
        let ours = password::hmac(alg, key.expose(), &card_challenge);
        let host_challenge = random_challenge()?;
        let cmd = commands::validate(&ours, &host_challenge)?;
        let data = self.run(&cmd, "VALIDATE", |sw| match sw {
            Sw::IncorrectData => Some(OathError::WrongPassword),
            _ => None,
        })?;
        let theirs = commands::parse_validate(&data)?;
        let expected = password::hmac(alg, key.expose(), &host_challenge);
        if !password::proof_matches(&expected, &theirs) {
            return Err(OathError::MutualAuthFailed);
        }
        self.locked = false;
        // An unlocked applet must not outlive this connection.
        self.t.reset_on_close();
        Ok(())
    }

    /// [`OathSession::unlock_if_locked`] for a key that identified itself:
    /// `serial` is what it answered (read, and matched by the caller where
    /// a serial is pinned). A key that told no serial gets no password
    /// proof ([`OathError::Unidentified`]): a hostile card could otherwise
    /// collect proofs to guess the password offline.
    pub(crate) fn unlock_identified(
        &mut self,
        serial: Option<u32>,
        password: Option<&SecretString>,
    ) -> Result<(), OathError> {
        if !self.is_locked() {
            return Ok(());
        }
        if serial.is_none() {
            return Err(OathError::Unidentified);
        }
        self.unlock_if_locked(password)
    }

    /// Unlocks with `password` when the applet has one (a locked applet and
    /// no password: [`OathError::Locked`]); does nothing otherwise.
    pub(crate) fn unlock_if_locked(
        &mut self,
        password: Option<&SecretString>,
    ) -> Result<(), OathError> {
        if !self.is_locked() {
            return Ok(());
        }
        self.unlock(password.ok_or(OathError::Locked)?)
    }

    /// LIST: every credential with its type and algorithm (touch unknown).
    pub(crate) fn list(&mut self) -> Result<Vec<Credential>, OathError> {
        let data = self.run(&commands::list(), "LIST", locked)?;
        commands::parse_list(&data)
    }

    /// PUT: writes (or overwrites) a credential. Validates first and refuses
    /// what the firmware cannot do (touch before 4.2.4, SHA-512 before
    /// 4.3.1, on 4.0.0 < v < 4.3.5 an id that begins another one).
    pub(crate) fn put(&mut self, data: &CredentialData) -> Result<Credential, OathError> {
        data.validate()?;
        let have = self.info.version;
        if data.touch {
            require(have, Version(4, 2, 4), "requiring touch")?;
        }
        if data.algorithm == HashAlgorithm::Sha512 {
            require(have, Version(4, 3, 1), "SHA-512")?;
        }
        let raw_id = data.id.to_bytes();
        if PREFIX_BUG.0 < have && have < PREFIX_BUG.1 {
            if let Some(other) = self
                .list()?
                .into_iter()
                .find(|c| c.raw_id.starts_with(&raw_id) && c.raw_id != raw_id)
            {
                return Err(OathError::InvalidCredential(format!(
                    "on firmware {have} writing \"{}\" could overwrite \"{}\", whose id begins with it: choose another name",
                    data.id.to_id_string(),
                    other.id.to_id_string()
                )));
            }
        }
        let capacity = self.capacity();
        let cmd = commands::put(data)?;
        self.run(&cmd, "PUT", |sw| match sw {
            Sw::NoSpace => Some(OathError::KeyFull { capacity }),
            Sw::SecurityStatusNotSatisfied => Some(OathError::Locked),
            _ => None,
        })?;
        Ok(Credential {
            id: data.id.clone(),
            raw_id,
            algorithm: data.algorithm,
            touch: Some(data.touch),
        })
    }

    /// DELETE a credential by its stored id.
    pub(crate) fn delete(&mut self, raw_id: &[u8]) -> Result<(), OathError> {
        let cmd = commands::delete(raw_id)?;
        self.run(&cmd, "DELETE", |sw| missing_or_locked(sw, raw_id))?;
        Ok(())
    }

    /// RENAME (firmware 5.3.1+). Returns the new stored id. Build `new_id`
    /// with [`CredentialId::renamed`] to keep the type and period.
    pub(crate) fn rename(
        &mut self,
        raw_id: &[u8],
        new_id: &CredentialId,
    ) -> Result<Vec<u8>, OathError> {
        require(self.info.version, Version(5, 3, 1), "renaming a credential")?;
        new_id.check_len()?;
        let new_raw = new_id.to_bytes();
        let cmd = commands::rename(raw_id, &new_raw)?;
        self.run(&cmd, "RENAME", |sw| missing_or_locked(sw, raw_id))?;
        Ok(new_raw)
    }

    /// CALCULATE one code. TOTP: challenge = big-endian u64 of
    /// `timestamp / period`; HOTP: an empty challenge (the key counts).
    /// A touch credential waits for a touch; `6982` then means it timed out.
    pub(crate) fn calculate(
        &mut self,
        cred: &Credential,
        timestamp: u64,
    ) -> Result<Code, OathError> {
        let challenge = match cred.id.oath_type {
            OathType::Totp => {
                if cred.id.period == 0 {
                    return Err(OathError::InvalidCredential(format!(
                        "\"{}\" has period 0",
                        cred.id.to_id_string()
                    )));
                }
                (timestamp / u64::from(cred.id.period))
                    .to_be_bytes()
                    .to_vec()
            }
            OathType::Hotp => Vec::new(),
        };
        let cmd = commands::calculate(&cred.raw_id, &challenge)?;
        let is_locked = self.locked;
        let data = self.run(&cmd, "CALCULATE", |sw| match sw {
            Sw::SecurityStatusNotSatisfied if is_locked => Some(OathError::Locked),
            Sw::SecurityStatusNotSatisfied => Some(OathError::TouchTimeout),
            _ => missing_or_locked(sw, &cred.raw_id),
        })?;
        let (digits, value) = commands::parse_calculate(&data)?;
        Ok(make_code(&cred.id, timestamp, digits, value))
    }

    /// CALCULATE with a full answer: the credential's HMAC of `challenge`
    /// as it is (no truncation). Touch and absence mean what they mean for
    /// [`OathSession::calculate`].
    pub(crate) fn calculate_response(
        &mut self,
        raw_id: &[u8],
        challenge: &[u8],
    ) -> Result<Vec<u8>, OathError> {
        let cmd = commands::calculate_full(raw_id, challenge)?;
        let is_locked = self.locked;
        let data = self.run(&cmd, "CALCULATE", |sw| match sw {
            Sw::SecurityStatusNotSatisfied if is_locked => Some(OathError::Locked),
            Sw::SecurityStatusNotSatisfied => Some(OathError::TouchTimeout),
            _ => missing_or_locked(sw, raw_id),
        })?;
        commands::parse_calculate_full(&data)
    }

    /// LIST, then CALCULATE ALL at `timestamp` (challenge for a 30 s
    /// period). TOTP credentials with another period are computed again one
    /// by one, as ykman does; touch and HOTP credentials are not computed.
    /// LIST supplies each credential's type and algorithm, which CALCULATE
    /// ALL does not tell.
    pub(crate) fn calculate_all(
        &mut self,
        timestamp: u64,
    ) -> Result<Vec<(Credential, CodeResult)>, OathError> {
        let known: HashMap<Vec<u8>, Credential> = self
            .list()?
            .into_iter()
            .map(|c| (c.raw_id.clone(), c))
            .collect();
        let challenge = (timestamp / u64::from(DEFAULT_PERIOD)).to_be_bytes();
        let cmd = commands::calculate_all(&challenge)?;
        let data = self.run(&cmd, "CALCULATE ALL", locked)?;
        let mut out = Vec::new();
        for entry in commands::parse_calculate_all(&data)? {
            let Some(listed) = known.get(&entry.raw_id) else {
                return Err(OathError::Malformed(format!(
                    "CALCULATE ALL names \"{}\", which LIST did not",
                    String::from_utf8_lossy(&entry.raw_id)
                )));
            };
            let mut cred = listed.clone();
            let result = match entry.tag {
                tag::TRUNCATED => {
                    cred.touch = Some(false);
                    if cred.id.oath_type == OathType::Totp && cred.id.period != DEFAULT_PERIOD {
                        self.calculate_alone(&cred, timestamp)?
                    } else {
                        let (digits, value) = commands::parse_truncated(&entry.value)?;
                        CodeResult::Code(make_code(&cred.id, timestamp, digits, value))
                    }
                }
                tag::TOUCH => {
                    cred.touch = Some(true);
                    CodeResult::TouchRequired
                }
                _ => CodeResult::Hotp,
            };
            out.push((cred, result));
        }
        Ok(out)
    }

    /// One credential of a CALCULATE ALL that needs its own CALCULATE (a
    /// period other than 30 s). An id the key or its period cannot compute
    /// is listed without a code; only a lost key or a lock stops the list.
    fn calculate_alone(
        &mut self,
        cred: &Credential,
        timestamp: u64,
    ) -> Result<CodeResult, OathError> {
        if cred.id.period == 0 {
            return Ok(CodeResult::Unavailable(
                "period 0 in its id, so no time step".into(),
            ));
        }
        match self.calculate(cred, timestamp) {
            Ok(code) => Ok(CodeResult::Code(code)),
            Err(e @ (OathError::Transport(_) | OathError::Locked)) => Err(e),
            Err(e) => Ok(CodeResult::Unavailable(e.to_string())),
        }
    }

    /// SET CODE: sets a password (access key from PBKDF2 with this key's
    /// salt, proven with an HMAC of a random challenge). The session stays
    /// unlocked.
    pub(crate) fn set_password(&mut self, password: &SecretString) -> Result<(), OathError> {
        if password.is_empty() {
            return Err(OathError::EmptyPassword);
        }
        let key = self.derive_key(password);
        let challenge = random_challenge()?;
        let response = password::hmac(HashAlgorithm::Sha1, key.expose(), &challenge);
        let cmd = commands::set_code(key.expose(), &challenge, &response)?;
        self.run(&cmd, "SET CODE", locked)?;
        self.has_key = true;
        self.locked = false;
        Ok(())
    }

    /// SET CODE with an empty key: removes the password.
    pub(crate) fn clear_password(&mut self) -> Result<(), OathError> {
        self.run(&commands::clear_code()?, "SET CODE", locked)?;
        self.has_key = false;
        self.locked = false;
        Ok(())
    }

    /// RESET (`DE AD`): wipes every credential and the password, then
    /// SELECTs again to read the new salt.
    pub(crate) fn reset(&mut self) -> Result<(), OathError> {
        self.run(&commands::reset(), "RESET", |_| None)?;
        self.info = select_applet(&mut *self.t)?;
        self.has_key = self.info.challenge.is_some();
        self.locked = self.has_key;
        Ok(())
    }

    /// Sends `cmd` (following `61xx` with SEND REMAINING) and returns the
    /// data of a `9000` answer; other status words go through `meaning`,
    /// and become [`OathError::Status`] when it has none.
    fn run(
        &mut self,
        cmd: &Command,
        op: &'static str,
        meaning: impl FnOnce(Sw) -> Option<OathError>,
    ) -> Result<Vec<u8>, OathError> {
        let resp = transmit_chained(&mut *self.t, cmd, super::ins::SEND_REMAINING)?;
        if resp.sw.is_ok() {
            return Ok(resp.into_data());
        }
        Err(meaning(resp.sw.decode()).unwrap_or(OathError::Status { op, sw: resp.sw }))
    }
}

fn select_applet(t: &mut dyn Transport) -> Result<SelectInfo, OathError> {
    let resp = transmit_chained(t, &commands::select()?, super::ins::SEND_REMAINING)?;
    match resp.sw.decode() {
        Sw::Ok => commands::parse_select(resp.data()),
        sw if sw.means_no_applet() => Err(OathError::NotAvailable),
        _ => Err(OathError::Status {
            op: "SELECT",
            sw: resp.sw,
        }),
    }
}

/// `6982` on an operation that needs the password.
fn locked(sw: Sw) -> Option<OathError> {
    match sw {
        Sw::SecurityStatusNotSatisfied => Some(OathError::Locked),
        _ => None,
    }
}

fn missing_or_locked(sw: Sw, raw_id: &[u8]) -> Option<OathError> {
    match sw {
        Sw::ReferenceDataNotUsable => Some(OathError::NoSuchCredential(
            String::from_utf8_lossy(raw_id).into_owned(),
        )),
        _ => locked(sw),
    }
}

fn require(have: Version, needs: Version, feature: &'static str) -> Result<(), OathError> {
    if have < needs {
        return Err(OathError::Unsupported {
            feature,
            needs,
            have,
        });
    }
    Ok(())
}

/// A code and its validity, as yubikit computes them.
fn make_code(id: &CredentialId, timestamp: u64, digits: u8, value: u32) -> Code {
    let (valid_from, valid_to) = match id.oath_type {
        OathType::Totp => {
            let period = u64::from(id.period.max(1));
            let step = timestamp / period;
            (step * period, step.saturating_add(1).saturating_mul(period))
        }
        OathType::Hotp => (timestamp, HOTP_VALID_TO),
    };
    Code {
        value: otp::format_truncated(digits, value),
        valid_from,
        valid_to,
    }
}

fn random_challenge() -> Result<[u8; CHALLENGE_LEN], OathError> {
    let mut c = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut c).map_err(|e| OathError::Random(e.to_string()))?;
    Ok(c)
}

/// Standard base64 without `=` padding.
#[cfg(test)]
fn base64_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize]));
        }
    }
    out
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
