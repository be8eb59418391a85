//! The organization's audit against in-memory accounts: listing, the role
//! per account, not-checked and skipped accounts, the bound on
//! concurrency, the summary across accounts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use super::super::org::{audit_organization, OrgError, OrgOptions, OrgReport, Outcome};
use super::{block_on, opts, Fake, State};
use crate::aws::account::*;
use crate::aws::AwsError;

const MANAGEMENT: &str = "111111111111";

struct FakeOrg {
    accounts: Vec<OrgAccount>,
    members: BTreeMap<String, Fake>,
    features: Result<Vec<String>, AwsError>,
    in_org: bool,
    /// Role assumptions under way now, and the most at once.
    in_flight: AtomicUsize,
    most: AtomicUsize,
    roles_asked: std::sync::Mutex<Vec<String>>,
}

impl FakeOrg {
    fn new() -> Self {
        FakeOrg {
            accounts: Vec::new(),
            members: BTreeMap::new(),
            features: Ok(vec![
                "RootCredentialsManagement".into(),
                "RootSessions".into(),
            ]),
            in_org: true,
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            roles_asked: Default::default(),
        }
    }

    fn add(&mut self, id: &str, name: &str, status: &str, fake: Option<Fake>) {
        self.accounts.push(OrgAccount {
            id: id.into(),
            name: name.into(),
            status: status.into(),
        });
        if let Some(f) = fake {
            f.st().account = Some(id.into());
            self.members.insert(id.into(), f);
        }
    }
}

impl OrgApi for FakeOrg {
    type Member = Fake;

    async fn organization(&self) -> Result<Organization, AwsError> {
        if !self.in_org {
            return Err(AwsError::Other {
                code: "AWSOrganizationsNotInUseException".into(),
                message: "Your account is not a member of an organization.".into(),
            });
        }
        Ok(Organization {
            id: "o-abcdefghij".into(),
            management_account: MANAGEMENT.into(),
        })
    }
    async fn accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        Ok(self.accounts.clone())
    }
    async fn root_access_features(&self) -> Result<Vec<String>, AwsError> {
        self.features.clone()
    }
    async fn caller_account(&self) -> Result<String, AwsError> {
        Ok(MANAGEMENT.into())
    }
    fn own(&self) -> Fake {
        self.members[MANAGEMENT].clone()
    }
    async fn member(&self, account: &str, role: &str) -> Result<Fake, AwsError> {
        self.roles_asked
            .lock()
            .unwrap()
            .push(format!("{account}/{role}"));
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        self.members.get(account).cloned().ok_or(AwsError::AccessDenied {
            action: "sts:AssumeRole".into(),
            message: format!("User is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{account}:role/{role}"),
        })
    }
}

fn org_opts() -> OrgOptions {
    OrgOptions {
        role_name: "OrganizationAccountAccessRole".into(),
        concurrency: 8,
        accounts: None,
        audit: opts(),
    }
}

fn run(org: &FakeOrg, o: &OrgOptions) -> Result<OrgReport, OrgError> {
    block_on(audit_organization(
        org,
        o,
        &mut |_: crate::progress::Event| {},
    ))
}

fn outcome<'a>(r: &'a OrgReport, id: &str) -> &'a Outcome {
    &r.accounts
        .iter()
        .find(|a| a.account.id == id)
        .unwrap()
        .outcome
}

fn ids(o: &Outcome) -> Vec<&'static str> {
    match o {
        Outcome::Audited { audit } => audit.findings.iter().map(|f| f.id).collect(),
        other => panic!("not audited: {other:?}"),
    }
}

/// Management (clean), a clean member without root credentials, a member
/// with a console user without MFA and no trail, a member whose role
/// cannot be assumed, and a suspended one.
fn three_states() -> FakeOrg {
    let mut org = FakeOrg::new();
    org.add(MANAGEMENT, "management", "ACTIVE", Some(Fake::clean()));
    let clean = Fake::clean();
    clean.st().summary.root_password = Some(false);
    org.add("222222222222", "clean", "ACTIVE", Some(clean));
    let noisy = Fake::clean();
    {
        let mut st: std::sync::MutexGuard<'_, State> = noisy.st();
        st.summary.root_password = Some(false);
        st.trails.clear();
        st.users.push("bob".into());
        st.report_rows.push(
            "bob,arn:aws:iam::333333333333:user/bob,true,N/A,false,false,N/A,false,N/A".into(),
        );
    }
    org.add("333333333333", "noisy", "ACTIVE", Some(noisy));
    org.add("444444444444", "unreachable", "ACTIVE", None);
    org.add("555555555555", "closed", "SUSPENDED", None);
    org
}

