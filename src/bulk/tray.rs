//! Tray mode (`bulk --parallel`): every key present in every reader is
//! enrolled at once, one user per key; keys inserted later join as they
//! come. Each key has a worker thread of its own: its own PC/SC context
//! (pcsc-lite serializes the calls of one context, and a blocking watch
//! holds it), its own enrollment with its own rollback, exactly as one at a
//! time. A key pulled mid-user undoes only its own user's enrollment.
//!
//! One coordinator (the calling thread) decides everything and is the bulk
//! journal's only writer: which user goes on which key (a key pinned by
//! `key_serial` gets its user; other keys the next unpinned user in manifest
//! order), each attempt's outcome, every event the operator sees (each
//! carries its reader). Workers only do a key's work and report back; the
//! enrollments append to the shared enrollment journal, one whole line at a
//! time. What `--resume` reads is therefore what one-at-a-time writes:
//! `enrolled` lines per user, and the enrollment journal's runs, each in its
//! own order (unfinished runs are grouped by run id, not by position).

use super::book::{Attempt, Book};
use super::desk::DeskKey;
use super::manifest::Row;
use super::Summary;
use super::{enroll_on_key, recover_on_key, Accounts, BulkError, BulkOptions, Journals, Line};
use crate::aws::IamApi;
use crate::enroll::{EnrollError, EnrollOptions, EnrollReport};
use crate::progress::{Event, Progress};
use crate::secret::SecretString;
use crate::transport::pcsc::Seen;
use crate::transport::TransportError;
use crate::undo::journal::{Entry, Journal};
use crate::undo::recover::RecoveredRun;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::Scope;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// The readers of a tray, as the coordinator and its workers need them.
/// Shared by every thread of a run.
pub(crate) trait Tray: Sync {
    /// Blocks until a reader changes, or `timeout` passes, or [`Tray::wake`]
    /// is called (the first call answers at once); the tray's readers now.
    fn watch(&self, timeout: Duration) -> Result<Vec<Seen>, TransportError>;
    /// Ends a [`Tray::watch`] blocked in another thread.
    fn wake(&self);
    /// Opens (exclusively) and identifies the key in `reader`, from the
    /// calling thread, on a connection of its own.
    fn open(&self, reader: &str) -> Result<DeskKey, String>;
    /// The key with `serial`, if it is in a reader now.
    fn open_serial(&self, serial: u32) -> Option<DeskKey>;
    /// Whether the operator asked to stop (Ctrl-C).
    fn interrupted(&self) -> bool;
}

/// How long the coordinator waits for news before it looks at Ctrl-C again.
const WAKE: Duration = Duration::from_millis(500);

/// The most messages the coordinator takes in before it looks at its
/// readers, workers and Ctrl-C again.
const QUEUED: usize = 64;

/// What a worker (or the watcher) tells the coordinator.
enum Msg<'a> {
    Readers(Vec<Seen>),
    WatchFailed(TransportError),
    Event(Event),
    Identified {
        reader: String,
        serial: Option<u32>,
        reply: Sender<Order<'a>>,
    },
    Unreadable {
        reader: String,
        why: String,
    },
    Recovered {
        reader: String,
        done: Vec<(Vec<Entry>, Result<RecoveredRun, BulkError>)>,
    },
    Finished {
        reader: String,
        row: &'a Row,
        serial: Option<u32>,
        result: Result<EnrollReport, EnrollError>,
        ms: f64,
    },
    Released {
        reader: String,
    },
}

/// What the coordinator tells a worker to do with its key.
enum Order<'a> {
    /// Finish or undo these unfinished enrollments (they name this key).
    Recover(Vec<Vec<Entry>>),
    Enroll {
        row: &'a Row,
        eopts: Box<EnrollOptions>,
    },
    /// Let the key go.
    Leave,
}

