//! Reading secrets: from a file, from stdin, or from a no-echo prompt on the
//! terminal. Never from argv. A file or stdin is read into one zeroizing
//! buffer allocated once (64 KiB at most), never grown (growing would free
//! a copy unwiped) and never copied into a plain `String`; stdin is read
//! from its descriptor, past std's own (never wiped) buffer.

use crate::error::{Failure, Kind};
use crate::secret::{parse_base32_seed, SecretBytes, SecretString};
use std::io::{IsTerminal, Read};
use std::path::Path;
use zeroize::Zeroizing;

/// Most a secret file or stdin may hold (a seed, an otpauth URI, a
/// password, a PIN): 64 KiB.
const MAX_SECRET_INPUT: usize = 64 * 1024;

/// Where a secret comes from.
pub(super) enum Source<'a> {
    File(&'a Path),
    Stdin,
    Prompt(&'a str),
}

/// Reads everything `r` gives (at most [`MAX_SECRET_INPUT`]) into one
/// zeroizing buffer, allocated once at its full size.
fn read_secret(mut r: impl Read) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_SECRET_INPUT + 1]);
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if n > MAX_SECRET_INPUT {
        return Err(std::io::Error::other(format!(
            "more than {} KiB: not a secret",
            MAX_SECRET_INPUT / 1024
        )));
    }
    // Shortening keeps the allocation; the whole of it is wiped on drop.
    buf.truncate(n);
    Ok(buf)
}

/// Standard input's descriptor, read directly: `std::io::stdin()` would
/// keep what it read in its own buffer, which nothing wipes.
fn raw_stdin() -> std::mem::ManuallyDrop<std::fs::File> {
    use std::os::unix::io::FromRawFd;
    // SAFETY: descriptor 0 stays open for the whole process; ManuallyDrop
    // keeps this handle from closing it.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) })
}

/// The secret as text (UTF-8), borrowed from its zeroizing buffer.
fn as_text<'b>(bytes: &'b [u8], what: &str) -> Result<&'b str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::usage(format!(
            "the {what} is not UTF-8 text (byte {} is not); it is not shown",
            e.valid_up_to() + 1
        ))
    })
}

fn read_text(source: Source<'_>, what: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    match source {
        Source::File(path) => {
            let cannot = |e: std::io::Error| {
                Failure::usage(format!(
                    "cannot read the {what} file {}: {e}",
                    path.display()
                ))
            };
            read_secret(std::fs::File::open(path).map_err(cannot)?).map_err(cannot)
        }
        Source::Stdin => read_secret(&*raw_stdin())
            .map_err(|e| Failure::usage(format!("cannot read the {what} from stdin: {e}"))),
        Source::Prompt(prompt) => {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::usage(format!(
                    "no {what} given and stdin is not a terminal to ask on; pass it in a file or on stdin"
                )));
            }
            let answer = rpassword::prompt_password(prompt)
                .map_err(|e| Failure::new(Kind::Other, format!("cannot read the {what}: {e}")))?;
            Ok(Zeroizing::new(answer.into_bytes()))
        }
    }
}

/// A base32 seed (spaces, lower case and otpauth URIs accepted).
pub(super) fn seed(source: Source<'_>) -> Result<SecretBytes, Failure> {
    let bytes = read_text(source, "secret")?;
    Ok(parse_base32_seed(as_text(&bytes, "secret")?)?)
}

/// The first line of what `source` gives. Only the line ending is
/// stripped, so passwords and PINs may have inner and edge spaces.
fn first_line(source: Source<'_>, what: &str) -> Result<SecretString, Failure> {
    let bytes = read_text(source, what)?;
    let line = as_text(&bytes, what)?
        .split(['\r', '\n'])
        .next()
        .unwrap_or("");
    // One allocation of the line's exact size, owned by the zeroizing type.
    Ok(SecretString::new(line.to_owned()))
}

