//! Hostile readers, keys and inputs against the real mfakey binary: virtual
//! readers refused without the opt-in, the OATH password kept from a key
//! that does not identify itself, destructive commands that ask first.

mod common;

use common::oath::{add, ids, set_password};
use common::{random_serial, Scenario, Seed, Slot, VirtualKey};

/// `virtual-yubikey --verbose` logs every instruction's name on stderr.
fn start<'s>(slot: &'s Slot, serial: u32) -> VirtualKey<'s> {
    let s = serial.to_string();
    VirtualKey::start(slot, &["--serial", &s, "--verbose"])
}

/// How many of the card's log lines hold `what`, once its log has stopped
/// growing (the lines of a command just finished arrive through a pipe).
fn settled(key: &VirtualKey, what: &str) -> usize {
    let mut last = usize::MAX;
    loop {
        let n = key.stderr().matches(what).count();
        if n == last {
            return n;
        }
        last = n;
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

// ---- readers -------------------------------------------------------------------

/// vpcd's readers ("Virtual PCD ...") are refused unless
/// MFAKEY_ALLOW_VIRTUAL_READERS=1, with a message naming the opt-in, and
/// the card in them is sent nothing of OATH.
#[test]
fn a_virtual_reader_is_refused_without_the_opt_in() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, random_serial());
    let seed = Seed::random(20);
    add(&mut sc, slot.reader, "present", &seed, &[]);
    let before = settled(&key, "OATH");

    sc.set_env("MFAKEY_ALLOW_VIRTUAL_READERS", "0");
    for args in [
        vec!["--json", "--reader", slot.reader, "oath", "list"],
        vec!["--json", "--reader", slot.reader, "oath", "code"],
        vec![
            "--json",
            "--reader",
            slot.reader,
            "enroll",
            "user",
            "nobody",
        ],
    ] {
        let msg = sc.mfakey(&args).err(3, "virtual_reader");
        assert!(msg.contains("MFAKEY_ALLOW_VIRTUAL_READERS=1"), "{msg}");
        assert!(msg.contains(slot.reader), "{msg}");
    }
    // `keys` lists it as unavailable, with the reason.
    let v = sc.mfakey(&["--json", "--reader", slot.reader, "keys"]).ok();
    assert_eq!(v["keys"], serde_json::json!([]), "{v}");
    let why = v["unavailable"][0]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("MFAKEY_ALLOW_VIRTUAL_READERS=1"), "{v}");
    assert_eq!(
        settled(&key, "OATH"),
        before,
        "a refused reader's card got OATH commands:\n{}",
        key.stderr()
    );

    // With the opt-in (what the test stack sets) it is used.
    sc.set_env("MFAKEY_ALLOW_VIRTUAL_READERS", "1");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["present"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}

// ---- the OATH password ---------------------------------------------------------

/// A key that tells no serial gets no password proof (VALIDATE) and no
/// access key (SET CODE): the password is not even read.
#[test]
fn a_key_without_a_serial_gets_no_password() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, 0);
    let pw = sc.input_file("pw", b"only for known keys\n");
    let pw = pw.to_str().unwrap();
    // ykman, the independent client, sets the password on it.
    sc.ykman(
        slot.reader,
        &["oath", "access", "change", "-n", "only for known keys"],
    )
    .success();
    let validates = || settled(&key, "OATH VALIDATE");
    let set_codes = || settled(&key, "OATH SET CODE");
    let (v0, s0) = (validates(), set_codes());

    let r = sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "--password-file",
        pw,
        "oath",
        "list",
    ]);
    let msg = r.err(3, "key_unidentified");
    assert!(msg.contains("serial"), "{msg}");
    let r = sc.mfakey(&[
        "--json",
        "--reader",
        slot.reader,
        "--password-file",
        pw,
        "oath",
        "password",
        "set",
        "--new-password-file",
        pw,
    ]);
    r.err(3, "key_unidentified");
    assert_eq!(validates(), v0, "the unidentified key got VALIDATE");
    assert_eq!(set_codes(), s0, "the unidentified key got SET CODE");
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

