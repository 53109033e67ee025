//! Personal data at rest: AES-256-GCM encryption and the phone blind index.
//!
//! Both keys are derived from the master key with HKDF-SHA256 under different
//! labels, so the database never holds a key and knowing the index key does not
//! decrypt anything. Ciphertexts bind `table/column/row id` as associated data:
//! a ciphertext copied into another row or column fails to decrypt.
//!
//! Stored layout: `[version=1][key id: 4 bytes][nonce: 12 bytes][ciphertext+tag]`.
//! The key id lets `keys rotate` tell old ciphertexts from new ones.

use crate::{DomainError, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 12;

/// The 32-byte master key, from `REGULARS_MASTER_KEY` (base64) or the demo's key
/// file. Never printed: its `Debug` shows only the key id.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| DomainError::MasterKey(format!("not base64: {e}")))?;
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            DomainError::MasterKey(format!("must be 32 bytes, got {}", bytes.len()))
        })?;
        Ok(MasterKey(Zeroizing::new(array)))
    }

    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        MasterKey(Zeroizing::new(key))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_ref())
    }

    fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"regulars"), self.0.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(label.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF output length");
        out
    }

    /// The keys that protect personal data, derived from this master key.
    pub fn keyring(&self) -> PiiKeys {
        let encryption = self.derive("regulars/pii-encryption/v1");
        let index = self.derive("regulars/phone-blind-index/v1");
        let id_material = self.derive("regulars/key-id/v1");
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(&id_material[..4]);
        PiiKeys {
            cipher: Aes256Gcm::new_from_slice(encryption.as_ref())
                .expect("AES-256 key is 32 bytes"),
            index_key: index,
            key_id,
        }
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id={})", hex::encode(self.keyring().key_id))
    }
}

/// Where a ciphertext lives; bound into it as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl Slot<'_> {
    fn aad(&self) -> Vec<u8> {
        format!("{}/{}/{}", self.table, self.column, self.row_id).into_bytes()
    }
}

/// Encryption and blind-index keys for personal data.
#[derive(Clone)]
pub struct PiiKeys {
    cipher: Aes256Gcm,
    index_key: Zeroizing<[u8; 32]>,
    key_id: [u8; 4],
}

impl std::fmt::Debug for PiiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PiiKeys(id={})", hex::encode(self.key_id))
    }
}

impl PiiKeys {
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn encrypt(&self, slot: Slot<'_>, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = slot.aad();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, slot: Slot<'_>, stored: &[u8]) -> Result<String> {
        if stored.len() < HEADER_LEN || stored[0] != FORMAT_VERSION {
            return Err(DomainError::Decrypt);
        }
        if stored[1..5] != self.key_id {
            return Err(DomainError::Decrypt);
        }
        let nonce = Nonce::from_slice(&stored[5..HEADER_LEN]);
        let aad = slot.aad();
        let plain = self
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &stored[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| DomainError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| DomainError::Decrypt)
    }

    /// Blind index of an already-normalised identifier (a phone in E.164, a
    /// WeChat openid, ...). `kind` keeps indexes of different identities apart.
    pub fn blind_index(&self, kind: &str, normalised: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.index_key.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: &str) -> Slot<'_> {
        Slot {
            table: "members",
            column: "phone",
            row_id: row,
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let keys = MasterKey::generate().keyring();
        let sealed = keys.encrypt(slot("m1"), "+8613800138000");
        assert_eq!(keys.decrypt(slot("m1"), &sealed).unwrap(), "+8613800138000");
        assert!(
            keys.decrypt(slot("m2"), &sealed).is_err(),
            "moved to another row"
        );
        let other_column = Slot {
            column: "name",
            ..slot("m1")
        };
        assert!(keys.decrypt(other_column, &sealed).is_err());
        let other_key = MasterKey::generate().keyring();
        assert!(other_key.decrypt(slot("m1"), &sealed).is_err());
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext_and_is_randomised() {
        let keys = MasterKey::generate().keyring();
        let a = keys.encrypt(slot("m1"), "13800138000");
        let b = keys.encrypt(slot("m1"), "13800138000");
        assert_ne!(a, b);
        assert!(!a.windows(11).any(|w| w == b"13800138000"));
    }

    #[test]
    fn blind_index_is_deterministic_per_key() {
        let master = MasterKey::generate();
        let keys = master.keyring();
        let again = MasterKey::from_base64(&master.to_base64())
            .unwrap()
            .keyring();
        assert_eq!(
            keys.blind_index("phone", "+8613800138000"),
            again.blind_index("phone", "+8613800138000")
        );
        assert_ne!(
            keys.blind_index("phone", "+8613800138000"),
            keys.blind_index("wechat_openid", "+8613800138000")
        );
        let other = MasterKey::generate().keyring();
        assert_ne!(
            keys.blind_index("phone", "+8613800138000"),
            other.blind_index("phone", "+8613800138000")
        );
    }

    #[test]
    fn master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64("AAAA").is_err());
    }
}
