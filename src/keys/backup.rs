//! `xmatch key backup --to FILE` and `xmatch key restore --from FILE`: the workspace key
//! wrapped under a passphrase, for an offline copy.
//!
//! The backup is a small JSON file (mode 0600):
//!
//! ```json
//! { "format": "xmatch-key-backup", "version": 1,
//!   "kdf": { "algorithm": "argon2id", "version": 19, "m_kib": 65536, "t": 3, "p": 1,
//!            "salt": "<16 random bytes, hex>" },
//!   "cipher": "aes-256-gcm",
//!   "keys": [ { "key_id": "k1-…", "nonce": "<12 bytes, hex>",
//!               "wrapped": "<32-byte key + 16-byte tag, hex>" } ] }
//! ```
//!
//! The wrapping key is Argon2id(passphrase, salt) with the parameters in the file (64 MiB,
//! three passes, one lane by default: 0.4 s on one core here, and every guess of the
//! passphrase costs as much, with 64 MiB of memory). Each key is sealed with AES-256-GCM under it, a random nonce,
//! and `xmatch-key-backup/v1` ‖ 0x00 ‖ key id as associated data, so the id beside a key
//! cannot be changed without the unwrap failing. During a rotation the file holds both
//! keys, the current one first.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::TryRngCore;
use serde::{Deserialize, Serialize};

use super::KeyError;
use crate::workspace::{KEY_LEN, Key, Workspace};

const FORMAT: &str = "xmatch-key-backup";
const VERSION: u32 = 1;
const AAD_LABEL: &[u8] = b"xmatch-key-backup/v1";
/// A passphrase shorter than this is refused for a new backup: Argon2id slows guessing,
/// it cannot make a short passphrase strong.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Argon2id cost parameters, stored in the backup so restore needs no configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// m = 64 MiB, t = 3, p = 1: RFC 9106's second recommended option's memory with more
    /// passes, fit for a machine that has the memory once, at backup and restore time.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Wrapped {
    key_id: String,
    nonce: String,
    wrapped: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct BackupFile {
    format: String,
    version: u32,
    kdf: Kdf,
    cipher: String,
    keys: Vec<Wrapped>,
}

fn wrapping_key(passphrase: &str, salt: &[u8], p: KdfParams) -> Result<Aes256Gcm, KeyError> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| KeyError::Backup(format!("Argon2id parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| KeyError::Backup(format!("Argon2id: {e}")))?;
    let cipher = Aes256Gcm::new(&out.into());
    out.iter_mut().for_each(|b| *b = 0);
    Ok(cipher)
}

fn aad(key_id: &str) -> Vec<u8> {
    let mut a = AAD_LABEL.to_vec();
    a.push(0);
    a.extend_from_slice(key_id.as_bytes());
    a
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

/// The backup file's text for `keys` (current key first).
pub fn wrap(keys: &[&Key], passphrase: &str, params: KdfParams) -> Result<String, KeyError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(KeyError::WeakPassphrase);
    }
    let salt: [u8; 16] = random()?;
    let cipher = wrapping_key(passphrase, &salt, params)?;
    let mut wrapped = Vec::new();
    for key in keys {
        let nonce: [u8; 12] = random()?;
        let aad = aad(key.id());
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key.bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Backup("AES-256-GCM refused to seal the key".into()))?;
        wrapped.push(Wrapped {
            key_id: key.id().to_string(),
            nonce: hex::encode(nonce),
            wrapped: hex::encode(ct),
        });
    }
    let file = BackupFile {
        format: FORMAT.into(),
        version: VERSION,
        kdf: Kdf {
            algorithm: "argon2id".into(),
            version: 0x13,
            params,
            salt: hex::encode(salt),
        },
        cipher: "aes-256-gcm".into(),
        keys: wrapped,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("the backup serializes");
    text.push('\n');
    Ok(text)
}

/// The keys in a backup's text (current key first). A wrong passphrase and a damaged or
/// edited file look the same to AES-GCM and are reported together.
pub fn unwrap(text: &str, passphrase: &str, path: &Path) -> Result<Vec<Key>, KeyError> {
    let bad = |problem: &str| KeyError::BadBackup {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let file: BackupFile =
        serde_json::from_str(text).map_err(|e| bad(&format!("not a key backup ({e})")))?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(bad(&format!(
            "format {} version {}, expected {FORMAT} version {VERSION}",
            file.format, file.version
        )));
    }
    if file.kdf.algorithm != "argon2id" || file.kdf.version != 0x13 || file.cipher != "aes-256-gcm"
    {
        return Err(bad("an unknown key derivation or cipher"));
    }
    let salt = hex::decode(&file.kdf.salt).map_err(|_| bad("the salt is not hex"))?;
    let cipher = wrapping_key(passphrase, &salt, file.kdf.params)?;
    let mut keys = Vec::new();
    for w in &file.keys {
        let nonce = hex::decode(&w.nonce)
            .ok()
            .filter(|n| n.len() == 12)
            .ok_or_else(|| bad("a nonce is not 12 hex bytes"))?;
        let ct = hex::decode(&w.wrapped).map_err(|_| bad("a wrapped key is not hex"))?;
        let aad = aad(&w.key_id);
        let mut plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::WrongPassphrase {
                path: path.to_path_buf(),
            })?;
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| bad("a wrapped key is not 32 bytes"))?;
        plain.iter_mut().for_each(|b| *b = 0);
        keys.push(Key::from_parts(bytes, w.key_id.clone()));
    }
    if keys.is_empty() {
        return Err(bad("it holds no key"));
    }
    Ok(keys)
}