/// A reader, as the coordinator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty,
    /// A key not looked at yet.
    Fresh,
    /// A worker has the key.
    Busy,
    /// Done with (enrolled, failed or skipped): waiting for its removal.
    Done,
    /// Present and unused: no user was waiting for it. Looked at again when
    /// a user needs a key again (a key pulled mid-user).
    Idle,
    /// Present, but another reader's worker still holds a key of the same
    /// serial (the key was moved there at once): looked at again when that
    /// worker lets it go.
    Waiting,
}

struct Slot<'a> {
    state: State,
    present: bool,
    /// The reader's card event count, last seen and when its worker began.
    events: u32,
    events_at_open: u32,
    serial: Option<u32>,
    /// Its unfinished enrollments were recovered (once per insertion).
    recovered: bool,
    /// What the reader becomes when its worker is done.
    next: State,
    reply: Option<Sender<Order<'a>>>,
}

impl Slot<'_> {
    fn new(events: u32) -> Self {
        Slot {
            state: State::Empty,
            present: false,
            events,
            events_at_open: events,
            serial: None,
            recovered: false,
            next: State::Done,
            reply: None,
        }
    }
}

/// What a worker works with (shared by all of them).
struct Ctx<'a, 't, I, T> {
    accounts: &'a Accounts<'a, I>,
    rows: &'a [Row],
    password: Option<&'a SecretString>,
    journal: &'a Journal,
    tray: &'t T,
    rt: &'t Handle,
}

/// The tray and the async runtime its threads block on (another thread
/// must drive it: workers and the coordinator block on it from their own).
pub(crate) struct Hands<'t, T> {
    pub tray: &'t T,
    pub rt: &'t Handle,
}

/// Runs (or with `resume_lines` non-empty, resumes) a bulk enrollment in
/// tray mode.
pub(crate) fn run<'a, I: IamApi, T: Tray>(
    accounts: &'a Accounts<'a, I>,
    hands: Hands<'_, T>,
    rows: &'a [Row],
    opts: &'a BulkOptions,
    journals: &'a Journals,
    resume_lines: &[Line],
    progress: &mut dyn Progress,
) -> Result<Summary, BulkError> {
    let Hands { tray, rt } = hands;
    let mut book = Book::open(accounts, rows, opts, journals, resume_lines)?;
    let queue = rt.block_on(prepare(&mut book, tray, progress))?;
    let ctx = Ctx {
        accounts,
        rows,
        password: opts.password.as_ref(),
        journal: &journals.enroll,
        tray,
        rt,
    };
    let mut c = Coordinator {
        book,
        queue,
        of: rows.len(),
        slots: BTreeMap::new(),
        workers: 0,
        said_insert: false,
        stopping: false,
        fatal: None,
        progress,
    };
    let done = AtomicBool::new(false);
    let interrupted = std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let watch_tx = tx.clone();
        let done = &done;
        s.spawn(move || watcher(tray, watch_tx, done));
        let r = c.serve(s, &ctx, &tx, &rx);
        done.store(true, Ordering::SeqCst);
        tray.wake();
        r
    })?;
    c.book.finish(interrupted, c.progress)
}

/// Before the first tray: a resumed run's unfinished enrollments (with
/// their keys if present), `--create-users`, and the users a resumed run
/// finds enrolled in IAM. The users left, in manifest order.
async fn prepare<'a, I: IamApi, T: Tray>(
    book: &mut Book<'a, I>,
    tray: &T,
    progress: &mut dyn Progress,
) -> Result<Vec<(usize, &'a Row)>, BulkError> {
    if book.resumed {
        let mut open = |serial| tray.open_serial(serial);
        book.recover_all(&mut open, progress).await?;
    }
    let mut queue = Vec::new();
    for (n, row) in book.pending() {
        if book.opts.create_users && !book.ensure_user(row, progress).await? {
            continue;
        }
        if book.resumed && book.done_in_iam(row, progress).await? {
            continue;
        }
        queue.push((n, row));
    }
    Ok(queue)
}

