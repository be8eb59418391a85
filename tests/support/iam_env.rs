//! Shared by the IAM integration tests: where moto and the code-checking
//! proxy (tests/support/iam_proxy.py) listen, and a small client for the
//! proxy's control endpoints.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
use mfakey::aws::config::sdk_config;
use mfakey::aws::{AwsOptions, Iam};

pub const ENDPOINT_VAR: &str = "MFAKEY_TEST_IAM_ENDPOINT";
pub const CONTROL_VAR: &str = "MFAKEY_TEST_PROXY_CONTROL";

/// The proxy's URL (in front of moto). Fails the test when missing.
pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.is_empty() => v.trim_end_matches('/').to_string(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need moto behind tests/support/iam_proxy.py; \
             run through tests/run.sh"
        ),
    }
}

/// The proxy's control base URL (defaults to the endpoint itself).
pub fn control_base() -> String {
    std::env::var(CONTROL_VAR)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_else(endpoint)
}

/// Serializes, within a test binary, the tests that change the proxy's
/// shared state (armed faults, its clock) against those it would disturb.
pub fn proxy_lock() -> MutexGuard<'static, ()> {
    static CLOCK: Mutex<()> = Mutex::new(());
    CLOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(
        "{prefix}-{}-{t}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// SDK configuration for `endpoint_url` with static test credentials and
/// `attempts` attempts a call with a short backoff.
pub async fn test_sdk_config(endpoint_url: &str, attempts: u32) -> SdkConfig {
    let opts = AwsOptions {
        endpoint_url: Some(endpoint_url.to_string()),
        ..AwsOptions::default()
    };
    let retry = RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(100));
    sdk_config(&opts, retry)
        .await
        .expect("sdk config")
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "mfakey-tests",
        )))
        .build()
}

pub async fn test_iam(attempts: u32) -> (Iam, aws_sdk_iam::Client) {
    let config = test_sdk_config(&endpoint(), attempts).await;
    (
        Iam::from_sdk_config(&config),
        aws_sdk_iam::Client::new(&config),
    )
}

/// One HTTP/1.1 request to the proxy's control endpoint; returns (status, body).
pub fn control(method: &str, path: &str, body: &str) -> (u16, String) {
    let base = control_base();
    let hostport = base
        .strip_prefix("http://")
        .expect("control URL must be http://HOST:PORT");
    let mut s = TcpStream::connect(hostport).expect("connect to the proxy's control endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

/// Arms a fault: the next `times` `action` requests whose `UserName` is
/// `user` (or any, when `user` is empty) fail with `mode`.
pub fn fault(action: &str, mode: &str, times: u32, user: &str) {
    let matcher = if user.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::json!({ "UserName": user })
    };
    fault_matching(action, mode, times, matcher, 0);
}

/// Arms a fault on the requests whose form parameters include `matcher`,
/// after letting `skip` of them through.
pub fn fault_matching(action: &str, mode: &str, times: u32, matcher: serde_json::Value, skip: u32) {
    let body = serde_json::json!({
        "action": action, "mode": mode, "times": times, "match": matcher, "skip": skip,
    });
    let (status, text) = control("POST", "/__proxy__/fault", &body.to_string());
    assert_eq!(status, 200, "arming a fault: {text}");
}

/// The proxy's EnableMFADevice log entries for `serial`.
pub fn enables_for(serial: &str) -> Vec<serde_json::Value> {
    let (status, text) = control("GET", "/__proxy__/enables", "");
    assert_eq!(status, 200, "{text}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON array");
    all.into_iter().filter(|e| e["serial"] == serial).collect()
}

/// Shifts the proxy's clock until dropped.
pub struct ClockOffset;

impl ClockOffset {
    pub fn set(seconds: i64) -> ClockOffset {
        let (status, text) = control(
            "POST",
            "/__proxy__/clock_offset",
            &format!("{{\"seconds\": {seconds}}}"),
        );
        assert_eq!(status, 200, "{text}");
        ClockOffset
    }
}

impl Drop for ClockOffset {
    fn drop(&mut self) {
        let _ = control("POST", "/__proxy__/clock_offset", "{\"seconds\": 0}");
    }
}

/// Every seed the proxy saw issued, deleted devices included: (serial, bytes).
pub fn issued_seeds() -> Vec<(String, Vec<u8>)> {
    let (status, text) = control("GET", "/__proxy__/issued_seeds", "");
    assert_eq!(status, 200, "{text}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON array");
    all.into_iter()
        .map(|e| {
            let b32 = e["base32"].as_str().expect("base32").to_string();
            let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &b32)
                .expect("base32 seed");
            (e["serial"].as_str().expect("serial").to_string(), bytes)
        })
        .collect()
}

/// Every virtual MFA device `client` lists, all pages (moto keeps the devices
/// of every earlier test and benchmark, more than a page of 100).
pub fn all_virtual_devices(
    client: &aws_sdk_iam::Client,
) -> Vec<aws_sdk_iam::types::VirtualMfaDevice> {
    block_on(async {
        let mut pages = client
            .list_virtual_mfa_devices()
            .into_paginator()
            .items()
            .send();
        let mut all = Vec::new();
        while let Some(d) = pages.next().await {
            all.push(d.expect("ListVirtualMFADevices"));
        }
        all
    })
}
