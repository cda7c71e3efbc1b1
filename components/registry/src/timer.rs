//! A deadline for outbound calls: spin-sdk's `send` has no timeout, so the call is raced
//! against a WASI monotonic-clock timer on spin-sdk's own executor.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use futures::future::{Either, select};
use wasi::clocks::monotonic_clock;

/// Completes once `duration` has passed.
pub async fn sleep(duration: Duration) {
    let deadline = monotonic_clock::now().saturating_add(duration.as_nanos() as u64);
    futures::future::poll_fn(move |cx| {
        if monotonic_clock::now() >= deadline {
            return Poll::Ready(());
        }
        spin_executor::push_waker(
            monotonic_clock::subscribe_instant(deadline),
            cx.waker().clone(),
        );
        Poll::Pending
    })
    .await
}

/// `future`'s output, or `None` if it did not complete within `limit`.
pub async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(limit));
    match select(future, timer).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(((), _)) => None,
    }
}
