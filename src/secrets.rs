//! Encryption of secrets at rest (connection URIs in the metadata database), like Airflow's
//! Fernet key: ChaCha20-Poly1305 with a key from `UPDRAFT_SECRET_KEY`, or for a standalone
//! install a random key kept in `UPDRAFT_HOME/secret.key` (mode 0600).
//!
//! Passwords are hashed here too (argon2), so the web login and the use-case layer share one
//! implementation.
//!
//! Invariant: a connection URI is written to the store only through [`SecretBox::encrypt`], and
//! every process that reads connections (scheduler, workers, web server) must share the key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::config::Settings;

/// Prefix of an encrypted value, naming the scheme so it can change later.
const PREFIX: &str = "v1:";

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or created.
    #[error("secret key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The value was encrypted with another key, or is damaged.
    #[error(
        "cannot decrypt a stored secret: it was encrypted with another key (set the same UPDRAFT_SECRET_KEY on every process) or is damaged"
    )]
    Decrypt,
    /// Hashing a password failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Encrypts and decrypts secrets with the installation's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box for `key`: any string; it is hashed to the cipher's 256-bit key.
    pub fn new(key: &str) -> SecretBox {
        let digest = Sha256::digest(key.as_bytes());
        SecretBox { cipher: ChaCha20Poly1305::new(Key::from_slice(&digest)) }
    }

    /// The box of these settings: `UPDRAFT_SECRET_KEY`, else the key file under
    /// `UPDRAFT_HOME`, created with a random key the first time.
    pub fn for_settings(settings: &Settings) -> Result<SecretBox, SecretError> {
        match &settings.secret_key {
            Some(key) => Ok(SecretBox::new(key)),
            None => Ok(SecretBox::new(&key_file(&settings.home.join("secret.key"))?)),
        }
    }

    /// `v1:` + base64 of nonce and ciphertext.
    pub fn encrypt(&self, plain: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce cannot fail for inputs below the cipher's 256 GiB limit.
        let ct = self.cipher.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(ct);
        format!("{PREFIX}{}", B64.encode(bytes))
    }

    /// The clear text of a value made by [`SecretBox::encrypt`] with the same key.
    pub fn decrypt(&self, text: &str) -> Result<String, SecretError> {
        let bytes = text
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or(SecretError::Decrypt)?;
        let (nonce, ct) = bytes.split_at(12);
        let plain =
            self.cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SecretError::Decrypt)
    }
}

/// Reads the key file, creating it (0600, 32 random bytes in base64) when missing.
fn key_file(path: &Path) -> Result<String, SecretError> {
    let err = |source| SecretError::KeyFile { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let key = B64.encode(ChaCha20Poly1305::generate_key(&mut OsRng));
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(key.as_bytes()).map_err(err)?;
    Ok(key)
}

/// A random token of 32 bytes, URL-safe base64 (session ids, CSRF tokens, API tokens,
/// generated passwords).
pub fn random_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(ChaCha20Poly1305::generate_key(&mut OsRng))
}

/// Hex SHA-256 of a token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An argon2 hash of `password` with a fresh salt. Slow on purpose (tens of milliseconds):
/// call it on the blocking pool.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches an argon2 `hash` (false for a malformed hash). Slow: call it on
/// the blocking pool.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let a = SecretBox::new("key one");
        let enc = a.encrypt("postgres://u:s3cret@h/db");
        assert!(enc.starts_with("v1:") && !enc.contains("s3cret"));
        assert_eq!(a.decrypt(&enc).ok().as_deref(), Some("postgres://u:s3cret@h/db"));
        // Same clear text twice gives different ciphertexts (fresh nonce).
        assert_ne!(enc, a.encrypt("postgres://u:s3cret@h/db"));
        assert!(matches!(SecretBox::new("key two").decrypt(&enc), Err(SecretError::Decrypt)));
        assert!(a.decrypt("v1:garbage").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        let k1 = key_file(&path).expect("create");
        let k2 = key_file(&path).expect("read");
        assert_eq!(k1, k2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