/// Tells the coordinator what the readers look like, whenever that changes
/// (and every [`WAKE`] besides), until `done`.
fn watcher<T: Tray>(tray: &T, tx: Sender<Msg<'_>>, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) {
        let msg = match tray.watch(WAKE) {
            Ok(readers) => Msg::Readers(readers),
            Err(e) => Msg::WatchFailed(e),
        };
        let failed = matches!(msg, Msg::WatchFailed(_));
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

/// The coordinator: the run's books, the users waiting, the readers.
struct Coordinator<'a, 'p, I> {
    book: Book<'a, I>,
    /// The users not enrolled yet and not in flight, in manifest order
    /// (with their position in the manifest).
    queue: Vec<(usize, &'a Row)>,
    of: usize,
    slots: BTreeMap<String, Slot<'a>>,
    workers: usize,
    said_insert: bool,
    /// No new enrollment starts (Ctrl-C, or a fatal failure).
    stopping: bool,
    /// A failure that ends the run once the workers in flight are done.
    fatal: Option<BulkError>,
    progress: &'p mut dyn Progress,
}

/// What a key is for, once identified.
enum Pick {
    User(usize),
    Refuse(String),
    /// Nobody is waiting for a key just now.
    Spare,
}

impl<'a, I: IamApi> Coordinator<'a, '_, I> {
    /// Serves the workers and the watcher until every user is settled, or
    /// the run stops (Ctrl-C, or a fatal error) and the workers in flight
    /// have finished. Whether the run was interrupted.
    fn serve<'s, 't: 's, T: Tray>(
        &mut self,
        s: &'s Scope<'s, '_>,
        ctx: &'s Ctx<'a, 't, I, T>,
        tx: &Sender<Msg<'a>>,
        rx: &Receiver<Msg<'a>>,
    ) -> Result<bool, BulkError>
    where
        'a: 's,
    {
        loop {
            match rx.recv_timeout(WAKE) {
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(true),
            }
            // What is queued now, within bounds: a watcher that answers at
            // once must not keep the loop from its checks below.
            for m in rx.try_iter().take(QUEUED) {
                self.take(m);
            }
            let stopping = ctx.tray.interrupted() || self.fatal.is_some();
            if stopping && !self.stopping {
                self.stopping = true;
                // Workers waiting to be told what to do are let go.
                for slot in self.slots.values_mut() {
                    slot.reply = None;
                }
            }
            if !stopping {
                self.start_workers(s, ctx, tx);
            }
            if self.workers > 0 {
                continue;
            }
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
            if self.queue.is_empty() {
                return Ok(false);
            }
            if stopping {
                return Ok(true);
            }
            if !self.said_insert {
                self.said_insert = true;
                self.progress.event(Event::InsertKeys {
                    left: self.queue.len(),
                });
            }
        }
    }

    /// Handles one message; a failure of the books ends the run.
    fn take(&mut self, m: Msg<'a>) {
        if let Err(e) = self.handle(m) {
            self.fatal.get_or_insert(e);
        }
    }

    fn handle(&mut self, m: Msg<'a>) -> Result<(), BulkError> {
        match m {
            Msg::Readers(seen) => self.readers(seen),
            Msg::WatchFailed(e) => return Err(BulkError::Desk(e)),
            Msg::Event(e) => self.progress.event(e),
            Msg::Identified {
                reader,
                serial,
                reply,
            } => {
                self.progress.event(Event::KeyInserted {
                    reader: reader.clone(),
                    serial,
                });
                let slot = self.slot(&reader);
                slot.serial = serial;
                slot.reply = Some(reply);
                self.decide(&reader)?;
            }
            Msg::Unreadable { reader, why } => {
                self.skip(&reader, None, format!("cannot read the key: {why}"))?;
            }
            Msg::Recovered { reader, done } => {
                for (run, r) in done {
                    self.book
                        .recovered(r?, &run, Some(&reader), &mut *self.progress)?;
                }
                self.decide(&reader)?;
            }
            Msg::Finished {
                reader,
                row,
                serial,
                result,
                ms,
            } => self.finished(&reader, row, serial, result, ms)?,
            Msg::Released { reader } => self.released(&reader),
        }
        Ok(())
    }

    fn slot(&mut self, reader: &str) -> &mut Slot<'a> {
        self.slots
            .entry(reader.to_string())
            .or_insert_with(|| Slot::new(0))
    }

    /// The readers as the watcher sees them now.
    fn readers(&mut self, seen: Vec<Seen>) {
        for (name, slot) in self.slots.iter_mut() {
            if !seen.iter().any(|r| &r.name == name) {
                slot.present = false;
                if slot.state != State::Busy {
                    slot.state = State::Empty;
                }
            }
        }
        for r in seen {
            let slot = self
                .slots
                .entry(r.name.clone())
                .or_insert_with(|| Slot::new(r.events));
            // Removed and another key inserted between two looks.
            let swapped = r.events != slot.events;
            slot.present = r.card_present;
            slot.events = r.events;
            slot.state = match slot.state {
                State::Busy => State::Busy,
                _ if !r.card_present => State::Empty,
                State::Empty => State::Fresh,
                State::Done | State::Idle | State::Waiting if swapped => State::Fresh,
                other => other,
            };
        }
    }

    /// A worker for every fresh key.
    fn start_workers<'s, 't: 's, T: Tray>(
        &mut self,
        s: &'s Scope<'s, '_>,
        ctx: &'s Ctx<'a, 't, I, T>,
        tx: &Sender<Msg<'a>>,
    ) where
        'a: 's,
    {
        for (reader, slot) in self.slots.iter_mut() {
            if slot.state != State::Fresh {
                continue;
            }
            *slot = Slot {
                state: State::Busy,
                present: true,
                events_at_open: slot.events,
                ..Slot::new(slot.events)
            };
            self.workers += 1;
            self.said_insert = false;
            let (reader, tx) = (reader.clone(), tx.clone());
            s.spawn(move || worker(ctx, reader, tx));
        }
    }

    /// What the identified key in `reader` is for: its unfinished
    /// enrollments first (once), then a user, a refusal, or nothing.
    fn decide(&mut self, reader: &str) -> Result<(), BulkError> {
        if self.stopping {
            // Nothing new after Ctrl-C: the key stays as it is.
            self.slot(reader).next = State::Idle;
            self.order(reader, Order::Leave);
            return Ok(());
        }
        let slot = self.slot(reader);
        let (serial, recovered) = (slot.serial, slot.recovered);
        if let Some(s) = serial {
            let elsewhere = self.slots.iter().find(|(r, o)| {
                r.as_str() != reader && o.state == State::Busy && o.serial == Some(s)
            });
            if elsewhere.is_some() {
                // Its old worker is only closing it: looked at again after.
                self.slot(reader).next = State::Waiting;
                self.order(reader, Order::Leave);
                return Ok(());
            }
            if !recovered {
                let runs = self.book.unfinished_on(s)?;
                if !runs.is_empty() {
                    self.slot(reader).recovered = true;
                    self.order(reader, Order::Recover(runs));
                    return Ok(());
                }
            }
            if let Some(u) = self.book.used.get(&s) {
                let why =
                    format!("key {s} was already used in this run (for {u}): insert another key");
                return self.skip(reader, serial, why);
            }
        }
        match self.pick(serial) {
            Pick::User(i) => self.assign(reader, i),
            Pick::Refuse(why) => self.skip(reader, serial, why),
            Pick::Spare => {
                self.progress.event(Event::KeySkipped {
                    reader: reader.to_string(),
                    serial,
                    reason: "no user is waiting for a key (every user left is being enrolled on another): kept in case one of them needs another key".into(),
                });
                self.slot(reader).next = State::Idle;
                self.order(reader, Order::Leave);
                Ok(())
            }
        }
    }

    /// The user for a key: the one pinned to it, else the first unpinned.
    fn pick(&self, serial: Option<u32>) -> Pick {
        if let Some(row) = serial.and_then(|s| self.book.pinned_to(s)) {
            return match self.queue.iter().position(|(_, r)| r.user == row.user) {
                Some(i) => Pick::User(i),
                None => Pick::Refuse(format!(
                    "key {} is reserved for {} (manifest line {}): insert another key",
                    serial.unwrap_or_default(),
                    row.user,
                    row.line
                )),
            };
        }
        if let Some(i) = self.queue.iter().position(|(_, r)| self.pin(r).is_none()) {
            return Pick::User(i);
        }
        if self.queue.is_empty() {
            return Pick::Spare;
        }
        // Every user left is pinned to another key.
        let pins: Vec<String> = self
            .queue
            .iter()
            .filter_map(|(_, r)| {
                let pin = self.pin(r)?;
                Some(format!("{} must be enrolled on key {pin}", r.user))
            })
            .collect();
        Pick::Refuse(format!(
            "no user left may use this key ({}): insert those keys",
            pins.join("; ")
        ))
    }

    /// The key `row`'s next enrollment must be on: its pinned serial, for
    /// its first key (a backup key is any key not used in this run).
    fn pin(&self, row: &Row) -> Option<u32> {
        row.key_serial.filter(|_| self.book.keys_done(row) == 0)
    }

    fn assign(&mut self, reader: &str, i: usize) -> Result<(), BulkError> {
        let (n, row) = self.queue.remove(i);
        let serial = self.slot(reader).serial;
        // A user's keys go one after another: the backup once the first is in.
        let backup = self.book.keys_done(row) > 0;
        self.book.bank(&row.user);
        self.book.begin(row, serial)?;
        self.progress.event(Event::Next {
            user: row.user.clone(),
            n,
            of: self.of,
            key_serial: self.pin(row),
            backup,
            reader: Some(reader.to_string()),
        });
        let eopts = Box::new(self.book.enroll_options(row, backup));
        self.order(reader, Order::Enroll { row, eopts });
        Ok(())
    }

    fn order(&mut self, reader: &str, order: Order<'a>) {
        if let Some(reply) = &self.slot(reader).reply {
            // A worker that is gone has nothing left to do.
            let _ = reply.send(order);
        }
    }

    /// The key in `reader` is not used: the journal and the operator say why.
    fn skip(&mut self, reader: &str, serial: Option<u32>, why: String) -> Result<(), BulkError> {
        self.book.skipped(serial, &why)?;
        self.progress.event(Event::KeySkipped {
            reader: reader.to_string(),
            serial,
            reason: why,
        });
        self.progress.event(Event::RemoveKey {
            reader: reader.to_string(),
            serial,
        });
        self.slot(reader).next = State::Done;
        self.order(reader, Order::Leave);
        Ok(())
    }

    fn finished(
        &mut self,
        reader: &str,
        row: &'a Row,
        serial: Option<u32>,
        result: Result<EnrollReport, EnrollError>,
        ms: f64,
    ) -> Result<(), BulkError> {
        let attempt = self
            .book
            .attempted(row, serial, result, ms, reader, &mut *self.progress)?;
        if attempt == Attempt::Retry || !self.book.settled(row) {
            // Back in the queue, in manifest order (for another key, or its
            // backup key); spare keys are looked at again.
            let n = self
                .book
                .rows
                .iter()
                .position(|r| r.user == row.user)
                .map_or(0, |i| i + 1);
            let at = self.queue.partition_point(|(m, _)| *m < n);
            self.queue.insert(at, (n, row));
            for slot in self.slots.values_mut() {
                if slot.state == State::Idle {
                    slot.state = State::Fresh;
                } else if slot.state == State::Busy && slot.next == State::Idle {
                    // A spare whose worker is letting it go just now.
                    slot.next = State::Fresh;
                }
            }
        }
        self.progress.event(Event::RemoveKey {
            reader: reader.to_string(),
            serial,
        });
        self.slot(reader).next = State::Done;
        Ok(())
    }

    fn released(&mut self, reader: &str) {
        self.workers = self.workers.saturating_sub(1);
        let slot = self.slot(reader);
        slot.reply = None;
        slot.state = if !slot.present {
            State::Empty
        } else if slot.events != slot.events_at_open {
            // Pulled and inserted again while its worker was busy.
            State::Fresh
        } else {
            slot.next
        };
        let serial = slot.serial;
        // Keys waiting for this worker to let their serial go, and this
        // one if the worker it waited for is gone already.
        let busy = |s: Option<u32>, slots: &BTreeMap<String, Slot<'a>>| {
            slots
                .values()
                .any(|o| o.state == State::Busy && s.is_some() && o.serial == s)
        };
        let this_waits = self.slots[reader].state == State::Waiting;
        if this_waits && !busy(serial, &self.slots) {
            self.slot(reader).state = State::Fresh;
        }
        for (name, slot) in self.slots.iter_mut() {
            let same = serial.is_some() && slot.serial == serial;
            if name != reader && slot.state == State::Waiting && same {
                slot.state = State::Fresh;
            }
        }
    }
}

