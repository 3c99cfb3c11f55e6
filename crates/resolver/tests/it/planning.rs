//! Routing plans: provider order, no paging, key order and skips, and planning from the
//! cache without database queries.

use std::sync::atomic::Ordering;

use tollgate_entities::{AllowedModels, ApiFormat, ModelAlias, ModelAliases};
use tollgate_resolver::{KeyHealthConfig, ResolverConfig, SkipReason};
use tollgate_testkit::fixtures;

use crate::resolver_test;
use crate::support::{seed_global, seed_model, seed_provider};

resolver_test!(async fn providers_are_ordered_by_priority_then_name(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "ordered").await;
    for (name, priority) in [("bravo", 10), ("alpha", 10), ("charlie", 5), ("delta", 20)] {
        let p = seed_provider(conn, name, priority).await;
        seed_model(conn, &p.provider, &g, &format!("ordered-{name}")).await;
    }
    let resolver = ctx.resolver().await;
    for _ in 0..2 {
        let (_, plan) = resolver.plan("ordered", ApiFormat::OpenAi, Some("client")).await.unwrap().unwrap();
        let order: Vec<&str> = plan.usable().map(|c| c.provider.name.as_str()).collect();
        assert_eq!(order, ["charlie", "alpha", "bravo", "delta"]);
        let upstream: Vec<&str> = plan.usable().map(|c| c.upstream_model_name).collect();
        assert_eq!(upstream, ["ordered-charlie", "ordered-alpha", "ordered-bravo", "ordered-delta"]);
    }
});

