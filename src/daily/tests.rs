use super::profile::{self, edited, ProfileError};
use super::*;
use crate::oath::{CredentialId, HashAlgorithm, OathType};
use std::fs;

const ARN: &str = "arn:aws:iam::123456789012:mfa/alice-yk12345678";

/// Every line of `before` is in `after`, unchanged and in order, and the
/// lines `after` adds are exactly `added`.
fn only_added(before: &str, after: &str, added: &[&str]) {
    let mut old = before.split_inclusive('\n').peekable();
    let mut extra = Vec::new();
    for line in after.split_inclusive('\n') {
        if old.peek() == Some(&line) {
            old.next();
        } else {
            extra.push(line.trim_end_matches(['\r', '\n']).to_string());
        }
    }
    assert_eq!(old.next(), None, "a line of the file was changed:\n{after}");
    assert_eq!(extra, added, "{after}");
}

#[test]
fn a_profile_gets_mfa_serial_and_a_commented_mfa_process_and_nothing_else_changes() {
    let before = "# team settings\n[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 5\n\n[profile other]\nregion=us-west-2\n";
    let (after, replaced) = edited(before, "work", ARN);
    assert_eq!(replaced, None);
    only_added(
        before,
        &after,
        &[
            &format!("mfa_serial = {ARN}"),
            "# mfa_process = mfakey code --profile work",
        ],
    );
    // In the profile's section, after its last setting, before the blank line.
    assert!(after.contains(&format!(
        "  max_concurrent_requests = 5\nmfa_serial = {ARN}\n# mfa_process = mfakey code --profile work\n\n[profile other]"
    )));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(&path, &after).unwrap();
    let p = profile::read(&path, "work").unwrap();
    assert_eq!(p.mfa_serial.as_deref(), Some(ARN));
    assert_eq!(profile::read(&path, "other").unwrap().mfa_serial, None);
}

#[test]
fn a_missing_profile_is_appended_and_default_is_its_own_header() {
    let before = "[profile a]\nregion = us-east-1";
    let (after, _) = edited(before, "work", ARN);
    assert_eq!(
        after,
        format!("[profile a]\nregion = us-east-1\n\n[profile work]\nmfa_serial = {ARN}\n# mfa_process = mfakey code --profile work\n")
    );
    let (fresh, _) = edited("", "default", ARN);
    assert_eq!(
        fresh,
        format!("[default]\nmfa_serial = {ARN}\n# mfa_process = mfakey code --profile default\n")
    );
    // `[profile default]` is also the default profile: no second section.
    let (same, _) = edited("[profile default]\nregion = x\n", "default", ARN);
    assert!(!same.contains("[default]"), "{same}");
}

#[test]
fn an_existing_mfa_serial_is_replaced_in_place_and_mfa_process_kept() {
    let before = "[profile work]\r\nmfa_serial = arn:aws:iam::123456789012:mfa/old\r\nmfa_process = ykman oath accounts code -s x\r\nregion = us-east-1\r\n";
    let (after, replaced) = edited(before, "work", ARN);
    assert_eq!(
        replaced.as_deref(),
        Some("arn:aws:iam::123456789012:mfa/old")
    );
    assert_eq!(after, before.replace("mfa/old", "mfa/alice-yk12345678"));
    // The same ARN again: the text does not change at all.
    assert_eq!(edited(&after, "work", ARN), (after.clone(), None));
    // CRLF files get CRLF lines.
    let (added, _) = edited("[profile work]\r\nregion = x\r\n", "work", ARN);
    assert!(
        added.ends_with("--profile work\r\n") && !added.contains("x\n"),
        "{added:?}"
    );
}