/// The same key with a serial is unlocked as usual.
#[test]
fn a_key_with_a_serial_is_unlocked() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, random_serial());
    let pw = sc.input_file("pw", b"known key\n");
    let pw = pw.to_str().unwrap();
    set_password(&mut sc, slot.reader, pw);
    assert!(ids(&mut sc, slot.reader, &["--password-file", pw]).is_empty());
    assert!(key.stderr().contains("OATH VALIDATE"));
    sc.record_key(&key);
    sc.assert_no_secret(&[]);
}

// ---- endpoints -------------------------------------------------------------------

/// A TCP listener that counts connections and answers each with an HTTP
/// 403, so a client that does connect fails at once.
struct Listener {
    port: u16,
    connects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    fn start() -> Listener {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().unwrap().port();
        let connects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connects.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                let _ = c.read(&mut [0u8; 4096]);
                let _ = c.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Listener { port, connects }
    }

    fn connects(&self) -> usize {
        self.connects.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An http:// endpoint on another machine is refused before anything is
/// sent, whichever setting names it: --endpoint-url, AWS_ENDPOINT_URL,
/// AWS_ENDPOINT_URL_IAM, a service of the audit (CloudTrail), the config
/// file. The endpoint is `http://127.1:PORT`: a listener on this machine
/// (127.1 is 127.0.0.1 to the resolver) that is not written as a loopback
/// address, so only the refusal keeps mfakey from connecting, as the last
/// run (with --allow-insecure-endpoint) shows.
#[test]
fn an_insecure_endpoint_is_refused_before_any_connection() {
    let listener = Listener::start();
    let url = format!("http://127.1:{}", listener.port);
    let base = || {
        let mut sc = Scenario::new();
        sc.set_env("AWS_ACCESS_KEY_ID", "testing");
        sc.set_env("AWS_SECRET_ACCESS_KEY", "testing");
        sc.set_env("AWS_REGION", "us-east-1");
        sc.set_env("AWS_EC2_METADATA_DISABLED", "true");
        sc
    };
    let refused = |sc: &mut Scenario, args: &[&str], setting: &str| {
        let msg = sc.mfakey(args).err(2, "insecure_endpoint");
        assert!(msg.contains("--allow-insecure-endpoint"), "{msg}");
        assert!(msg.contains(setting), "{setting}: {msg}");
        assert_eq!(listener.connects(), 0, "{setting}: a connection was made");
        sc.assert_no_secret(&[]);
    };
    let mut sc = base();
    refused(
        &mut sc,
        &["--json", "cleanup", "--endpoint-url", &url],
        "--endpoint-url",
    );
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM"] {
        let mut sc = base();
        sc.set_env(var, url.as_str());
        refused(&mut sc, &["--json", "cleanup"], var);
    }
    let mut sc = base();
    sc.set_env("AWS_ENDPOINT_URL_CLOUDTRAIL", url.as_str());
    refused(&mut sc, &["--json", "audit"], "AWS_ENDPOINT_URL_CLOUDTRAIL");
    let mut sc = base();
    let config = sc.input_file(
        "config",
        format!("[default]\nendpoint_url = {url}\n").as_bytes(),
    );
    sc.set_env("AWS_CONFIG_FILE", config.as_os_str());
    refused(&mut sc, &["--json", "cleanup"], "endpoint_url");

    // The same URL with the opt-in: mfakey connects (and gets the 403).
    let mut sc = base();
    let r = sc.mfakey(&[
        "--json",
        "cleanup",
        "--endpoint-url",
        &url,
        "--allow-insecure-endpoint",
    ]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        listener.connects() >= 1,
        "the opt-in run did not connect: {r:?}"
    );
    sc.assert_no_secret(&[]);
}

// ---- the process ---------------------------------------------------------------

/// While mfakey waits for a secret on stdin, it can dump no core: its core
/// size limit is 0 (soft and hard, though it was started with no limit)
/// and it is not dumpable (its /proc entries belong to root even when it
/// runs as another user, which also keeps that user's other processes from
/// ptrace and /proc/PID/mem).
#[test]
fn no_core_dump_can_hold_a_secret() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    common::require_stack();
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = std::process::Command::new(common::process::mfakey_bin());
    cmd.args(["oath", "add", "waiting", "--secret-stdin"])
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
    if as_root {
        // Another user than the test's, so /proc shows dumpability.
        cmd.uid(65534).gid(65534);
    }
    let mut child = cmd.spawn().expect("spawn mfakey");
    let pid = child.id();
    let limits = format!("/proc/{pid}/limits");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let core_line = loop {
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_default()
            .to_string();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(4..6) == Some(&["0", "0"][..]) || std::time::Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let owner = std::fs::metadata(format!("/proc/{pid}/environ")).map(|m| m.uid());
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = core_line.split_whitespace().collect();
    assert_eq!(
        fields.get(4..6),
        Some(&["0", "0"][..]),
        "core size limit while waiting for the secret: {core_line:?}"
    );
    if as_root {
        assert_eq!(
            owner.expect("stat /proc/PID/environ"),
            0,
            "mfakey (running as uid 65534) is still dumpable"
        );
    }
}

// ---- AWS errors ------------------------------------------------------------------

/// With no credentials anywhere, `audit` says so in one line (what failed,
/// why, what to do); the SDK's chain of provider errors only with -v.
#[test]
fn no_credentials_is_one_readable_line() {
    let mut sc = Scenario::new();
    sc.set_env("AWS_EC2_METADATA_DISABLED", "true");
    let (config, credentials) = (sc.dir().join("no-config"), sc.dir().join("no-credentials"));
    sc.set_env("AWS_CONFIG_FILE", config);
    sc.set_env("AWS_SHARED_CREDENTIALS_FILE", credentials);
    let r = sc.mfakey(&["audit"]);
    assert_eq!(r.code, Some(6), "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "more than one line:\n{}", r.stderr);
    assert!(
        lines[0].starts_with("error: no usable AWS credentials"),
        "{}",
        r.stderr
    );
    assert!(lines[0].contains("--profile"), "{}", r.stderr);
    for noise in [
        "ProviderError",
        "CredentialsNotLoaded",
        "ProviderChainError",
        "source: Some",
    ] {
        assert!(!r.stderr.contains(noise), "{noise} in:\n{}", r.stderr);
    }
    let r = sc.mfakey(&["--json", "-v", "audit"]);
    let v = r.json();
    assert_eq!(v["error"]["kind"], "no_credentials");
    assert!(
        v["error"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Environment"),
        "{v}"
    );
    assert!(r.stderr.contains("\ndetail: "), "{}", r.stderr);
    sc.assert_no_secret(&[]);
}

// ---- destructive commands ----------------------------------------------------------

/// `oath delete` takes an exact id; a part needs --match; without a terminal
/// it needs --force, and the refusal names what it would delete; an empty
/// name is a usage error before the key is touched.
#[test]
fn oath_delete_wants_an_exact_id_and_a_yes() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, random_serial());
    let (a, b) = (Seed::random(20), Seed::random(20));
    add(
        &mut sc,
        slot.reader,
        "alice@1111",
        &a,
        &["--issuer", "Acme"],
    );
    add(&mut sc, slot.reader, "bob@2222", &b, &["--issuer", "Acme"]);
    let del = |sc: &mut Scenario, extra: &[&str]| {
        let mut args = vec!["--json", "--reader", slot.reader, "oath", "delete"];
        args.extend_from_slice(extra);
        sc.mfakey(&args)
    };
    let commands = settled(&key, "OATH");
    for empty in ["", "   "] {
        del(&mut sc, &[empty, "--force"]).err(2, "invalid_argument");
    }
    assert_eq!(
        key.stderr().matches("OATH").count(),
        commands,
        "an empty name reached the key"
    );
    // A part of an id is no id.
    let msg = del(&mut sc, &["alice", "--force"]).err(5, "no_such_credential");
    assert!(msg.contains("--match"), "{msg}");
    // No terminal, no --force: refused, naming the credential.
    let msg = del(&mut sc, &["alice", "--match"]).err(5, "confirmation_needed");
    assert!(
        msg.contains("Acme:alice@1111") && msg.contains("--force"),
        "{msg}"
    );
    let msg = del(&mut sc, &["Acme:bob@2222"]).err(5, "confirmation_needed");
    assert!(msg.contains("Acme:bob@2222"), "{msg}");
    assert_eq!(
        ids(&mut sc, slot.reader, &[]).len(),
        2,
        "a refused delete deleted"
    );
    // --match --force: the one it names.
    let v = del(&mut sc, &["ALICE", "--match", "--force"]).ok();
    assert_eq!(v["deleted"], "Acme:alice@1111");
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["Acme:bob@2222"]);
    sc.record_key(&key);
    sc.assert_no_secret(&[&a, &b]);
}

