//! moto, reached directly (setup the proxy would check, and inspection:
//! moto lists every seed) and through the code-checking proxy.

#![allow(dead_code)]

use super::common::Seed;
use super::iam_env::{self, block_on, endpoint, unique};

/// moto, for a test's own setup and inspection.
pub struct Iam {
    /// Straight to moto: setup (the proxy would check codes) and inspection.
    pub raw: aws_sdk_iam::Client,
    /// Through the proxy, which keeps the tags of what it creates (moto has
    /// no ListMFADeviceTags).
    pub proxied: aws_sdk_iam::Client,
}

impl Iam {
    pub fn new() -> Iam {
        let moto = std::env::var("MFAKEY_TEST_MOTO_ENDPOINT")
            .expect("MFAKEY_TEST_MOTO_ENDPOINT: run tests/run.sh");
        let raw = aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&moto, 1)));
        let proxied = aws_sdk_iam::Client::new(&block_on(iam_env::test_sdk_config(&endpoint(), 1)));
        Iam { raw, proxied }
    }

    pub fn create_user(&self, prefix: &str) -> String {
        let name = unique(prefix);
        block_on(self.raw.create_user().user_name(&name).send()).unwrap();
        name
    }

    pub fn user_devices(&self, user: &str) -> Vec<String> {
        let out = block_on(self.raw.list_mfa_devices().user_name(user).send()).unwrap();
        out.mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_string())
            .collect()
    }

    /// Every virtual device whose name starts with `prefix`, with its seed
    /// (moto returns seeds in this listing; AWS never does).
    pub fn virtual_devices(&self, prefix: &str) -> Vec<(String, Option<String>, Option<Seed>)> {
        let all = iam_env::all_virtual_devices(&self.raw);
        all.iter()
            .filter(|d| {
                d.serial_number()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .starts_with(prefix)
            })
            .map(|d| {
                let seed = d.base32_string_seed().map(|b| {
                    let text = String::from_utf8_lossy(b.as_ref()).to_string();
                    Seed::from_bytes(
                        &base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &text)
                            .unwrap(),
                    )
                });
                (
                    d.serial_number().to_string(),
                    d.user().map(|u| u.user_name().to_string()),
                    seed,
                )
            })
            .collect()
    }

    pub fn create_device(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let mut req = self
            .proxied
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .unwrap(),
            );
        }
        block_on(req.send())
            .unwrap()
            .virtual_mfa_device()
            .unwrap()
            .serial_number()
            .to_string()
    }

    pub fn enable(&self, user: &str, serial: &str) {
        block_on(
            self.raw
                .enable_mfa_device()
                .user_name(user)
                .serial_number(serial)
                .authentication_code1("123456")
                .authentication_code2("654321")
                .send(),
        )
        .unwrap();
    }
}
