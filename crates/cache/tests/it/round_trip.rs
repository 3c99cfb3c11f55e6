//! Every family round-trips on every store, through Redis's bytes where there is Redis.

use tollgate_testkit::stores::{self, ALL, WITH_REDIS};

use crate::families::{
    self, How, Pick, Picked, PriceTier, Pricing, Stock, Widget, WidgetById, WidgetByName,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_round_trips_on_every_store() {
    for kind in ALL {
        let (writer, reader) = stores::writer_and_reader(kind).await;
        let widget = families::widget("sprocket-2024");
        let stock = Stock {
            shop_id: widget.shop_id.clone(),
            widget_id: widget.id.clone(),
        };
        let by_id = WidgetById(widget.id.clone());
        stores::round_trip(&writer, &reader, kind, by_id, widget.clone()).await;
        let by_name = WidgetByName(widget.name.clone());
        stores::round_trip(&writer, &reader, kind, by_name, widget.clone()).await;
        for how in [How::ByName, How::ByAlias] {
            let picked = Picked {
                widget: widget.clone(),
                how,
            };
            stores::round_trip(&writer, &reader, kind, Pick(format!("{how:?}")), picked).await;
        }
        stores::round_trip(&writer, &reader, kind, stock.clone(), widget.clone()).await;
        let absent = Pick("no-such-widget".to_owned());
        stores::missing_round_trips(&writer, &reader, kind, absent).await;
        stores::counter_counts(&writer, &reader, kind, stock.hits()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_null_prices_survive_distinctly() {
    for kind in WITH_REDIS {
        let (writer, reader) = stores::writer_and_reader(kind).await;

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
            // Equal, and read from Redis.
            let back = stores::round_trip(&writer, &reader, kind, key, widget.clone()).await;
            assert_eq!(back.price, widget.price);
            let tiers = |w: &Widget| w.pricing.as_ref().map(|p| p.tiers[0].bulk_price);
            assert_eq!(tiers(&back), tiers(&widget));
        }
    }
}
