//! Waiting for conditions: poll a probe until it holds or a deadline passes.
//! A timeout names what was still false — never a bare sleep. A Ctrl-C ends
//! the wait at once with `Error::Interrupted`.

use crate::error::{Error, Result};
use crate::testbed::interrupt;
use std::future::Future;
use std::time::{Duration, Instant};

/// Default poll period: fine enough to time failover phases to ~50 ms.
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `probe` every `every` until it returns `Ok(v)`; `Err(missing)`
/// describes what is still false and ends up in the timeout error.
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, String>>,
{
    let start = Instant::now();
    let mut missing = String::from("(not checked yet)");
    let during = format!("waiting for {what}");
    let _ticker = crate::backend::progress::Ticker::start(what);
    loop {
        interrupt::check(&during)?;
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        // A probe that hangs must not overrun the deadline.
        let probed = tokio::select! {
            r = tokio::time::timeout(left, probe()) => r,
            _ = interrupt::cancelled() => return interrupt::check(&during).map(|()| unreachable!()),
        };
        match probed {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(m)) => missing = m,
            Err(_) => break,
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        interrupt::sleep(every.min(left), &during).await?;
    }
    Err(Error::Timeout {
        what: what.to_string(),
        elapsed_ms: start.elapsed().as_millis(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_names_what_was_missing() {
        let e = until(
            "a thing",
            Duration::from_millis(120),
            Duration::from_millis(10),
            || async { Err::<(), _>("the thing is absent".to_string()) },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("waiting for a thing"), "{e}");
        assert!(e.contains("still false: the thing is absent"), "{e}");
    }

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let v = until(
            "n to reach 3",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let n = n;
                async move {
                    if n >= 3 {
                        Ok(n)
                    } else {
                        Err(format!("n = {n}"))
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(v, 3);
    }
}