#[test]
fn apply_writes_keeps_a_backup_and_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let before = "[profile work]\nregion = us-east-1\n";
    fs::write(&path, before).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let plan = profile::plan(&path, "work").unwrap();
    let done = profile::apply(&plan, ARN).unwrap();
    assert!(done.changed);
    let now = fs::read_to_string(&path).unwrap();
    only_added(
        before,
        &now,
        &[
            &format!("mfa_serial = {ARN}"),
            "# mfa_process = mfakey code --profile work",
        ],
    );
    let backup = done.backup.expect("a backup");
    assert_eq!(fs::read_to_string(&backup).unwrap(), before);
    for p in [&path, std::path::Path::new(&backup)] {
        assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o640);
    }
    // Nothing else was left in the folder (no temporary file).
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    // Again with the same ARN: nothing written, no second backup.
    let again = profile::apply(&profile::plan(&path, "work").unwrap(), ARN).unwrap();
    assert!(!again.changed && again.backup.is_none());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn apply_creates_a_missing_file_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/.aws/config");
    let done = profile::apply(&profile::plan(&path, "work").unwrap(), ARN).unwrap();
    assert!(done.changed && done.backup.is_none());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn a_symlinked_config_is_written_through_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("dotfiles-config");
    let link = dir.path().join("config");
    fs::write(&real, "[profile work]\n").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    profile::apply(&profile::plan(&link, "work").unwrap(), ARN).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real).unwrap().contains(ARN));
}

