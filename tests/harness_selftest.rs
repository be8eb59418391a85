//! Tests of the test harness itself: the SecretScan must find every spelling
//! of a seed, the reference OTP codes must match the RFC vectors, the run
//! helpers must fail on wrong results, and slots must be exclusive.

mod common;

use common::{hotp, totp, Algo, Run, Running, SecretScan, Seed, Slot};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

fn seed() -> Seed {
    Seed::random(20)
}

fn leaks(content: &[u8], seed: &Seed) -> Vec<&'static str> {
    let mut scan = SecretScan::new();
    scan.add("content", content);
    let found = scan.find(seed).into_iter().map(|f| f.spelling).collect();
    scan.assert_clean(&[]); // no seeds: just marks the scan checked
    found
}

#[test]
fn scan_finds_upper_case_base32() {
    let s = seed();
    let text = format!("added {} ok", s.base32());
    assert!(leaks(text.as_bytes(), &s).contains(&"base32"));
}

#[test]
fn scan_finds_lower_case_base32() {
    let s = seed();
    let text = format!("x{}y", s.base32().to_lowercase());
    assert!(leaks(text.as_bytes(), &s).contains(&"base32"));
}

#[test]
fn scan_finds_grouped_base32_both_cases() {
    let s = seed();
    assert!(leaks(s.base32_grouped_lower().as_bytes(), &s).contains(&"base32 in groups of 4"));
    let upper = s.base32_grouped_lower().to_uppercase();
    assert!(leaks(upper.as_bytes(), &s).contains(&"base32 in groups of 4"));
}

#[test]
fn scan_finds_hex_both_cases() {
    let s = seed();
    let hex: String = s.bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(leaks(format!("APDU 73 16 21 06 {hex}").as_bytes(), &s).contains(&"hex"));
    assert!(leaks(hex.to_uppercase().as_bytes(), &s).contains(&"hex"));
}

#[test]
fn scan_finds_raw_bytes_in_a_file_under_a_directory() {
    let s = seed();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    let mut blob = b"journal\x00".to_vec();
    blob.extend_from_slice(s.bytes());
    std::fs::write(dir.path().join("a/b/journal.bin"), &blob).unwrap();
    std::fs::write(dir.path().join("a/clean.txt"), b"nothing here").unwrap();
    let mut scan = SecretScan::new();
    scan.add_path(dir.path());
    let found = scan.find(&s);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].spelling, "raw bytes");
    assert!(found[0].source.ends_with("journal.bin"), "{found:?}");
    let leaked = catch_unwind(AssertUnwindSafe(|| scan.assert_clean(&[&s])));
    assert!(
        leaked.is_err(),
        "assert_clean passed although the seed is in a file"
    );
}

#[test]
fn scan_passes_clean_output_and_other_seeds() {
    let s = seed();
    let other = seed();
    let mut scan = SecretScan::new();
    scan.add(
        "stdout",
        format!("{} {}", other.base32(), "{\"schema_version\":1}"),
    );
    scan.assert_clean(&[&s]);
    assert_eq!(scan.find(&other).len(), 1);
}

#[test]
fn scan_must_be_checked() {
    let r = catch_unwind(|| {
        let mut scan = SecretScan::new();
        scan.add("stdout", "anything");
    });
    assert!(r.is_err(), "an unchecked SecretScan was dropped silently");
}

#[test]
fn scan_reports_every_source_and_hides_the_seed() {
    let s = seed();
    let mut scan = SecretScan::new();
    scan.add("one", s.base32());
    scan.add("two", "clean");
    scan.add("three", s.base32_grouped_lower());
    let msg = catch_unwind(AssertUnwindSafe(|| scan.assert_clean(&[&s])))
        .expect_err("leak not reported")
        .downcast::<String>()
        .map(|b| *b)
        .unwrap_or_default();
    assert!(
        msg.contains("\"one\"") && msg.contains("\"three\"") && !msg.contains("\"two\""),
        "{msg}"
    );
    assert!(
        !msg.to_lowercase().contains(&s.base32().to_lowercase()),
        "the report quotes the seed"
    );
}

// RFC 6238 Appendix B and RFC 4226 Appendix D vectors.
#[test]
fn reference_codes_match_rfc_vectors() {
    let s1 = Seed::from_bytes(b"12345678901234567890");
    let s256 = Seed::from_bytes(b"12345678901234567890123456789012");
    let s512 =
        Seed::from_bytes(b"1234567890123456789012345678901234567890123456789012345678901234");
    assert_eq!(totp(&s1, Algo::Sha1, 8, 30, 59), "94287082");
    assert_eq!(totp(&s256, Algo::Sha256, 8, 30, 59), "46119246");
    assert_eq!(totp(&s512, Algo::Sha512, 8, 30, 59), "90693936");
    assert_eq!(totp(&s1, Algo::Sha1, 8, 30, 1_111_111_109), "07081804");
    assert_eq!(totp(&s256, Algo::Sha256, 8, 30, 20_000_000_000), "77737706");
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    for (counter, code) in expected.iter().enumerate() {
        assert_eq!(
            hotp(&s1, Algo::Sha1, 6, counter as u64),
            *code,
            "HOTP counter {counter}"
        );
    }
}

