//! The resolver's key families of behaviour.md 2.1, with their rendered keys and values.

use serde::{Deserialize, Serialize};
use tollgate_cache::{CacheKey, CounterKey, Key};
use tollgate_entities::{global_models, models};

/// How a client model name reached its global model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionMethod {
    /// Through a model whose `provider_model_name` equals the name.
    ProviderModelName,
    /// The name is a global model's own name.
    DirectMatch,
}

impl ResolutionMethod {
    /// The snake_case name used in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProviderModelName => "provider_model_name",
            Self::DirectMatch => "direct_match",
        }
    }
}

/// A cached answer of `resolve_global_model`: the global model and how it was reached, so a
/// cache hit reports the original method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The global model the name resolved to.
    pub global_model: global_models::Model,
    /// How it was reached.
    pub method: ResolutionMethod,
}

tollgate_cache::string_key! {
    /// `model:id:{id}`: a model snapshot by its id.
    pub struct ModelById(pub String);
    family = "model_by_id", prefix = "model:id:", value = models::Model;
}

tollgate_cache::string_key! {
    /// `global_model:id:{id}`: a global model snapshot by its id.
    pub struct GlobalModelById(pub String);
    family = "global_model_by_id", prefix = "global_model:id:", value = global_models::Model;
}

tollgate_cache::string_key! {
    /// `global_model:name:{name}`: a global model snapshot by its name.
    pub struct GlobalModelByName(pub String);
    family = "global_model_by_name", prefix = "global_model:name:", value = global_models::Model;
}

tollgate_cache::string_key! {
    /// `global_model:resolve:{name}`: the resolution of a client model name.
    pub struct Resolve(pub String);
    family = "resolve", prefix = "global_model:resolve:", value = Resolution;
}

/// `model:provider_global:{provider_id}:{global_model_id}`: a provider's active model for a
/// global model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderGlobal {
    /// The provider.
    pub provider_id: String,
    /// The global model.
    pub global_model_id: String,
}

impl ProviderGlobal {
    /// The hit counter that goes with this entry.
    pub fn hits(&self) -> ProviderGlobalHits {
        ProviderGlobalHits(self.clone())
    }

    /// `{provider_id}:{global_model_id}`, the end of both keys.
    fn ids(&self) -> String {
        format!("{}:{}", self.provider_id, self.global_model_id)
    }
}

/// `model:provider_global:hits:{provider_id}:{global_model_id}`: how often the
/// provider+global entry was hit (made by [`ProviderGlobal::hits`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderGlobalHits(ProviderGlobal);

impl Key for ProviderGlobal {
    const FAMILY: &'static str = "provider_global";
    fn render(&self) -> String {
        format!("model:provider_global:{}", self.ids())
    }
}

impl CacheKey for ProviderGlobal {
    type Value = models::Model;
}

impl Key for ProviderGlobalHits {
    const FAMILY: &'static str = "provider_global_hits";
    fn render(&self) -> String {
        format!("model:provider_global:hits:{}", self.0.ids())
    }
}

impl CounterKey for ProviderGlobalHits {}

#[cfg(test)]
mod tests {
    use tollgate_cache::Key;

    use super::{
        GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, ResolutionMethod, Resolve,
    };

    #[test]
    fn keys_render_as_in_the_spec() {
        let pg = ProviderGlobal {
            provider_id: "p".to_owned(),
            global_model_id: "g".to_owned(),
        };
        assert_eq!(ModelById("1".to_owned()).render(), "model:id:1");
        assert_eq!(
            GlobalModelById("2".to_owned()).render(),
            "global_model:id:2"
        );
        assert_eq!(
            GlobalModelByName("gpt-4o".to_owned()).render(),
            "global_model:name:gpt-4o"
        );
        assert_eq!(
            Resolve("gpt-4o".to_owned()).render(),
            "global_model:resolve:gpt-4o"
        );
        assert_eq!(pg.render(), "model:provider_global:p:g");
        assert_eq!(pg.hits().render(), "model:provider_global:hits:p:g");
    }

    #[test]
    fn resolution_method_is_snake_case() {
        for method in [
            ResolutionMethod::ProviderModelName,
            ResolutionMethod::DirectMatch,
        ] {
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.as_str()));
        }
    }
}
