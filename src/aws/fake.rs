//! An in-memory IAM for the job folders' unit tests.
//!
//! It behaves like AWS where moto does not: EnableMFADevice checks that the
//! two codes are the consecutive TOTP codes (T-1, T) of the seed it issued,
//! with T within ±1 step of its clock, and answers `InvalidAuthenticationCode`
//! otherwise; a code once accepted for a device is refused after (the next
//! pair must start after the last accepted step), for ResyncMFADevice too;
//! a device still enabled cannot be deleted (`DeleteConflict`); a user
//! holds at most 8 MFA devices. Failures can be scripted per call and
//! every call is recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::aws::iam::{CreatedDevice, IamApi, MfaDevice, User, VirtualMfaDevice};
use crate::aws::totp::{matching_step, step_at};
use crate::aws::AwsError;
use crate::secret::SecretBytes;

/// Most MFA devices an IAM user can have.
pub const MAX_MFA_DEVICES_PER_USER: usize = 8;

/// Steps either side of the fake's clock within which a code pair is accepted.
pub const CODE_WINDOW_STEPS: u64 = 1;

/// Bytes of the seeds the fake issues (AWS issues 40: 64 base32 characters).
pub const SEED_LEN: usize = 40;

/// The operations of [`IamApi`], to script failures by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    GetUser,
    ListMfaDevices,
    ListVirtualMfaDevices,
    CreateVirtualMfaDevice,
    EnableMfaDevice,
    ResyncMfaDevice,
    DeactivateMfaDevice,
    DeleteVirtualMfaDevice,
    MfaDeviceTags,
    CreateUser,
    AddUserToGroup,
    AccountAlias,
    AccountSummary,
    MfaDevice,
    ServerTime,
}

/// A recorded call with its arguments (codes included: they are not seeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    GetUser {
        name: String,
    },
    ListMfaDevices {
        user: String,
    },
    ListVirtualMfaDevices {
        unassigned_only: bool,
    },
    CreateVirtualMfaDevice {
        name: String,
        path: String,
        tags: Vec<(String, String)>,
    },
    EnableMfaDevice {
        user: String,
        serial: String,
        code1: String,
        code2: String,
    },
    ResyncMfaDevice {
        user: String,
        serial: String,
        code1: String,
        code2: String,
    },
    DeactivateMfaDevice {
        user: String,
        serial: String,
    },
    DeleteVirtualMfaDevice {
        serial: String,
    },
    MfaDeviceTags {
        serial: String,
    },
    CreateUser {
        name: String,
        tags: Vec<(String, String)>,
    },
    AddUserToGroup {
        user: String,
        group: String,
    },
    AccountAlias,
    AccountSummary,
    MfaDevice {
        serial: String,
    },
    ServerTime,
}

impl Call {
    pub fn op(&self) -> Op {
        match self {
            Call::GetUser { .. } => Op::GetUser,
            Call::ListMfaDevices { .. } => Op::ListMfaDevices,
            Call::ListVirtualMfaDevices { .. } => Op::ListVirtualMfaDevices,
            Call::CreateVirtualMfaDevice { .. } => Op::CreateVirtualMfaDevice,
            Call::EnableMfaDevice { .. } => Op::EnableMfaDevice,
            Call::ResyncMfaDevice { .. } => Op::ResyncMfaDevice,
            Call::DeactivateMfaDevice { .. } => Op::DeactivateMfaDevice,
            Call::DeleteVirtualMfaDevice { .. } => Op::DeleteVirtualMfaDevice,
            Call::MfaDeviceTags { .. } => Op::MfaDeviceTags,
            Call::CreateUser { .. } => Op::CreateUser,
            Call::AddUserToGroup { .. } => Op::AddUserToGroup,
            Call::AccountAlias => Op::AccountAlias,
            Call::AccountSummary => Op::AccountSummary,
            Call::MfaDevice { .. } => Op::MfaDevice,
            Call::ServerTime => Op::ServerTime,
        }
    }
}

#[derive(Debug)]
struct Fault {
    op: Op,
    first: usize,
    last: Option<usize>,
    error: AwsError,
    /// The call takes effect, then its answer is lost (the error returned).
    after_effect: bool,
}

