//! The tests' own key families: the cache is generic over its families, so its tests cache a
//! value type of their own, with the shapes a real family carries (ids, names, optional and
//! zero prices, an enum, a composite key and a hit counter).

use serde::{Deserialize, Serialize};
use tollgate_cache::{CacheKey, CounterKey, Key};

/// The cached value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Widget {
    pub(crate) id: String,
    pub(crate) shop_id: String,
    pub(crate) name: String,
    /// `None` and `Some(0.0)` must survive a round trip distinctly.
    pub(crate) price: Option<f64>,
    pub(crate) pricing: Option<Pricing>,
}

/// Nested prices, some of them optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pricing {
    pub(crate) tiers: Vec<PriceTier>,
}

/// One price tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PriceTier {
    pub(crate) up_to: Option<u64>,
    pub(crate) unit_price: f64,
    pub(crate) bulk_price: Option<f64>,
}

/// How a name reached its widget: an enum inside a cached value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum How {
    ByName,
    ByAlias,
}

/// What a [`Pick`] caches: the widget and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Picked {
    pub(crate) widget: Widget,
    pub(crate) how: How,
}

tollgate_cache::string_key! {
    /// `widget:id:{id}`: a widget by its id.
    pub(crate) struct WidgetById(pub(crate) String);
    family = "widget_by_id", prefix = "widget:id:", value = Widget;
}

tollgate_cache::string_key! {
    /// `widget:name:{name}`: a widget by its name (a second family of the same value type).
    pub(crate) struct WidgetByName(pub(crate) String);
    family = "widget_by_name", prefix = "widget:name:", value = Widget;
}

tollgate_cache::string_key! {
    /// `widget:pick:{name}`: which widget a client's name picks, if any.
    pub(crate) struct Pick(pub(crate) String);
    family = "pick", prefix = "widget:pick:", value = Picked;
}

/// `widget:stock:{shop_id}:{widget_id}`: a shop's widget, under a composite key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Stock {
    pub(crate) shop_id: String,
    pub(crate) widget_id: String,
}

impl Stock {
    /// The hit counter that goes with this entry.
    pub(crate) fn hits(&self) -> StockHits {
        StockHits {
            shop_id: self.shop_id.clone(),
            widget_id: self.widget_id.clone(),
        }
    }
}

/// `widget:stock:hits:{shop_id}:{widget_id}`: how often the stock entry was hit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StockHits {
    pub(crate) shop_id: String,
    pub(crate) widget_id: String,
}

impl Key for Stock {
    const FAMILY: &'static str = "stock";
    fn render(&self) -> String {
        format!("widget:stock:{}:{}", self.shop_id, self.widget_id)
    }
}

impl CacheKey for Stock {
    type Value = Widget;
}

impl Key for StockHits {
    const FAMILY: &'static str = "stock_hits";
    fn render(&self) -> String {
        format!("widget:stock:hits:{}:{}", self.shop_id, self.widget_id)
    }
}

impl CounterKey for StockHits {}

/// A fresh widget named `name`, with a unique id and a price.
pub(crate) fn widget(name: &str) -> Widget {
    Widget {
        id: uuid::Uuid::new_v4().to_string(),
        shop_id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        price: Some(1.5),
        pricing: None,
    }
}
