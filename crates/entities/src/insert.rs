//! Inserting a complete row: the one way every crate writes a new catalogue row.

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
};

/// Inserts `model` as a new row with every column set (including its application-generated
/// id) and returns the row as stored.
pub async fn insert_row<M, A, C>(conn: &C, model: M) -> Result<M, DbErr>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Into<M>,
    C: ConnectionTrait,
{
    let stored = model.into_active_model().reset_all().insert(conn).await?;
    Ok(stored.into())
}