#[derive(Debug)]
struct Device {
    /// `None` for devices that are not virtual MFA (FIDO keys, hardware TOTP).
    seed: Option<SecretBytes>,
    user: Option<String>,
    enable_date: Option<SystemTime>,
    tags: Vec<(String, String)>,
    /// The step of the last code AWS accepted for it: no code of that step
    /// or an earlier one is accepted again.
    last_step: Option<u64>,
}

#[derive(Debug)]
struct State {
    account_id: String,
    alias: Option<String>,
    caller: Option<String>,
    users: BTreeMap<String, ()>,
    user_tags: BTreeMap<String, Vec<(String, String)>>,
    /// Group name → members.
    groups: BTreeMap<String, Vec<String>>,
    devices: BTreeMap<String, Device>,
    calls: Vec<Call>,
    counts: HashMap<Op, usize>,
    faults: Vec<Fault>,
    now: Option<SystemTime>,
    server_skew_secs: i64,
    /// GetMFADevice certifications per serial.
    certifications: BTreeMap<String, Vec<(String, String)>>,
    /// GetAccountSummary answers `AccountMFAEnabled` 1 from this call on (1-based).
    root_mfa_from_call: Option<usize>,
}

/// In-memory IAM (see the module documentation).
#[derive(Debug)]
pub struct FakeIam {
    state: Mutex<State>,
}

impl Default for FakeIam {
    fn default() -> Self {
        Self::new()
    }
}

enum Gate {
    Proceed,
    FailNow(AwsError),
    FailAfter(AwsError),
}

