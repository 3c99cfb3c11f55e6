//! Every key family of the resolver round-trips its entity snapshots on every store of
//! `tollgate-cache`, through Redis's bytes where there is Redis.

use tollgate_entities::{PriceTier, TieredPricing, global_models, models};
use tollgate_resolver::{
    GlobalModelById, GlobalModelByName, ModelById, ProviderGlobal, Resolution, ResolutionMethod,
    Resolve,
};
use tollgate_testkit::fixtures;
use tollgate_testkit::stores::{self, ALL, WITH_REDIS};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_round_trips_on_every_store() {
    for kind in ALL {
        let (writer, reader) = stores::writer_and_reader(kind).await;
        let model = model("gpt-4o-2024");
        let global = global_model("gpt-4o");
        let pg = ProviderGlobal {
            provider_id: model.provider_id.clone(),
            global_model_id: model.global_model_id.clone(),
        };
        let by_id = ModelById(model.id.clone());
        stores::round_trip(&writer, &reader, kind, by_id, model.clone()).await;
        let global_by_id = GlobalModelById(global.id.clone());
        stores::round_trip(&writer, &reader, kind, global_by_id, global.clone()).await;
        let global_by_name = GlobalModelByName(global.name.clone());
        stores::round_trip(&writer, &reader, kind, global_by_name, global.clone()).await;
        for method in [
            ResolutionMethod::ProviderModelName,
            ResolutionMethod::DirectMatch,
        ] {
            let resolution = Resolution {
                global_model: global.clone(),
                method,
            };
            let key = Resolve(format!("{method:?}"));
            stores::round_trip(&writer, &reader, kind, key, resolution).await;
        }
        stores::round_trip(&writer, &reader, kind, pg.clone(), model.clone()).await;
        let absent = Resolve("no-such-model".to_owned());
        stores::missing_round_trips(&writer, &reader, kind, absent).await;
        stores::counter_counts(&writer, &reader, kind, pg.hits()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_null_prices_survive_distinctly() {
    for kind in WITH_REDIS {
        let (writer, reader) = stores::writer_and_reader(kind).await;

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
            // Equal, and read from Redis.
            let back = stores::round_trip(&writer, &reader, kind, key, model.clone()).await;
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
