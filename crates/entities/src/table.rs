//! `table!`: the declaration every entity with a UUID key shares, so the entity files list
//! only what sets their tables apart.

/// Declares the `Model` of a table whose primary key is an application-generated UUID
/// string `id` (see [`crate::new_id`]), with the derives every row type has (`Clone`,
/// `Debug`, `PartialEq`, sea-orm's entity model, serde), and the default
/// `ActiveModelBehavior`.
///
/// The attributes (the doc comment) go on the `Model`; the fields follow `id` in the order
/// written. Columns need no doc comments: shared/spec/schema.md documents them. `with
/// timestamps` appends the `created_at` and `updated_at` columns (RFC 3339 in serde) after
/// them; relation fields written before them are no columns, so the column order stays that
/// of the schema.
///
/// `DeriveEntityModel` is named bare because `#[sea_orm::model]` recognises it only so;
/// the calling module imports `sea_orm::entity::prelude::*` for it and the column types.
macro_rules! table {
    ($(#[$attr:meta])* $table:literal with timestamps { $($field:tt)* }) => {
        $crate::table::table! {
            $(#[$attr])*
            $table {
                $($field)*
                #[serde(with = "time::serde::rfc3339")]
                pub created_at: TimeDateTimeWithTimeZone,
                #[serde(with = "time::serde::rfc3339")]
                pub updated_at: TimeDateTimeWithTimeZone,
            }
        }
    };
    ($(#[$attr:meta])* $table:literal { $($field:tt)* }) => {
        $(#[$attr])*
        #[sea_orm::model]
        #[expect(missing_docs, reason = "columns are documented in shared/spec/schema.md")]
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
        #[sea_orm(table_name = $table)]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false, column_type = "String(StringLen::N(36))")]
            pub id: String,
            $($field)*
        }

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub(crate) use table;
