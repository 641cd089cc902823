//! The sealed file format: a header, then the plaintext in chunks, each sealed with
//! AES-256-GCM.
//!
//! ```text
//! offset  size   field
//! 0       8      magic "XMSEALED"
//! 8       1      format version (1)
//! 9       1      log2 of the plaintext chunk size (16: 64 KiB)
//! 10      1      key id length n (1..=64)
//! 11      n      key id, ASCII (the workspace key the data key is derived from)
//! 11+n    8      run id, big-endian i64 (0: not written by a run)
//! 19+n    2      path length m, big-endian u16
//! 21+n    m      the file's zone-relative path, UTF-8, `/`-separated
//! 21+n+m  16     file nonce, random
//! then    …      chunks: ciphertext ‖ 16-byte GCM tag
//! ```
//!
//! Every chunk's plaintext is `2^log2` bytes except the last, which holds 0 to `2^log2`
//! bytes (an empty file is one empty last chunk). Chunk `i` is sealed under the file key
//! with the 12-byte nonce `i` (11 bytes, big-endian) ‖ `last` (`0x01` for the final chunk,
//! else `0x00`), and the whole header as associated data. This is the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015), as `age` uses it:
//!
//! - the header (key id, run, path, nonce) cannot be altered without every chunk failing;
//! - chunks cannot be reordered (the counter), dropped from the end or appended to (only
//!   the true last chunk opens with the `last` flag), or altered;
//! - a chunk can be opened on its own, so readers seek (Parquet reads its footer first)
//!   without decrypting the file from the start.
//!
//! Keys: `data key = HMAC-SHA256(workspace key, "xmatch/v1/secure-zone/data-key")`, and
//! per file `file key = HMAC-SHA256(data key, "xmatch/v1/secure-zone/file" ‖ 0x00 ‖
//! nonce)`. A fresh key per file keeps GCM's nonces (counters from zero) unique without a
//! random 96-bit nonce per chunk, and the labels keep these keys apart from every token
//! key derived from the same workspace key.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAGIC: &[u8; 8] = b"XMSEALED";
pub const VERSION: u8 = 1;
/// 64 KiB chunks: the tag costs 0.02% of the size, and a Parquet footer read decrypts
/// one or two chunks.
pub const CHUNK_LOG2: u8 = 16;
pub const TAG_LEN: usize = 16;
pub const NONCE_LEN: usize = 16;
pub const MAX_KEY_ID: usize = 64;
const DATA_KEY_LABEL: &str = "xmatch/v1/secure-zone/data-key";
const FILE_KEY_LABEL: &str = "xmatch/v1/secure-zone/file";

type HmacSha256 = Hmac<Sha256>;

/// The per-workspace-key data key of the secure zone.
pub fn data_key(workspace_key: &[u8; 32]) -> [u8; 32] {
    crate::identity::bloom::derive(workspace_key, DATA_KEY_LABEL)
}

/// The key of one file.
pub(crate) fn file_cipher(data_key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> Aes256Gcm {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(data_key).expect("HMAC takes any key");
    mac.update(FILE_KEY_LABEL.as_bytes());
    mac.update(&[0x00]);
    mac.update(nonce);
    let mut key: [u8; 32] = mac.finalize().into_bytes().into();
    let cipher = Aes256Gcm::new(&key.into());
    key.iter_mut().for_each(|b| *b = 0);
    cipher
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub chunk_log2: u8,
    pub key_id: String,
    pub run_id: i64,
    /// Zone-relative, `/`-separated: `runs/12/crosswalk.parquet`, `exports/pirl/…`.
    pub path: String,
    pub nonce: [u8; NONCE_LEN],
}

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Not an xmatch sealed file at all.
    NoMagic,
    Version(u8),
    /// Ends inside the header, or a field is out of range.
    Damaged,
}

impl Header {
    pub fn chunk_len(&self) -> usize {
        1 << self.chunk_log2
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.key_id.len() + self.path.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.chunk_log2);
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&self.run_id.to_be_bytes());
        out.extend_from_slice(&(self.path.len() as u16).to_be_bytes());
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(&self.nonce);
        out
    }

    /// Parses a header from the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize), HeaderProblem> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(HeaderProblem::NoMagic);
        }
        let mut at = MAGIC.len();
        let mut take = |n: usize| -> Result<&[u8], HeaderProblem> {
            let s = bytes.get(at..at + n).ok_or(HeaderProblem::Damaged)?;
            at += n;
            Ok(s)
        };
        let version = take(1)?[0];
        if version != VERSION {
            return Err(HeaderProblem::Version(version));
        }
        let chunk_log2 = take(1)?[0];
        if !(10..=24).contains(&chunk_log2) {
            return Err(HeaderProblem::Damaged);
        }
        let n = take(1)?[0] as usize;
        if n == 0 || n > MAX_KEY_ID {
            return Err(HeaderProblem::Damaged);
        }
        let key_id = std::str::from_utf8(take(n)?)
            .ok()
            .filter(|s| s.is_ascii())
            .ok_or(HeaderProblem::Damaged)?
            .to_string();
        let run_id = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
        let m = u16::from_be_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let path = std::str::from_utf8(take(m)?)
            .map_err(|_| HeaderProblem::Damaged)?
            .to_string();
        let nonce: [u8; NONCE_LEN] = take(NONCE_LEN)?.try_into().expect("nonce length");
        Ok((
            Header {
                chunk_log2,
                key_id,
                run_id,
                path,
                nonce,
            },
            at,
        ))
    }
}

