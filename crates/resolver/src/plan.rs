//! Routing plans (behaviour.md 1.4): the ordered candidates for one request, computed from a
//! cached [`RouteSnapshot`] without database queries.

use std::sync::Arc;

use serde::Serialize;
use tollgate_entities::{ApiFormat, models, provider_api_keys, provider_endpoints, providers};

use crate::catalogue::RouteSnapshot;
use crate::health::KeyHealth;
use crate::select::{select_provider_model_name, stable_hash};

/// Why a candidate will not be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The provider has no active endpoint for the request's API format.
    NoEndpointForFormat,
    /// The endpoint has no active upstream key.
    NoActiveKey,
    /// The key's `allowed_models` lists neither the requested nor the canonical name.
    ModelNotAllowed,
    /// The key failed repeatedly and its circuit is open.
    CircuitOpen,
}

impl SkipReason {
    /// The stable machine-readable spelling (stored in `request_candidates.skip_reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEndpointForFormat => "no_endpoint_for_format",
            Self::NoActiveKey => "no_active_key",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    provider: usize,
    endpoint: Option<usize>,
    key: Option<usize>,
    upstream_model_name: Arc<str>,
    skip: Option<SkipReason>,
}

/// One entry of a plan, borrowed from the plan's snapshot.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Candidate<'a> {
    /// The provider.
    pub provider: &'a providers::Model,
    /// The provider's model for the global model.
    pub model: &'a models::Model,
    /// The endpoint for the request's format; `None` when the provider has none.
    pub endpoint: Option<&'a provider_endpoints::Model>,
    /// The upstream key; `None` when the endpoint has none.
    #[serde(skip)]
    pub key: Option<&'a provider_api_keys::Model>,
    /// The model name to send upstream.
    pub upstream_model_name: &'a str,
    /// Why this candidate is skipped; `None` when it is usable.
    pub skip_reason: Option<SkipReason>,
}

impl Candidate<'_> {
    /// Whether the caller should try this candidate.
    pub fn is_usable(&self) -> bool {
        self.skip_reason.is_none()
    }
}

/// The ordered candidates for one request. Cheap to keep: it shares the cached snapshot.
#[derive(Debug, Clone)]
pub struct Plan {
    snapshot: Arc<RouteSnapshot>,
    slots: Vec<Slot>,
}

impl Plan {
    /// The snapshot the plan was computed from (global model and every route).
    pub fn snapshot(&self) -> &RouteSnapshot {
        &self.snapshot
    }

    /// Every candidate in order, usable or skipped.
    pub fn candidates(&self) -> impl Iterator<Item = Candidate<'_>> + '_ {
        self.slots.iter().map(|slot| {
            let route = &self.snapshot.providers[slot.provider];
            let endpoint = slot.endpoint.map(|e| &route.endpoints[e]);
            Candidate {
                provider: &route.provider,
                model: &route.model,
                endpoint: endpoint.map(|e| &e.endpoint),
                key: endpoint.zip(slot.key).map(|(e, k)| &e.keys[k]),
                upstream_model_name: &slot.upstream_model_name,
                skip_reason: slot.skip,
            }
        })
    }

    /// The candidates to try, in order.
    pub fn usable(&self) -> impl Iterator<Item = Candidate<'_>> + '_ {
        self.candidates().filter(Candidate::is_usable)
    }

    /// Whether at least one candidate is usable.
    pub fn has_usable(&self) -> bool {
        self.slots.iter().any(|slot| slot.skip.is_none())
    }
}

/// What a plan depends on besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanInput<'a> {
    pub(crate) requested_name: &'a str,
    pub(crate) api_format: ApiFormat,
    pub(crate) client_key_id: Option<&'a str>,
}

/// Orders the snapshot's routes into candidates.
pub(crate) fn build_plan(
    snapshot: Arc<RouteSnapshot>,
    input: PlanInput<'_>,
    health: &KeyHealth,
) -> Plan {
    let canonical = snapshot.global_model.name.as_str();
    let client = input.client_key_id.unwrap_or("");
    let mut slots = Vec::with_capacity(snapshot.providers.len() * 2);
    for (provider_index, route) in snapshot.providers.iter().enumerate() {
        let upstream_model_name: Arc<str> =
            select_provider_model_name(&route.model, input.client_key_id, input.api_format).into();
        let Some(endpoint_index) = route
            .endpoints
            .iter()
            .position(|e| e.endpoint.api_format == input.api_format)
        else {
            slots.push(Slot {
                provider: provider_index,
                endpoint: None,
                key: None,
                upstream_model_name,
                skip: Some(SkipReason::NoEndpointForFormat),
            });
            continue;
        };
        let keys = &route.endpoints[endpoint_index].keys;
        if keys.is_empty() {
            slots.push(Slot {
                provider: provider_index,
                endpoint: Some(endpoint_index),
                key: None,
                upstream_model_name,
                skip: Some(SkipReason::NoActiveKey),
            });
            continue;
        }
        let mut order: Vec<(i32, u64, usize)> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                (
                    key.internal_priority,
                    stable_hash(&[client, &key.id]),
                    index,
                )
            })
            .collect();
        order.sort_unstable();
        for (_, _, key_index) in order {
            let key = &keys[key_index];
            let skip = if key.allowed_models.as_ref().is_some_and(|allowed| {
                !allowed.allows(input.requested_name) && !allowed.allows(canonical)
            }) {
                Some(SkipReason::ModelNotAllowed)
            } else if health.is_open(&key.id) {
                Some(SkipReason::CircuitOpen)
            } else {
                None
            };
            slots.push(Slot {
                provider: provider_index,
                endpoint: Some(endpoint_index),
                key: Some(key_index),
                upstream_model_name: upstream_model_name.clone(),
                skip,
            });
        }
    }
    Plan { snapshot, slots }
}
