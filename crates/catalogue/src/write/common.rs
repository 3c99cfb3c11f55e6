//! What every table's write shares: the [`Store`] a write commits on, the [`Target`] of an
//! upsert, the [`Fields`] and [`Stored`] traits behind [`write()`] and [`delete`], the
//! [`Written`] invalidation an upsert returns, and the small field helpers.

use std::future::Future;

use sea_orm::sea_query::IntoCondition;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use serde::{Deserialize, Deserializer};
use tollgate_entities::{api_keys, insert_row, models as model_rows, now_utc, provider_endpoints};
use tollgate_resolver::Resolver;

use crate::error::CatalogError;
use crate::rules::Invalid;
use crate::secret_box::SecretBox;

/// Where the catalogue lives: what a write needs besides its fields. The gateway's state is
/// one; an embedder implements it over its own database, resolver and client-key cache.
pub trait Store: Sync {
    /// The database. Every write through a store commits on it before invalidating.
    fn conn(&self) -> &DatabaseConnection;
    /// Seals upstream keys before they are stored.
    fn secrets(&self) -> &SecretBox;
    /// The resolver whose cached entries catalogue changes make stale.
    fn resolver(&self) -> &Resolver;
    /// Drops the cached look-ups of the client keys with these hashes on every replica, so a
    /// change to a key or its user applies to the next request.
    fn forget_client_keys(&self, hashes: Vec<String>) -> impl Future<Output = ()> + Send;
}

/// The fields of one catalogue table: what [`write()`] stores. Implemented by the `*Fields`
/// types of this crate only.
pub trait Fields: Sized + Send + sealed::Upsert {
    /// The stored row.
    type Row: Send;
    /// What a new row hangs under: `()` for top-level rows.
    type Parent: Send;
}

/// A stored catalogue row that [`delete`] removes. Implemented by the catalogue's entity
/// models only.
pub trait Stored: sealed::Doomed {}

impl<T: sealed::Doomed> Stored for T {}

/// What the public traits stand on; not nameable outside the crate.
pub(super) mod sealed {
    use std::future::Future;

    use sea_orm::{ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, DbErr, ModelTrait};

    use crate::error::CatalogError;
    use crate::secret_box::SecretBox;
    use crate::write::common::{Fields, Stale, Target, Written};

    /// One table's upsert.
    pub trait Upsert {
        /// Checks the fields against the rules, writes them to `target` on `conn` (upstream
        /// keys sealed by `secrets`) and returns the invalidation the write needs.
        fn upsert<C: ConnectionTrait>(
            self,
            conn: &C,
            secrets: &SecretBox,
            target: Target<<Self as Fields>::Row, <Self as Fields>::Parent>,
        ) -> impl Future<Output = Result<Written<<Self as Fields>::Row>, CatalogError>> + Send
        where
            Self: Fields;
    }

    /// What deleting a row makes stale.
    pub trait Doomed: ModelTrait + Send + Sync {
        /// The row as sea-orm writes it.
        type Active: ActiveModelTrait<Entity = Self::Entity>
            + ActiveModelBehavior
            + From<Self>
            + Send;

        /// Read before the delete, for the rows its cascade removes.
        fn doomed<C: ConnectionTrait>(
            &self,
            conn: &C,
        ) -> impl Future<Output = Result<Stale, DbErr>> + Send;
    }
}

/// Writes `fields` to `target` on `store`'s connection (a new row takes the defaults its
/// fields type names, a stored one keeps the fields left out), then runs the invalidation the
/// change needs and returns the stored row.
pub async fn write<F: Fields>(
    store: &impl Store,
    target: Target<F::Row, F::Parent>,
    fields: F,
) -> Result<F::Row, CatalogError> {
    fields
        .upsert(store.conn(), store.secrets(), target)
        .await?
        .invalidate(store)
        .await
}

/// Deletes `row` with what the database cascades to, then invalidates what it made stale
/// (read before the delete: the rows the cascade removes).
pub async fn delete<R: Stored>(store: &impl Store, row: R) -> Result<(), CatalogError> {
    let stale = row.doomed(store.conn()).await?;
    R::Active::from(row).delete(store.conn()).await?;
    stale.run(store).await?;
    Ok(())
}

/// Inserts the complete `row` and names what its insert makes stale.
pub(super) async fn inserted<M, A, C>(
    conn: &C,
    row: M,
    stale: impl FnOnce(&M) -> Stale,
) -> Result<Written<M>, CatalogError>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Into<M>,
    C: ConnectionTrait,
{
    let stored = insert_row(conn, row).await?;
    let stale = stale(&stored);
    Ok(Written::created(stored, stale))
}

/// Stamps the changed `row`'s `updated_at` column, updates it and names what the update makes
/// stale (`stale` sees the row as stored).
pub(super) async fn updated<A, C>(
    conn: &C,
    mut row: A,
    updated_at: <A::Entity as EntityTrait>::Column,
    stale: impl FnOnce(&<A::Entity as EntityTrait>::Model) -> Stale,
) -> Result<Written<<A::Entity as EntityTrait>::Model>, CatalogError>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    row.set(updated_at, now_utc().into());
    let stored = row.update(conn).await?;
    let stale = stale(&stored);
    Ok(Written::updated(stored, stale))
}

