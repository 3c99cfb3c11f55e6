//! The edge-case suite of issue 4: names, negative caching, precedence, inactive rows,
//! deterministic conflicts, aliases, hit counter, prices through the cache.

use std::time::Duration;

use tollgate_cache::{Config, Tier};
use tollgate_entities::{ModelAlias, ModelAliases, PriceTier, TieredPricing};
use tollgate_resolver::{
    ResolutionMethod, ResolutionOrder, Resolve, ResolverConfig, ResolverError,
};
use tollgate_testkit::fixtures;

use crate::resolver_test;
use crate::support::{seed_global, seed_model, seed_provider};

fn short_ttls() -> Config {
    Config {
        ttl: Duration::from_secs(1),
        negative_ttl: Duration::from_secs(1),
        ..Config::default()
    }
}

resolver_test!(async fn empty_and_whitespace_names_are_rejected(ctx) {
    let resolver = ctx.resolver().await;
    for name in ["", " ", "\t\n  "] {
        let error = resolver.resolve_global_model(name).await.unwrap_err();
        assert!(matches!(error, ResolverError::InvalidName { .. }), "{name:?}: {error}");
    }
});

resolver_test!(async fn surrounding_spaces_share_one_cache_entry(ctx) {
    seed_global(ctx.conn(), "gpt-x").await;
    let resolver = ctx.resolver().await;
    let first = resolver.resolve_global_model("  gpt-x ").await.unwrap().unwrap();
    assert_eq!(first.tier, Tier::Loader);
    assert_eq!(first.global_model.name, "gpt-x");
    for spelling in ["gpt-x", "\tgpt-x", "gpt-x  "] {
        let again = resolver.resolve_global_model(spelling).await.unwrap().unwrap();
        assert!(again.tier.is_cache(), "{spelling:?} answered by {:?}", again.tier);
        assert_eq!(again.global_model, first.global_model);
    }
    // Matching is case-sensitive: another spelling is another (missing) name.
    assert!(resolver.resolve_global_model("GPT-X").await.unwrap().is_none());
});

resolver_test!(async fn invalid_names_are_rejected_and_leave_no_cache_entry(ctx) {
    let resolver = ctx.resolver().await;
    let long = "x".repeat(201);
    let bad = ["gpt\u{0}4", "gpt\n4o", "bell\u{7}"];
    assert!(matches!(resolver.resolve_global_model(&long).await, Err(ResolverError::InvalidName { .. })));
    for name in bad {
        assert!(matches!(resolver.resolve_global_model(name).await, Err(ResolverError::InvalidName { .. })));
    }
    let cache = resolver.cache();
    assert!(cache.get(&Resolve(long.clone())).await.is_none());
    for name in bad {
        assert!(cache.get(&Resolve(name.to_owned())).await.is_none(), "{name:?} was cached");
    }
    // A fresh cache instance (another replica) sees nothing either.
    assert!(ctx.cache().await.get(&Resolve(long)).await.is_none());
});

resolver_test!(#[config(short_ttls())] async fn negative_hit_then_negative_expiry(ctx) {
    let resolver = ctx.resolver().await;
    let miss = resolver.resolve_global_model("late-model").await.unwrap();
    assert!(miss.is_none());
    // Created behind the resolver's back (no invalidation): the negative entry still answers.
    seed_global(ctx.conn(), "late-model").await;
    assert!(resolver.resolve_global_model("late-model").await.unwrap().is_none(), "negative entry not used");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let found = resolver.resolve_global_model("late-model").await.unwrap().expect("found after expiry");
    assert_eq!(found.tier, Tier::Loader);
    assert_eq!(found.method, ResolutionMethod::DirectMatch);
});

resolver_test!(async fn provider_model_name_beats_a_same_named_global_model(ctx) {
    let alpha = seed_global(ctx.conn(), "alpha").await;
    let shadow = seed_global(ctx.conn(), "shadow").await;
    let p = seed_provider(ctx.conn(), "p1", 10).await;
    seed_model(ctx.conn(), &p.provider, &alpha, "shadow").await;

    let resolver = ctx.resolver().await;
    let resolved = resolver.resolve_global_model("shadow").await.unwrap().unwrap();
    assert_eq!(resolved.global_model.id, alpha.id);
    assert_eq!(resolved.method, ResolutionMethod::ProviderModelName);
    assert_eq!(resolved.order, ResolutionOrder::ProviderNameFirst);
    // Cached answers keep the original method.
    let cached = resolver.resolve_global_model("shadow").await.unwrap().unwrap();
    assert!(cached.tier.is_cache());
    assert_eq!(cached.method, ResolutionMethod::ProviderModelName);

    // Another deploy with the other order: its own cache namespace, since both orders may
    // answer differently for the same key.
    let direct_first = ctx
        .isolated_resolver(ResolverConfig { resolution_order: ResolutionOrder::DirectFirst, ..ResolverConfig::default() })
        .await;
    let resolved = direct_first.resolve_global_model("shadow").await.unwrap().unwrap();
    assert_eq!(resolved.global_model.id, shadow.id);
    assert_eq!(resolved.method, ResolutionMethod::DirectMatch);
    assert_eq!(resolved.order, ResolutionOrder::DirectFirst);
});

