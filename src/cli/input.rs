//! Reading secrets: from a file, from stdin, or from a no-echo prompt on the
//! terminal. Never from argv. Buffers are zeroized.

use crate::error::{Failure, Kind};
use crate::secret::{parse_base32_seed, SecretBytes, SecretString};
use std::io::{IsTerminal, Read};
use std::path::Path;
use zeroize::Zeroizing;

/// Where a secret comes from.
pub(super) enum Source<'a> {
    File(&'a Path),
    Stdin,
    Prompt(&'a str),
}

fn read_text(source: Source<'_>, what: &str) -> Result<Zeroizing<String>, Failure> {
    let mut text = Zeroizing::new(String::new());
    match source {
        Source::File(path) => {
            let mut f = std::fs::File::open(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the {what} file {}: {e}",
                    path.display()
                ))
            })?;
            f.read_to_string(&mut text).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the {what} file {}: {e}",
                    path.display()
                ))
            })?;
        }
        Source::Stdin => {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::usage(format!("cannot read the {what} from stdin: {e}")))?;
        }
        Source::Prompt(prompt) => {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::usage(format!(
                    "no {what} given and stdin is not a terminal to ask on; pass it in a file or on stdin"
                )));
            }
            let answer = rpassword::prompt_password(prompt)
                .map_err(|e| Failure::new(Kind::Other, format!("cannot read the {what}: {e}")))?;
            text = Zeroizing::new(answer);
        }
    }
    Ok(text)
}

/// A base32 seed (spaces, lower case and otpauth URIs accepted).
pub(super) fn seed(source: Source<'_>) -> Result<SecretBytes, Failure> {
    let text = read_text(source, "secret")?;
    Ok(parse_base32_seed(&text)?)
}

/// The first line of what `source` gives. Only the line ending is
/// stripped, so passwords and PINs may have inner and edge spaces.
fn first_line(source: Source<'_>, what: &str) -> Result<SecretString, Failure> {
    let text = read_text(source, what)?;
    let line = text.split(['\r', '\n']).next().unwrap_or("");
    Ok(SecretString::new(line.to_string()))
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
