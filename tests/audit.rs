//! `mfakey audit` and `mfakey baseline cloudtrail` end to end against moto:
//! IAM, STS and CloudTrail through the proxy, S3 straight to moto (the
//! proxy forwards GET and POST only; S3 needs PUT and HEAD).
//!
//! Each test works in an AWS account of its own: moto keeps one state per
//! account, and STS AssumeRole into `arn:aws:iam::<id>:role/x` hands out
//! credentials that moto files under that account. So no test sees another
//! test's users, devices or trails.
//!
//! Where moto differs from AWS (docs/TESTING.md, "audit against moto"):
//! `AccountMFAEnabled` is always 0 (so `root-mfa-missing` is always found),
//! root access keys cannot be made, and the credential report has no root
//! row (so `root-usage` is `unknown`, never "fine"); an audit against moto
//! therefore never exits 0.

mod common;
#[path = "support/iam_env.rs"]
mod iam_env;
#[path = "support/moto_account.rs"]
mod moto_account;

use common::{Scenario, Seed};
use iam_env::{block_on, fault_matching, proxy_lock};
use moto_account::Account;
use serde_json::{json, Value};

fn audit(sc: &mut Scenario, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(extra);
    let run = sc.mfakey(&args);
    let v = run.json();
    assert!(
        v.get("error").is_none(),
        "audit failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    (run.code, v)
}

fn finding_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["audit"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let subject = f["subject"].as_str().unwrap_or("");
            format!("{} {}", f["id"].as_str().unwrap(), subject)
        })
        .collect();
    ids.sort();
    ids
}

