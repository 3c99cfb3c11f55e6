//! Upstream credentials at rest: sealed with AES-256-GCM under `TOLLGATE_ENCRYPTION_KEY`
//! when one is configured, stored as `enc:v1:<base64 nonce‖ciphertext>`; values written
//! without a key (or before one was configured) are read as they are.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens stored upstream secrets. Cheap to clone; `Debug` shows no key material.
#[derive(Clone, Default)]
pub struct SecretBox {
    cipher: Option<Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("encrypting", &self.cipher.is_some())
            .finish()
    }
}

impl SecretBox {
    /// Seals with a key derived from `passphrase` (SHA-256), or stores plaintext when `None`.
    pub fn new(passphrase: Option<&str>) -> Self {
        Self {
            cipher: passphrase.map(|phrase| {
                let digest = sha2::Sha256::digest(phrase.as_bytes());
                Aes256Gcm::new(&digest)
            }),
        }
    }

    /// Whether values are encrypted when sealed.
    pub fn is_encrypting(&self) -> bool {
        self.cipher.is_some()
    }

    /// The stored form of `plaintext`.
    pub fn seal(&self, plaintext: &str) -> String {
        let Some(cipher) = &self.cipher else {
            return plaintext.to_owned();
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        match cipher.encrypt(&nonce, plaintext.as_bytes()) {
            Ok(ciphertext) => {
                let mut packed = nonce.to_vec();
                packed.extend_from_slice(&ciphertext);
                format!("{PREFIX}{}", STANDARD.encode(packed))
            }
            // AES-GCM encryption of an in-memory buffer cannot fail for inputs under 64 GiB.
            Err(_) => plaintext.to_owned(),
        }
    }

    /// The plaintext of a stored value: unsealed values as they are; `None` for a sealed
    /// value this box cannot open (no key, or the wrong one).
    pub fn open(&self, stored: &str) -> Option<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Some(stored.to_owned());
        };
        let cipher = self.cipher.as_ref()?;
        let packed = STANDARD.decode(encoded).ok()?;
        if packed.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = packed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plaintext = cipher.decrypt(&Nonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plaintext).ok()
    }

    /// A hint of a stored value for the API to show (`sk-…wxyz`): enough to tell keys apart,
    /// never enough to use one. A short value, or one this box cannot open, is `…****`.
    pub fn hint(&self, stored: &str) -> String {
        let plaintext = self.open(stored).unwrap_or_default();
        let chars: Vec<char> = plaintext.chars().collect();
        if chars.len() <= 10 {
            return "…****".to_owned();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretBox;

    #[test]
    fn sealed_values_round_trip_and_hide_the_secret() {
        let sealed_box = SecretBox::new(Some("correct horse"));
        let sealed = sealed_box.seal("sk-live-secret");
        assert!(sealed.starts_with("enc:v1:"));
        assert!(!sealed.contains("sk-live-secret"));
        assert_ne!(sealed, sealed_box.seal("sk-live-secret"), "nonces differ");
        assert_eq!(sealed_box.open(&sealed).as_deref(), Some("sk-live-secret"));
    }

    #[test]
    fn the_wrong_key_or_no_key_cannot_open() {
        let sealed = SecretBox::new(Some("a")).seal("sk-x");
        assert_eq!(SecretBox::new(Some("b")).open(&sealed), None);
        assert_eq!(SecretBox::new(None).open(&sealed), None);
    }

    #[test]
    fn plaintext_values_pass_through() {
        assert_eq!(SecretBox::new(None).seal("sk-plain"), "sk-plain");
        assert_eq!(
            SecretBox::new(Some("k")).open("sk-legacy").as_deref(),
            Some("sk-legacy")
        );
    }

    #[test]
    fn hints_keep_only_a_few_characters() {
        let plain = SecretBox::new(None);
        assert_eq!(plain.hint("sk-abcdefghijklmnop"), "sk-…mnop");
        assert_eq!(plain.hint("short"), "…****");
        assert!(
            !plain
                .hint("sk-live-0123456789abcdef")
                .contains("0123456789")
        );
        let sealed = SecretBox::new(Some("k")).seal("sk-abcdefghijklmnop");
        assert_eq!(SecretBox::new(Some("k")).hint(&sealed), "sk-…mnop");
        assert_eq!(plain.hint(&sealed), "…****", "a value it cannot open");
    }
}