#[test]
fn every_account_in_its_state() {
    let org = three_states();
    let r = run(&org, &org_opts()).unwrap();
    assert_eq!(r.organization.id, "o-abcdefghij");
    assert_eq!(r.accounts.len(), 5);
    assert!(ids(outcome(&r, MANAGEMENT)).is_empty());
    assert!(ids(outcome(&r, "222222222222")).is_empty());
    assert_eq!(
        ids(outcome(&r, "333333333333")),
        ["cloudtrail-missing", "user-console-without-mfa"]
    );
    match outcome(&r, "444444444444") {
        Outcome::NotChecked { reason } => assert!(
            reason.contains("OrganizationAccountAccessRole")
                && reason.contains("could not be assumed")
                && reason.contains("trusting account 111111111111"),
            "{reason}"
        ),
        o => panic!("{o:?}"),
    }
    match outcome(&r, "555555555555") {
        Outcome::Skipped { reason } => assert!(reason.contains("SUSPENDED"), "{reason}"),
        o => panic!("{o:?}"),
    }
    // The management account is audited with the caller's own clients; a
    // suspended account is not even tried.
    let mut asked = org.roles_asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(
        asked,
        [
            "222222222222/OrganizationAccountAccessRole",
            "333333333333/OrganizationAccountAccessRole",
            "444444444444/OrganizationAccountAccessRole"
        ]
    );
    assert_eq!(r.tally(), (3, 1, 1));
    let counts = r.finding_counts();
    let summary: Vec<(&str, usize)> = counts.iter().map(|c| (c.id, c.accounts)).collect();
    assert_eq!(
        summary,
        [("cloudtrail-missing", 1), ("user-console-without-mfa", 1)]
    );
    assert!(r.any_at_or_above(super::Severity::High));
    assert!(r.incomplete(), "a not-checked account makes it incomplete");
}

#[test]
fn member_root_credentials_are_judged_with_the_organizations_features() {
    let mut org = three_states();
    org.members["222222222222"].st().summary.root_password = Some(true);
    let r = run(&org, &org_opts()).unwrap();
    assert_eq!(
        ids(outcome(&r, "222222222222")),
        ["root-credentials-present"]
    );
    // The management account's own root is expected to have credentials.
    assert!(ids(outcome(&r, MANAGEMENT)).is_empty());
    // Features unknown (refused): nothing claimed.
    org.features = Err(AwsError::AccessDenied {
        action: "iam:ListOrganizationsFeatures".into(),
        message: "no".into(),
    });
    let r = run(&org, &org_opts()).unwrap();
    assert!(ids(outcome(&r, "222222222222")).is_empty());
}

#[test]
fn the_management_accounts_organization_trail_is_credited_in_members() {
    let org = three_states();
    // The management account's trail becomes an organization trail, not
    // logging; members see it in DescribeTrails.
    let trail = {
        let mut st = org.members[MANAGEMENT].st();
        let t = &mut st.trails[0];
        t.organization = true;
        t.arn = format!("arn:aws:cloudtrail:us-east-1:{MANAGEMENT}:trail/main");
        st.logging.insert("main".into(), false);
        st.trails[0].clone()
    };
    org.members["222222222222"].st().trails = vec![trail];
    let r = run(&org, &org_opts()).unwrap();
    // Judged in the management account, and credited (with that judgement)
    // in the member, where CloudTrail would refuse the calls.
    assert_eq!(ids(outcome(&r, MANAGEMENT)), ["cloudtrail-not-logging"]);
    assert_eq!(ids(outcome(&r, "222222222222")), ["cloudtrail-not-logging"]);
    assert!(org.members["222222222222"].st().trail_calls.is_empty());
}

#[test]
fn concurrency_is_bounded() {
    let mut org = FakeOrg::new();
    org.add(MANAGEMENT, "management", "ACTIVE", Some(Fake::clean()));
    for i in 0..20 {
        org.add(
            &format!("{:012}", 900_000_000_000u64 + i),
            "m",
            "ACTIVE",
            Some(Fake::clean()),
        );
    }
    let mut o = org_opts();
    o.concurrency = 3;
    let r = run(&org, &o).unwrap();
    assert_eq!(r.tally(), (21, 0, 0));
    assert_eq!(org.most.load(SeqCst), 3, "at most 3 at once, and 3 reached");
    o.concurrency = 1;
    org.most.store(0, SeqCst);
    run(&org, &o).unwrap();
    assert_eq!(org.most.load(SeqCst), 1);
}

#[test]
fn chosen_accounts_and_refusals() {
    let org = three_states();
    let mut o = org_opts();
    o.accounts = Some(vec!["333333333333".into()]);
    let r = run(&org, &o).unwrap();
    assert_eq!(r.accounts.len(), 1);
    assert!(!r.incomplete());
    o.accounts = Some(vec!["333333333333".into(), "999999999999".into()]);
    let e = run(&org, &o).unwrap_err();
    assert!(matches!(e, OrgError::UnknownAccounts { .. }), "{e}");
    assert!(e.to_string().contains("999999999999"));

    let mut org = three_states();
    org.in_org = false;
    let e = run(&org, &org_opts()).unwrap_err();
    assert!(matches!(e, OrgError::NotInOrganization { .. }), "{e}");
    assert!(e.to_string().contains("without --organization"));
}
