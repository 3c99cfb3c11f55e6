//! Client keys: how a new one is generated and how it is stored (only its hash).

use sha2::Digest;

use crate::secret::Secret;

/// Hex SHA-256 of a plaintext client key: the stored `key_hash`.
pub fn hash_client_key(plaintext: &str) -> String {
    hex::encode(sha2::Sha256::digest(plaintext.as_bytes()))
}

/// A new random client key: `tg-` and 64 hex digits (244 random bits).
pub fn generate_client_key() -> Secret {
    Secret::new(format!(
        "tg-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

#[cfg(test)]
mod tests {
    use super::{generate_client_key, hash_client_key};

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_client_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_keys_are_distinct_and_shaped() {
        let (one, two) = (generate_client_key(), generate_client_key());
        assert_ne!(one.expose(), two.expose());
        assert!(one.expose().starts_with("tg-"));
        assert_eq!(one.expose().len(), 3 + 64);
        assert!(one.expose()[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