/// Which row a write goes to. `P` is what a new row hangs under (the provider of an
/// endpoint, the endpoint of an upstream key, …); `()` for top-level rows.
#[derive(Debug, Clone)]
pub enum Target<R, P = ()> {
    /// A new row under `P`; absent fields take their defaults, and a stored row with the same
    /// unique name is a [`CatalogError::Conflict`].
    New(P),
    /// This stored row (read by the caller, who answers "not found" itself); absent fields
    /// keep their value.
    Stored(R),
    /// The stored row under `P` with the unique name the fields give, updated as
    /// [`Target::Stored`], or else a new one: the catalogue document's upsert.
    Named(P),
}

/// Where a resolved [`Target`] writes.
pub(super) enum Slot<R, P> {
    Insert(P),
    Update(R),
}

impl<R, P> Slot<R, P> {
    /// The stored row an update changes.
    pub(super) fn stored(&self) -> Option<&R> {
        match self {
            Self::Insert(_) => None,
            Self::Update(row) => Some(row),
        }
    }
}

impl<R, P> Target<R, P> {
    /// Where the write goes. The row of a [`Target::Named`] is the row of `E` matching
    /// `named(parent)`, a condition on its unique columns (built, and looked up, for that
    /// variant only).
    pub(super) async fn slot<E, C, K>(
        self,
        conn: &C,
        named: impl FnOnce(&P) -> Result<K, Invalid>,
    ) -> Result<Slot<R, P>, CatalogError>
    where
        E: EntityTrait<Model = R>,
        C: ConnectionTrait,
        K: IntoCondition,
    {
        Ok(match self {
            Self::New(parent) => Slot::Insert(parent),
            Self::Stored(row) => Slot::Update(row),
            Self::Named(parent) => match E::find().filter(named(&parent)?).one(conn).await? {
                Some(row) => Slot::Update(row),
                None => Slot::Insert(parent),
            },
        })
    }
}

/// A committed write: the row as stored, whether it is new, and what it made stale. The
/// row leaves through [`Written::invalidate`], or through [`Written::skip_invalidation`].
#[must_use = "the cached entries a write made stale stay until its invalidation runs"]
#[derive(Debug)]
pub struct Written<R> {
    row: R,
    created: bool,
    stale: Stale,
}

impl<R> Written<R> {
    pub(super) fn created(row: R, stale: Stale) -> Self {
        Self {
            row,
            created: true,
            stale,
        }
    }

    pub(super) fn updated(row: R, stale: Stale) -> Self {
        Self {
            row,
            created: false,
            stale,
        }
    }

    /// Runs the invalidation (the write has committed on `store`'s connection) and hands out
    /// the row.
    pub(super) async fn invalidate(self, store: &impl Store) -> Result<R, CatalogError> {
        self.stale.run(store).await?;
        Ok(self.row)
    }

    /// The row and whether it is new, invalidating nothing: for a write inside a transaction
    /// (nothing may be invalidated before the commit, so the caller drops every cached model
    /// entry after it) and for the bootstrap, which runs before the gateway serves.
    pub(crate) fn skip_invalidation(self) -> (R, bool) {
        (self.row, self.created)
    }
}

/// What a committed change makes stale: one variant per row of behaviour.md section 3 (and
/// the client-key look-ups). Rows a delete removes are read before it; every other row is
/// read after the commit, just before invalidating.
#[derive(Debug)]
pub enum Stale {
    /// Nothing cached can depend on the change (a new provider, user or client key).
    Nothing,
    /// A new global model: clears a cached "missing" for its name.
    GlobalModelCreated(tollgate_entities::global_models::Model),
    /// A global model updated (`after`, its models read after the commit) or deleted (its
    /// models read before the cascade).
    GlobalModel {
        before: tollgate_entities::global_models::Model,
        after: Option<tollgate_entities::global_models::Model>,
        models: Option<Vec<model_rows::Model>>,
    },
    /// A new model.
    ModelCreated(model_rows::Model),
    /// A model updated (`after`) or deleted.
    Model {
        before: model_rows::Model,
        after: Option<model_rows::Model>,
    },
    /// A provider updated: its models, read after the commit.
    Provider(String),
    /// A provider deleted: its models, read before the cascade.
    ProviderModels(Vec<model_rows::Model>),
    /// An endpoint of this provider changed: the routes of the global models it serves.
    ProviderRoutes(String),
    /// An upstream key of this endpoint changed: as [`Stale::ProviderRoutes`] for its
    /// provider.
    EndpointRoutes(String),
    /// These client keys changed or were deleted with their user.
    ClientKeys(Vec<String>),
    /// This user changed: every key of it, read after the commit.
    UserKeys(String),
}