/// The 12-byte GCM nonce of chunk `index`.
pub(crate) fn chunk_nonce(index: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = last as u8;
    n.into()
}

/// Seals `buf` in place as chunk `index` and appends its tag.
pub(crate) fn seal_chunk(
    cipher: &Aes256Gcm,
    header: &[u8],
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) {
    let tag = cipher
        .encrypt_in_place_detached(&chunk_nonce(index, last), header, buf)
        .expect("a chunk is far below GCM's length limit");
    buf.extend_from_slice(&tag);
}

/// Opens chunk `index` in place (`buf` is ciphertext ‖ tag); on success `buf` holds the
/// plaintext. `false` when it does not authenticate.
pub(crate) fn open_chunk(
    cipher: &Aes256Gcm,
    header: &[u8],
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) -> bool {
    if buf.len() < TAG_LEN {
        return false;
    }
    let split = buf.len() - TAG_LEN;
    let tag = Tag::clone_from_slice(&buf[split..]);
    buf.truncate(split);
    cipher
        .decrypt_in_place_detached(&chunk_nonce(index, last), header, buf, &tag)
        .is_ok()
}

/// The layout of a sealed body of `body_len` bytes: the number of chunks and the
/// plaintext length, or `None` when no sequence of chunks has that length (truncated).
pub(crate) fn layout(body_len: u64, chunk_len: usize) -> Option<(u64, u64)> {
    let sealed = (chunk_len + TAG_LEN) as u64;
    if body_len < TAG_LEN as u64 {
        return None;
    }
    let chunks = body_len.div_ceil(sealed);
    let last = body_len - (chunks - 1) * sealed;
    if last < TAG_LEN as u64 {
        return None;
    }
    Some((chunks, body_len - chunks * TAG_LEN as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            chunk_log2: CHUNK_LOG2,
            key_id: "k1-0011223344556677".into(),
            run_id: 12,
            path: "runs/12/crosswalk.parquet".into(),
            nonce: [7; NONCE_LEN],
        }
    }

    #[test]
    fn header_round_trips_and_rejects_what_is_not_one() {
        let h = header();
        let bytes = h.encode();
        assert_eq!(Header::parse(&bytes), Ok((h.clone(), bytes.len())));
        assert_eq!(Header::parse(b"PAR1...."), Err(HeaderProblem::NoMagic));
        assert_eq!(
            Header::parse(&bytes[..bytes.len() - 1]),
            Err(HeaderProblem::Damaged)
        );
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(Header::parse(&v2), Err(HeaderProblem::Version(2)));
    }

    #[test]
    fn layout_accepts_only_whole_chunk_sequences() {
        let c = 1 << 16;
        let s = (c + TAG_LEN) as u64;
        assert_eq!(layout(16, c), Some((1, 0)));
        assert_eq!(layout(17, c), Some((1, 1)));
        assert_eq!(layout(s, c), Some((1, c as u64)));
        assert_eq!(layout(s + 16, c), Some((2, c as u64)));
        assert_eq!(layout(s + 5, c), None, "a last chunk shorter than its tag");
        assert_eq!(layout(3, c), None);
        assert_eq!(layout(0, c), None);
    }

    #[test]
    fn chunks_open_only_at_their_index_and_position() {
        let cipher = file_cipher(&[1; 32], &[2; NONCE_LEN]);
        let hdr = header().encode();
        let mut buf = b"some bytes".to_vec();
        seal_chunk(&cipher, &hdr, 3, false, &mut buf);
        let sealed = buf.clone();
        assert!(open_chunk(&cipher, &hdr, 3, false, &mut buf));
        assert_eq!(buf, b"some bytes");
        for (i, last) in [(4, false), (3, true)] {
            let mut b = sealed.clone();
            assert!(!open_chunk(&cipher, &hdr, i, last, &mut b));
        }
        let mut other = hdr.clone();
        *other.last_mut().unwrap() ^= 1;
        let mut b = sealed.clone();
        assert!(!open_chunk(&cipher, &other, 3, false, &mut b));
    }
}