resolver_test!(async fn the_only_serving_provider_is_found_among_thirty(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "rare").await;
    let other = seed_global(conn, "common").await;
    let mut last = None;
    for i in 1..=30 {
        let p = seed_provider(conn, &format!("provider-{i:02}"), i).await;
        if i == 30 {
            seed_model(conn, &p.provider, &g, "rare-upstream").await;
            last = Some(p.provider.id.clone());
        } else {
            seed_model(conn, &p.provider, &other, &format!("common-{i}")).await;
        }
    }
    let resolver = ctx.resolver().await;
    let (_, plan) = resolver.plan("rare", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    let ids: Vec<&str> = plan.usable().map(|c| c.provider.id.as_str()).collect();
    assert_eq!(ids, [last.unwrap().as_str()]);
    let (_, common) = resolver.plan("common", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert_eq!(common.usable().count(), 29, "every provider is planned, no paging");
});

resolver_test!(async fn keys_outside_allowed_models_are_listed_as_skipped(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "canonical-name").await;
    let p = seed_provider(conn, "p", 10).await;
    seed_model(conn, &p.provider, &g, "requested-name").await;
    let mut other_only = fixtures::provider_key(&p.endpoint.id, "sk-other");
    other_only.allowed_models = Some(AllowedModels(vec!["something-else".into()]));
    other_only.internal_priority = 1;
    let other_only = fixtures::insert(conn, other_only).await;
    let mut canonical_only = fixtures::provider_key(&p.endpoint.id, "sk-canonical");
    canonical_only.allowed_models = Some(AllowedModels(vec!["canonical-name".into()]));
    canonical_only.internal_priority = 2;
    let canonical_only = fixtures::insert(conn, canonical_only).await;

    let resolver = ctx.resolver().await;
    let (_, plan) = resolver.plan("requested-name", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    let listed: Vec<(String, Option<SkipReason>)> = plan
        .candidates()
        .map(|c| (c.key.unwrap().id.clone(), c.skip_reason))
        .collect();
    assert_eq!(
        listed,
        vec![
            (other_only.id.clone(), Some(SkipReason::ModelNotAllowed)),
            (canonical_only.id.clone(), None),
            (p.key.id.clone(), None),
        ]
    );
    // Asking by a name the key lists makes it usable.
    let (_, plan) = resolver.plan("canonical-name", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert!(plan.candidates().all(|c| c.key.unwrap().id != other_only.id || c.skip_reason.is_some()));
    assert_eq!(plan.usable().count(), 2);
});

resolver_test!(async fn keys_tie_break_by_a_stable_per_client_hash(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "tied").await;
    let p = seed_provider(conn, "p", 10).await;
    seed_model(conn, &p.provider, &g, "tied-up").await;
    for i in 0..3 {
        fixtures::insert(conn, fixtures::provider_key(&p.endpoint.id, &format!("sk-{i}"))).await;
    }
    let mut first = fixtures::provider_key(&p.endpoint.id, "sk-first");
    first.internal_priority = 0;
    let first = fixtures::insert(conn, first).await;
    let resolver = ctx.resolver().await;
    let order = |client: String| {
        let resolver = resolver.clone();
        async move {
            let (_, plan) = resolver.plan("tied", ApiFormat::OpenAi, Some(&client)).await.unwrap().unwrap();
            plan.usable().map(|c| c.key.unwrap().id.clone()).collect::<Vec<_>>()
        }
    };
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..40 {
        let client = format!("client-{i}");
        let seen = order(client.clone()).await;
        assert_eq!(seen[0], first.id, "internal_priority comes first");
        assert_eq!(seen.len(), 5);
        assert_eq!(order(client).await, seen, "one client always gets the same order");
        distinct.insert(seen);
    }
    assert!(distinct.len() > 1, "ties should spread clients over keys");
});

resolver_test!(async fn open_circuits_and_missing_endpoints_are_skipped(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "fragile").await;
    let p = seed_provider(conn, "p", 10).await;
    seed_model(conn, &p.provider, &g, "fragile-up").await;
    let resolver = ctx
        .resolver_with(ResolverConfig {
            key_health: KeyHealthConfig { failure_threshold: 2, open_for: std::time::Duration::from_secs(60) },
            ..ResolverConfig::default()
        })
        .await;
    resolver.key_health().record_failure(&p.key.id);
    let (_, plan) = resolver.plan("fragile", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert!(plan.has_usable(), "one failure does not open the circuit");
    resolver.key_health().record_failure(&p.key.id);
    let (_, plan) = resolver.plan("fragile", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert!(!plan.has_usable());
    assert_eq!(plan.candidates().next().unwrap().skip_reason, Some(SkipReason::CircuitOpen));
    resolver.key_health().record_success(&p.key.id);
    let (_, plan) = resolver.plan("fragile", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert!(plan.has_usable());

    // The provider has no CLAUDE endpoint.
    let (_, plan) = resolver.plan("fragile", ApiFormat::Claude, None).await.unwrap().unwrap();
    let only = plan.candidates().collect::<Vec<_>>();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].skip_reason, Some(SkipReason::NoEndpointForFormat));
    assert!(only[0].endpoint.is_none());
});

resolver_test!(async fn upstream_names_follow_aliases_and_client_affinity(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "aliased").await;
    let p = seed_provider(conn, "p", 10).await;
    let mut model = fixtures::model(&p.provider.id, &g.id, "aliased-base");
    model.provider_model_aliases = Some(ModelAliases(
        ["up-1", "up-2", "up-3"]
            .iter()
            .map(|n| ModelAlias { name: (*n).to_owned(), priority: None, api_formats: None })
            .collect(),
    ));
    fixtures::insert(conn, model).await;
    let resolver = ctx.resolver().await;
    let (_, plan) = resolver.plan("aliased", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert_eq!(plan.usable().next().unwrap().upstream_model_name, "up-1");
    let mut names = std::collections::BTreeSet::new();
    for i in 0..30 {
        let client = format!("c{i}");
        let (_, a) = resolver.plan("aliased", ApiFormat::OpenAi, Some(&client)).await.unwrap().unwrap();
        let (_, b) = resolver.plan("aliased", ApiFormat::OpenAi, Some(&client)).await.unwrap().unwrap();
        let name = a.usable().next().unwrap().upstream_model_name.to_owned();
        assert_eq!(b.usable().next().unwrap().upstream_model_name, name);
        names.insert(name);
    }
    assert!(names.len() > 1);
});

resolver_test!(async fn a_cache_hit_plans_without_any_database_query(ctx) {
    let conn = ctx.conn();
    let g = seed_global(conn, "hot").await;
    for (name, priority) in [("p1", 1), ("p2", 2)] {
        let p = seed_provider(conn, name, priority).await;
        seed_model(conn, &p.provider, &g, &format!("hot-{name}")).await;
    }
    let (resolver, calls) = ctx.counting_resolver().await;
    let (_, first) = resolver.plan("hot-p2", ApiFormat::OpenAi, Some("c")).await.unwrap().unwrap();
    let after_first = calls.load(Ordering::SeqCst);
    assert!(after_first > 0);
    for _ in 0..5 {
        let (resolved, plan) = resolver.plan("hot-p2", ApiFormat::OpenAi, Some("c")).await.unwrap().unwrap();
        assert!(resolved.tier.is_cache());
        assert_eq!(plan.usable().count(), first.usable().count());
    }
    assert_eq!(calls.load(Ordering::SeqCst), after_first, "a cached plan queried the catalogue");
});