/// On a terminal, `oath delete` and `oath reset` ask; "n" keeps, "y" goes.
#[test]
fn oath_delete_and_reset_ask_on_a_terminal() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, random_serial());
    let (a, b) = (Seed::random(20), Seed::random(20));
    add(&mut sc, slot.reader, "keep", &a, &[]);
    add(&mut sc, slot.reader, "other", &b, &[]);
    let term = |sc: &mut Scenario, args: &str, typed: &str| {
        let cmd = format!(
            "{} --reader '{}' {args}",
            common::process::mfakey_bin().display(),
            slot.reader
        );
        let typed = sc.input_file("typed", typed.as_bytes());
        let shell = format!(
            "(sleep 2; cat '{}') | script -qec \"{cmd}\" /dev/null",
            typed.display()
        );
        let env = [
            ("HOME".into(), sc.home.clone().into_os_string()),
            ("TERM".into(), "dumb".into()),
        ];
        let run = common::Running::spawn(
            std::path::Path::new("sh"),
            &["-c", &shell],
            &env,
            &["PCSCLITE_CSOCK_NAME"],
            b"",
        )
        .finish();
        sc.record(&run)
    };
    let r = term(&mut sc, "oath delete keep", "n\n");
    assert!(r.stdout.contains("deleting \"keep\""), "{}", r.stdout);
    assert!(r.stdout.contains("declined"), "{}", r.stdout);
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["keep", "other"]);
    let r = term(&mut sc, "oath delete keep", "y\n");
    assert!(r.stdout.contains("deleted keep"), "{}", r.stdout);
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["other"]);
    let r = term(&mut sc, "oath reset", "n\n");
    assert!(
        r.stdout.contains("all 1 OATH credential(s)"),
        "{}",
        r.stdout
    );
    assert_eq!(ids(&mut sc, slot.reader, &[]), ["other"]);
    let r = term(&mut sc, "oath reset", "y\n");
    assert!(r.stdout.contains("OATH applet reset"), "{}", r.stdout);
    assert!(ids(&mut sc, slot.reader, &[]).is_empty());
    sc.record_key(&key);
    sc.assert_no_secret(&[&a, &b]);
}

/// A credential name full of terminal control sequences is listed with
/// them escaped, in `oath list`, `oath code` and errors that quote it.
#[test]
fn control_characters_from_the_card_are_escaped() {
    let mut sc = Scenario::new();
    let slot = Slot::acquire();
    let key = start(&slot, random_serial());
    let seed = Seed::random(20);
    let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}y";
    add(&mut sc, slot.reader, evil, &seed, &[]);
    for args in [
        vec!["--reader", slot.reader, "oath", "list"],
        vec!["--reader", slot.reader, "oath", "code"],
        vec!["--reader", slot.reader, "oath", "delete", evil],
    ] {
        let r = sc.mfakey(&args);
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(out.contains("x\\u{1b}]0;owned"), "{args:?}: {out:?}");
        assert!(
            !out.chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "{args:?}: {out:?}"
        );
    }
    sc.record_key(&key);
    sc.assert_no_secret(&[&seed]);
}
