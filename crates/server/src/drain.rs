//! The shutdown cut (behaviour.md 8b): at shutdown, streams still open when their share of
//! `TOLLGATE_SHUTDOWN_TIMEOUT_SECS` has passed end with the format's error event, and
//! upstream attempts still waiting give up, so the process exits within its bound with the
//! usage queue drained.

use tokio::sync::watch;

/// The owner's side: cuts every open stream and attempt at once.
#[derive(Debug)]
pub(crate) struct Drain(watch::Sender<bool>);

impl Default for Drain {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl Drain {
    /// A signal for one stream or attempt.
    pub(crate) fn signal(&self) -> DrainSignal {
        DrainSignal(self.0.subscribe())
    }

    /// Cuts everything now (and everything that starts later).
    pub(crate) fn cut(&self) {
        self.0.send_replace(true);
    }
}

/// The listener's side.
#[derive(Debug, Clone)]
pub(crate) struct DrainSignal(watch::Receiver<bool>);

impl DrainSignal {
    /// Resolves once the cut was made; never when the [`Drain`] is gone without a cut.
    pub(crate) async fn cut(&mut self) {
        if self.0.wait_for(|cut| *cut).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