#[test]
fn refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    // The profile twice: which one the tools read is unclear.
    let twice = "[profile work]\nregion = a\n[profile  work]\nregion = b\n";
    fs::write(&path, twice).unwrap();
    let e = profile::plan(&path, "work").unwrap_err();
    assert!(matches!(e, ProfileError::Duplicate { count: 2, .. }), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), twice);
    // A name the tools would read differently, or that would break the file.
    for bad in ["", "a b", "x]", "a\nb", "#c"] {
        assert!(matches!(
            profile::plan(&path, bad),
            Err(ProfileError::BadName(_))
        ));
    }
    // Not text.
    fs::write(&path, b"[profile work]\n\xff\n").unwrap();
    assert!(matches!(
        profile::plan(&path, "work"),
        Err(ProfileError::NotText { .. })
    ));
    // Changed between the plan and the write: left alone.
    fs::write(&path, "[profile work]\n").unwrap();
    let plan = profile::plan(&path, "work").unwrap();
    fs::write(&path, "[profile work]\nregion = changed\n").unwrap();
    let e = profile::apply(&plan, ARN).unwrap_err();
    assert!(matches!(e, ProfileError::Changed { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "[profile work]\nregion = changed\n"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_failed_write_leaves_the_file_and_no_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("aws");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("config");
    fs::write(&path, "[profile work]\n").unwrap();
    let plan = profile::plan(&path, "work").unwrap();
    // The folder cannot take a new file: a file system that refuses it.
    let blocker = sub.join("blocker");
    fs::write(&blocker, "").unwrap();
    let e = profile::apply_in(&plan, ARN, &blocker).unwrap_err();
    assert!(matches!(e, ProfileError::Write { .. }), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "[profile work]\n");
    let mut left: Vec<String> = fs::read_dir(&sub)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["blocker", "config"]);
}

#[test]
fn device_arns_parse_and_mfakeys_names_tell_the_owner() {
    let d = Device::parse(ARN).unwrap();
    assert_eq!(
        (d.account.as_str(), d.name.as_str()),
        ("123456789012", "alice-yk12345678")
    );
    let owner = owner_by_name(&d).unwrap();
    assert_eq!((owner.user.as_str(), owner.key_serial), ("alice", 12345678));
    let pathed = Device::parse("arn:aws-us-gov:iam::123456789012:mfa/team/bob.x-yk7").unwrap();
    assert_eq!(owner_by_name(&pathed).unwrap().user, "bob.x");
    for custom in [
        "arn:aws:iam::123456789012:mfa/alice",
        "arn:aws:iam::123456789012:mfa/alice-ykX1",
        "arn:aws:iam::123456789012:mfa/-yk1",
    ] {
        assert_eq!(
            owner_by_name(&Device::parse(custom).unwrap()),
            None,
            "{custom}"
        );
    }
    assert!(matches!(
        Device::parse("arn:aws:iam::123456789012:u2f/user/alice/x"),
        Err(DailyError::SecurityKey(_))
    ));
    for bad in [
        "",
        "alice",
        "arn:aws:iam::12345:mfa/a",
        "arn:aws:s3::123456789012:mfa/a",
        "arn:aws:iam::123456789012:user/a",
        "arn:aws:iam::123456789012:mfa/",
    ] {
        assert!(
            matches!(Device::parse(bad), Err(DailyError::NotMfaArn(_))),
            "{bad}"
        );
    }
}

fn cred(name: &str) -> (Credential, CodeResult) {
    let id = CredentialId::new(Some(AWS_ISSUER), name, OathType::Totp, 30);
    let c = Credential {
        raw_id: id.to_bytes(),
        id,
        algorithm: HashAlgorithm::Sha1,
        touch: Some(false),
    };
    (c, CodeResult::TouchRequired)
}

#[test]
fn the_owners_credential_is_chosen_never_guessed() {
    let d = Device::parse(ARN).unwrap();
    let owner = owner_by_name(&d).unwrap();
    let pick = |all: Vec<(Credential, CodeResult)>| {
        choose(&all, &owner, &d).map(|(c, _)| c.id.name.clone())
    };
    assert_eq!(
        pick(vec![cred("bob@acme"), cred("alice@acme")]).unwrap(),
        "alice@acme"
    );
    // Several of alice's: the one labelled with the device's account.
    assert_eq!(
        pick(vec![cred("alice@acme"), cred("alice@123456789012")]).unwrap(),
        "alice@123456789012"
    );
    assert!(matches!(
        pick(vec![cred("alice@acme"), cred("alice@acme-dev")]),
        Err(DailyError::Ambiguous { .. })
    ));
    // `alice2@…` is not alice's; a credential of another issuer is not AWS's.
    let mut other = cred("alice@acme");
    other.0.id.issuer = Some("GitHub".into());
    assert!(matches!(
        pick(vec![cred("alice2@acme"), other]),
        Err(DailyError::NotOnKey { .. })
    ));
}

#[test]
fn a_credential_that_gives_no_code_is_said_never_guessed() {
    use crate::apdu::Command;
    use crate::oath::{ins, OathSession, OATH_AID};
    use crate::transport::Transport;
    use crate::virtual_key::{Config, VirtualYubiKey};
    // A TOTP credential of alice whose id says period 0: the key holds it,
    // but it has no time step, so no code can be computed from it.
    let mut key = VirtualYubiKey::new(Config {
        serial: 4242,
        ..Config::default()
    });
    let select = Command::new(0, ins::SELECT, 4, 0)
        .with_data(OATH_AID.to_vec())
        .unwrap();
    key.transmit(&select.to_bytes()).unwrap();
    let mut body = Vec::new();
    crate::tlv::push(&mut body, 0x71, b"0/Amazon Web Services:alice@123456789012");
    crate::tlv::push(&mut body, 0x73, &[&[0x21, 6][..], &[7u8; 20]].concat());
    let put = Command::new(0, ins::PUT, 0, 0).with_data(body).unwrap();
    assert_eq!(key.transmit(&put.to_bytes()).unwrap(), [0x90, 0x00]);

    let mut session = OathSession::select(&mut key).unwrap();
    let owner = Owner {
        user: "alice".into(),
        key_serial: 4242,
        found_by: "device_name",
    };
    let device = Device::parse("arn:aws:iam::123456789012:mfa/alice-yk4242").unwrap();
    let mut touched = false;
    let e = current_code(&mut session, &owner, &device, 1_700_000_000, &mut || {
        touched = true
    })
    .unwrap_err();
    assert!(matches!(e, DailyError::NoCode { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("key 4242") && msg.contains("period 0"),
        "{msg}"
    );
    assert_eq!(crate::error::Classify::kind(&e), crate::error::Kind::Oath);
    assert!(!touched);
}