impl FakeIam {
    /// An empty account `123456789012`, no users, the real clock.
    pub fn new() -> Self {
        FakeIam {
            state: Mutex::new(State {
                account_id: "123456789012".to_string(),
                alias: None,
                caller: None,
                users: BTreeMap::new(),
                user_tags: BTreeMap::new(),
                groups: BTreeMap::new(),
                devices: BTreeMap::new(),
                calls: Vec::new(),
                counts: HashMap::new(),
                faults: Vec::new(),
                now: None,
                server_skew_secs: 0,
                root_mfa_from_call: None,
                certifications: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an IAM user and returns it.
    pub fn add_user(&self, name: &str) -> User {
        let mut s = self.lock();
        s.users.insert(name.to_string(), ());
        user_of(&s.account_id, name)
    }

    /// Adds an IAM group (no members).
    pub fn add_group(&self, name: &str) {
        self.lock().groups.insert(name.to_string(), Vec::new());
    }

    /// The groups `user` is a member of.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let s = self.lock();
        s.groups
            .iter()
            .filter(|(_, m)| m.iter().any(|u| u == user))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// The tags a user was created with.
    pub fn user_tags(&self, user: &str) -> Vec<(String, String)> {
        self.lock().user_tags.get(user).cloned().unwrap_or_default()
    }

    /// Makes `name` (added with [`Self::add_user`]) the caller that
    /// `get_user("")` returns.
    pub fn set_caller(&self, name: &str) {
        self.lock().caller = Some(name.to_string());
    }

    pub fn set_alias(&self, alias: Option<&str>) {
        self.lock().alias = alias.map(str::to_string);
    }

    /// Assigns a non-virtual MFA device (a FIDO key, say) to `user`; it
    /// counts toward the 8-device limit.
    pub fn add_other_mfa_device(&self, user: &str, serial: &str) {
        self.lock().devices.insert(
            serial.to_string(),
            Device {
                seed: None,
                user: Some(user.to_string()),
                enable_date: Some(SystemTime::now()),
                tags: Vec::new(),
                last_step: None,
            },
        );
    }

    /// The certifications GetMFADevice reports for `serial`.
    pub fn set_certifications(&self, serial: &str, certs: &[(&str, &str)]) {
        self.lock().certifications.insert(
            serial.to_string(),
            certs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// The root user's MFA shows as enabled from the `nth` (1-based)
    /// GetAccountSummary on (`Some(1)`: already enabled; `None`: never),
    /// as if someone finished the console step meanwhile.
    pub fn set_root_mfa_from_call(&self, nth: Option<usize>) {
        self.lock().root_mfa_from_call = nth;
    }

    /// Fixes the fake's clock (default: the real clock).
    pub fn set_now(&self, now: SystemTime) {
        self.lock().now = Some(now);
    }

    /// Moves IAM's clock by `secs` from the fake's clock: `server_time` and
    /// the code check both use the moved clock.
    pub fn set_server_skew(&self, secs: i64) {
        self.lock().server_skew_secs = secs;
    }

    /// IAM's clock as the fake sees it.
    pub fn server_now(&self) -> SystemTime {
        server_now(&self.lock())
    }

    /// The `nth` (1-based) call of `op` fails with `error`, doing nothing.
    pub fn fail_nth(&self, op: Op, nth: usize, error: AwsError) {
        self.push_fault(op, nth, Some(nth), error, false);
    }

    /// The `nth` call of `op` and every later one fail with `error` (an
    /// endpoint gone for good).
    pub fn fail_from(&self, op: Op, nth: usize, error: AwsError) {
        self.push_fault(op, nth, None, error, false);
    }

    /// The `nth` call of `op` takes effect, but its answer is lost: `error`
    /// is returned (the connection dropped after IAM acted).
    pub fn lose_answer_nth(&self, op: Op, nth: usize, error: AwsError) {
        self.push_fault(op, nth, Some(nth), error, true);
    }

    fn push_fault(&self, op: Op, first: usize, last: Option<usize>, error: AwsError, after: bool) {
        self.lock().faults.push(Fault {
            op,
            first,
            last,
            error,
            after_effect: after,
        });
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls of one operation, in order.
    pub fn calls_of(&self, op: Op) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op() == op).collect()
    }

    /// The seed issued for a virtual device (what a card would hold).
    pub fn seed_of(&self, serial: &str) -> Option<SecretBytes> {
        self.lock().devices.get(serial).and_then(|d| d.seed.clone())
    }

    /// Whether a device of that serial exists.
    pub fn device_exists(&self, serial: &str) -> bool {
        self.lock().devices.contains_key(serial)
    }

    /// The user a device is enabled for.
    pub fn assigned_user(&self, serial: &str) -> Option<String> {
        self.lock().devices.get(serial).and_then(|d| d.user.clone())
    }

    /// Records the call and decides whether a scripted failure applies.
    fn enter(&self, call: Call) -> Gate {
        let mut s = self.lock();
        let op = call.op();
        s.calls.push(call);
        let n = {
            let c = s.counts.entry(op).or_insert(0);
            *c += 1;
            *c
        };
        let hit = s
            .faults
            .iter()
            .find(|f| f.op == op && n >= f.first && f.last.is_none_or(|l| n <= l));
        match hit {
            Some(f) if f.after_effect => Gate::FailAfter(f.error.clone()),
            Some(f) => Gate::FailNow(f.error.clone()),
            None => Gate::Proceed,
        }
    }

    /// Runs `effect` unless a scripted failure says otherwise.
    fn run<T>(
        &self,
        call: Call,
        effect: impl FnOnce(&mut State) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        match self.enter(call) {
            Gate::FailNow(e) => Err(e),
            Gate::FailAfter(e) => {
                let _ = effect(&mut self.lock());
                Err(e)
            }
            Gate::Proceed => effect(&mut self.lock()),
        }
    }
}

fn server_now(s: &State) -> SystemTime {
    let now = s.now.unwrap_or_else(SystemTime::now);
    let skew = Duration::from_secs(s.server_skew_secs.unsigned_abs());
    if s.server_skew_secs >= 0 {
        now + skew
    } else {
        now.checked_sub(skew).unwrap_or(now)
    }
}

fn user_of(account_id: &str, name: &str) -> User {
    User {
        name: name.to_string(),
        arn: format!("arn:aws:iam::{account_id}:user/{name}"),
        account_id: account_id.to_string(),
    }
}

fn no_such(message: String) -> AwsError {
    AwsError::NoSuchEntity { message }
}

fn validation(message: String) -> AwsError {
    AwsError::Other {
        code: "ValidationError".to_string(),
        message,
    }
}

/// The step T of a pair (T-1, T) of `seed`'s codes within the window of
/// `now_step`, none of whose steps was accepted before (`last`).
fn fresh_step(
    seed: &SecretBytes,
    last: Option<u64>,
    code1: &str,
    code2: &str,
    now_step: u64,
) -> Option<u64> {
    let low = now_step.saturating_sub(CODE_WINDOW_STEPS).max(1);
    (low..=now_step + CODE_WINDOW_STEPS)
        .filter(|t| last.is_none_or(|l| t - 1 > l))
        .find(|&t| matching_step(seed, code1, code2, t, 0).is_some())
}

fn check_user(s: &State, user: &str) -> Result<(), AwsError> {
    if s.users.contains_key(user) {
        Ok(())
    } else {
        Err(no_such(format!(
            "The user with name {user} cannot be found."
        )))
    }
}

fn new_seed() -> Result<SecretBytes, AwsError> {
    let mut bytes = vec![0u8; SEED_LEN];
    getrandom::fill(&mut bytes).map_err(|e| AwsError::Other {
        code: "ServiceFailure".to_string(),
        message: format!("the fake could not draw random bytes: {e}"),
    })?;
    Ok(SecretBytes::new(bytes))
}

impl IamApi for FakeIam {
    async fn create_user(&self, name: &str, tags: &[(String, String)]) -> Result<User, AwsError> {
        let call = Call::CreateUser {
            name: name.to_string(),
            tags: tags.to_vec(),
        };
        self.run(call, |s| {
            if s.users.contains_key(name) {
                return Err(AwsError::EntityAlreadyExists {
                    message: format!("User with name {name} already exists."),
                });
            }
            s.users.insert(name.to_string(), ());
            s.user_tags.insert(name.to_string(), tags.to_vec());
            Ok(user_of(&s.account_id, name))
        })
    }

    async fn add_user_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        let call = Call::AddUserToGroup {
            user: user.to_string(),
            group: group.to_string(),
        };
        self.run(call, |s| {
            check_user(s, user)?;
            let members = s
                .groups
                .get_mut(group)
                .ok_or_else(|| no_such(format!("The group with name {group} cannot be found.")))?;
            if !members.iter().any(|m| m == user) {
                members.push(user.to_string());
            }
            Ok(())
        })
    }

    async fn get_user(&self, name: &str) -> Result<User, AwsError> {
        let call = Call::GetUser {
            name: name.to_string(),
        };
        self.run(call, |s| {
            let name = if name.is_empty() {
                s.caller
                    .clone()
                    .ok_or_else(|| validation("the caller is not an IAM user".into()))?
            } else {
                name.to_string()
            };
            check_user(s, &name)?;
            Ok(user_of(&s.account_id, &name))
        })
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let call = Call::ListMfaDevices {
            user: user.to_string(),
        };
        self.run(call, |s| {
            check_user(s, user)?;
            Ok(s.devices
                .iter()
                .filter(|(_, d)| d.user.as_deref() == Some(user))
                .map(|(serial, d)| MfaDevice {
                    serial: serial.clone(),
                    enable_date: d.enable_date,
                })
                .collect())
        })
    }

    async fn list_virtual_mfa_devices(
        &self,
        unassigned_only: bool,
    ) -> Result<Vec<VirtualMfaDevice>, AwsError> {
        self.run(Call::ListVirtualMfaDevices { unassigned_only }, |s| {
            Ok(s.devices
                .iter()
                .filter(|(_, d)| d.seed.is_some() && (!unassigned_only || d.user.is_none()))
                // Like AWS: the listing carries no tags (ListMFADeviceTags does).
                .map(|(serial, d)| VirtualMfaDevice {
                    serial: serial.clone(),
                    user: d.user.clone(),
                    tags: Vec::new(),
                })
                .collect())
        })
    }

    async fn create_virtual_mfa_device(
        &self,
        name: &str,
        path: &str,
        tags: &[(String, String)],
    ) -> Result<CreatedDevice, AwsError> {
        let call = Call::CreateVirtualMfaDevice {
            name: name.to_string(),
            path: path.to_string(),
            tags: tags.to_vec(),
        };
        self.run(call, |s| {
            let name_ok = !name.is_empty()
                && name.len() <= 226
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
            if !name_ok {
                return Err(validation(format!(
                    "VirtualMFADeviceName {name:?} must match [\\w+=,.@-]+"
                )));
            }
            if !(path.starts_with('/') && path.ends_with('/')) {
                return Err(validation(format!(
                    "Path {path:?} must begin and end with /"
                )));
            }
            let serial = format!("arn:aws:iam::{}:mfa{path}{name}", s.account_id);
            // Names are unique within the account, whatever the path.
            let suffix = format!("/{name}");
            if s.devices
                .keys()
                .any(|k| k.ends_with(&suffix) && k.contains(":mfa/"))
            {
                return Err(AwsError::EntityAlreadyExists {
                    message: "MFADevice entity at the same path and name already exists."
                        .to_string(),
                });
            }
            let seed = new_seed()?;
            s.devices.insert(
                serial.clone(),
                Device {
                    seed: Some(seed.clone()),
                    user: None,
                    enable_date: None,
                    tags: tags.to_vec(),
                    last_step: None,
                },
            );
            Ok(CreatedDevice { serial, seed })
        })
    }

    async fn enable_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        let call = Call::EnableMfaDevice {
            user: user.to_string(),
            serial: serial.to_string(),
            code1: code1.to_string(),
            code2: code2.to_string(),
        };
        self.run(call, |s| {
            check_user(s, user)?;
            let now = server_now(s);
            let in_use = s
                .devices
                .values()
                .filter(|d| d.user.as_deref() == Some(user))
                .count();
            let device = s.devices.get_mut(serial).ok_or_else(|| {
                no_such(format!(
                    "VirtualMFADevice with serial number {serial} doesn't exist."
                ))
            })?;
            let seed = device
                .seed
                .as_ref()
                .ok_or_else(|| no_such(format!("{serial} is not a virtual MFA device.")))?;
            if device.user.is_some() {
                return Err(AwsError::EntityAlreadyExists {
                    message: format!("MFA device {serial} is already in use."),
                });
            }
            if in_use >= MAX_MFA_DEVICES_PER_USER {
                return Err(AwsError::LimitExceeded {
                    message: format!("User {user} already has {in_use} MFA devices."),
                });
            }
            let step = fresh_step(seed, device.last_step, code1, code2, step_at(now))
                .ok_or(AwsError::InvalidAuthenticationCode)?;
            device.user = Some(user.to_string());
            device.enable_date = Some(now);
            device.last_step = Some(step);
            Ok(())
        })
    }

    async fn resync_mfa_device(
        &self,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), AwsError> {
        let call = Call::ResyncMfaDevice {
            user: user.to_string(),
            serial: serial.to_string(),
            code1: code1.to_string(),
            code2: code2.to_string(),
        };
        self.run(call, |s| {
            check_user(s, user)?;
            let now = server_now(s);
            let device = s
                .devices
                .get_mut(serial)
                .filter(|d| d.user.as_deref() == Some(user))
                .ok_or_else(|| {
                    no_such(format!(
                        "MFA device {serial} is not enabled for user {user}."
                    ))
                })?;
            let seed = device
                .seed
                .as_ref()
                .ok_or_else(|| no_such(format!("{serial} is not a virtual MFA device.")))?;
            let step = fresh_step(seed, device.last_step, code1, code2, step_at(now))
                .ok_or(AwsError::InvalidAuthenticationCode)?;
            device.last_step = Some(step);
            Ok(())
        })
    }

    async fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), AwsError> {
        let call = Call::DeactivateMfaDevice {
            user: user.to_string(),
            serial: serial.to_string(),
        };
        self.run(call, |s| {
            check_user(s, user)?;
            let device = s
                .devices
                .get_mut(serial)
                .filter(|d| d.user.as_deref() == Some(user))
                .ok_or_else(|| {
                    no_such(format!(
                        "MFA device {serial} is not enabled for user {user}."
                    ))
                })?;
            if device.seed.is_none() {
                s.devices.remove(serial);
            } else {
                device.user = None;
                device.enable_date = None;
            }
            Ok(())
        })
    }

    async fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), AwsError> {
        let call = Call::DeleteVirtualMfaDevice {
            serial: serial.to_string(),
        };
        self.run(call, |s| {
            match s.devices.get(serial) {
                Some(d) if d.seed.is_some() && d.user.is_some() => {
                    return Err(AwsError::DeleteConflict {
                        message: "MFA device is still in use.".to_string(),
                    })
                }
                Some(d) if d.seed.is_some() => {}
                _ => {
                    return Err(no_such(format!(
                        "VirtualMFADevice with serial number {serial} doesn't exist."
                    )))
                }
            }
            s.devices.remove(serial);
            Ok(())
        })
    }

    async fn mfa_device_tags(&self, serial: &str) -> Result<Vec<(String, String)>, AwsError> {
        let call = Call::MfaDeviceTags {
            serial: serial.to_string(),
        };
        self.run(call, |s| match s.devices.get(serial) {
            Some(d) => Ok(d.tags.clone()),
            None => Err(no_such(format!(
                "MFA device with serial number {serial} doesn't exist."
            ))),
        })
    }

    async fn account_id(&self) -> Result<String, AwsError> {
        Ok(self.lock().account_id.clone())
    }

    async fn account_alias(&self) -> Result<Option<String>, AwsError> {
        self.run(Call::AccountAlias, |s| Ok(s.alias.clone()))
    }

    async fn mfa_device_certifications(
        &self,
        serial: &str,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let call = Call::MfaDevice {
            serial: serial.to_string(),
        };
        self.run(call, |s| {
            if !s.devices.contains_key(serial) {
                return Err(no_such(format!(
                    "MFA device with serial number {serial} doesn't exist."
                )));
            }
            let mut c = s.certifications.get(serial).cloned().unwrap_or_default();
            c.sort();
            Ok(c)
        })
    }

    async fn account_mfa_enabled(&self) -> Result<bool, AwsError> {
        self.run(Call::AccountSummary, |s| {
            let n = s.counts.get(&Op::AccountSummary).copied().unwrap_or(0);
            Ok(s.root_mfa_from_call.is_some_and(|from| n >= from))
        })
    }

    async fn server_time(&self) -> Result<SystemTime, AwsError> {
        self.run(Call::ServerTime, |s| Ok(server_now(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::totp::code_for_step;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn codes(seed: &SecretBytes, now: SystemTime) -> (String, String) {
        let t = step_at(now);
        (
            code_for_step(seed, t - 1).to_string(),
            code_for_step(seed, t).to_string(),
        )
    }

    #[test]
    fn enroll_round_trip_with_right_codes() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("alice");
            let tags = vec![("mfakey".to_string(), "yes".to_string())];
            let dev = iam
                .create_virtual_mfa_device("alice-yk", "/", &tags)
                .await
                .unwrap();
            assert_eq!(dev.serial, "arn:aws:iam::123456789012:mfa/alice-yk");
            assert_eq!(dev.seed.len(), SEED_LEN);
            assert_eq!(iam.seed_of(&dev.serial).unwrap(), dev.seed);

            let unassigned = iam.list_virtual_mfa_devices(true).await.unwrap();
            assert_eq!(unassigned.len(), 1);
            // Like AWS, the listing has no tags; ListMFADeviceTags has them.
            assert!(unassigned[0].tags.is_empty());
            assert_eq!(iam.mfa_device_tags(&dev.serial).await.unwrap(), tags);

            let (c1, c2) = codes(&dev.seed, iam.server_now());
            iam.enable_mfa_device("alice", &dev.serial, &c1, &c2)
                .await
                .unwrap();
            let listed = iam.list_mfa_devices("alice").await.unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].serial, dev.serial);
            assert!(listed[0].enable_date.is_some());
            assert!(iam.list_virtual_mfa_devices(true).await.unwrap().is_empty());

            // AWS refuses to delete an enabled device.
            assert!(matches!(
                iam.delete_virtual_mfa_device(&dev.serial).await,
                Err(AwsError::DeleteConflict { .. })
            ));
            iam.deactivate_mfa_device("alice", &dev.serial)
                .await
                .unwrap();
            iam.delete_virtual_mfa_device(&dev.serial).await.unwrap();
            assert!(!iam.device_exists(&dev.serial));
        });
    }