fn check_status(v: &Value, check: &str) -> String {
    v["audit"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {v}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn has(ids: &[String], id: &str) -> bool {
    ids.iter().any(|i| i.split(' ').next() == Some(id))
}

#[test]
fn every_finding_then_each_fixed_in_turn() {
    let _l = proxy_lock();
    let acct = Account::new();
    let mut sc = acct.scenario();

    // bob: console password, no MFA. carol: an access key, no MFA.
    // dave: a virtual device only. A leftover unassigned device. No admin.
    acct.create_user("bob");
    block_on(
        acct.iam
            .create_login_profile()
            .user_name("bob")
            .password("Correct-Horse-9")
            .send(),
    )
    .expect("CreateLoginProfile");
    acct.create_user("carol");
    let key = block_on(acct.iam.create_access_key().user_name("carol").send())
        .expect("CreateAccessKey")
        .access_key
        .expect("key");
    acct.create_user("dave");
    let (dave_phone, dave_seed) = acct.create_device("dave-phone", &[]);
    acct.enable("dave", &dave_phone);
    // A second one, so that nobody here lacks a backup (that finding is
    // info, and has its own tests).
    let (dave_tablet, dave_tablet_seed) = acct.create_device("dave-tablet", &[]);
    acct.enable("dave", &dave_tablet);
    let (leftover, leftover_seed) = acct.create_device("leftover", &[]);

    let started = std::time::Instant::now();
    let (code, v) = audit(&mut sc, &[]);
    let wall = started.elapsed();
    eprintln!("audit wall time against moto: {wall:?}");
    let ids = finding_ids(&v);
    assert_eq!(
        ids,
        [
            "cloudtrail-missing ",
            "no-admin-besides-root ",
            "root-mfa-missing <root_account>",
            "user-console-without-mfa bob",
            "user-keys-without-mfa carol",
            "user-mfa-virtual-only dave",
            &format!("virtual-mfa-unassigned {leftover}"),
        ],
        "{v:#}"
    );
    assert_eq!(code, Some(8), "critical/high findings: exit 8");
    assert_eq!(v["audit"]["result"], "fail");
    // moto's report has no root row: unknown, not passed.
    assert_eq!(check_status(&v, "root-usage"), "unknown");
    assert_eq!(check_status(&v, "root-access-keys"), "passed");
    // Every finding has the documented fields.
    for f in v["audit"]["findings"].as_array().unwrap() {
        for field in ["id", "severity", "title", "evidence", "remedy"] {
            assert!(
                f[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field}: {f}"
            );
        }
    }
    // --fail-on critical still fails (root MFA); the text form groups by severity.
    let text = sc.mfakey(&["audit", "--fail-on", "critical"]);
    assert_eq!(text.code, Some(8));
    let crit = text.stdout.find("CRITICAL (1)").expect("CRITICAL group");
    let high = text.stdout.find("HIGH (3)").expect("HIGH group");
    let low = text.stdout.find("LOW (2)").expect("LOW group");
    assert!(crit < high && high < low, "{}", text.stdout);
    assert!(
        text.stdout
            .contains("summary: 7 findings (1 critical, 3 high, 1 medium, 2 low)"),
        "{}",
        text.stdout
    );

    // Fix each in turn; its finding goes, the others stay.
    let mut expected = ids.clone();
    fn fixed(sc: &mut Scenario, expected: &mut Vec<String>, gone: &str) {
        expected.retain(|i| i.split(' ').next() != Some(gone));
        let (_, v) = audit(sc, &[]);
        assert_eq!(&finding_ids(&v), expected, "after fixing {gone}: {v:#}");
    }

    // An administrator for daily work.
    acct.make_admin("admin");
    fixed(&mut sc, &mut expected, "no-admin-besides-root");

    // bob gets MFA: a device mfakey made (tagged), so not "virtual only" either.
    let (bob_key, bob_seed) = acct.create_device("bob-yk1", &[("mfakey:managed", "true")]);
    acct.enable("bob", &bob_key);
    let (bob_backup, bob_backup_seed) =
        acct.create_device("bob-yk2", &[("mfakey:managed", "true")]);
    acct.enable("bob", &bob_backup);
    fixed(&mut sc, &mut expected, "user-console-without-mfa");

    // carol's key goes.
    block_on(
        acct.iam
            .delete_access_key()
            .user_name("carol")
            .access_key_id(&key.access_key_id)
            .send(),
    )
    .expect("DeleteAccessKey");
    fixed(&mut sc, &mut expected, "user-keys-without-mfa");

    // dave's phone is replaced by a key mfakey enrolled.
    let (dave_key, dave_key_seed) = acct.create_device("dave-yk1", &[("mfakey:managed", "true")]);
    acct.enable("dave", &dave_key);
    fixed(&mut sc, &mut expected, "user-mfa-virtual-only");

    block_on(
        acct.iam
            .delete_virtual_mfa_device()
            .serial_number(&leftover)
            .send(),
    )
    .expect("DeleteVirtualMFADevice");
    fixed(&mut sc, &mut expected, "virtual-mfa-unassigned");

    // A poor trail: one region, no validation, not logging, read-only events.
    block_on(
        acct.s3
            .create_bucket()
            .bucket(format!("legacy-{}", acct.id))
            .send(),
    )
    .expect("bucket");
    block_on(
        acct.trail
            .create_trail()
            .name("legacy")
            .s3_bucket_name(format!("legacy-{}", acct.id))
            .send(),
    )
    .expect("CreateTrail");
    block_on(
        acct.trail
            .put_event_selectors()
            .trail_name("legacy")
            .event_selectors(
                aws_sdk_cloudtrail::types::EventSelector::builder()
                    .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::ReadOnly)
                    .include_management_events(true)
                    .build(),
            )
            .send(),
    )
    .expect("PutEventSelectors");
    expected.retain(|i| !i.starts_with("cloudtrail-missing"));
    for id in [
        "cloudtrail-log-validation-off",
        "cloudtrail-management-events",
        "cloudtrail-no-kms",
        "cloudtrail-not-logging",
        "cloudtrail-not-multi-region",
    ] {
        expected.push(format!("{id} legacy"));
    }
    expected.sort();
    let (_, v) = audit(&mut sc, &[]);
    assert_eq!(finding_ids(&v), expected, "{v:#}");

    // The remedy named in the findings fixes all but the KMS key.
    let run = sc.mfakey(&[
        "baseline",
        "cloudtrail",
        "--trail-name",
        "legacy",
        "--yes",
        "--json",
    ]);
    let b = run.ok();
    let changed: Vec<&str> = b["baseline"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        [
            "block_public_access",
            "put_bucket_policy",
            "update_trail",
            "put_event_selectors",
            "start_logging"
        ],
        "{b:#}"
    );
    expected.retain(|i| !i.starts_with("cloudtrail") || i.starts_with("cloudtrail-no-kms"));
    let (_, v) = audit(&mut sc, &[]);
    assert_eq!(finding_ids(&v), expected, "{v:#}");

    let kms = format!(
        "arn:aws:kms:us-east-1:{}:key/00000000-0000-0000-0000-000000000001",
        acct.id
    );
    sc.mfakey(&[
        "baseline",
        "cloudtrail",
        "--trail-name",
        "legacy",
        "--kms-key",
        &kms,
        "--yes",
        "--json",
    ])
    .ok();
    fixed(&mut sc, &mut expected, "cloudtrail-no-kms");
    // Only moto's permanent ones are left.
    assert_eq!(expected, ["root-mfa-missing <root_account>"]);
    let t = acct.trail_named("legacy").expect("trail");
    assert_eq!(t.is_multi_region_trail, Some(true));
    assert_eq!(t.log_file_validation_enabled, Some(true));

    sc.assert_no_secret(&[
        &dave_seed,
        &dave_tablet_seed,
        &leftover_seed,
        &bob_seed,
        &bob_backup_seed,
        &dave_key_seed,
    ]);
    let secret = Seed::from_bytes(acct.secret.as_bytes());
    let carol_secret = Seed::from_bytes(key.secret_access_key.as_bytes());
    let found = sc.scan.find(&secret);
    assert!(
        found.is_empty(),
        "the secret access key is in mfakey's output"
    );
    assert!(sc.scan.find(&carol_secret).is_empty());
}

#[test]
fn baseline_twice_the_second_run_changes_nothing() {
    let _l = proxy_lock();
    let acct = Account::new();
    let mut sc = acct.scenario();

    // Without a terminal and without --yes: refused, nothing made.
    let run = sc.mfakey(&["baseline", "cloudtrail", "--json"]);
    let msg = run.err(5, "confirmation_needed");
    assert!(msg.contains("--yes"), "{msg}");
    assert!(acct.trail_named("mfakey-account-trail").is_none());

    let first = sc
        .mfakey(&["baseline", "cloudtrail", "--yes", "--object-lock", "--json"])
        .ok();
    let bucket = format!("mfakey-cloudtrail-{}-us-east-1", acct.id);
    assert_eq!(first["baseline"]["plan"]["bucket"], bucket.as_str());
    assert_eq!(first["baseline"]["unchanged"], false);
    assert_eq!(
        first["baseline"]["changed"].as_array().unwrap().len(),
        6,
        "{first:#}"
    );

    // What moto now holds.
    let t = acct
        .trail_named("mfakey-account-trail")
        .expect("trail created");
    assert_eq!(t.is_multi_region_trail, Some(true));
    assert_eq!(t.log_file_validation_enabled, Some(true));
    assert_eq!(t.s3_bucket_name.as_deref(), Some(bucket.as_str()));
    let status = block_on(
        acct.trail
            .get_trail_status()
            .name("mfakey-account-trail")
            .send(),
    )
    .unwrap();
    assert_eq!(status.is_logging, Some(true));
    let sel = block_on(
        acct.trail
            .get_event_selectors()
            .trail_name("mfakey-account-trail")
            .send(),
    )
    .unwrap();
    let s = &sel.event_selectors.unwrap()[0];
    assert_eq!(s.include_management_events, Some(true));
    assert_eq!(
        s.read_write_type,
        Some(aws_sdk_cloudtrail::types::ReadWriteType::All)
    );
    let pab = block_on(acct.s3.get_public_access_block().bucket(&bucket).send()).unwrap();
    let c = pab.public_access_block_configuration.unwrap();
    assert_eq!(
        (
            c.block_public_acls,
            c.ignore_public_acls,
            c.block_public_policy,
            c.restrict_public_buckets
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy = block_on(acct.s3.get_bucket_policy().bucket(&bucket).send())
        .unwrap()
        .policy
        .unwrap();
    let policy: Value = serde_json::from_str(&policy).unwrap();
    let trail_arn = format!(
        "arn:aws:cloudtrail:us-east-1:{}:trail/mfakey-account-trail",
        acct.id
    );
    assert!(policy.to_string().contains(&trail_arn), "{policy:#}");
    let lock = block_on(
        acct.s3
            .get_object_lock_configuration()
            .bucket(&bucket)
            .send(),
    )
    .unwrap();
    assert_eq!(
        lock.object_lock_configuration
            .and_then(|c| c.object_lock_enabled)
            .map(|e| e.as_str().to_string()),
        Some("Enabled".to_string())
    );

    // Second run: nothing to change, and it says so.
    let second = sc
        .mfakey(&["baseline", "cloudtrail", "--yes", "--json"])
        .ok();
    assert_eq!(second["baseline"]["unchanged"], true, "{second:#}");
    assert_eq!(second["baseline"]["changed"], json!([]));
    assert_eq!(second["baseline"]["plan"]["changes"], json!([]));
    let text = sc.mfakey(&["baseline", "cloudtrail"]);
    assert_eq!(
        text.code,
        Some(0),
        "no change needs no --yes: {}",
        text.stderr
    );
    assert!(text.stdout.contains("nothing to change"), "{}", text.stdout);
    let t2 = acct.trail_named("mfakey-account-trail").unwrap();
    assert_eq!(t2, t, "the trail is untouched");

    let (_, v) = audit(&mut sc, &[]);
    let ct: Vec<String> = finding_ids(&v)
        .into_iter()
        .filter(|i| i.starts_with("cloudtrail"))
        .collect();
    assert_eq!(ct, ["cloudtrail-no-kms mfakey-account-trail"]);
    sc.assert_no_secret(&[]);
}

#[test]
fn access_denied_on_a_check_is_reported_and_the_rest_runs() {
    let _l = proxy_lock();
    let acct = Account::new();
    let mut sc = acct.scenario();
    acct.create_user("bob");
    block_on(
        acct.iam
            .create_login_profile()
            .user_name("bob")
            .password("Correct-Horse-9")
            .send(),
    )
    .unwrap();

    let reset = || {
        let (status, _) = iam_env::control("POST", "/__proxy__/reset", "{}");
        assert_eq!(status, 200);
    };
    // The credential report refused.
    fault_matching(
        "GenerateCredentialReport",
        "access_denied",
        10,
        json!({}),
        0,
    );
    let (code, v) = audit(&mut sc, &[]);
    reset();
    assert_eq!(code, Some(8));
    for check in ["root-usage", "user-mfa"] {
        assert_eq!(check_status(&v, check), "denied", "{check}: {v:#}");
    }
    let detail = v["audit"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "user-mfa")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("iam:GenerateCredentialReport")
            && detail.contains("docs/audit-policy.json"),
        "{detail}"
    );
    // The other checks ran and found what they find.
    let ids = finding_ids(&v);
    assert!(
        has(&ids, "no-admin-besides-root") && has(&ids, "cloudtrail-missing"),
        "{ids:?}"
    );
    assert!(
        !has(&ids, "user-console-without-mfa"),
        "that check could not run"
    );
    assert_eq!(check_status(&v, "cloudtrail"), "failed");
    assert_eq!(check_status(&v, "root-mfa"), "failed");

    // CloudTrail refused (a JSON-protocol service: the proxy answers
    // AccessDeniedException in JSON).
    fault_matching("GetTrailStatus", "access_denied", 10, json!({}), 0);
    let msg = sc
        .mfakey(&["baseline", "cloudtrail", "--yes", "--json"])
        .err(6, "access_denied");
    reset();
    // It names the policy statements to attach, and they exist, in the
    // baseline's own document.
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/baseline-policy.json"
    ))
    .unwrap();
    assert!(msg.contains("docs/baseline-policy.json"), "{msg}");
    for sid in ["BaselineBucket", "BaselineTrail"] {
        assert!(msg.contains(sid), "{msg}");
        assert!(policy.contains(&format!("\"Sid\": \"{sid}\"")), "{sid}");
    }
    fault_matching("DescribeTrails", "access_denied", 10, json!({}), 0);
    let (_, v) = audit(&mut sc, &[]);
    reset();
    assert_eq!(check_status(&v, "cloudtrail"), "denied", "{v:#}");
    assert_eq!(check_status(&v, "user-mfa"), "failed");
    assert!(has(&finding_ids(&v), "user-console-without-mfa"));
    assert!(!has(&finding_ids(&v), "cloudtrail-missing"));

    // The text form lists it under NOT CHECKED.
    fault_matching(
        "GenerateCredentialReport",
        "access_denied",
        10,
        json!({}),
        0,
    );
    let text = sc.mfakey(&["audit"]);
    reset();
    let nc = text
        .stdout
        .find("NOT CHECKED")
        .expect("NOT CHECKED section");
    assert!(text.stdout[nc..].contains("user-mfa"), "{}", text.stdout);

    // With everything fixable fixed, a denied GetAccountSummary (which would
    // show moto's permanent root-mfa-missing) leaves nothing at or above
    // --fail-on but an incomplete audit: exit 9.
    block_on(acct.iam.delete_login_profile().user_name("bob").send()).unwrap();
    acct.make_admin("admin");
    sc.mfakey(&["baseline", "cloudtrail", "--yes", "--json"])
        .ok();
    fault_matching("GetAccountSummary", "access_denied", 10, json!({}), 0);
    let (code, v) = audit(&mut sc, &["--fail-on", "medium"]);
    reset();
    assert_eq!(check_status(&v, "root-mfa"), "denied");
    assert_eq!(check_status(&v, "root-access-keys"), "denied");
    assert_eq!(
        finding_ids(&v),
        ["cloudtrail-no-kms mfakey-account-trail"],
        "{v:#}"
    );
    assert_eq!(code, Some(9), "{v:#}");
    assert_eq!(v["audit"]["result"], "incomplete");
    // --fail-on low counts the KMS finding: exit 8.
    fault_matching("GetAccountSummary", "access_denied", 10, json!({}), 0);
    let (code, _) = audit(&mut sc, &["--fail-on", "low"]);
    reset();
    assert_eq!(code, Some(8));
    sc.assert_no_secret(&[]);
}