/// One key's worker: opens and identifies it, then does what the
/// coordinator orders, on its own thread and PC/SC context.
fn worker<'a, I: IamApi, T: Tray>(ctx: &Ctx<'a, '_, I, T>, reader: String, tx: Sender<Msg<'a>>) {
    let t0 = Instant::now();
    match ctx.tray.open(&reader) {
        Ok(mut key) => serve_key(ctx, &reader, &mut key, t0, &tx),
        Err(why) => {
            let _ = tx.send(Msg::Unreadable {
                reader: reader.clone(),
                why,
            });
        }
    }
    // The key is closed (and reset) before the coordinator hears of it.
    let _ = tx.send(Msg::Released { reader });
}

fn serve_key<'a, I: IamApi, T: Tray>(
    ctx: &Ctx<'a, '_, I, T>,
    reader: &str,
    key: &mut DeskKey,
    t0: Instant,
    tx: &Sender<Msg<'a>>,
) {
    let (reply, orders) = mpsc::channel();
    let hello = Msg::Identified {
        reader: reader.to_string(),
        serial: key.serial,
        reply,
    };
    if tx.send(hello).is_err() {
        return;
    }
    let mut progress = |e: Event| {
        let _ = tx.send(Msg::Event(e.at_reader(reader)));
    };
    while let Ok(order) = orders.recv() {
        match order {
            Order::Recover(runs) => {
                let mut done = Vec::new();
                for run in runs {
                    let user = run.first().map(|e| e.user.clone()).unwrap_or_default();
                    let r = ctx.rt.block_on(recover_on_key(
                        ctx.iam(&user),
                        &run,
                        Some(&mut *key),
                        ctx.password,
                        ctx.journal,
                        &mut progress,
                    ));
                    done.push((run, r));
                }
                let reader = reader.to_string();
                if tx.send(Msg::Recovered { reader, done }).is_err() {
                    return;
                }
            }
            Order::Enroll { row, eopts } => {
                let iam = ctx.accounts.for_row(row);
                let result = ctx.rt.block_on(enroll_on_key(
                    iam,
                    key,
                    &eopts,
                    ctx.password,
                    ctx.journal,
                    &mut progress,
                ));
                let _ = tx.send(Msg::Finished {
                    reader: reader.to_string(),
                    row,
                    serial: key.serial,
                    result,
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                });
                return;
            }
            Order::Leave => return,
        }
    }
}

impl<'a, I: IamApi, T> Ctx<'a, '_, I, T> {
    /// The IAM client of `user`'s row.
    fn iam(&self, user: &str) -> &'a I {
        match self.rows.iter().find(|r| r.user == user) {
            Some(row) => self.accounts.for_row(row),
            None => self.accounts.default,
        }
    }
}