/// What `backup` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub key_ids: Vec<String>,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "key id(s) {} wrapped under the passphrase (Argon2id, AES-256-GCM) in {}",
            self.key_ids.join(", "),
            self.path.display()
        )?;
        write!(
            f,
            "keep it offline, apart from the passphrase; restore with `xmatch key restore --from FILE`"
        )
    }
}

/// Writes a backup of the workspace's key(s) to `to` (a new file, 0600).
pub fn backup(
    ws: &Workspace,
    passphrase: &str,
    to: &Path,
    params: KdfParams,
) -> Result<BackupReport, KeyError> {
    let keys = super::workspace_keys(ws)?;
    let refs: Vec<&Key> = keys.iter().collect();
    let text = wrap(&refs, passphrase, params)?;
    crate::workspace::write_new(to, text.as_bytes(), 0o600)?;
    Ok(BackupReport {
        path: to.to_path_buf(),
        key_ids: keys.iter().map(|k| k.id().to_string()).collect(),
    })
}

/// What `restore` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub key_id: String,
    /// `false`: the same key was already in place; nothing was written.
    pub written: bool,
    /// The key of a rotation in progress, restored beside it.
    pub next_key_id: Option<String>,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.written {
            write!(f, "restored key id {}", self.key_id)?;
        } else {
            write!(
                f,
                "key id {} is already in place; nothing written",
                self.key_id
            )?;
        }
        if let Some(next) = &self.next_key_id {
            write!(f, " (and the rotation's new key id {next})")?;
        }
        Ok(())
    }
}

/// Restores the key(s) of a backup into the workspace's key path. Refuses a backup whose
/// key id is not the one the store's tokens were made with (or `expect_key_id`), and never
/// overwrites a different key already in place.
pub async fn restore(
    ws: &Workspace,
    passphrase: &str,
    from: &Path,
    expect_key_id: Option<&str>,
) -> Result<RestoreReport, KeyError> {
    let text = std::fs::read_to_string(from).map_err(|source| KeyError::Io {
        path: from.to_path_buf(),
        source,
    })?;
    let mut keys = unwrap(&text, passphrase, from)?.into_iter();
    let key = keys.next().expect("unwrap returns at least one key");
    let next = keys.next();
    if let Some(want) = expect_key_id
        && want != key.id()
    {
        return Err(KeyError::KeyIdMismatch {
            backup: key.id().to_string(),
            expected: want.to_string(),
            whose: "--expect-key-id".into(),
        });
    }
    if let Some(store_id) = super::store_key_id(ws).await?
        && store_id != key.id()
    {
        return Err(KeyError::KeyIdMismatch {
            backup: key.id().to_string(),
            expected: store_id,
            whose: "this workspace's store".into(),
        });
    }
    let written = super::install(&ws.key_path(), &key)?;
    let next_key_id = match &next {
        Some(n) => {
            super::install(&ws.next_key_path(), n)?;
            Some(n.id().to_string())
        }
        None => None,
    };
    Ok(RestoreReport {
        key_id: key.id().to_string(),
        written,
        next_key_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough for a debug-build unit test; the default is exercised by the CLI tests.
    const FAST: KdfParams = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };

    fn key(b: u8, id: &str) -> Key {
        Key::from_parts([b; 32], id.to_string())
    }

    #[test]
    fn wraps_and_unwraps_with_the_id_bound() {
        let (a, b) = (key(1, "k1-aaaa"), key(2, "k1-bbbb"));
        let text = wrap(&[&a, &b], "correct horse battery", FAST).unwrap();
        assert!(!text.contains(&hex::encode([1u8; 32])));
        let keys = unwrap(&text, "correct horse battery", Path::new("b.json")).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].id(), keys[0].bytes()), ("k1-aaaa", &[1; 32]));
        assert_eq!((keys[1].id(), keys[1].bytes()), ("k1-bbbb", &[2; 32]));

        let e = unwrap(&text, "wrong horse battery", Path::new("b.json")).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase { .. }), "{e}");
        // The id beside a wrapped key is authenticated with it.
        let edited = text.replace("k1-aaaa", "k1-cccc");
        let e = unwrap(&edited, "correct horse battery", Path::new("b.json")).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase { .. }), "{e}");
        let e = unwrap("{}", "x", Path::new("b.json")).unwrap_err();
        assert!(matches!(e, KeyError::BadBackup { .. }), "{e}");
    }

    #[test]
    fn a_short_passphrase_is_refused() {
        let a = key(1, "k1-aaaa");
        assert!(matches!(
            wrap(&[&a], "short", FAST),
            Err(KeyError::WeakPassphrase)
        ));
    }
}