resolver_test!(async fn inactive_provider_model_or_global_model_is_excluded(ctx) {
    let conn = ctx.conn();
    let active = seed_provider(conn, "active", 10).await;
    let mut inactive_provider = fixtures::provider("inactive", 1);
    inactive_provider.is_active = false;
    let inactive_provider = fixtures::insert(conn, inactive_provider).await;

    let g1 = seed_global(conn, "g1").await;
    seed_model(conn, &inactive_provider, &g1, "via-inactive-provider").await;

    let g2 = seed_global(conn, "g2").await;
    let mut model = fixtures::model(&active.provider.id, &g2.id, "via-inactive-model");
    model.is_active = false;
    fixtures::insert(conn, model).await;

    let mut g3 = fixtures::global_model("g3-inactive");
    g3.is_active = false;
    let g3 = fixtures::insert(conn, g3).await;
    seed_model(conn, &active.provider, &g3, "via-inactive-global").await;

    let g4 = seed_global(conn, "g4").await;
    seed_model(conn, &active.provider, &g4, "via-active-chain").await;

    let resolver = ctx.resolver().await;
    for name in ["via-inactive-provider", "via-inactive-model", "via-inactive-global", "g3-inactive"] {
        assert!(resolver.resolve_global_model(name).await.unwrap().is_none(), "{name} resolved");
    }
    // The global models behind inactive providers or models still resolve by their own name.
    assert_eq!(resolver.resolve_global_model("g1").await.unwrap().unwrap().global_model.id, g1.id);
    assert_eq!(resolver.resolve_global_model("g2").await.unwrap().unwrap().global_model.id, g2.id);
    let chain = resolver.resolve_global_model("via-active-chain").await.unwrap().unwrap();
    assert_eq!(chain.global_model.id, g4.id);
    assert_eq!(chain.method, ResolutionMethod::ProviderModelName);
});

resolver_test!(async fn shared_provider_model_name_always_picks_the_same_winner(ctx) {
    let conn = ctx.conn();
    let zeta = seed_global(conn, "zeta").await;
    let beta = seed_global(conn, "beta").await;
    let alpha = seed_global(conn, "alpha").await;
    let low_a = seed_provider(conn, "low-a", 10).await;
    let low_b = seed_provider(conn, "low-b", 10).await;
    let high = seed_provider(conn, "high", 20).await;
    // alpha sorts first by name but only a priority-20 provider offers it.
    seed_model(conn, &high.provider, &alpha, "shared").await;
    seed_model(conn, &low_a.provider, &zeta, "shared").await;
    seed_model(conn, &low_b.provider, &beta, "shared").await;
    for _ in 0..5 {
        // A fresh resolver each time: every answer comes from the database.
        let resolver = ctx.resolver().await;
        let won = resolver.resolve_global_model("shared").await.unwrap().unwrap();
        assert_eq!(won.global_model.id, beta.id, "lowest priority, then name");
    }
});

resolver_test!(async fn aliases_never_resolve_globally(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "real-global").await;
    let other = seed_global(conn, "other-global").await;
    let p = seed_provider(conn, "aliased", 10).await;
    let mut model = fixtures::model(&p.provider.id, &g.id, "real-name");
    model.provider_model_aliases = Some(ModelAliases(vec![
        ModelAlias { name: "alias-name".into(), priority: Some(1), api_formats: None },
        ModelAlias { name: "other-global".into(), priority: Some(2), api_formats: None },
    ]));
    fixtures::insert(conn, model).await;

    let resolver = ctx.resolver().await;
    assert!(resolver.resolve_global_model("alias-name").await.unwrap().is_none());
    let other_resolved = resolver.resolve_global_model("other-global").await.unwrap().unwrap();
    assert_eq!(other_resolved.global_model.id, other.id);
    assert_eq!(other_resolved.method, ResolutionMethod::DirectMatch);
    assert_eq!(resolver.resolve_global_model("real-name").await.unwrap().unwrap().global_model.id, g.id);
});

resolver_test!(#[config(short_ttls())] async fn hit_counter_counts_and_restarts_after_expiry(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "counted").await;
    let p = seed_provider(conn, "counter-provider", 10).await;
    let model = seed_model(conn, &p.provider, &g, "counted-upstream").await;
    let resolver = ctx.resolver().await;

    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, None);
    let found = resolver.model_for_provider(&p.provider.id, &g.id).await.unwrap();
    assert_eq!(found.as_ref().map(|m| &m.id), Some(&model.id));
    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, Some(1));
    resolver.model_for_provider(&p.provider.id, &g.id).await.unwrap();
    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, Some(2));
    resolver.model_for_provider(&p.provider.id, &g.id).await.unwrap();
    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, Some(3));

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, None, "counter outlived its TTL");
    resolver.model_for_provider(&p.provider.id, &g.id).await.unwrap();
    assert_eq!(resolver.model_for_provider_hits(&p.provider.id, &g.id).await, Some(1));
});