    #[test]
    fn wrong_swapped_or_stale_codes_are_refused() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("bob");
            iam.set_now(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
            let dev = iam
                .create_virtual_mfa_device("bob-yk", "/", &[])
                .await
                .unwrap();
            let now = iam.server_now();
            let (c1, c2) = codes(&dev.seed, now);
            for (a, b) in [("123456", "654321"), (c2.as_str(), c1.as_str())] {
                assert_eq!(
                    iam.enable_mfa_device("bob", &dev.serial, a, b).await,
                    Err(AwsError::InvalidAuthenticationCode)
                );
            }
            // Codes from two steps ago are outside the ±1 step window.
            let (o1, o2) = codes(&dev.seed, now - Duration::from_secs(60));
            assert_eq!(
                iam.enable_mfa_device("bob", &dev.serial, &o1, &o2).await,
                Err(AwsError::InvalidAuthenticationCode)
            );
            // One step ago is inside.
            let (p1, p2) = codes(&dev.seed, now - Duration::from_secs(30));
            iam.enable_mfa_device("bob", &dev.serial, &p1, &p2)
                .await
                .unwrap();
            assert_eq!(iam.assigned_user(&dev.serial).as_deref(), Some("bob"));
        });
    }

    #[test]
    fn codes_once_accepted_are_refused_and_resync_checks_like_enable() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("gus");
            let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            iam.set_now(t0);
            let dev = iam.create_virtual_mfa_device("g", "/", &[]).await.unwrap();
            let pair = |t: u64| {
                (
                    code_for_step(&dev.seed, t - 1).to_string(),
                    code_for_step(&dev.seed, t).to_string(),
                )
            };
            let s = step_at(t0);
            // Not enabled yet: no resync.
            let (a, b) = pair(s);
            assert!(matches!(
                iam.resync_mfa_device("gus", &dev.serial, &a, &b).await,
                Err(AwsError::NoSuchEntity { .. })
            ));
            iam.enable_mfa_device("gus", &dev.serial, &a, &b)
                .await
                .unwrap();
            // The same pair, and one sharing its step S, are refused.
            for t in [s, s + 1] {
                let (a, b) = pair(t);
                assert_eq!(
                    iam.resync_mfa_device("gus", &dev.serial, &a, &b).await,
                    Err(AwsError::InvalidAuthenticationCode),
                    "pair ending at {t}"
                );
            }
            // One step later, the next fresh pair goes through, once.
            iam.set_now(t0 + Duration::from_secs(30));
            let (a, b) = pair(s + 2);
            iam.resync_mfa_device("gus", &dev.serial, &a, &b)
                .await
                .unwrap();
            assert_eq!(
                iam.resync_mfa_device("gus", &dev.serial, &a, &b).await,
                Err(AwsError::InvalidAuthenticationCode)
            );
            assert_eq!(iam.calls_of(Op::ResyncMfaDevice).len(), 5);
        });
    }

    #[test]
    fn server_skew_moves_the_code_check_and_server_time() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("carol");
            let host_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            iam.set_now(host_now);
            iam.set_server_skew(-120);
            assert_eq!(
                iam.server_time().await.unwrap(),
                host_now - Duration::from_secs(120)
            );
            let dev = iam.create_virtual_mfa_device("c", "/", &[]).await.unwrap();
            let (c1, c2) = codes(&dev.seed, host_now);
            assert_eq!(
                iam.enable_mfa_device("carol", &dev.serial, &c1, &c2).await,
                Err(AwsError::InvalidAuthenticationCode)
            );
        });
    }

    #[test]
    fn scripted_failures_and_recorded_calls() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("dan");
            iam.fail_nth(Op::EnableMfaDevice, 1, AwsError::InvalidAuthenticationCode);
            iam.fail_nth(
                Op::CreateVirtualMfaDevice,
                2,
                AwsError::Throttling { attempts: 5 },
            );
            let dev = iam.create_virtual_mfa_device("d1", "/", &[]).await.unwrap();
            assert_eq!(
                iam.create_virtual_mfa_device("d2", "/", &[])
                    .await
                    .unwrap_err(),
                AwsError::Throttling { attempts: 5 }
            );
            let (c1, c2) = codes(&dev.seed, iam.server_now());
            assert_eq!(
                iam.enable_mfa_device("dan", &dev.serial, &c1, &c2).await,
                Err(AwsError::InvalidAuthenticationCode)
            );
            assert_eq!(iam.assigned_user(&dev.serial), None);
            iam.enable_mfa_device("dan", &dev.serial, &c1, &c2)
                .await
                .unwrap();

            let gone = AwsError::EndpointUnreachable {
                endpoint: "https://iam.amazonaws.com".into(),
                detail: "connection refused".into(),
            };
            iam.fail_from(Op::ListMfaDevices, 1, gone.clone());
            for _ in 0..3 {
                assert_eq!(iam.list_mfa_devices("dan").await.unwrap_err(), gone);
            }
            let enables = iam.calls_of(Op::EnableMfaDevice);
            assert_eq!(enables.len(), 2);
            assert!(matches!(&enables[0], Call::EnableMfaDevice { user, .. } if user == "dan"));
            assert_eq!(iam.calls().len(), 7);
        });
    }

    #[test]
    fn lost_answer_still_takes_effect() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("erin");
            let gone = AwsError::EndpointUnreachable {
                endpoint: "e".into(),
                detail: "connection closed".into(),
            };
            iam.lose_answer_nth(Op::EnableMfaDevice, 1, gone.clone());
            let dev = iam.create_virtual_mfa_device("e1", "/", &[]).await.unwrap();
            let (c1, c2) = codes(&dev.seed, iam.server_now());
            assert_eq!(
                iam.enable_mfa_device("erin", &dev.serial, &c1, &c2).await,
                Err(gone)
            );
            assert_eq!(iam.assigned_user(&dev.serial).as_deref(), Some("erin"));
        });
    }

    #[test]
    fn aws_rules_names_users_and_limits() {
        block_on(async {
            let iam = FakeIam::new();
            iam.add_user("frank");
            iam.set_caller("frank");
            iam.set_alias(Some("acme"));
            assert_eq!(iam.get_user("").await.unwrap().name, "frank");
            assert_eq!(
                iam.get_user("frank").await.unwrap().account_id,
                "123456789012"
            );
            assert!(matches!(
                iam.get_user("nobody").await,
                Err(AwsError::NoSuchEntity { .. })
            ));
            assert_eq!(iam.account_alias().await.unwrap().as_deref(), Some("acme"));
            iam.create_virtual_mfa_device("dup", "/", &[])
                .await
                .unwrap();
            assert!(matches!(
                iam.create_virtual_mfa_device("dup", "/other/", &[]).await,
                Err(AwsError::EntityAlreadyExists { .. })
            ));
            assert!(matches!(
                iam.create_virtual_mfa_device("bad name", "/", &[]).await,
                Err(AwsError::Other { .. })
            ));
            for i in 0..MAX_MFA_DEVICES_PER_USER {
                iam.add_other_mfa_device(
                    "frank",
                    &format!("arn:aws:iam::123456789012:u2f/user/frank/k{i}"),
                );
            }
            let dev = iam
                .create_virtual_mfa_device("ninth", "/", &[])
                .await
                .unwrap();
            let (c1, c2) = codes(&dev.seed, iam.server_now());
            assert!(matches!(
                iam.enable_mfa_device("frank", &dev.serial, &c1, &c2).await,
                Err(AwsError::LimitExceeded { .. })
            ));
            assert!(matches!(
                iam.enable_mfa_device("frank", "arn:aws:iam::123456789012:mfa/none", &c1, &c2)
                    .await,
                Err(AwsError::NoSuchEntity { .. })
            ));
        });
    }
}
