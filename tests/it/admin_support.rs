//! Helpers of the admin and dashboard API tests: an admin client, JSON calls in process.

use axum::body::Body;
use axum::http::{Method, Request};
use sea_orm::DatabaseConnection;
use tollgate_entities::UserRole;
use tollgate_server::Gateway;
use tollgate_testkit::fixtures;

use crate::gateway_support::{Answer, Client, client_key, send};

/// Inserts an active admin user with a client key.
pub(crate) async fn admin(conn: &DatabaseConnection, username: &str) -> Client {
    let mut user = fixtures::user(username);
    user.role = UserRole::Admin;
    let user = fixtures::insert(conn, user).await;
    client_key(conn, user, "tg-admin").await
}

/// `method path` with a Bearer key and an optional raw JSON body.
pub(crate) async fn call(
    gateway: &Gateway,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let request = match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    };
    send(gateway, request).await
}

/// An admin API session: a gateway and an admin key.
pub(crate) struct Session<'a> {
    pub(crate) gateway: &'a Gateway,
    pub(crate) key: String,
}

impl<'a> Session<'a> {
    /// A session on `gateway` of a new admin user `username` inserted over `conn`.
    pub(crate) async fn admin(
        gateway: &'a Gateway,
        conn: &DatabaseConnection,
        username: &str,
    ) -> Session<'a> {
        let key = admin(conn, username).await.key;
        Session { gateway, key }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        call(self.gateway, Method::GET, path, Some(&self.key), None).await
    }

    pub(crate) async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send(Method::POST, path, body).await
    }

    pub(crate) async fn patch(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send(Method::PATCH, path, body).await
    }

    pub(crate) async fn put(&self, path: &str, body: serde_json::Value) -> Answer {
        self.send(Method::PUT, path, body).await
    }

    /// A `method` request with `body` as JSON.
    async fn send(&self, method: Method, path: &str, body: serde_json::Value) -> Answer {
        let body = Some(body.to_string());
        call(self.gateway, method, path, Some(&self.key), body).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        call(self.gateway, Method::DELETE, path, Some(&self.key), None).await
    }

    /// POSTs and expects 201; returns the created row.
    pub(crate) async fn create(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let answer = self.post(path, body).await;
        assert_eq!(
            answer.status.as_u16(),
            201,
            "POST {path}: {}",
            answer.text()
        );
        answer.json()
    }
}

/// Asserts a status and the error field or message fragment of an admin error.
pub(crate) fn assert_error(answer: &Answer, status: u16, fragment: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text());
    let body = answer.json();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let field = body["error"]["field"].as_str().unwrap_or_default();
    assert!(
        message.contains(fragment) || field.contains(fragment),
        "expected `{fragment}` in {body}"
    );
}

/// A valid global model body.
pub(crate) fn global_body(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "default_tiered_pricing": {"tiers": [
            {"up_to": null, "input_price_per_1m": 1.0, "output_price_per_1m": 2.0}
        ]},
    })
}

/// The masked form the admin API shows for `secret`.
pub(crate) fn masked(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    format!(
        "{}…{}",
        chars[..3].iter().collect::<String>(),
        chars[chars.len() - 4..].iter().collect::<String>()
    )
}
