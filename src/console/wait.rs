//! The one loop that waits for AWS to show what the console did: it asks
//! IAM until the answer is there or the time is up, telling the operator
//! how long it has waited.

use crate::progress::{Event, Progress};
use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `look` until it finds something (`Ok(Some)`), fails, or `timeout`
/// passes (`Ok(None)`); sleeps `every` between calls (never past the
/// timeout), with an [`Event::Waiting`] before each call after the first.
pub(crate) async fn poll<T, E, F, Fut>(
    timeout: Duration,
    every: Duration,
    progress: &mut dyn Progress,
    mut look: F,
) -> Result<Option<(T, Duration)>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let started = Instant::now();
    loop {
        let waited = started.elapsed();
        if let Some(found) = look().await? {
            return Ok(Some((found, waited)));
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Ok(None);
        }
        progress.event(Event::Waiting {
            elapsed_ms: elapsed.as_millis() as u64,
            timeout_ms: timeout.as_millis() as u64,
        });
        tokio::time::sleep(every.min(timeout - elapsed)).await;
    }
}
