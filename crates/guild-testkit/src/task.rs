//! A service (or anything that runs until told to stop) on a background task.

use std::future::Future;

use tokio::sync::oneshot;

/// A future running in the background with a shutdown signal: [`stop`](Self::stop) asks
/// it to finish (a service's graceful shutdown); [`kill`](Self::kill) aborts it where it
/// stands (a crash). Dropping it aborts it too.
#[derive(Debug)]
pub struct Running<E> {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), E>>>,
}

impl<E: Send + std::fmt::Debug + 'static> Running<E> {
    /// Starts `run`, handing it the future that resolves when [`stop`](Self::stop) is
    /// called: `Running::start(|shutdown| spawner_svc::run(client, config, shutdown))`.
    pub fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = rx.await;
        });
        Self {
            stop: Some(tx),
            task: Some(tokio::spawn(run(shutdown))),
        }
    }

    /// Asks it to finish and waits; panics if it failed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("stopped with an error: {e:?}"),
                Err(e) => panic!("panicked: {e}"),
            }
        }
    }

    /// Whether it has ended (returned, failed or panicked) without being told to stop.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Aborts it where it stands, as a crash would.
    pub fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl<E> Drop for Running<E> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
