//! Finding the key to work on: readers, `--reader`, `--serial`, the
//! refusal to guess when several keys are present, and the refusal of
//! virtual and network readers (anyone who reaches vsmartcard's vpcd port
//! can put any "YubiKey" into its reader).

use crate::management::{read_device_info, DeviceInfo, ManagementError};
use crate::transport::pcsc::{Access, Pcsc, Reader};
use crate::transport::{TraceSink, Traced, Transport, TransportError};
use serde::Serialize;

/// The environment variable that lets mfakey use virtual and network
/// readers (`=1`): for tests and demos, never for real enrollments.
pub(crate) const ALLOW_VIRTUAL_READERS: &str = "MFAKEY_ALLOW_VIRTUAL_READERS";

/// Whether `MFAKEY_ALLOW_VIRTUAL_READERS=1` is set.
pub(crate) fn virtual_readers_allowed() -> bool {
    std::env::var_os(ALLOW_VIRTUAL_READERS).is_some_and(|v| v == "1")
}

/// Whether a reader is a virtual or network one, by its name: vsmartcard's
/// vpcd ("Virtual PCD 00 00"), Windows' and vsmartcard's virtual smart
/// cards, and the like. A reader's name comes from the local driver's
/// configuration, not from whoever connects to it.
pub(crate) fn is_virtual_reader(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["virtual", "vpcd", "vsmartcard"]
        .iter()
        .any(|w| name.contains(w))
}

/// Which key the user asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selector {
    /// Exact reader name, or a substring that matches exactly one reader.
    pub reader: Option<String>,
    pub serial: Option<u32>,
}

/// A key seen in a reader.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct KeySummary {
    pub reader: String,
    pub serial: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DeviceError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("no smart-card reader found: insert a YubiKey")]
    NoReaders,
    #[error("no reader matches \"{name}\"; readers: {}", list(available))]
    ReaderNotFound {
        name: String,
        available: Vec<String>,
    },
    #[error(
        "\"{name}\" matches several readers: {}; give the full name",
        list(matches)
    )]
    AmbiguousReader { name: String, matches: Vec<String> },
    #[error("no YubiKey found; readers: {}", list(readers))]
    NoKey { readers: Vec<String> },
    #[error("no YubiKey with serial {serial}; keys present: {}", keys_list(seen))]
    SerialNotFound { serial: u32, seen: Vec<KeySummary> },
    #[error(
        "several YubiKeys are present: {}; choose one with --serial N or --reader NAME",
        keys_list(keys)
    )]
    SeveralKeys { keys: Vec<KeySummary> },
    #[error("\"{reader}\" is a virtual or network reader (such as vsmartcard's vpcd, into which anyone who reaches its TCP port can put any card): mfakey refuses it and sends it no seed or password; for tests and demos only, set {ALLOW_VIRTUAL_READERS}=1 to use it")]
    VirtualReader { reader: String },
    #[error("the card in reader \"{reader}\": {source}")]
    Management {
        reader: String,
        source: ManagementError,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn keys_list(keys: &[KeySummary]) -> String {
    if keys.is_empty() {
        return "none".to_string();
    }
    keys.iter()
        .map(|k| match k.serial {
            Some(s) => format!("serial {s} in \"{}\"", k.reader),
            None => format!("serial unknown in \"{}\"", k.reader),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The readers `--reader NAME` names: an exact match wins, else the readers
/// whose name contains NAME; exactly one must remain.
pub(crate) fn match_reader<'a>(
    readers: &'a [Reader],
    name: &str,
) -> Result<&'a Reader, DeviceError> {
    if let Some(r) = readers.iter().find(|r| r.name == name) {
        return Ok(r);
    }
    let needle = name.to_lowercase();
    let hits: Vec<&Reader> = readers
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&needle))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(DeviceError::ReaderNotFound {
            name: name.to_string(),
            available: readers.iter().map(|r| r.name.clone()).collect(),
        }),
        many => Err(DeviceError::AmbiguousReader {
            name: name.to_string(),
            matches: many.iter().map(|r| r.name.clone()).collect(),
        }),
    }
}

/// The reader names `name` selects: the one it equals exactly, else every
/// one that contains it (case-insensitive).
pub(crate) fn reader_names_match<'a>(names: &[&'a str], name: &str) -> Vec<&'a str> {
    if let Some(exact) = names.iter().find(|n| **n == name) {
        return vec![exact];
    }
    let needle = name.to_lowercase();
    names
        .iter()
        .filter(|n| n.to_lowercase().contains(&needle))
        .copied()
        .collect()
}

