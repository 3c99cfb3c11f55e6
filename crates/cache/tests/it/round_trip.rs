//! Every family round-trips on every store, through Redis's bytes where there is Redis.

use tollgate_cache::{CacheKey, Entry, Tier};

use crate::families::{
    self, How, Pick, Picked, PriceTier, Pricing, Stock, Widget, WidgetById, WidgetByName,
};
use crate::support::{self, ALL, Kind, WITH_REDIS};

async fn check<K>(
    writer: &tollgate_cache::Cache,
    reader: &tollgate_cache::Cache,
    kind: Kind,
    key: K,
    value: K::Value,
) where
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
        let config = support::config();
        let writer = support::store(kind, config.clone()).await;
        // With Redis, read through a second handle so the value comes from Redis's bytes.
        let reader = if kind == Kind::InProcess {
            writer.clone()
        } else {
            support::store(kind, config).await
        };
        let widget = families::widget("sprocket-2024");
        let stock = Stock {
            shop_id: widget.shop_id.clone(),
            widget_id: widget.id.clone(),
        };
        check(
            &writer,
            &reader,
            kind,
            WidgetById(widget.id.clone()),
            widget.clone(),
        )
        .await;
        check(
            &writer,
            &reader,
            kind,
            WidgetByName(widget.name.clone()),
            widget.clone(),
        )
        .await;
        for how in [How::ByName, How::ByAlias] {
            let picked = Picked {
                widget: widget.clone(),
                how,
            };
            check(&writer, &reader, kind, Pick(format!("{how:?}")), picked).await;
        }
        check(&writer, &reader, kind, stock.clone(), widget.clone()).await;

        // Negative entries are entries of their own.
        let absent = Pick("no-such-widget".to_owned());
        writer.set(&absent, Entry::Missing).await.unwrap();
        assert_eq!(
            reader.get(&absent).await.unwrap().entry,
            Entry::Missing,
            "{kind:?}"
        );

        // The hit counter.
        let hits = stock.hits();
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
        let config = support::config();
        let writer = support::store(kind, config.clone()).await;
        let reader = support::store(kind, config).await;

        let mut free = families::widget("free");
        free.price = Some(0.0);
        free.pricing = Some(Pricing {
            tiers: vec![PriceTier {
                up_to: None,
                unit_price: 0.0,
                bulk_price: Some(0.0),
            }],
        });
        let mut inherited = families::widget("inherited");
        inherited.price = None;
        inherited.pricing = Some(Pricing {
            tiers: vec![PriceTier {
                up_to: None,
                unit_price: 3.0,
                bulk_price: None,
            }],
        });
        let mut unpriced = families::widget("unpriced");
        unpriced.pricing = None;

        for widget in [free, inherited, unpriced] {
            let key = WidgetById(widget.id.clone());
            writer
                .set(&key, Entry::Found(widget.clone()))
                .await
                .unwrap();
            let back = reader.get(&key).await.unwrap();
            assert_eq!(back.tier, Tier::Redis);
            let back = back.entry.found().unwrap();
            assert_eq!(back, widget, "{kind:?}");
            assert_eq!(back.price, widget.price);
            let tiers = |w: &Widget| w.pricing.as_ref().map(|p| p.tiers[0].bulk_price);
            assert_eq!(tiers(&back), tiers(&widget));
        }
    }
}
