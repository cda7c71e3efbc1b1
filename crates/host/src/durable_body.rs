//! Bodies that leave an instance only once what it has seen is on disk (see
//! [`crate::kv_store`], "Durable before anyone outside sees it"): the body of its response,
//! and the body of each outbound request it sends.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::kv_store::KvError;
use crate::stores::StoreSession;

/// Waiting for a session's writes to be durable.
type SyncWait = Pin<Box<dyn Future<Output = Result<(), KvError>> + Send>>;

/// A body whose frames are sent only once every write the instance could have seen is on
/// disk. The head (of a response, or of an outbound request) has waited already, so this
/// waits only for writes the instance made while the body is streamed.
pub(crate) struct DurableBody {
    inner: HyperOutgoingBody,
    kv: StoreSession,
    /// A frame held back, and the wait for durability it is held for.
    held: Option<(SyncWait, Frame<Bytes>)>,
}

impl DurableBody {
    /// Holds back each frame of `inner` until what `kv` has seen is durable.
    pub(crate) fn new(inner: HyperOutgoingBody, kv: StoreSession) -> Self {
        Self {
            inner,
            kv,
            held: None,
        }
    }
}

impl http_body::Body for DurableBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some((wait, _)) = &mut this.held {
            let synced = std::task::ready!(wait.as_mut().poll(cx));
            let Some((_, frame)) = this.held.take() else {
                return Poll::Ready(None);
            };
            return Poll::Ready(Some(match synced {
                Ok(()) => Ok(frame),
                Err(e) => Err(wasmtime_wasi_http::Error::InternalError(Some(
                    e.to_string(),
                ))),
            }));
        }
        match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) if !this.kv.is_durable() => {
                let kv = this.kv.clone();
                this.held = Some((Box::pin(async move { kv.durable().await }), frame));
                Pin::new(this).poll_frame(cx)
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let mut hint = self.inner.size_hint();
        if let Some((_, frame)) = &self.held
            && let Some(data) = frame.data_ref()
        {
            let held = data.len() as u64;
            hint.set_lower(hint.lower().saturating_add(held));
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper.saturating_add(held));
            }
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt as _;
    use tokio::sync::mpsc;

    use super::*;
    use crate::stores::{StoreLocation, Stores};

    /// A session on a store `s` in a new file, and the directory that holds it.
    fn session() -> anyhow::Result<(StoreSession, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let location = StoreLocation::Sqlite(Some(dir.path().join("kv.db")));
        let stores = Stores::open(&[("s".to_owned(), location)], |_, e| e)?;
        Ok((StoreSession::new(&Arc::new(stores)), dir))
    }

    /// A body streamed by the test, one frame per message.
    struct Streamed(mpsc::Receiver<Bytes>);

    impl http_body::Body for Streamed {
        type Data = Bytes;
        type Error = wasmtime_wasi_http::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|data| data.map(|d| Ok(Frame::data(d))))
        }
    }

    fn streamed(session: &StoreSession) -> (mpsc::Sender<Bytes>, DurableBody) {
        let (frames, rx) = mpsc::channel(4);
        let body = DurableBody::new(Streamed(rx).boxed_unsync(), session.clone());
        (frames, body)
    }

    async fn next_data(body: &mut DurableBody) -> Result<Bytes, wasmtime_wasi_http::Error> {
        let frame = body.frame().await.expect("a frame")?;
        Ok(frame.into_data().expect("a data frame"))
    }

    /// A frame sent after a write leaves only once the write is on disk (the store syncs
    /// only when someone waits, so without the wait it would not be yet); frames of a session
    /// with nothing unsynced pass at once.
    #[tokio::test]
    async fn frames_wait_for_writes_made_while_streaming() -> anyhow::Result<()> {
        let (session, _dir) = session()?;
        let (frames, mut body) = streamed(&session);

        frames.send(Bytes::from_static(b"first")).await?;
        assert_eq!(next_data(&mut body).await?, "first");

        session.set("s", "k", b"v".to_vec()).await?;
        assert!(!session.is_durable(), "nothing syncs until someone waits");
        frames.send(Bytes::from_static(b"second")).await?;
        assert_eq!(next_data(&mut body).await?, "second");
        assert!(session.is_durable(), "the frame waited for the sync");

        drop(frames);
        assert!(body.frame().await.is_none());
        Ok(())
    }

    /// When the store cannot make the instance's writes durable, the frame that would show
    /// them is not sent: the body ends with an error instead.
    #[tokio::test]
    async fn a_frame_after_a_failed_sync_is_an_error() -> anyhow::Result<()> {
        let (session, _dir) = session()?;
        let (frames, mut body) = streamed(&session);
        session.set("s", "k", b"v".to_vec()).await?;
        session.fail_syncs("injected");
        frames.send(Bytes::from_static(b"too early")).await?;
        let err = next_data(&mut body).await.unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        Ok(())
    }
}
