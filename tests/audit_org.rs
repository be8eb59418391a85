//! `mfakey audit --organization` end to end: an AWS Organization built in
//! moto (create organization, create accounts; STS AssumeRole across them),
//! with the proxy playing what moto lacks (root credentials in
//! GetAccountSummary, ListOrganizationsFeatures, organization trails seen
//! from members, AssumeRole of a role that does not exist; see
//! tests/support/iam_proxy_accounts.py). Text, JSON and the HTML page,
//! the last read back from a real headless chromium.

#[path = "support/browser.rs"]
mod browser;
mod common;
#[path = "support/iam_env.rs"]
mod iam_env;
#[path = "support/moto_account.rs"]
mod moto_account;

use std::collections::BTreeSet;

use aws_sdk_organizations::types::OrganizationFeatureSet as FeatureSet;
use common::Scenario;
use iam_env::{block_on, control, proxy_lock};
use moto_account::Account;
use serde_json::{json, Value};

const ROLE: &str = "OrganizationAccountAccessRole";

fn proxy(path: &str, body: Value) {
    let (status, text) = control("POST", path, &body.to_string());
    assert_eq!(status, 200, "{path}: {text}");
}

/// An organization whose management account is a fresh moto account, with
/// trusted access for IAM and centralized root credentials management on.
fn organization(mgmt: &Account) {
    block_on(
        mgmt.orgs
            .create_organization()
            .feature_set(FeatureSet::All)
            .send(),
    )
    .expect("CreateOrganization");
    block_on(
        mgmt.orgs_proxied
            .enable_aws_service_access()
            .service_principal("iam.amazonaws.com")
            .send(),
    )
    .expect("EnableAWSServiceAccess iam");
    block_on(
        mgmt.iam_proxied
            .enable_organizations_root_credentials_management()
            .send(),
    )
    .expect("EnableOrganizationsRootCredentialsManagement");
}

fn create_account(mgmt: &Account, name: &str) -> String {
    let out = block_on(
        mgmt.orgs
            .create_account()
            .account_name(name)
            .email(format!("{name}-{}@example.com", mgmt.id))
            .send(),
    )
    .expect("CreateAccount");
    out.create_account_status
        .and_then(|s| s.account_id)
        .expect("account id")
}

/// Administrators through a group (moto lacks AWS's managed policies: a
/// customer policy allowing * on *).
fn admin_group(a: &Account, user: &str) {
    let doc =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let arn = block_on(
        a.iam
            .create_policy()
            .policy_name("everything")
            .policy_document(doc)
            .send(),
    )
    .expect("CreatePolicy")
    .policy
    .and_then(|p| p.arn)
    .expect("arn");
    block_on(a.iam.create_group().group_name("admins").send()).expect("CreateGroup");
    block_on(
        a.iam
            .attach_group_policy()
            .group_name("admins")
            .policy_arn(arn)
            .send(),
    )
    .expect("AttachGroupPolicy");
    a.create_user(user);
    block_on(
        a.iam
            .add_user_to_group()
            .group_name("admins")
            .user_name(user)
            .send(),
    )
    .expect("AddUserToGroup");
}

struct Org {
    mgmt: Account,
    clean: String,
    noisy: String,
    locked: String,
    closed: String,
}

/// Management (root password, no MFA, no trail, no administrator), a clean
/// member (no root credentials, an administrator through a group, its own
/// trail homed in eu-west-1), a noisy one (root password, a console user
/// without MFA, no trail), one whose role is gone, and a closed one.
fn three_states() -> Org {
    let mgmt = Account::new();
    organization(&mgmt);
    let [clean, noisy, locked, closed] =
        ["clean", "noisy", "locked", "closed"].map(|n| create_account(&mgmt, n));
    block_on(mgmt.orgs.close_account().account_id(&closed).send()).expect("CloseAccount");
    proxy(
        "/__proxy__/assume_role_checks",
        json!({"accounts": [&clean, &noisy, &locked, &closed]}),
    );

    proxy(
        "/__proxy__/root_credentials",
        json!({"account": &clean, "AccountPasswordPresent": 0}),
    );
    let c = Account::assume(&clean, ROLE);
    admin_group(&c, "admin");
    c.good_trail("main", "eu-west-1", false);

    let n = Account::assume(&noisy, ROLE);
    n.create_user("bob");
    block_on(
        n.iam
            .create_login_profile()
            .user_name("bob")
            .password("Correct-Horse-9")
            .send(),
    )
    .expect("CreateLoginProfile");

    let l = Account::assume(&locked, ROLE);
    block_on(l.iam.delete_role().role_name(ROLE).send()).expect("DeleteRole");
    Org {
        mgmt,
        clean,
        noisy,
        locked,
        closed,
    }
}

