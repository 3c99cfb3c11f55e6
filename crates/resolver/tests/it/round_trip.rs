//! Every key family of the resolver round-trips its entity snapshots on every store of
//! `tollgate-cache`, through Redis's bytes where there is Redis.

use tollgate_cache::{Cache, CacheKey, Config, Entry, Tier};
use tollgate_entities::{PriceTier, TieredPricing, global_models, models};
use tollgate_resolver::{
    GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, Resolution, ResolutionMethod,
    Resolve,
};
use tollgate_testkit::fixtures;

/// The three stores behind the cache's one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InProcess,
    Redis,
    Tiered,
}

const ALL: [Kind; 3] = [Kind::InProcess, Kind::Redis, Kind::Tiered];
const WITH_REDIS: [Kind; 2] = [Kind::Redis, Kind::Tiered];

/// A configuration with a namespace of its own.
fn config() -> Config {
    Config {
        namespace: format!("tollgate:test:{}:", uuid::Uuid::new_v4().simple()),
        ..Config::default()
    }
}

async fn store(kind: Kind, config: Config) -> Cache {
    let url = tollgate_testkit::redis_url();
    match kind {
        Kind::InProcess => Cache::in_process(config),
        Kind::Redis => Cache::redis(config, &url).await,
        Kind::Tiered => Cache::tiered(config, &url).await,
    }
    .unwrap_or_else(|error| panic!("cannot build the {kind:?} cache: {error}"))
}

fn model(name: &str) -> models::Model {
    fixtures::model(
        &tollgate_entities::new_id(),
        &tollgate_entities::new_id(),
        name,
    )
}

fn global_model(name: &str) -> global_models::Model {
    fixtures::global_model(name)
}

async fn check<K>(writer: &Cache, reader: &Cache, kind: Kind, key: K, value: K::Value)
where
    K: CacheKey + std::fmt::Debug,
    K::Value: PartialEq + std::fmt::Debug,
{
    writer.set(&key, Entry::Found(value.clone())).await.unwrap();
    let lookup = reader
        .get(&key)
        .await
        .unwrap_or_else(|| panic!("{kind:?}: {key:?} not found"));
    assert_eq!(lookup.entry, Entry::Found(value), "{kind:?}: {key:?}");
    let expected = if kind == Kind::InProcess {
        Tier::L1
    } else {
        Tier::Redis
    };
    assert_eq!(lookup.tier, expected, "{kind:?}: {key:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_round_trips_on_every_store() {
    for kind in ALL {
        let config = config();
        let writer = store(kind, config.clone()).await;
        // With Redis, read through a second handle so the value comes from Redis's bytes.
        let reader = if kind == Kind::InProcess {
            writer.clone()
        } else {
            store(kind, config).await
        };
        let model = model("gpt-4o-2024");
        let global = global_model("gpt-4o");
        let pg = ProviderGlobal {
            provider_id: model.provider_id.clone(),
            global_model_id: model.global_model_id.clone(),
        };
        check(
            &writer,
            &reader,
            kind,
            ModelById(model.id.clone()),
            model.clone(),
        )
        .await;
        check(
            &writer,
            &reader,
            kind,
            GlobalModelById(global.id.clone()),
            global.clone(),
        )
        .await;
        check(
            &writer,
            &reader,
            kind,
            GlobalModelByName(global.name.clone()),
            global.clone(),
        )
        .await;
        for method in [
            ResolutionMethod::ProviderModelName,
            ResolutionMethod::DirectMatch,
        ] {
            let resolution = Resolution {
                global_model: global.clone(),
                method,
            };
            check(
                &writer,
                &reader,
                kind,
                Resolve(format!("{method:?}")),
                resolution,
            )
            .await;
        }
        check(&writer, &reader, kind, pg.clone(), model.clone()).await;

        // Negative entries are entries of their own.
        let absent = Resolve("no-such-model".to_owned());
        writer.set(&absent, Entry::Missing).await.unwrap();
        assert_eq!(
            reader.get(&absent).await.unwrap().entry,
            Entry::Missing,
            "{kind:?}"
        );

        // The hit counter.
        let hits = pg.hits();
        assert_eq!(reader.hits(&hits).await, None, "{kind:?}");
        writer.init_hits(&hits).await;
        assert_eq!(reader.hits(&hits).await, Some(1), "{kind:?}");
        assert_eq!(writer.incr_hits(&hits).await, Some(2), "{kind:?}");
        assert_eq!(reader.hits(&hits).await, Some(2), "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_null_prices_survive_distinctly() {
    for kind in WITH_REDIS {
        let config = config();
        let writer = store(kind, config.clone()).await;
        let reader = store(kind, config).await;

        let mut free = model("free");
        free.price_per_request = Some(0.0);
        free.tiered_pricing = Some(TieredPricing {
            tiers: vec![PriceTier {
                up_to: None,
                input_price_per_1m: 0.0,
                output_price_per_1m: 0.0,
                cache_creation_price_per_1m: Some(0.0),
                cache_read_price_per_1m: Some(0.0),
            }],
        });
        let mut inherited = model("inherited");
        inherited.price_per_request = None;
        inherited.tiered_pricing = Some(TieredPricing {
            tiers: vec![PriceTier {
                up_to: None,
                input_price_per_1m: 3.0,
                output_price_per_1m: 15.0,
                cache_creation_price_per_1m: None,
                cache_read_price_per_1m: None,
            }],
        });
        let mut unpriced = model("unpriced");
        unpriced.tiered_pricing = None;

        for model in [free, inherited, unpriced] {
            let key = ModelById(model.id.clone());
            writer.set(&key, Entry::Found(model.clone())).await.unwrap();
            let back = reader.get(&key).await.unwrap();
            assert_eq!(back.tier, Tier::Redis);
            let back = back.entry.found().unwrap();
            assert_eq!(back, model, "{kind:?}");
            assert_eq!(back.price_per_request, model.price_per_request);
            let tiers = |m: &models::Model| {
                m.tiered_pricing.as_ref().map(|p| {
                    (
                        p.tiers[0].cache_creation_price_per_1m,
                        p.tiers[0].cache_read_price_per_1m,
                    )
                })
            };
            assert_eq!(tiers(&back), tiers(&model));
        }
    }
}
