//! The write path on SQLite and PostgreSQL: targets, patches, conflicts, and the
//! invalidation a write runs through its store.

use std::sync::Mutex;

use sea_orm::{DatabaseConnection, EntityTrait};
use tollgate_entities::{BillingType, JsonObject, api_keys, providers};
use tollgate_resolver::Resolver;
use tollgate_testkit::db_test;

use super::{ClientKeyFields, ProviderFields, Store, Target, Upsert, UserFields, write};
use crate::error::CatalogError;
use crate::keys::hash_client_key;
use crate::secret_box::SecretBox;

/// A store over a test database that records the client keys it was told to forget.
struct TestStore {
    conn: DatabaseConnection,
    secrets: SecretBox,
    resolver: Resolver,
    forgotten: Mutex<Vec<String>>,
}

impl TestStore {
    fn new(conn: &DatabaseConnection) -> Self {
        Self {
            conn: conn.clone(),
            secrets: SecretBox::default(),
            resolver: Resolver::for_database(conn.clone()).build().unwrap(),
            forgotten: Mutex::new(Vec::new()),
        }
    }
}

impl Store for TestStore {
    fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    async fn forget_client_keys(&self, hashes: Vec<String>) {
        self.forgotten.lock().unwrap().extend(hashes);
    }
}

fn provider(name: &str) -> ProviderFields {
    ProviderFields {
        name: Some(name.to_owned()),
        ..ProviderFields::default()
    }
}

db_test!(async fn named_writes_update_in_place_and_new_names_must_be_free(db) {
    let first = provider(" acme ").upsert(&db.conn, &SecretBox::default(), Target::Named(()))
        .await
        .unwrap()
        .skip_invalidation();
    assert!(first.1, "the first named write inserts");
    assert_eq!((first.0.name.as_str(), first.0.display_name.as_str()), ("acme", "acme"));
    let fields = ProviderFields {
        provider_priority: Some(7),
        ..provider("acme")
    };
    let (again, created) = fields.upsert(&db.conn, &SecretBox::default(), Target::Named(()))
        .await
        .unwrap()
        .skip_invalidation();
    assert!(!created);
    assert_eq!((again.id.as_str(), again.provider_priority), (first.0.id.as_str(), 7));

    let store = TestStore::new(&db.conn);
    let error = write(&store, Target::New(()), provider("acme")).await.unwrap_err();
    assert!(
        matches!(&error, CatalogError::Conflict(message) if message == "a provider named `acme` already exists"),
        "{error}"
    );
    let error = write(&store, Target::New(()), ProviderFields::default()).await.unwrap_err();
    assert!(matches!(&error, CatalogError::Invalid { at, .. } if at == "name"), "{error}");
    assert_eq!(providers::Entity::find().all(&db.conn).await.unwrap().len(), 1);
});

db_test!(async fn a_patch_keeps_absent_fields_and_null_clears(db) {
    let store = TestStore::new(&db.conn);
    let config: JsonObject = serde_json::from_str(r#"{"a": 1}"#).unwrap();
    let fields = ProviderFields {
        config: Some(Some(config)),
        provider_priority: Some(5),
        ..provider("acme")
    };
    let stored = write(&store, Target::New(()), fields).await.unwrap();
    let patch: ProviderFields = serde_json::from_str(r#"{"billing_type": "free_tier"}"#).unwrap();
    let patched = write(&store, Target::Stored(stored), patch).await.unwrap();
    assert_eq!(patched.billing_type, BillingType::FreeTier);
    assert_eq!(patched.provider_priority, 5, "absent fields are kept");
    assert!(patched.config.is_some());
    let cleared: ProviderFields = serde_json::from_str(r#"{"config": null}"#).unwrap();
    let cleared = write(&store, Target::Stored(patched), cleared).await.unwrap();
    assert_eq!(cleared.config, None);
    assert_eq!(cleared.billing_type, BillingType::FreeTier);
});

db_test!(async fn a_user_change_forgets_its_keys_after_the_commit(db) {
    let store = TestStore::new(&db.conn);
    let user = UserFields {
        username: Some("ada".to_owned()),
        email: Some("ada@example.test".to_owned()),
        ..UserFields::default()
    };
    let user = write(&store, Target::New(()), user).await.unwrap();
    let hash = hash_client_key("tg-ada");
    let key = ClientKeyFields {
        name: Some("laptop".to_owned()),
        key_hash: Some(hash.to_uppercase()),
        ..ClientKeyFields::default()
    };
    let key = write(&store, Target::New(user.id.clone()), key).await.unwrap();
    assert_eq!(key.key_hash, hash, "hashes are stored lowercase");
    assert!(store.forgotten.lock().unwrap().is_empty(), "new rows invalidate nothing");

    let demote = UserFields {
        is_active: Some(false),
        ..UserFields::default()
    };
    write(&store, Target::Stored(user), demote).await.unwrap();
    assert_eq!(*store.forgotten.lock().unwrap(), [hash]);
    let stored = api_keys::Entity::find().all(&db.conn).await.unwrap();
    assert_eq!(stored.len(), 1);
});

#[test]
fn patches_tell_absent_from_null_and_refuse_unknown_fields() {
    let absent: ProviderFields = serde_json::from_str("{}").unwrap();
    assert_eq!(absent.config, None);
    let null: ProviderFields = serde_json::from_str(r#"{"config": null}"#).unwrap();
    assert_eq!(null.config, Some(None));
    let error = serde_json::from_str::<ProviderFields>(r#"{"colour": "red"}"#).unwrap_err();
    assert!(error.to_string().contains("colour"), "{error}");
}
