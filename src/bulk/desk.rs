//! The desk: keys arriving in readers one after another. [`Desk`] is what
//! the bulk loop needs ("wait for a key", "open it", "wait for its removal");
//! [`PcscDesk`] implements it over PC/SC reader events (SCardGetStatusChange
//! blocks; nothing spins).

use super::tray::Tray;
use crate::device::{self, DeviceError, Selector};
use crate::transport::pcsc::{Access, Pcsc, Reader, Seen, Watch};
use crate::transport::{Transport, TransportError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A key opened at the desk.
pub(crate) struct DeskKey {
    pub serial: Option<u32>,
    pub capacity: usize,
    pub transport: Box<dyn Transport + Send>,
}

pub(crate) trait Desk {
    /// Blocks until a key is in a reader that this desk has not handed out
    /// since it was inserted; its reader. `None`: the run was interrupted.
    fn wait_for_key(&mut self) -> Result<Option<String>, TransportError>;
    /// Opens (exclusively) and identifies the key in `reader`.
    fn open(&mut self, reader: &str) -> Result<DeskKey, String>;
    /// The key with `serial`, if it is in a reader now.
    fn open_serial(&mut self, serial: u32) -> Option<DeskKey>;
    /// Blocks until `reader` is empty (or the run is interrupted).
    fn wait_for_removal(&mut self, reader: &str) -> Result<(), TransportError>;
    /// Whether the operator asked to stop (Ctrl-C).
    fn interrupted(&self) -> bool;
}

/// How long one SCardGetStatusChange may block before the interrupt flag
/// is looked at again.
const WAKE: Duration = Duration::from_millis(500);

/// Keys in PC/SC readers (all of them, or the one `--reader` names; in
/// tray mode, every reader whose name is or contains it).
pub(crate) struct PcscDesk {
    pcsc: Pcsc,
    only: Option<String>,
    /// Tray mode: `only` selects every reader it names.
    tray: bool,
    /// Readers whose present card has been handed out already.
    handed_out: HashSet<String>,
    /// The tray's watch (one thread watches).
    watch: Mutex<Option<Watch>>,
    stop: &'static AtomicBool,
}

impl PcscDesk {
    pub(crate) fn new(
        only: Option<String>,
        stop: &'static AtomicBool,
    ) -> Result<Self, TransportError> {
        Ok(PcscDesk {
            pcsc: Pcsc::establish()?,
            only,
            tray: false,
            handed_out: HashSet::new(),
            watch: Mutex::new(None),
            stop,
        })
    }

    /// A desk for tray mode: every key in every reader (of those `only`
    /// names) at once.
    pub(crate) fn tray(
        only: Option<String>,
        stop: &'static AtomicBool,
    ) -> Result<Self, TransportError> {
        let mut d = Self::new(only, stop)?;
        d.tray = true;
        Ok(d)
    }

    /// Whether `name` is one of this desk's readers.
    fn mine(&self, all: &[&str], name: &str) -> bool {
        match &self.only {
            None => true,
            Some(want) if self.tray => device::reader_names_match(all, want).contains(&name),
            Some(want) => device::reader_names_match(all, want) == [name],
        }
    }

    fn readers(&self) -> Result<Vec<Reader>, TransportError> {
        let all = self.pcsc.readers()?;
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        Ok(all
            .iter()
            .filter(|r| self.mine(&names, &r.name))
            .cloned()
            .collect())
    }

    /// Blocks until any reader changes (all are watched: the filter applies
    /// after), or [`WAKE`] passes. The watch keeps the states it last saw,
    /// so a wait blocks until something differs from them.
    fn wait(&self) -> Result<(), TransportError> {
        Tray::watch(self, WAKE).map(drop)
    }
}

/// How long a key another program holds (a key listing in another process,
/// pcscd finishing a dead client's command) is waited for before it is skipped.
const IN_USE_PATIENCE: Duration = Duration::from_secs(10);
const IN_USE_RETRY: Duration = Duration::from_millis(100);

impl PcscDesk {
    /// Opens exclusively; a card held by someone else for a moment is tried
    /// again (every 0.1 s, for up to 10 s) rather than skipped.
    fn open_exclusive(&self, pcsc: &Pcsc, sel: &Selector) -> Result<DeskKey, DeviceError> {
        let deadline = Instant::now() + IN_USE_PATIENCE;
        loop {
            match device::open(pcsc, sel, Access::Exclusive, None) {
                Ok(k) => {
                    return Ok(DeskKey {
                        serial: k.info.serial,
                        capacity: k.info.oath_capacity(),
                        transport: k.transport,
                    })
                }
                Err(DeviceError::Transport(
                    TransportError::InUse(_) | TransportError::CardReset,
                )) if Instant::now() < deadline && !self.stop.load(Ordering::SeqCst) => {
                    std::thread::sleep(IN_USE_RETRY)
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Desk for PcscDesk {
    fn wait_for_key(&mut self) -> Result<Option<String>, TransportError> {
        loop {
            if Desk::interrupted(self) {
                return Ok(None);
            }
            let readers = self.readers()?;
            self.handed_out
                .retain(|h| readers.iter().any(|r| &r.name == h && r.card_present));
            if let Some(r) = readers
                .iter()
                .find(|r| r.card_present && !self.handed_out.contains(&r.name))
            {
                self.handed_out.insert(r.name.clone());
                return Ok(Some(r.name.clone()));
            }
            self.wait()?;
        }
    }

    fn open(&mut self, reader: &str) -> Result<DeskKey, String> {
        let sel = Selector {
            reader: Some(reader.to_string()),
            serial: None,
        };
        self.open_exclusive(&self.pcsc, &sel)
            .map_err(|e| e.to_string())
    }

    fn open_serial(&mut self, serial: u32) -> Option<DeskKey> {
        Tray::open_serial(self, serial)
    }

    fn wait_for_removal(&mut self, reader: &str) -> Result<(), TransportError> {
        loop {
            if Desk::interrupted(self) {
                return Ok(());
            }
            let readers = self.readers()?;
            if !readers.iter().any(|r| r.name == reader && r.card_present) {
                self.handed_out.remove(reader);
                return Ok(());
            }
            self.wait()?;
        }
    }

    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Tray for PcscDesk {
    fn watch(&self, timeout: Duration) -> Result<Vec<Seen>, TransportError> {
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let w = w.get_or_insert_with(|| self.pcsc.watch());
        let all = self.pcsc.next_change(w, timeout)?;
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        Ok(all
            .iter()
            .filter(|r| self.mine(&names, &r.name))
            .cloned()
            .collect())
    }

    fn wake(&self) {
        self.pcsc.cancel();
    }

    /// On a PC/SC context of its own: pcsc-lite runs one call at a time per
    /// context (a blocking watch holds it), so each key's worker has one.
    fn open(&self, reader: &str) -> Result<DeskKey, String> {
        let pcsc = Pcsc::establish().map_err(|e| e.to_string())?;
        let sel = Selector {
            reader: Some(reader.to_string()),
            serial: None,
        };
        self.open_exclusive(&pcsc, &sel).map_err(|e| e.to_string())
    }

    fn open_serial(&self, serial: u32) -> Option<DeskKey> {
        let pcsc = Pcsc::establish().ok()?;
        // A tray's `--reader` may name several readers: each is looked at.
        let readers: Vec<Option<String>> = match (&self.only, self.tray) {
            (Some(_), true) => self
                .readers()
                .ok()?
                .into_iter()
                .map(|r| Some(r.name))
                .collect(),
            (only, _) => vec![only.clone()],
        };
        readers.into_iter().find_map(|reader| {
            let sel = Selector {
                reader,
                serial: Some(serial),
            };
            // A key a killed run held may still be busy for a moment: waited for.
            self.open_exclusive(&pcsc, &sel).ok()
        })
    }

    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
