//! The invalidation matrix (behaviour.md section 3): two resolvers share Redis and the
//! database; the first changes the catalogue and invalidates, the second resolves and plans
//! according to the change straight away (within the bus's delivery time, 100 ms at most).

use std::time::Duration;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, ModelTrait};
use tollgate_entities::{ApiFormat, global_models, models, providers};
use tollgate_resolver::Resolver;
use tollgate_testkit::Backend;

use crate::support::{CacheSetup, Ctx, Seeded, eventually, seed_global, seed_model, seed_provider};

const BUS: Duration = Duration::from_millis(100);

macro_rules! matrix_test {
    (async fn $name:ident($ctx:ident, $a:ident, $b:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports, reason = "bodies use different parts of the parent")]
            use super::*;

            async fn run($ctx: &Ctx, $a: &Resolver, $b: &Resolver) $body

            async fn setup(backend: Backend) {
                let ctx = Ctx::new(backend, CacheSetup::Redis).await;
                let a = ctx.resolver().await;
                let b = ctx.resolver().await;
                run(&ctx, &a, &b).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { setup(Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { setup(Backend::Postgres).await }
        }
    };
}

/// The id of the global model `name` resolves to on `resolver`, if any.
async fn resolves_to(resolver: &Resolver, name: &str) -> Option<String> {
    resolver
        .resolve_global_model(name)
        .await
        .unwrap()
        .map(|r| r.global_model.id)
}

/// Provider names of the usable candidates of `name`'s plan, in order.
async fn planned(resolver: &Resolver, name: &str) -> Vec<String> {
    match resolver
        .plan(name, ApiFormat::OpenAi, Some("client"))
        .await
        .unwrap()
    {
        Some((_, plan)) => plan.usable().map(|c| c.provider.name.clone()).collect(),
        None => Vec::new(),
    }
}

async fn models_of(
    conn: &sea_orm::DatabaseConnection,
    global: &global_models::Model,
) -> Vec<models::Model> {
    global.find_related(models::Entity).all(conn).await.unwrap()
}

/// Global model `global` served by provider `p` (priority 10) as `upstream`.
async fn served_by_p(
    conn: &sea_orm::DatabaseConnection,
    global: &str,
    upstream: &str,
) -> (global_models::Model, Seeded) {
    let g = seed_global(conn, global).await;
    let p = seed_provider(conn, "p", 10).await;
    seed_model(conn, &p.provider, &g, upstream).await;
    (g, p)
}

/// A global model served by providers `first` (priority 10) and `second` (20), one model
/// each.
struct ServedTwice {
    g: global_models::Model,
    first: Seeded,
    second: Seeded,
    m1: models::Model,
    m2: models::Model,
}

/// Global model `global` served by `first` as `upstreams[0]` and `second` as `upstreams[1]`.
async fn served_twice(
    conn: &sea_orm::DatabaseConnection,
    global: &str,
    upstreams: [&str; 2],
) -> ServedTwice {
    let g = seed_global(conn, global).await;
    let first = seed_provider(conn, "first", 10).await;
    let second = seed_provider(conn, "second", 20).await;
    let m1 = seed_model(conn, &first.provider, &g, upstreams[0]).await;
    let m2 = seed_model(conn, &second.provider, &g, upstreams[1]).await;
    ServedTwice {
        g,
        first,
        second,
        m1,
        m2,
    }
}

matrix_test!(async fn global_model_created_clears_a_cached_missing(ctx, a, b) {
    assert_eq!(resolves_to(b, "brand-new").await, None);
    let created = seed_global(ctx.conn(), "brand-new").await;
    a.global_model_created(&created).await;
    assert!(eventually(BUS, || async { resolves_to(b, "brand-new").await == Some(created.id.clone()) }).await);
    assert_eq!(b.global_model_by_name("brand-new").await.unwrap().map(|g| g.id), Some(created.id));
});

matrix_test!(async fn global_model_updated(ctx, a, b) {
    let conn = ctx.conn();
    let (g, _) = served_by_p(conn, "before-rename", "upstream-x").await;
    assert_eq!(resolves_to(b, "before-rename").await, Some(g.id.clone()));
    assert_eq!(b.global_model_by_id(&g.id).await.unwrap().unwrap().name, "before-rename");
    let (resolved, _) = b.plan("upstream-x", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert_eq!(resolved.global_model.name, "before-rename");

    let models = models_of(conn, &g).await;
    let mut active = g.clone().into_active_model();
    active.name = Set("after-rename".into());
    active.default_price_per_request = Set(Some(0.5));
    let after = active.update(conn).await.unwrap();
    a.global_model_changed(&g, Some(&after), &models).await;

    assert!(eventually(BUS, || async { resolves_to(b, "before-rename").await.is_none() }).await);
    assert_eq!(resolves_to(b, "after-rename").await, Some(g.id.clone()));
    assert_eq!(b.global_model_by_id(&g.id).await.unwrap().unwrap().name, "after-rename");
    let (resolved, _) = b.plan("upstream-x", ApiFormat::OpenAi, None).await.unwrap().unwrap();
    assert_eq!(resolved.global_model.default_price_per_request, Some(0.5));
});

matrix_test!(async fn global_model_deactivated_and_deleted(ctx, a, b) {
    let conn = ctx.conn();
    let (g, p) = served_by_p(conn, "short-lived", "short-upstream").await;
    assert_eq!(planned(b, "short-upstream").await, vec!["p".to_owned()]);
    assert!(b.model_for_provider(&p.provider.id, &g.id).await.unwrap().is_some());

    let models = models_of(conn, &g).await;
    let mut active = g.clone().into_active_model();
    active.is_active = Set(false);
    let after = active.update(conn).await.unwrap();
    a.global_model_changed(&g, Some(&after), &models).await;
    assert!(eventually(BUS, || async { resolves_to(b, "short-lived").await.is_none() }).await);
    assert_eq!(resolves_to(b, "short-upstream").await, None);
    assert!(planned(b, "short-upstream").await.is_empty());

    // Reactivate, then delete (cascading to its models).
    let mut active = after.clone().into_active_model();
    active.is_active = Set(true);
    let reactivated = active.update(conn).await.unwrap();
    a.global_model_changed(&after, Some(&reactivated), &models).await;
    assert!(eventually(BUS, || async { resolves_to(b, "short-upstream").await.is_some() }).await);
    global_models::Entity::delete_by_id(g.id.clone()).exec(conn).await.unwrap();
    a.global_model_changed(&reactivated, None, &models).await;
    assert!(eventually(BUS, || async { resolves_to(b, "short-upstream").await.is_none() }).await);
    assert_eq!(resolves_to(b, "short-lived").await, None);
    assert!(b.model_for_provider(&p.provider.id, &g.id).await.unwrap().is_none());
    assert!(b.global_model_by_id(&g.id).await.unwrap().is_none());
});

matrix_test!(async fn model_created(ctx, a, b) {
    let conn = ctx.conn();
    let g = seed_global(conn, "growing").await;
    let first = seed_provider(conn, "first", 10).await;
    let second = seed_provider(conn, "second", 20).await;
    seed_model(conn, &first.provider, &g, "growing-a").await;
    assert_eq!(resolves_to(b, "growing-b").await, None);
    assert_eq!(planned(b, "growing").await, vec!["first".to_owned()]);
    assert!(b.model_for_provider(&second.provider.id, &g.id).await.unwrap().is_none());

    let created = seed_model(conn, &second.provider, &g, "growing-b").await;
    a.model_created(&created).await;
    assert!(eventually(BUS, || async { resolves_to(b, "growing-b").await == Some(g.id.clone()) }).await);
    assert_eq!(planned(b, "growing").await, vec!["first".to_owned(), "second".to_owned()]);
    assert_eq!(b.model_for_provider(&second.provider.id, &g.id).await.unwrap().map(|m| m.id), Some(created.id));
});

matrix_test!(async fn model_updated_renamed_and_moved(ctx, a, b) {
    let conn = ctx.conn();
    let g1 = seed_global(conn, "home").await;
    let g2 = seed_global(conn, "elsewhere").await;
    let p = seed_provider(conn, "p", 10).await;
    let m = seed_model(conn, &p.provider, &g1, "old-upstream").await;
    assert_eq!(resolves_to(b, "old-upstream").await, Some(g1.id.clone()));
    assert_eq!(resolves_to(b, "new-upstream").await, None);
    assert_eq!(planned(b, "home").await, vec!["p".to_owned()]);
    assert!(planned(b, "elsewhere").await.is_empty());
    assert_eq!(b.model_by_id(&m.id).await.unwrap().unwrap().provider_model_name, "old-upstream");

    let mut active = m.clone().into_active_model();
    active.provider_model_name = Set("new-upstream".into());
    active.global_model_id = Set(g2.id.clone());
    let after = active.update(conn).await.unwrap();
    a.model_changed(&m, Some(&after)).await;

    assert!(eventually(BUS, || async { resolves_to(b, "old-upstream").await.is_none() }).await);
    assert_eq!(resolves_to(b, "new-upstream").await, Some(g2.id.clone()));
    assert!(planned(b, "home").await.is_empty());
    assert_eq!(planned(b, "elsewhere").await, vec!["p".to_owned()]);
    assert_eq!(b.model_by_id(&m.id).await.unwrap().unwrap().provider_model_name, "new-upstream");
    assert!(b.model_for_provider(&p.provider.id, &g1.id).await.unwrap().is_none());
});

matrix_test!(async fn model_deactivated_and_deleted(ctx, a, b) {
    let conn = ctx.conn();
    let ServedTwice { g, m1, m2, .. } = served_twice(conn, "shrinking", ["shrink-a", "shrink-b"]).await;
    assert_eq!(planned(b, "shrinking").await, vec!["first".to_owned(), "second".to_owned()]);
    assert_eq!(resolves_to(b, "shrink-a").await, Some(g.id.clone()));

    let mut active = m1.clone().into_active_model();
    active.is_active = Set(false);
    let after = active.update(conn).await.unwrap();
    a.model_changed(&m1, Some(&after)).await;
    assert!(eventually(BUS, || async { resolves_to(b, "shrink-a").await.is_none() }).await);
    assert_eq!(planned(b, "shrinking").await, vec!["second".to_owned()]);

    models::Entity::delete_by_id(m2.id.clone()).exec(conn).await.unwrap();
    a.model_changed(&m2, None).await;
    assert!(eventually(BUS, || async { resolves_to(b, "shrink-b").await.is_none() }).await);
    assert!(planned(b, "shrinking").await.is_empty());
    assert!(b.model_by_id(&m2.id).await.unwrap().is_none());
});

matrix_test!(async fn provider_updated_deactivated_and_deleted(ctx, a, b) {
    let conn = ctx.conn();
    let ServedTwice { g, first, second, m1, m2 } = served_twice(conn, "served", ["served-a", "served-b"]).await;
    assert_eq!(planned(b, "served").await, vec!["first".to_owned(), "second".to_owned()]);

    // Priority change reorders the plan.
    let mut active = second.provider.clone().into_active_model();
    active.provider_priority = Set(1);
    let second_after = active.update(conn).await.unwrap();
    a.provider_changed(std::slice::from_ref(&m2)).await;
    assert!(eventually(BUS, || async {
        planned(b, "served").await == vec!["second".to_owned(), "first".to_owned()]
    })
    .await);

    // Deactivation drops it from plans and from provider-name resolution.
    let mut active = second_after.into_active_model();
    active.is_active = Set(false);
    active.update(conn).await.unwrap();
    a.provider_changed(std::slice::from_ref(&m2)).await;
    assert!(eventually(BUS, || async { planned(b, "served").await == vec!["first".to_owned()] }).await);
    assert_eq!(resolves_to(b, "served-b").await, None);

    // Deletion cascades to its models.
    assert_eq!(resolves_to(b, "served-a").await, Some(g.id.clone()));
    providers::Entity::delete_by_id(first.provider.id.clone()).exec(conn).await.unwrap();
    a.provider_changed(std::slice::from_ref(&m1)).await;
    assert!(eventually(BUS, || async { planned(b, "served").await.is_empty() }).await);
    assert_eq!(resolves_to(b, "served-a").await, None);
});

matrix_test!(async fn endpoint_and_key_changes_replan(ctx, a, b) {
    let conn = ctx.conn();
    let (g, p) = served_by_p(conn, "keyed", "keyed-up").await;
    assert_eq!(planned(b, "keyed").await, vec!["p".to_owned()]);

    let mut key = p.key.clone().into_active_model();
    key.is_active = Set(false);
    key.update(conn).await.unwrap();
    a.routes_changed([g.id.as_str()]).await;
    assert!(eventually(BUS, || async { planned(b, "keyed").await.is_empty() }).await);
});