#[test]
fn audit_refuses_a_bad_fail_on() {
    let acct = Account::new();
    let mut sc = acct.scenario();
    let run = sc.mfakey(&["audit", "--fail-on", "severe", "--json"]);
    run.err(2, "invalid_argument");
    sc.assert_no_secret(&[]);
}

fn proxy_control(path: &str, body: Value) {
    let (status, text) = iam_env::control("POST", path, &body.to_string());
    assert_eq!(status, 200, "{path}: {text}");
}

#[test]
fn root_without_credentials_needs_no_mfa() {
    // A member account whose root credentials the organization removed:
    // GetAccountSummary says AccountPasswordPresent = 0 (the proxy answers
    // it; moto has no such key).
    let acct = Account::new();
    let mut sc = acct.scenario();
    let (_, v) = audit(&mut sc, &[]);
    assert!(has(&finding_ids(&v), "root-mfa-missing"), "{v:#}");
    proxy_control(
        "/__proxy__/root_credentials",
        json!({"account": acct.id, "AccountPasswordPresent": 0}),
    );
    let (_, v) = audit(&mut sc, &[]);
    assert!(!has(&finding_ids(&v), "root-mfa-missing"), "{v:#}");
    assert_eq!(check_status(&v, "root-mfa"), "passed");
    let detail = v["audit"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "root-mfa")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("not applicable") && detail.contains("AccountPasswordPresent = 0"),
        "{detail}"
    );
    // Signing certificates left behind are a finding of their own.
    proxy_control(
        "/__proxy__/root_credentials",
        json!({"account": acct.id, "AccountSigningCertificatesPresent": 1}),
    );
    let (_, v) = audit(&mut sc, &[]);
    assert!(has(&finding_ids(&v), "root-signing-certificates"), "{v:#}");
    sc.assert_no_secret(&[]);
}