fn account<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["organization"]["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["account_id"] == id)
        .unwrap_or_else(|| panic!("no account {id}: {v:#}"))
}

fn ids(a: &Value) -> Vec<String> {
    let mut ids: Vec<String> = a["audit"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["id"].as_str().unwrap(),
                f["subject"].as_str().unwrap_or("")
            )
        })
        .collect();
    ids.sort();
    ids
}

fn check<'a>(a: &'a Value, name: &str) -> &'a Value {
    a["audit"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn an_organization_of_accounts_in_different_states() {
    let _l = proxy_lock();
    let org = three_states();
    let mut sc = org.mgmt.scenario();
    let page = sc.dir().join("report.html");
    let run = sc.mfakey(&[
        "audit",
        "--organization",
        "--json",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(8), "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    let o = &v["organization"];
    assert_eq!(o["result"], "fail");
    assert_eq!(o["management_account"], org.mgmt.id.as_str());
    assert_eq!(
        o["root_access"]["enabled_features"],
        json!(["RootCredentialsManagement"])
    );

    let mgmt = account(&v, &org.mgmt.id);
    assert_eq!(mgmt["status"], "audited");
    assert_eq!(
        ids(mgmt),
        [
            "cloudtrail-missing ",
            "no-admin-besides-root ",
            "root-mfa-missing <root_account>"
        ],
        "{mgmt:#}"
    );

    let clean = account(&v, &org.clean);
    assert_eq!(ids(clean), Vec::<String>::new(), "{clean:#}");
    let root = check(clean, "root-mfa");
    assert_eq!(root["status"], "passed");
    assert!(
        root["detail"].as_str().unwrap().contains("not applicable"),
        "{root}"
    );
    // Its trail is homed in eu-west-1, and read there.
    assert_eq!(check(clean, "cloudtrail")["status"], "passed", "{clean:#}");

    let noisy = account(&v, &org.noisy);
    assert_eq!(
        ids(noisy),
        [
            "cloudtrail-missing ",
            "no-admin-besides-root ",
            "root-credentials-present <root_account>",
            "root-mfa-missing <root_account>",
            "user-console-without-mfa bob",
        ],
        "{noisy:#}"
    );
    let f = &noisy["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "user-console-without-mfa")
        .unwrap()["references"];
    assert_eq!(
        f,
        &json!({"cis": "2.10", "security_hub": "IAM.5", "prowler": "iam_user_mfa_enabled_console_access"})
    );

    let locked = account(&v, &org.locked);
    assert_eq!(locked["status"], "not_checked", "{locked:#}");
    let reason = locked["reason"].as_str().unwrap();
    assert!(
        reason.contains(ROLE) && reason.contains("could not be assumed"),
        "{reason}"
    );
    let closed = account(&v, &org.closed);
    assert_eq!(closed["status"], "skipped");
    assert!(closed["reason"].as_str().unwrap().contains("SUSPENDED"));

    let s = &o["summary"];
    assert_eq!(
        (
            &s["accounts"],
            &s["audited"],
            &s["not_checked"],
            &s["skipped"]
        ),
        (&json!(5), &json!(3), &json!(1), &json!(1))
    );
    let counts: Vec<(String, u64)> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["accounts"].as_u64().unwrap(),
            )
        })
        .collect();
    for (id, n) in [
        ("root-mfa-missing", 2),
        ("no-admin-besides-root", 2),
        ("cloudtrail-missing", 2),
        ("root-credentials-present", 1),
        ("user-console-without-mfa", 1),
    ] {
        assert!(
            counts.contains(&(id.to_string(), n)),
            "{id} {n}: {counts:?}"
        );
    }

    the_page_shows_what_the_json_says(&page, &v);

    // The text form: the account table, the summary across accounts, each
    // audited account; progress on stderr (a line per account with -v when
    // stderr is no terminal).
    let text = sc.mfakey(&["audit", "--organization", "-v"]);
    assert_eq!(text.code, Some(8));
    assert!(
        text.stderr
            .contains("auditing 5 account(s) of organization o-")
            && text.stderr.contains("[5/5] "),
        "{}",
        text.stderr
    );
    for needle in [
        "ORGANIZATION o-",
        "centralized root access: RootCredentialsManagement enabled",
        "NOT CHECKED",
        "SKIPPED",
        "FINDINGS ACROSS ACCOUNTS",
        &format!("== account {}", org.noisy),
        "summary: 5 accounts (3 audited, 1 not checked, 1 skipped)",
    ] {
        assert!(text.stdout.contains(needle), "{needle}:\n{}", text.stdout);
    }

    // Exit codes over the chosen accounts: a clean account under moto is
    // incomplete (moto's credential report has no root row), as is one
    // not checked.
    for only in [&org.clean, &org.locked] {
        let (code, v) = audit_json(&mut sc, &["--accounts", only]);
        assert_eq!(code, Some(9), "{v:#}");
        assert_eq!(v["organization"]["result"], "incomplete");
        assert_eq!(v["organization"]["accounts"].as_array().unwrap().len(), 1);
    }
    let (code, _) = audit_json(&mut sc, &["--accounts", &org.closed]);
    assert_eq!(code, Some(0), "a skipped account fails nothing");
    sc.assert_no_secret(&[]);
    let secret = common::Seed::from_bytes(org.mgmt.secret.as_bytes());
    assert!(
        sc.scan.find(&secret).is_empty(),
        "the secret access key is in mfakey's output"
    );
}

fn audit_json(sc: &mut Scenario, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["audit", "--organization", "--json"];
    args.extend_from_slice(extra);
    let run = sc.mfakey(&args);
    let v = run.json();
    assert!(v.get("error").is_none(), "{}\n{}", run.stdout, run.stderr);
    (run.code, v)
}

/// The accounts of a report: an organization's, or the one account of a
/// single audit.
fn report_accounts(v: &Value) -> Vec<Value> {
    match v.get("organization") {
        Some(o) => o["accounts"].as_array().unwrap().clone(),
        None => vec![
            json!({"account_id": v["audit"]["account_id"], "status": "audited", "audit": v["audit"]}),
        ],
    }
}

/// Every account, finding and count the JSON has, the page shows, laid
/// out and visible, in chromium; and the page fetches nothing.
fn the_page_shows_what_the_json_says(page: &std::path::Path, v: &Value) {
    let html = std::fs::read_to_string(page).expect("the page was written");
    for bad in ["http:", "https:", "src=\"", "<link", "url("] {
        assert!(!html.contains(bad), "the page names a resource ({bad})");
    }
    let dom = browser::dump_dom(page);
    assert_eq!(
        browser::root_attr(&dom, "data-rendered"),
        "yes",
        "the script ran (its CSP hash holds)"
    );

    let mut want = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    let all = report_accounts(v);
    for a in &all {
        let id = a["account_id"].as_str().unwrap().to_string();
        accounts.insert((id.clone(), a["status"].as_str().unwrap().to_string()));
        for f in a["audit"]["findings"].as_array().into_iter().flatten() {
            want.insert((
                id.clone(),
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let shown: BTreeSet<(String, String, String, String)> =
        browser::elements(&dom, "article", "finding")
            .iter()
            .map(|a| {
                let get = |k| browser::attr(a, k).to_string();
                (
                    get("data-account"),
                    get("data-id"),
                    get("data-severity"),
                    get("data-subject"),
                )
            })
            .collect();
    assert!(!want.is_empty());
    assert_eq!(shown, want);
    let total: usize = all
        .iter()
        .map(|a| a["audit"]["findings"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        browser::root_attr(&dom, "data-visible-findings"),
        total.to_string(),
        "every finding is laid out and visible"
    );
    let rows: BTreeSet<(String, String)> = browser::elements(&dom, "tr", "account-row")
        .iter()
        .map(|a| {
            (
                browser::attr(a, "data-account").to_string(),
                browser::attr(a, "data-status").to_string(),
            )
        })
        .collect();
    assert_eq!(rows, accounts);
    let counts: BTreeSet<(String, String)> = browser::elements(&dom, "tr", "finding-count")
        .iter()
        .map(|a| {
            (
                browser::attr(a, "data-id").to_string(),
                browser::attr(a, "data-accounts").to_string(),
            )
        })
        .collect();
    let want_counts: BTreeSet<(String, String)> = v
        .pointer("/organization/summary/findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["accounts"].to_string(),
            )
        })
        .collect();
    assert_eq!(counts, want_counts);
    // The reasons of the accounts not audited are on the page.
    for a in &all {
        if let Some(reason) = a["reason"].as_str() {
            let words = reason.split(' ').take(4).collect::<Vec<_>>().join(" ");
            assert!(dom.contains(&words), "{words}");
        }
    }
}

#[test]
fn the_organization_trail_is_credited_in_member_accounts() {
    let _l = proxy_lock();
    let mgmt = Account::new();
    organization(&mgmt);
    let member = create_account(&mgmt, "member");
    proxy(
        "/__proxy__/root_credentials",
        json!({"account": &member, "AccountPasswordPresent": 0}),
    );
    // The organization trail, homed in us-west-2, into a bucket anyone may
    // read.
    let bucket = mgmt.good_trail("org", "us-west-2", true);
    block_on(
        mgmt.s3_in("us-west-2")
            .put_bucket_acl()
            .bucket(&bucket)
            .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
            .send(),
    )
    .expect("PutBucketAcl");
    admin_group(&Account::assume(&member, ROLE), "admin");

    let mut sc = mgmt.scenario();
    let (_, v) = audit_json(&mut sc, &[]);
    // The management account reads its trail in its home region and finds
    // the bucket public.
    let m = account(&v, &mgmt.id);
    assert!(
        ids(m).contains(&"cloudtrail-bucket-public org".to_string()),
        "{m:#}"
    );
    let f = m["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cloudtrail-bucket-public")
        .unwrap();
    assert_eq!(f["severity"], "critical");
    assert!(
        f["evidence"].as_str().unwrap().contains("AllUsers: READ"),
        "{f}"
    );
    // The member sees the trail (CloudTrail refuses it the trail's status
    // and selectors): credited, with what the management account read.
    let a = account(&v, &member);
    assert_eq!(ids(a), Vec::<String>::new(), "{a:#}");
    let c = check(a, "cloudtrail");
    assert_eq!(c["status"], "passed");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("organization trail org of account {}", mgmt.id)),
        "{detail}"
    );

    sc.assert_no_secret(&[]);

    // Audited alone (no organization run), the member still credits it.
    let alone = Account::assume(&member, ROLE);
    let mut sc = alone.scenario();
    let run = sc.mfakey(&["audit", "--json"]);
    let v = run.json();
    let c = v["audit"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "cloudtrail")
        .unwrap();
    assert_eq!(c["status"], "passed", "{v:#}");
    sc.assert_no_secret(&[]);
}

#[test]
fn organization_flags_are_checked_before_anything_runs() {
    let acct = Account::new();
    let mut sc = acct.scenario();
    for (args, needle) in [
        (
            vec!["audit", "--role-name", "x", "--json"],
            "--organization",
        ),
        (
            vec!["audit", "--organization", "--accounts", "12345", "--json"],
            "12 digits",
        ),
        (
            vec!["audit", "--organization", "--concurrency", "0", "--json"],
            "0",
        ),
        (
            vec!["audit", "--organization", "--role-name", "a b", "--json"],
            "role name",
        ),
    ] {
        let run = sc.mfakey(&args);
        run.err(2, "invalid_argument");
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
    // A page that could not be written is refused before anything runs.
    let run = sc.mfakey(&[
        "audit",
        "--html",
        "/nonexistent-mfakey-dir/page.html",
        "--json",
    ]);
    let msg = run.err(2, "invalid_argument");
    assert!(msg.contains("/nonexistent-mfakey-dir"), "{msg}");
    // An account outside any organization is told so.
    let run = sc.mfakey(&["audit", "--organization", "--json"]);
    let msg = run.err(5, "refused");
    assert!(msg.contains("not in an AWS Organization"), "{msg}");
    sc.assert_no_secret(&[]);
}

#[test]
fn the_page_of_one_account() {
    let acct = Account::new();
    acct.create_user("bob");
    block_on(
        acct.iam
            .create_login_profile()
            .user_name("bob")
            .password("Correct-Horse-9")
            .send(),
    )
    .expect("CreateLoginProfile");
    let mut sc = acct.scenario();
    let page = sc.dir().join("one.html");
    let run = sc.mfakey(&["audit", "--json", "--html", page.to_str().unwrap()]);
    assert_eq!(run.code, Some(8), "{}", run.stderr);
    let v = run.json();
    assert_eq!(v["audit"]["account_id"], acct.id.as_str());
    the_page_shows_what_the_json_says(&page, &v);
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(sc.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    sc.assert_no_secret(&[]);
}
