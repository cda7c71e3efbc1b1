//! Time in a component: a sleep and a deadline for outbound calls. spin-sdk's `send` has no
//! timeout, so a call is raced against a WASI monotonic-clock timer on spin-sdk's executor.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, select};
use spin_executor::CancelOnDropToken;
use wasi::clocks::monotonic_clock;

/// A future completing at a monotonic-clock instant; dropping it cancels its wake-up.
struct Sleep {
    deadline: u64,
    registration: Option<CancelOnDropToken>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if monotonic_clock::now() >= self.deadline {
            self.registration = None;
            return Poll::Ready(());
        }
        let token = spin_executor::push_waker_and_get_token(
            monotonic_clock::subscribe_instant(self.deadline),
            cx.waker().clone(),
        );
        // Replacing the previous registration cancels it.
        self.registration = Some(token.into());
        Poll::Pending
    }
}

/// Completes once `duration` has passed.
pub async fn sleep(duration: Duration) {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    Sleep {
        deadline: monotonic_clock::now().saturating_add(nanos),
        registration: None,
    }
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

/// Runs `future` to completion from synchronous code, on spin-sdk's executor. Inside a
/// request handler this blocks the handler until the future is done, which is what a
/// synchronous port (e.g. a fetch made while a GraphQL mutation resolves) needs.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    spin_executor::run(future)
}