/// A password: the first line of a file, or stdin, or a prompt.
pub(super) fn password(source: Source<'_>) -> Result<SecretString, Failure> {
    first_line(source, "password")
}

/// A new password, asked twice at the prompt.
pub(super) fn new_password(file: Option<&Path>) -> Result<SecretString, Failure> {
    if let Some(path) = file {
        let p = password(Source::File(path))?;
        if p.is_empty() {
            return Err(Failure::usage(
                "the new password is empty (to remove it: mfakey oath password clear)",
            ));
        }
        return Ok(p);
    }
    let first = password(Source::Prompt("New OATH password: "))?;
    let second = password(Source::Prompt("Repeat the new password: "))?;
    if first != second {
        return Err(Failure::usage(
            "the two passwords differ; nothing was changed",
        ));
    }
    if first.is_empty() {
        return Err(Failure::usage(
            "the new password is empty (to remove it: mfakey oath password clear)",
        ));
    }
    Ok(first)
}

/// A FIDO2 PIN: the first line of a file, or a no-echo prompt.
pub(super) fn pin(source: Source<'_>) -> Result<SecretString, Failure> {
    first_line(source, "PIN")
}

/// A new FIDO2 PIN: from a file, or asked twice at the prompt.
pub(super) fn new_pin(file: Option<&Path>) -> Result<SecretString, Failure> {
    if let Some(path) = file {
        return pin(Source::File(path));
    }
    let first = pin(Source::Prompt("New FIDO2 PIN: "))?;
    let second = pin(Source::Prompt("Repeat the new PIN: "))?;
    if first != second {
        return Err(Failure::usage("the two PINs differ; nothing was changed"));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// An allocator that, while `WATCH` is set, looks into every block
    /// given back for `MARKER`: a secret left behind in freed memory.
    struct Watching;

    const MARKER: &[u8] = b"QZXJVKWPMARKERSEED";
    static WATCH: AtomicBool = AtomicBool::new(false);
    static LEFT_BEHIND: AtomicUsize = AtomicUsize::new(0);

    unsafe impl GlobalAlloc for Watching {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as received.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if WATCH.load(Ordering::SeqCst) && layout.size() >= MARKER.len() {
                // SAFETY: the block is still ours until System.dealloc below.
                let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
                if block.windows(MARKER.len()).any(|w| w == MARKER) {
                    LEFT_BEHIND.fetch_add(1, Ordering::SeqCst);
                }
            }
            // SAFETY: forwarded as received.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOC: Watching = Watching;

    /// Gives its bytes a few at a time, as a pipe on stdin does.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A secret read from stdin (or a file) leaves no copy in freed memory:
    /// one zeroizing buffer, never grown, never copied into a plain String.
    #[test]
    fn a_secret_read_leaves_no_copy_behind() {
        let mut input = Zeroizing::new(Vec::new());
        for _ in 0..200 {
            input.extend_from_slice(MARKER);
        }
        input.push(b'\n');
        LEFT_BEHIND.store(0, Ordering::SeqCst);
        WATCH.store(true, Ordering::SeqCst);
        let got = read_secret(Trickle(&input)).expect("read");
        assert_eq!(got.len(), input.len());
        drop(got);
        WATCH.store(false, Ordering::SeqCst);
        assert_eq!(
            LEFT_BEHIND.load(Ordering::SeqCst),
            0,
            "freed memory still held the secret"
        );
    }

    #[test]
    fn an_oversized_secret_input_is_refused() {
        let big = vec![b'A'; MAX_SECRET_INPUT + 1];
        let e = read_secret(Trickle(&big)).unwrap_err();
        assert!(e.to_string().contains("64 KiB"), "{e}");
        let exact = vec![b'A'; MAX_SECRET_INPUT];
        assert_eq!(
            read_secret(Trickle(&exact)).unwrap().len(),
            MAX_SECRET_INPUT
        );
    }
}
