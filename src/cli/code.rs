//! `mfakey code [--profile P | --device ARN]`: the current code of a
//! profile's MFA device, alone on stdout, as aws-vault's `mfa_process`
//! (and any script) wants it.

use super::render::{Output, Report};
use super::session::{oath, open_with};
use super::GlobalOpts;
use crate::aws::{self, AwsOptions};
use crate::credential::unix_now;
use crate::daily::{self, profile, Device};
use crate::device::Selector;
use crate::error::Failure;
use crate::transport::pcsc::{Access, Pcsc};
use clap::{ArgGroup, Args};
use serde_json::json;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["profile", "device"])))]
pub struct CodeArgs {
    /// The profile whose mfa_serial it is, in the shared config file
    /// ($AWS_CONFIG_FILE, else ~/.aws/config)
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// The virtual MFA device's ARN
    #[arg(long, value_name = "ARN")]
    pub device: Option<String>,
    /// AWS region, when the device's tags must be read
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// IAM endpoint URL, when the device's tags must be read
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Accept a plain http:// endpoint on another machine
    #[arg(long)]
    pub allow_insecure_endpoint: bool,
}

pub(super) fn run(a: &CodeArgs, g: &GlobalOpts, out: Output) -> Result<Report, Failure> {
    // The device, and (for the tags, when needed) whose credentials to use:
    // the profile's source_profile, else the profile itself.
    let (arn, aws_profile) = match (&a.profile, &a.device) {
        (Some(p), _) => {
            let (arn, settings) = profile::mfa_serial(&profile::config_path()?, p)?;
            (
                arn,
                Some(settings.source_profile.unwrap_or_else(|| p.clone())),
            )
        }
        (None, Some(arn)) => (arn.clone(), None),
        (None, None) => unreachable!("clap requires --profile or --device"),
    };
    let device = Device::parse(&arn)?;
    let owner = match daily::owner_by_name(&device) {
        Some(o) => o,
        None => super::enroll::runtime()?.block_on(async {
            let opts = AwsOptions {
                profile: aws_profile,
                region: a.region.clone(),
                endpoint_url: a.endpoint_url.clone(),
                allow_insecure_endpoint: a.allow_insecure_endpoint,
            };
            let iam = aws::load(&opts).await?;
            Ok::<_, Failure>(daily::owner_by_tags(&iam, &device).await?)
        })?,
    };
    let pcsc = Pcsc::establish()?;
    let sel = Selector {
        reader: g.reader.clone(),
        serial: Some(owner.key_serial),
    };
    let mut key = open_with(&pcsc, g, &sel, Access::Shared)?;
    let mut session = oath(&mut key, g)?;
    let code = daily::current_code(&mut session, &owner, &device, unix_now(), &mut || {
        out.notice("Touch the key...")
    })?;
    Ok(Report::new(
        json!({ "code": {
            "value": code.code,
            "valid_to": code.valid_to,
            "touch": code.touch,
            "credential_id": code.credential_id,
            "key_serial": owner.key_serial,
            "user": owner.user,
            "found_by": owner.found_by,
            "device_serial": device.arn,
        }}),
        code.code.clone(),
    ))
}
