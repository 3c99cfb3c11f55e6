//! Shared set-up: a database and cache per test, the six backend combinations, seeding
//! helpers and a catalogue that counts its queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate_cache::{Cache, Config};
use tollgate_entities::{
    ApiFormat, global_models, models, provider_api_keys, provider_endpoints, providers,
};
use tollgate_resolver::{
    Catalogue, NameMatch, Resolver, ResolverConfig, ResolverError, RouteSnapshot, SeaOrmCatalogue,
};
use tollgate_testkit::{Backend, TestDb, fixtures};

/// Which cache a test's resolvers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSetup {
    /// In-process only.
    Local,
    /// In-process L1 in front of the local Redis.
    Redis,
    /// Tiered, pointed at a port where nothing listens.
    RedisDown,
}

/// One test's world: a fresh database and a private cache namespace.
pub struct Ctx {
    pub db: TestDb,
    pub setup: CacheSetup,
    pub config: Config,
}

impl Ctx {
    pub async fn new(backend: Backend, setup: CacheSetup) -> Self {
        Self::with_config(backend, setup, Config::default()).await
    }

    pub async fn with_config(backend: Backend, setup: CacheSetup, config: Config) -> Self {
        let config = Config {
            namespace: format!("tollgate:test:{}:", uuid::Uuid::new_v4().simple()),
            ..config
        };
        Self {
            db: TestDb::new(backend).await,
            setup,
            config,
        }
    }

    pub fn conn(&self) -> &sea_orm::DatabaseConnection {
        &self.db.conn
    }

    /// A new cache (own connections) on this test's namespace.
    pub async fn cache(&self) -> Cache {
        self.cache_with(self.config.clone()).await
    }

    async fn cache_with(&self, config: Config) -> Cache {
        match self.setup {
            CacheSetup::Local => Cache::in_process(config).expect("in-process cache"),
            CacheSetup::Redis => Cache::tiered(config, &tollgate_testkit::redis_url())
                .await
                .expect("tiered cache"),
            CacheSetup::RedisDown => Cache::tiered(config, "redis://127.0.0.1:1")
                .await
                .expect("tiered cache with redis down"),
        }
    }

    /// A new resolver (own cache instance) over this test's database.
    pub async fn resolver(&self) -> Resolver {
        self.resolver_with(ResolverConfig::default()).await
    }

    pub async fn resolver_with(&self, config: ResolverConfig) -> Resolver {
        Resolver::for_database(self.db.conn.clone())
            .cache(self.cache().await)
            .config(config)
            .build()
            .expect("resolver")
    }

    /// A resolver over this test's database with a cache namespace of its own (another
    /// deploy sharing the database and Redis).
    pub async fn isolated_resolver(&self, config: ResolverConfig) -> Resolver {
        let cache = self
            .cache_with(Config {
                namespace: format!("{}other:", self.config.namespace),
                ..self.config.clone()
            })
            .await;
        Resolver::for_database(self.db.conn.clone())
            .cache(cache)
            .config(config)
            .build()
            .expect("resolver")
    }

    /// A resolver over a catalogue that counts its queries.
    pub async fn counting_resolver(&self) -> (Resolver, Arc<AtomicUsize>) {
        let catalogue = CountingCatalogue {
            inner: SeaOrmCatalogue::new(self.db.conn.clone()),
            calls: Arc::default(),
        };
        let calls = catalogue.calls.clone();
        let resolver = Resolver::builder(catalogue)
            .cache(self.cache().await)
            .build()
            .expect("resolver");
        (resolver, calls)
    }
}