/// The readers worth connecting to for `selector`, in order (virtual
/// readers only with `MFAKEY_ALLOW_VIRTUAL_READERS=1`).
pub(crate) fn candidate_readers(
    readers: &[Reader],
    selector: &Selector,
) -> Result<Vec<String>, DeviceError> {
    candidates(readers, selector, virtual_readers_allowed())
}

fn candidates(
    readers: &[Reader],
    selector: &Selector,
    allow_virtual: bool,
) -> Result<Vec<String>, DeviceError> {
    if readers.is_empty() {
        return Err(DeviceError::NoReaders);
    }
    let refused = |r: &Reader| !allow_virtual && is_virtual_reader(&r.name);
    if let Some(name) = &selector.reader {
        let r = match_reader(readers, name)?;
        if refused(r) {
            return Err(DeviceError::VirtualReader {
                reader: r.name.clone(),
            });
        }
        if !r.card_present {
            return Err(DeviceError::Transport(TransportError::NoCard(
                r.name.clone(),
            )));
        }
        return Ok(vec![r.name.clone()]);
    }
    let with_card: Vec<String> = readers
        .iter()
        .filter(|r| r.card_present && !refused(r))
        .map(|r| r.name.clone())
        .collect();
    if with_card.is_empty() {
        // The only cards are in refused readers: say why they are not used.
        if let Some(r) = readers.iter().find(|r| r.card_present && refused(r)) {
            return Err(DeviceError::VirtualReader {
                reader: r.name.clone(),
            });
        }
        return Err(DeviceError::NoKey {
            readers: readers.iter().map(|r| r.name.clone()).collect(),
        });
    }
    Ok(with_card)
}

/// An open connection to the chosen key, with what it said about itself.
pub(crate) struct OpenKey {
    pub reader: String,
    pub info: DeviceInfo,
    /// The reader's channel id (`SCARD_ATTR_CHANNEL_ID`): for a USB key,
    /// where it sits, which finds its FIDO HID side (`fido2::usb`).
    pub channel_id: Option<Vec<u8>>,
    pub transport: Box<dyn Transport + Send>,
}

/// A reader whose card could not be read, and why (another program holds
/// it, it was reset or pulled out while we looked).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Unavailable {
    pub reader: String,
    pub reason: String,
}

/// Every YubiKey present (in `only`, if given), each read once through a
/// shared connection. Cards that are not YubiKeys are skipped; cards that
/// cannot be read right now are returned apart.
pub(crate) fn list_keys(
    pcsc: &Pcsc,
    only: Option<&str>,
    trace: Option<&TraceSink>,
) -> Result<(Vec<OpenKey>, Vec<Unavailable>), DeviceError> {
    let readers = pcsc.readers()?;
    if readers.is_empty() {
        return Err(DeviceError::NoReaders);
    }
    let mut keys = Vec::new();
    let mut unavailable = Vec::new();
    let allow_virtual = virtual_readers_allowed();
    for r in readers
        .iter()
        .filter(|r| r.card_present && only.is_none_or(|o| o == r.name))
    {
        if !allow_virtual && is_virtual_reader(&r.name) {
            unavailable.push(Unavailable {
                reader: r.name.clone(),
                reason: DeviceError::VirtualReader {
                    reader: r.name.clone(),
                }
                .to_string(),
            });
            continue;
        }
        match identify_shared(pcsc, &r.name, trace)? {
            Seen::Key(k) => keys.push(k),
            Seen::Absent => {}
            Seen::Busy(e) => unavailable.push(Unavailable {
                reader: r.name.clone(),
                reason: e.to_string(),
            }),
        }
    }
    Ok((keys, unavailable))
}

/// What a shared look at one reader found.
enum Seen {
    Key(OpenKey),
    /// No YubiKey: not one, or pulled out between listing and connecting.
    Absent,
    /// Held by another program, or reset under us: a key we cannot read now.
    Busy(TransportError),
}

fn identify_shared(
    pcsc: &Pcsc,
    reader: &str,
    trace: Option<&TraceSink>,
) -> Result<Seen, DeviceError> {
    match connect_and_identify(pcsc, reader, Access::Shared, trace) {
        Ok(k) => Ok(Seen::Key(k)),
        Err(DeviceError::Management {
            source: ManagementError::NotAYubiKey,
            ..
        })
        | Err(DeviceError::Transport(TransportError::CardRemoved | TransportError::NoCard(_))) => {
            Ok(Seen::Absent)
        }
        Err(DeviceError::Transport(e @ (TransportError::InUse(_) | TransportError::CardReset))) => {
            Ok(Seen::Busy(e))
        }
        // A card that failed mid-exchange while it was only being looked at
        // (pcscd says "end a non-existent transaction" when it goes away
        // inside a transmit): another reader's trouble, not the chosen key's.
        // It counts against guessing like a busy key.
        Err(DeviceError::Transport(e @ TransportError::Pcsc(_))) => Ok(Seen::Busy(e)),
        Err(e) => Err(e),
    }
}

