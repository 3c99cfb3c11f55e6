//! The invalidation bus: a Redis pub/sub subscription that applies other replicas' deletes to
//! this process's in-process tier.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_redis::redis::aio::{PubSubSink, PubSubStream};
use deadpool_redis::redis::{self, Client, RedisResult};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;
use crate::flight::Flights;
use crate::local::Local;
use crate::telemetry::Telemetry;

/// One message on the bus. Keys are rendered without the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Message {
    /// Drop one key.
    Delete {
        /// The key under the namespace, e.g. `model:id:42`.
        key: String,
    },
    /// Drop everything.
    Flush,
}

impl Message {
    pub(crate) fn to_json(&self) -> String {
        // Serializing a two-variant enum of strings cannot fail; fall back to the safest
        // message anyway rather than unwrap.
        serde_json::to_string(self).unwrap_or_else(|_| "{\"op\":\"flush\"}".to_owned())
    }
}

/// What the in-process tier needs to stay consistent: the entries, and the invalidation epoch
/// that in-flight loads compare before storing what they loaded.
#[derive(Clone)]
pub(crate) struct Invalidator {
    pub(crate) local: Option<Local>,
    pub(crate) epoch: Arc<AtomicU64>,
    /// Loads in flight: an invalidation detaches them, so a caller that arrives after it
    /// starts a load of its own instead of sharing one that began before the change.
    pub(crate) flights: Arc<Flights>,
}

impl Invalidator {
    pub(crate) fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn remove(&self, key: &str) {
        self.bump();
        self.flights.forget(key);
        if let Some(local) = &self.local {
            local.remove(key);
        }
    }

    pub(crate) fn clear(&self) {
        self.bump();
        self.flights.forget_all();
        if let Some(local) = &self.local {
            local.clear();
        }
    }

    fn apply(&self, payload: &[u8]) {
        match serde_json::from_slice::<Message>(payload) {
            Ok(Message::Delete { key }) => self.remove(&key),
            Ok(Message::Flush) => self.clear(),
            Err(error) => {
                // Whatever it meant, something changed: dropping everything is always safe.
                tracing::warn!(%error, "unreadable invalidation message; dropping the in-process tier");
                self.clear();
            }
        }
    }
}

/// Subscription state, for the constructors' first wait and for health reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Connected,
    Disconnected,
}

/// The running subscriber task; aborted when dropped.
pub(crate) struct Bus {
    task: JoinHandle<()>,
    state: watch::Receiver<State>,
}

struct Settings {
    channel: String,
    connect_timeout: Duration,
    retry_min: Duration,
    retry_max: Duration,
    ping_interval: Duration,
}

impl Bus {
    pub(crate) fn spawn(
        client: Client,
        config: &Config,
        invalidator: Invalidator,
        telemetry: Telemetry,
    ) -> Self {
        let settings = Settings {
            channel: config.channel(),
            connect_timeout: config.connect_timeout,
            retry_min: config.bus_retry_min,
            retry_max: config.bus_retry_max,
            ping_interval: config.bus_ping_interval,
        };
        let (state_tx, state) = watch::channel(State::Connecting);
        let task = tokio::spawn(run(client, settings, invalidator, telemetry, state_tx));
        Self { task, state }
    }

    /// Waits until the first subscription attempt has succeeded or failed, at most `limit`.
    pub(crate) async fn first_attempt(&self, limit: Duration) {
        let mut state = self.state.clone();
        let _ = tokio::time::timeout(limit, state.wait_for(|s| *s != State::Connecting)).await;
    }

    pub(crate) fn connected(&self) -> bool {
        *self.state.borrow() == State::Connected
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn subscribe(client: &Client, channel: &str) -> RedisResult<(PubSubSink, PubSubStream)> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.subscribe(channel).await?;
    Ok((sink, stream))
}

async fn run(
    client: Client,
    settings: Settings,
    invalidator: Invalidator,
    telemetry: Telemetry,
    state: watch::Sender<State>,
) {
    let mut delay = settings.retry_min;
    let mut quiet = false;
    loop {
        match tokio::time::timeout(
            settings.connect_timeout,
            subscribe(&client, &settings.channel),
        )
        .await
        {
            Ok(Ok((sink, stream))) => {
                // Messages sent while this process was not subscribed are lost, so whatever the
                // in-process tier holds may be stale.
                invalidator.clear();
                state.send_replace(State::Connected);
                tracing::info!(channel = %settings.channel, "cache invalidation bus subscribed");
                delay = settings.retry_min;
                quiet = false;
                listen(sink, stream, &settings, &invalidator).await;
                invalidator.clear();
                state.send_replace(State::Disconnected);
                telemetry.backend_error("redis_bus");
                tracing::warn!(
                    channel = %settings.channel,
                    "cache invalidation bus lost its subscription; in-process tier dropped, resubscribing"
                );
            }
            Ok(Err(error)) => {
                state.send_replace(State::Disconnected);
                telemetry.backend_error("redis_bus");
                if !quiet {
                    tracing::warn!(%error, "cache invalidation bus cannot subscribe; retrying");
                    quiet = true;
                }
            }
            Err(_elapsed) => {
                state.send_replace(State::Disconnected);
                telemetry.backend_error("redis_bus");
                if !quiet {
                    tracing::warn!(
                        timeout = ?settings.connect_timeout,
                        "cache invalidation bus subscription timed out; retrying"
                    );
                    quiet = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2).min(settings.retry_max);
    }
}

/// Applies messages until the subscription is lost: the stream ends, or a periodic PING goes
/// unanswered (a connection that died without a reset never ends the stream by itself).
async fn listen(
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    settings: &Settings,
    invalidator: &Invalidator,
) {
    let mut ticker = tokio::time::interval(settings.ping_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => invalidator.apply(message.get_payload_bytes()),
                None => return,
            },
            _ = ticker.tick() => {
                let ping = tokio::time::timeout(settings.connect_timeout, sink.ping::<redis::Value>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn messages_are_tagged_json() {
        let delete = Message::Delete {
            key: "model:id:1".to_owned(),
        };
        assert_eq!(delete.to_json(), r#"{"op":"delete","key":"model:id:1"}"#);
        assert_eq!(Message::Flush.to_json(), r#"{"op":"flush"}"#);
        assert_eq!(
            serde_json::from_str::<Message>(r#"{"op":"flush"}"#).unwrap(),
            Message::Flush
        );
    }
}