impl Stale {
    pub(super) async fn run(self, store: &impl Store) -> Result<(), DbErr> {
        let (conn, resolver) = (store.conn(), store.resolver());
        match self {
            Self::Nothing => {}
            Self::GlobalModelCreated(row) => resolver.global_model_created(&row).await,
            Self::GlobalModel {
                before,
                after,
                models,
            } => {
                let models = match models {
                    Some(models) => models,
                    None => {
                        models_where(conn, model_rows::Column::GlobalModelId.eq(&before.id)).await?
                    }
                };
                resolver
                    .global_model_changed(&before, after.as_ref(), &models)
                    .await;
            }
            Self::ModelCreated(row) => resolver.model_created(&row).await,
            Self::Model { before, after } => resolver.model_changed(&before, after.as_ref()).await,
            Self::Provider(id) => {
                let models = models_where(conn, model_rows::Column::ProviderId.eq(id)).await?;
                resolver.provider_changed(&models).await;
            }
            Self::ProviderModels(models) => resolver.provider_changed(&models).await,
            Self::ProviderRoutes(id) => routes_changed(conn, resolver, &id).await?,
            Self::EndpointRoutes(id) => {
                if let Some(endpoint) = provider_endpoints::Entity::find_by_id(id).one(conn).await?
                {
                    routes_changed(conn, resolver, &endpoint.provider_id).await?;
                }
            }
            Self::ClientKeys(hashes) => store.forget_client_keys(hashes).await,
            Self::UserKeys(user_id) => {
                let hashes = key_hashes(conn, &user_id).await?;
                store.forget_client_keys(hashes).await;
            }
        }
        Ok(())
    }
}

/// Every model matching `condition`, active or not.
pub(super) async fn models_where<C: ConnectionTrait>(
    conn: &C,
    condition: impl IntoCondition,
) -> Result<Vec<model_rows::Model>, DbErr> {
    model_rows::Entity::find().filter(condition).all(conn).await
}

/// An endpoint or key of `provider_id` changed: replan every global model it serves.
pub(super) async fn routes_changed(
    conn: &DatabaseConnection,
    resolver: &Resolver,
    provider_id: &str,
) -> Result<(), DbErr> {
    let models = models_where(conn, model_rows::Column::ProviderId.eq(provider_id)).await?;
    resolver
        .routes_changed(models.iter().map(|m| m.global_model_id.as_str()))
        .await;
    Ok(())
}

/// The hashes of every client key of `user_id`.
pub(super) async fn key_hashes<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> Result<Vec<String>, DbErr> {
    api_keys::Entity::find()
        .filter(api_keys::Column::UserId.eq(user_id))
        .select_only()
        .column(api_keys::Column::KeyHash)
        .into_tuple()
        .all(conn)
        .await
}

/// A [`CatalogError::Conflict`] with `conflict`'s message when a row of `E` other than
/// `except` matches `condition` (the unique constraint would refuse the write anyway; this
/// names the value).
pub(super) async fn ensure_unique<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    id_column: E::Column,
    condition: impl IntoCondition,
    except: Option<&str>,
    conflict: impl FnOnce() -> String,
) -> Result<(), CatalogError> {
    let clash: Option<String> = E::find()
        .filter(condition)
        .select_only()
        .column(id_column)
        .into_tuple()
        .one(conn)
        .await?;
    match clash {
        Some(id) if Some(id.as_str()) != except => Err(CatalogError::Conflict(conflict())),
        _ => Ok(()),
    }
}

/// `value` passed through `rule` when one is given.
pub(super) fn check<T, U>(
    value: Option<T>,
    rule: impl FnOnce(T) -> Result<U, Invalid>,
) -> Result<Option<U>, Invalid> {
    value.map(rule).transpose()
}

/// A field a new row cannot do without.
pub(super) fn required<T>(field: &str, value: Option<T>) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new(field, "must be given for a new row"))
}

/// Sets `slot` to `value` when one is given; an absent field keeps the stored value.
pub(super) fn set<V: Into<sea_orm::Value>>(slot: &mut ActiveValue<V>, value: Option<V>) {
    if let Some(value) = value {
        *slot = ActiveValue::Set(value);
    }
}

/// Updates the stored `row` with the fields of a write: [`set`]s each listed column to its
/// checked value, the local variable of the same name unless `column = value` names another.
macro_rules! set_given {
    ($row:ident: $($column:ident $(= $value:expr)?),+ $(,)?) => {
        $(
            let value = set_given!(@value $column $($value)?);
            $crate::write::common::set(&mut $row.$column, value);
        )+
    };
    (@value $column:ident) => {
        $column
    };
    (@value $column:ident $value:expr) => {
        $value
    };
}

pub(super) use set_given;

/// For the fields of a write read from JSON: tells an absent field (`None`, keep) from an
/// explicit `null` (`Some(None)`, clear). Use with `#[serde(deserialize_with = "…")]` on a
/// struct with `#[serde(default)]`.
pub(super) fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