fn connect_and_identify(
    pcsc: &Pcsc,
    reader: &str,
    access: Access,
    trace: Option<&TraceSink>,
) -> Result<OpenKey, DeviceError> {
    let card = pcsc.connect(reader, access)?;
    let channel_id = card.channel_id();
    let mut transport: Box<dyn Transport + Send> = match trace {
        Some(sink) => Box::new(Traced::new(card, sink.clone())),
        None => Box::new(card),
    };
    let info = match read_device_info(&mut transport) {
        Ok(i) => i,
        Err(ManagementError::Transport(t)) => return Err(DeviceError::Transport(t)),
        Err(source) => {
            return Err(DeviceError::Management {
                reader: reader.to_string(),
                source,
            })
        }
    };
    Ok(OpenKey {
        reader: reader.to_string(),
        info,
        channel_id,
        transport,
    })
}

/// Opens the one key `selector` designates. Refuses to guess: with several
/// keys and neither `--reader` nor `--serial`, lists them.
///
/// One candidate reader is connected to directly with `access`. Several are
/// first identified through shared connections (which leave the cards as
/// they were), then the chosen one is connected to with `access`.
pub(crate) fn open(
    pcsc: &Pcsc,
    selector: &Selector,
    access: Access,
    trace: Option<&TraceSink>,
) -> Result<OpenKey, DeviceError> {
    let readers = pcsc.readers()?;
    let candidates = candidate_readers(&readers, selector)?;
    if let [only] = candidates.as_slice() {
        let key = connect_and_identify(pcsc, only, access, trace)?;
        return match selector.serial {
            Some(serial) if key.info.serial != Some(serial) => Err(DeviceError::SerialNotFound {
                serial,
                seen: vec![KeySummary {
                    reader: key.reader.clone(),
                    serial: key.info.serial,
                }],
            }),
            _ => Ok(key),
        };
    }
    let mut seen = Vec::new();
    let mut chosen = Vec::new();
    for reader in &candidates {
        match identify_shared(pcsc, reader, trace)? {
            Seen::Key(k) => {
                seen.push(KeySummary {
                    reader: k.reader.clone(),
                    serial: k.info.serial,
                });
                if selector.serial.is_none_or(|s| k.info.serial == Some(s)) {
                    chosen.push(k);
                }
            }
            Seen::Absent => {}
            // A key we cannot identify counts against guessing.
            Seen::Busy(_) => seen.push(KeySummary {
                reader: reader.clone(),
                serial: None,
            }),
        }
    }
    let unidentified = seen.iter().any(|k| k.serial.is_none());
    let one = match (chosen.len(), selector.serial) {
        (1, Some(_)) => chosen.remove(0),
        (1, None) if seen.len() == 1 => chosen.remove(0),
        (0, Some(serial)) => return Err(DeviceError::SerialNotFound { serial, seen }),
        (0, None) if !unidentified => {
            return Err(DeviceError::NoKey {
                readers: readers.iter().map(|r| r.name.clone()).collect(),
            })
        }
        _ => return Err(DeviceError::SeveralKeys { keys: seen }),
    };
    match access {
        // Already open the way the caller wants it: no second look.
        Access::Shared => Ok(one),
        Access::Exclusive => {
            let reader = one.reader.clone();
            drop(one);
            let key = connect_and_identify(pcsc, &reader, access, trace)?;
            // Swapped between the two looks: not the key that was chosen.
            match selector.serial {
                Some(serial) if key.info.serial != Some(serial) => {
                    Err(DeviceError::SerialNotFound { serial, seen })
                }
                _ => Ok(key),
            }
        }
    }
}

