//! The file port over a local directory: the local gateway's stand-in for S3. A download
//! URL is the gateway's own `/dev/exports/<key>`, signed like a presigned S3 URL (an
//! HMAC of the key and the expiry), so that it works without a token for its 15 minutes
//! and not after.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

use crate::clock::Timestamp;
use crate::files::{ExportFiles, FileError, FileUpload};

#[derive(Clone)]
pub struct LocalFiles {
    dir: PathBuf,
    base_url: String,
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for LocalFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFiles")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(error: std::io::Error) -> FileError {
    FileError(error.to_string())
}

/// A key is a relative path of safe segments (`exports/<member>/<id>.csv`): never `..`,
/// never absolute, so no URL or record can point outside the directory.
fn safe_key(key: &str) -> Option<&str> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    ok.then_some(key)
}

impl LocalFiles {
    /// Files under `dir`, downloaded from `base_url` (the gateway's address).
    pub fn new(dir: impl Into<PathBuf>, base_url: impl Into<String>, signing_key: Vec<u8>) -> LocalFiles {
        LocalFiles {
            dir: dir.into(),
            base_url: base_url.into(),
            signing_key,
        }
    }

    fn signature(&self, key: &str, expires: i64, file_name: &str) -> String {
        // A key of any length is accepted by HMAC.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.signing_key) else {
            return String::new();
        };
        mac.update(format!("{key}\n{expires}\n{file_name}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The file a signed download URL names, if the signature holds and it has not
    /// expired at `now`.
    pub fn verified_path(
        &self,
        key: &str,
        expires: i64,
        file_name: &str,
        signature: &str,
        now: Timestamp,
    ) -> Option<PathBuf> {
        let key = safe_key(key)?;
        let expected = self.signature(key, expires, file_name);
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
        (same && now.unix_seconds() < expires).then(|| self.dir.join(key))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

struct LocalUpload {
    file: tokio::fs::File,
    partial: PathBuf,
    target: PathBuf,
}

#[async_trait]
impl FileUpload for LocalUpload {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.file.write_all(bytes).await.map_err(io)
    }

    async fn finish(mut self: Box<Self>) -> Result<(), FileError> {
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        // Whole or not at all: the file appears under its key only when complete.
        tokio::fs::rename(&self.partial, &self.target).await.map_err(io)
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.partial).await;
    }
}

#[async_trait]
impl ExportFiles for LocalFiles {
    async fn create(&self, key: &str, _content_type: &str) -> Result<Box<dyn FileUpload>, FileError> {
        let key = safe_key(key).ok_or_else(|| FileError(format!("unsafe file key {key:?}")))?;
        let target = self.dir.join(key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let partial = target.with_extension("part");
        let file = tokio::fs::File::create(&partial).await.map_err(io)?;
        Ok(Box::new(LocalUpload { file, partial, target }))
    }

    async fn download_url(&self, key: &str, file_name: &str, expires_at: Timestamp) -> Result<String, FileError> {
        let key = safe_key(key).ok_or_else(|| FileError(format!("unsafe file key {key:?}")))?;
        let expires = expires_at.unix_seconds();
        let signature = self.signature(key, expires, file_name);
        Ok(format!(
            "{}/dev/files/{key}?name={file_name}&expires={expires}&signature={signature}",
            self.base_url.trim_end_matches('/')
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_directory() {
        assert!(safe_key("exports/m1/ex_1.csv").is_some());
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a/b/..", "a b", "", "a\\b"] {
            assert!(safe_key(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_signed_url_opens_its_file_until_it_expires_and_only_as_signed() {
        let files = LocalFiles::new("/tmp/x", "http://127.0.0.1:3000", b"k".to_vec());
        let now = Timestamp::from_unix_millis(1_000_000);
        let expires = now.plus_seconds(900).unix_seconds();
        let signature = files.signature("exports/a.csv", expires, "s.csv");
        let open = |key: &str, expires: i64, name: &str, signature: &str, at: Timestamp| {
            files.verified_path(key, expires, name, signature, at).is_some()
        };
        assert!(open("exports/a.csv", expires, "s.csv", &signature, now));
        assert!(!open(
            "exports/a.csv",
            expires,
            "s.csv",
            &signature,
            now.plus_seconds(900)
        ));
        assert!(!open("exports/b.csv", expires, "s.csv", &signature, now));
        assert!(!open("exports/a.csv", expires + 1, "s.csv", &signature, now));
        assert!(!open("exports/a.csv", expires, "t.csv", &signature, now));
    }
}