#[test]
fn fido_devices_count_as_hardware_when_aws_certifies_them() {
    // Security keys and passkeys are registered in the console only; the
    // proxy plays them (ListMFADevices, GetMFADevice's Certifications).
    let acct = Account::new();
    let mut sc = acct.scenario();
    let key = |user: &str, n: u32, certs: Value| {
        acct.create_user(user);
        for i in 0..n {
            proxy_control(
                "/__proxy__/fido_device",
                json!({"account": acct.id, "user": user,
                       "serial": format!("arn:aws:iam::{}:u2f/user/{user}/key{i}", acct.id),
                       "certifications": certs}),
            );
        }
    };
    // kim: two certified security keys. lee: one key AWS knows no
    // certification of (a security key, or a synced passkey).
    key("kim", 2, json!({"FIDO": "L1", "FIPS-140-3": "L2"}));
    key("lee", 1, json!({}));
    let (_, v) = audit(&mut sc, &[]);
    let ids = finding_ids(&v);
    assert!(!ids.iter().any(|i| i.ends_with(" kim")), "{ids:?}");
    assert!(
        ids.contains(&"user-mfa-hardware-unverified lee".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"user-mfa-no-backup lee".to_string()),
        "{ids:?}"
    );
    let f = v["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "user-mfa-hardware-unverified")
        .unwrap();
    assert_eq!(f["severity"], "info");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("GetMFADevice gives no certification"),
        "{f}"
    );
    let (_, v) = audit(&mut sc, &["--require-hardware-mfa"]);
    let f = v["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "user-mfa-hardware-unverified")
        .unwrap();
    assert_eq!(f["severity"], "medium");
    sc.assert_no_secret(&[]);
}

#[test]
fn the_baseline_leaves_other_trails_statements_in_a_shared_bucket() {
    let _l = proxy_lock();
    let acct = Account::new();
    let mut sc = acct.scenario();
    let bucket = format!("shared-{}", acct.id);
    block_on(acct.s3.create_bucket().bucket(&bucket).send()).expect("bucket");
    // Another trail delivers here, with the statements AWS's console writes.
    let other = format!("arn:aws:cloudtrail:us-east-1:{}:trail/security", acct.id);
    let theirs = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": format!("arn:aws:s3:::{bucket}"),
         "Condition": {"StringEquals": {"aws:SourceArn": other}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{}/*", acct.id),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": other}}}
    ]});
    block_on(
        acct.s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(theirs.to_string())
            .send(),
    )
    .expect("PutBucketPolicy");
    let b = sc
        .mfakey(&[
            "baseline",
            "cloudtrail",
            "--bucket",
            &bucket,
            "--yes",
            "--json",
        ])
        .ok();
    let change = b["baseline"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "put_bucket_policy")
        .cloned()
        .expect("a policy change");
    assert_eq!(change["kept"], 2, "{change:#}");
    assert_eq!(change["added"].as_array().unwrap().len(), 2);
    let after = block_on(acct.s3.get_bucket_policy().bucket(&bucket).send())
        .unwrap()
        .policy
        .unwrap();
    let after: Value = serde_json::from_str(&after).unwrap();
    let statements = after["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 4, "{after:#}");
    for s in theirs["Statement"].as_array().unwrap() {
        assert!(statements.contains(s), "the other trail's {s} is gone");
    }
    let again = sc
        .mfakey(&[
            "baseline",
            "cloudtrail",
            "--bucket",
            &bucket,
            "--yes",
            "--json",
        ])
        .ok();
    assert_eq!(again["baseline"]["unchanged"], true, "{again:#}");
    sc.assert_no_secret(&[]);
}