fn run(code: Option<i32>, stdout: &str, stderr: &str) -> Run {
    Run {
        program: "t".into(),
        args: vec![],
        code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

#[test]
fn run_helpers_fail_on_wrong_results() {
    let err = r#"{"schema_version":1,"error":{"kind":"no_key","message":"insert a key"}}"#;
    assert_eq!(
        run(Some(3), err, "error: insert a key\n").err(3, "no_key"),
        "insert a key"
    );
    let wrong = [
        run(Some(1), err, "error: insert a key\n"), // exit code
        run(Some(3), err, "insert a key\n"),        // no `error: ` line
        run(
            Some(3),
            r#"{"schema_version":1,"error":{"kind":"no_reader","message":"m"}}"#,
            "error: m\n",
        ),
        run(
            Some(3),
            r#"{"error":{"kind":"no_key","message":"m"}}"#,
            "error: m\n",
        ), // schema_version
        run(Some(3), "not json", "error: m\n"),
    ];
    for r in wrong {
        let res = catch_unwind(AssertUnwindSafe(|| r.err(3, "no_key")));
        assert!(res.is_err(), "err() accepted {r:?}");
    }
    assert_eq!(
        run(Some(0), r#"{"schema_version":1,"keys":[]}"#, "").ok()["keys"],
        serde_json::json!([])
    );
    for r in [
        run(Some(0), err, ""),
        run(Some(2), r#"{"schema_version":1}"#, ""),
        run(None, "{}", ""),
    ] {
        assert!(
            catch_unwind(AssertUnwindSafe(|| r.ok())).is_err(),
            "ok() accepted {r:?}"
        );
    }
}

#[test]
fn running_pipes_stdin_and_collects_output() {
    let sh = std::path::Path::new("/bin/sh");
    let r = Running::spawn(
        sh,
        &["-c", "cat; echo oops >&2; exit 3"],
        &[],
        &[],
        b"seed-in",
    )
    .finish();
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (Some(3), "seed-in", "oops\n")
    );
    let mut slow = Running::spawn(
        sh,
        &["-c", "echo 'Touch your YubiKey...' >&2; exec sleep 30"],
        &[],
        &[],
        b"",
    );
    assert!(slow.wait_stderr("Touch your", Duration::from_secs(10)));
    assert!(!slow.wait_stderr("never printed", Duration::from_millis(200)));
    let pid = slow.pid() as libc::pid_t;
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(slow.finish().code, None, "killed by a signal");

    // Dropped while running (a test that panicked): killed and reaped.
    let left = Running::spawn(sh, &["-c", "exec sleep 30"], &[], &[], b"");
    let pid = left.pid() as libc::pid_t;
    drop(left);
    // SAFETY: signal 0 only asks whether the pid exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "a dropped Running left pid {pid} behind");
}

fn flock_cli_can_take(path: &std::path::Path) -> bool {
    let st = std::process::Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(path)
        .arg("true")
        .status()
        .expect("run flock(1)");
    match st.code() {
        Some(0) => true,
        Some(99) => false,
        other => panic!("flock(1) exited {other:?}"),
    }
}

#[test]
fn a_lock_excludes_other_processes_and_threads_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slot.lock");
    let held = common::slot::try_lock_at(&path).expect("first lock");
    assert!(
        !flock_cli_can_take(&path),
        "lock not held against another process"
    );
    let other_thread = std::thread::scope(|s| {
        s.spawn(|| common::slot::try_lock_at(&path).is_some())
            .join()
            .unwrap()
    });
    assert!(
        !other_thread,
        "lock not held against another thread of this process"
    );
    drop(held);
    assert!(flock_cli_can_take(&path), "lock still held after drop");
    assert!(
        common::slot::try_lock_at(&path).is_some(),
        "lock not free again"
    );
}

#[test]
fn slots_are_exclusive_across_threads_and_processes() {
    common::require_stack();
    let n = common::slot::present_slots().len();
    let held = Slot::acquire();
    assert!(
        !flock_cli_can_take(&common::slot::lock_path(held.port)),
        "slot lock not held against another process"
    );
    // Other threads get the other slots, all distinct from ours and each other.
    let ports: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (1..n).map(|_| s.spawn(Slot::acquire)).collect();
        let got: Vec<Slot> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        got.iter().map(|g| g.port).collect()
    });
    let mut all = ports.clone();
    all.push(held.port);
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "two holders shared a slot: held {} and {ports:?}",
        held.port
    );
}

#[test]
fn empty_readers_are_seen_empty() {
    common::require_stack();
    let s = Slot::acquire();
    assert!(common::slot::wait_card(
        s.reader,
        false,
        Duration::from_secs(2)
    ));
    assert!(!common::slot::wait_card(
        s.reader,
        true,
        Duration::from_millis(600)
    ));
    assert!(!common::slot::wait_card(
        "No Such Reader 99",
        false,
        Duration::from_millis(300)
    ));
}
