//! Single flight: concurrent misses for one key in one process share one load.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::Tier;

/// What a load in flight ended with.
#[derive(Clone)]
pub(crate) enum State {
    Pending,
    /// The leader's entry (an `Entry<V>` behind `Any`) and the tier that answered it.
    Done(Arc<dyn Any + Send + Sync>, Tier),
    /// The leader's loader failed; its error type is the caller's and cannot be shared.
    Failed,
}

/// The loads in flight, by rendered key.
#[derive(Default)]
pub(crate) struct Flights {
    loads: Mutex<HashMap<String, watch::Receiver<State>>>,
}

/// How a caller takes part in a load.
pub(crate) enum Join<'a> {
    /// This caller loads; it must report through the guard.
    Leader(Leader<'a>),
    /// Another caller is loading; wait on this.
    Follower(watch::Receiver<State>),
}

/// What a follower saw.
pub(crate) enum Waited {
    Done(Arc<dyn Any + Send + Sync>, Tier),
    Failed,
    /// The leader was cancelled before finishing: try again.
    Abandoned,
}

impl Flights {
    /// Detaches the load in flight for `key`: later callers start their own.
    pub(crate) fn forget(&self, key: &str) {
        self.loads().remove(key);
    }

    /// Detaches every load in flight.
    pub(crate) fn forget_all(&self) {
        self.loads().clear();
    }

    fn loads(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<State>>> {
        self.loads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn join(&self, key: &str) -> Join<'_> {
        let mut loads = self.loads();
        if let Some(receiver) = loads.get(key) {
            return Join::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(State::Pending);
        loads.insert(key.to_owned(), receiver);
        Join::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            sender,
        })
    }
}

/// The leader's duty: publish the outcome, and leave the map when done or dropped (a
/// cancelled leader drops its sender, which wakes the followers with `Abandoned`).
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    sender: watch::Sender<State>,
}

impl Leader<'_> {
    pub(crate) fn finish(self, state: State) {
        self.sender.send_replace(state);
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // The entry may already be another leader's, when an invalidation detached ours.
        let mut loads = self.flights.loads();
        let ours = self.sender.subscribe();
        if loads
            .get(&self.key)
            .is_some_and(|entry| entry.same_channel(&ours))
        {
            loads.remove(&self.key);
        }
    }
}

pub(crate) async fn wait(mut receiver: watch::Receiver<State>) -> Waited {
    let outcome = receiver
        .wait_for(|state| !matches!(state, State::Pending))
        .await
        .map(|state| state.clone());
    match outcome {
        Ok(State::Done(value, tier)) => Waited::Done(value, tier),
        Ok(State::Failed) => Waited::Failed,
        Ok(State::Pending) | Err(_) => Waited::Abandoned,
    }
}