impl crate::error::Classify for DeviceError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            DeviceError::Transport(t) => t.kind(),
            DeviceError::NoReaders => Kind::NoReader,
            DeviceError::ReaderNotFound { .. } => Kind::ReaderNotFound,
            DeviceError::AmbiguousReader { .. } => Kind::AmbiguousReader,
            DeviceError::NoKey { .. } | DeviceError::SerialNotFound { .. } => Kind::NoKey,
            DeviceError::SeveralKeys { .. } => Kind::SeveralKeys,
            DeviceError::VirtualReader { .. } => Kind::VirtualReader,
            DeviceError::Management {
                source: ManagementError::Transport(t),
                ..
            } => t.kind(),
            DeviceError::Management { .. } => Kind::NotAYubikey,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers() -> Vec<Reader> {
        vec![
            Reader {
                name: "Virtual PCD 00 00".into(),
                card_present: true,
            },
            Reader {
                name: "Virtual PCD 00 01".into(),
                card_present: false,
            },
            Reader {
                name: "Yubico YubiKey OTP+FIDO+CCID 00 00".into(),
                card_present: true,
            },
        ]
    }

    #[test]
    fn exact_name_wins_over_substring() {
        let mut rs = readers();
        rs.push(Reader {
            name: "Virtual PCD 00 00 extra".into(),
            card_present: true,
        });
        assert_eq!(
            match_reader(&rs, "Virtual PCD 00 00").unwrap().name,
            "Virtual PCD 00 00"
        );
    }

    #[test]
    fn unique_substring_matches_case_insensitively() {
        assert_eq!(
            match_reader(&readers(), "yubico").unwrap().name,
            "Yubico YubiKey OTP+FIDO+CCID 00 00"
        );
    }

    #[test]
    fn ambiguous_and_unknown_names_list_the_readers() {
        let e = match_reader(&readers(), "Virtual").unwrap_err();
        assert!(matches!(&e, DeviceError::AmbiguousReader { matches, .. } if matches.len() == 2));
        assert!(e.to_string().contains("Virtual PCD 00 01"));
        let e = match_reader(&readers(), "Gemalto").unwrap_err();
        assert!(
            matches!(&e, DeviceError::ReaderNotFound { available, .. } if available.len() == 3)
        );
        assert!(e.to_string().contains("Yubico YubiKey"));
    }

    #[test]
    fn virtual_readers_are_told_by_name() {
        for v in [
            "Virtual PCD 00 00",
            "Virtual PCD B 00 01",
            "Microsoft Virtual Smart Card 0",
            "vpcd 00 00",
            "vsmartcard reader",
        ] {
            assert!(is_virtual_reader(v), "{v}");
        }
        for r in [
            "Yubico YubiKey OTP+FIDO+CCID 00 00",
            "Yubico YubiKey CCID 00 00",
            "Alcor Micro AU9540 00 00",
            "Gemalto PC Twin Reader 00 00",
        ] {
            assert!(!is_virtual_reader(r), "{r}");
        }
    }

    #[test]
    fn virtual_readers_are_refused_unless_allowed() {
        let rs = readers();
        // Without the opt-in the YubiKey reader is the only candidate...
        assert_eq!(
            candidates(&rs, &Selector::default(), false).unwrap(),
            vec!["Yubico YubiKey OTP+FIDO+CCID 00 00".to_string()]
        );
        // ...a virtual reader named is refused, with the opt-in named...
        let sel = Selector {
            reader: Some("Virtual PCD 00 00".into()),
            serial: None,
        };
        let e = candidates(&rs, &sel, false).unwrap_err();
        assert!(
            matches!(&e, DeviceError::VirtualReader { reader } if reader == "Virtual PCD 00 00")
        );
        assert!(
            e.to_string().contains("MFAKEY_ALLOW_VIRTUAL_READERS=1"),
            "{e}"
        );
        // ...and a card only in a virtual reader is refused, not "no key".
        let only_virtual = vec![Reader {
            name: "Virtual PCD 00 00".into(),
            card_present: true,
        }];
        assert!(matches!(
            candidates(&only_virtual, &Selector::default(), false),
            Err(DeviceError::VirtualReader { .. })
        ));
        assert_eq!(
            candidates(&only_virtual, &Selector::default(), true).unwrap(),
            vec!["Virtual PCD 00 00".to_string()]
        );
    }

    #[test]
    fn candidates_follow_the_selector() {
        let all = candidates(&readers(), &Selector::default(), true).unwrap();
        assert_eq!(
            all,
            vec![
                "Virtual PCD 00 00".to_string(),
                "Yubico YubiKey OTP+FIDO+CCID 00 00".to_string()
            ]
        );
        let sel = Selector {
            reader: Some("00 01".into()),
            serial: None,
        };
        assert!(matches!(
            candidates(&readers(), &sel, true),
            Err(DeviceError::Transport(TransportError::NoCard(r))) if r == "Virtual PCD 00 01"
        ));
        assert!(matches!(
            candidates(&[], &Selector::default(), true),
            Err(DeviceError::NoReaders)
        ));
        let empty = vec![Reader {
            name: "R".into(),
            card_present: false,
        }];
        assert!(matches!(
            candidates(&empty, &Selector::default(), true),
            Err(DeviceError::NoKey { .. })
        ));
    }
}