/// Generates one test per (database, cache) combination: `<name>::sqlite_local`, …,
/// `<name>::postgres_redis_down`. The body gets `ctx: &Ctx`.
#[macro_export]
macro_rules! resolver_test {
    (async fn $name:ident($ctx:ident) $body:block) => {
        $crate::resolver_test!(@config $name, $ctx, tollgate_cache::Config::default(), $body);
    };
    (#[config($config:expr)] async fn $name:ident($ctx:ident) $body:block) => {
        $crate::resolver_test!(@config $name, $ctx, $config, $body);
    };
    (@config $name:ident, $ctx:ident, $config:expr, $body:block) => {
        mod $name {
            #[allow(unused_imports, reason = "bodies use different parts of the parent")]
            use super::*;
            use $crate::support::{CacheSetup, Ctx};
            use tollgate_testkit::Backend;

            async fn run($ctx: &Ctx) $body

            $crate::resolver_test!(@case sqlite_local, Sqlite, Local, $config);
            $crate::resolver_test!(@case sqlite_redis, Sqlite, Redis, $config);
            $crate::resolver_test!(@case sqlite_redis_down, Sqlite, RedisDown, $config);
            $crate::resolver_test!(@case postgres_local, Postgres, Local, $config);
            $crate::resolver_test!(@case postgres_redis, Postgres, Redis, $config);
            $crate::resolver_test!(@case postgres_redis_down, Postgres, RedisDown, $config);
        }
    };
    (@case $test:ident, $backend:ident, $cache:ident, $config:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            run(&Ctx::with_config(Backend::$backend, CacheSetup::$cache, $config).await).await
        }
    };
}

/// A provider with an OpenAI endpoint and one key.
pub struct Seeded {
    pub provider: providers::Model,
    pub endpoint: provider_endpoints::Model,
    pub key: provider_api_keys::Model,
}

pub async fn seed_provider(
    conn: &sea_orm::DatabaseConnection,
    name: &str,
    priority: i32,
) -> Seeded {
    let provider = fixtures::insert(conn, fixtures::provider(name, priority)).await;
    let endpoint = fixtures::insert(
        conn,
        fixtures::endpoint(
            &provider.id,
            ApiFormat::OpenAi,
            &format!("http://{name}.test/v1"),
        ),
    )
    .await;
    let key = fixtures::insert(
        conn,
        fixtures::provider_key(&endpoint.id, &format!("sk-{name}")),
    )
    .await;
    Seeded {
        provider,
        endpoint,
        key,
    }
}

pub async fn seed_global(conn: &sea_orm::DatabaseConnection, name: &str) -> global_models::Model {
    fixtures::insert(conn, fixtures::global_model(name)).await
}

pub async fn seed_model(
    conn: &sea_orm::DatabaseConnection,
    provider: &providers::Model,
    global: &global_models::Model,
    provider_model_name: &str,
) -> models::Model {
    fixtures::insert(
        conn,
        fixtures::model(&provider.id, &global.id, provider_model_name),
    )
    .await
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Counts every catalogue query, to prove cache hits make none.
pub struct CountingCatalogue {
    inner: SeaOrmCatalogue,
    calls: Arc<AtomicUsize>,
}

impl CountingCatalogue {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// Implements [`Catalogue`] for [`CountingCatalogue`]: each query counts, then asks the
/// real catalogue.
macro_rules! counting_queries {
    ($(fn $query:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        #[async_trait::async_trait]
        impl Catalogue for CountingCatalogue {
            $(
                async fn $query(&self, $($arg: $ty),*) -> Result<$answer, ResolverError> {
                    self.tick();
                    self.inner.$query($($arg),*).await
                }
            )*
        }
    };
}

counting_queries! {
    fn provider_name_matches(name: &str) -> Vec<NameMatch>;
    fn active_global_model_named(name: &str) -> Option<global_models::Model>;
    fn model_by_id(id: &str) -> Option<models::Model>;
    fn global_model_by_id(id: &str) -> Option<global_models::Model>;
    fn global_model_by_name(name: &str) -> Option<global_models::Model>;
    fn model_for_provider(provider_id: &str, global_model_id: &str) -> Option<models::Model>;
    fn routes(global_model_id: &str) -> Option<RouteSnapshot>;
}