resolver_test!(async fn zero_and_null_prices_come_back_distinct_from_the_cache(ctx) {
    let conn = ctx.conn();
    let pricing = |cache_read: Option<f64>| TieredPricing {
        tiers: vec![PriceTier {
            up_to: None,
            input_price_per_1m: 0.0,
            output_price_per_1m: 1.0,
            cache_creation_price_per_1m: None,
            cache_read_price_per_1m: cache_read,
        }],
    };
    let mut zero = fixtures::global_model("priced-zero");
    zero.default_price_per_request = Some(0.0);
    zero.default_tiered_pricing = pricing(Some(0.0));
    let zero = fixtures::insert(conn, zero).await;
    let mut null = fixtures::global_model("priced-null");
    null.default_price_per_request = None;
    null.default_tiered_pricing = pricing(None);
    let null = fixtures::insert(conn, null).await;

    let warm = ctx.resolver().await;
    warm.resolve_global_model("priced-zero").await.unwrap();
    warm.resolve_global_model("priced-null").await.unwrap();
    // Read back through the same L1, and through a second replica (Redis when present).
    for resolver in [warm, ctx.resolver().await] {
        let z = resolver.resolve_global_model("priced-zero").await.unwrap().unwrap();
        let n = resolver.resolve_global_model("priced-null").await.unwrap().unwrap();
        assert_eq!(z.global_model, zero);
        assert_eq!(n.global_model, null);
        assert_eq!(z.global_model.default_price_per_request, Some(0.0));
        assert_eq!(n.global_model.default_price_per_request, None);
        assert_eq!(z.global_model.default_tiered_pricing.tiers[0].cache_read_price_per_1m, Some(0.0));
        assert_eq!(n.global_model.default_tiered_pricing.tiers[0].cache_read_price_per_1m, None);
    }
});

resolver_test!(async fn id_and_name_look_ups_cache_hits_and_misses(ctx) {
    let conn = ctx.conn();
    let mut g = fixtures::global_model("lookup-global");
    g.is_active = false;
    let g = fixtures::insert(conn, g).await;
    let p = seed_provider(conn, "lookup-provider", 10).await;
    let m = seed_model(conn, &p.provider, &g, "lookup-model").await;
    let (resolver, calls) = ctx.counting_resolver().await;

    // No active filter on these look-ups.
    assert_eq!(resolver.global_model_by_id(&g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(resolver.global_model_by_name("lookup-global").await.unwrap(), Some(g.clone()));
    assert_eq!(resolver.model_by_id(&m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(resolver.model_by_id("no-such-id").await.unwrap(), None);
    assert_eq!(resolver.global_model_by_name("no-such-name").await.unwrap(), None);
    let loads = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(loads, 5);
    // Every answer, found or missing, now comes from the cache.
    assert_eq!(resolver.global_model_by_id(&g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(resolver.global_model_by_name("lookup-global").await.unwrap(), Some(g));
    assert_eq!(resolver.model_by_id(&m.id).await.unwrap(), Some(m));
    assert_eq!(resolver.model_by_id("no-such-id").await.unwrap(), None);
    assert_eq!(resolver.global_model_by_name("no-such-name").await.unwrap(), None);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), loads);
});

/// A garbage value in Redis (for instance written by an older deploy) is a miss: the
/// resolver answers from the database and overwrites it.
async fn garbage_in_redis_is_answered_from_the_database(backend: tollgate_testkit::Backend) {
    use deadpool_redis::redis::AsyncCommands;

    let ctx = crate::support::Ctx::new(backend, crate::support::CacheSetup::Redis).await;
    let g = seed_global(ctx.conn(), "garbled").await;
    let client = deadpool_redis::redis::Client::open(tollgate_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}global_model:resolve:garbled", ctx.config.namespace);
    for garbage in ["not json at all", "{\"entry\": 42}", "NOT_FOUND", "None"] {
        let _: () = redis.set_ex(&key, garbage, 60).await.unwrap();
        // A fresh replica: nothing in its L1, so Redis answers first.
        let resolver = ctx.resolver().await;
        let resolved = resolver
            .resolve_global_model("garbled")
            .await
            .unwrap()
            .expect("answered from the database");
        assert_eq!(resolved.global_model.id, g.id, "garbage {garbage:?}");
        assert_eq!(resolved.tier, Tier::Loader, "garbage {garbage:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_redis_is_answered_from_the_database_sqlite() {
    garbage_in_redis_is_answered_from_the_database(tollgate_testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_redis_is_answered_from_the_database_postgres() {
    garbage_in_redis_is_answered_from_the_database(tollgate_testkit::Backend::Postgres).await;
}
