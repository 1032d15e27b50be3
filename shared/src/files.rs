//! The file port: where statement exports are written, and how a member downloads one.
//!
//! In AWS an S3 bucket and presigned URLs (`adapters::s3`); locally a directory that the
//! gateway serves under signed URLs of its own (`adapters::local_files`).

use async_trait::async_trait;

use crate::clock::Timestamp;

/// Writing or signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("file store: {0}")]
pub struct FileError(pub String);

/// A file being written, in order, a part at a time: however long the file, only the part
/// in hand is in memory.
#[async_trait]
pub trait FileUpload: Send {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), FileError>;
    /// Makes the file whole and visible under its key.
    async fn finish(self: Box<Self>) -> Result<(), FileError>;
    /// Gives up: nothing is left under the key.
    async fn abort(self: Box<Self>);
}

#[async_trait]
pub trait ExportFiles: Send + Sync {
    /// Starts writing the file `key`, replacing any there (a retried export rewrites it).
    async fn create(&self, key: &str, content_type: &str) -> Result<Box<dyn FileUpload>, FileError>;

    /// A URL that downloads `key` until `expires_at`, without other credentials.
    async fn download_url(&self, key: &str, file_name: &str, expires_at: Timestamp) -> Result<String, FileError>;
}

/// The file port of a function that writes and signs no files: every call fails loudly,
/// so a wiring mistake shows at once (and the function links no S3 client).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFiles;

#[async_trait]
impl ExportFiles for NoFiles {
    async fn create(&self, _key: &str, _content_type: &str) -> Result<Box<dyn FileUpload>, FileError> {
        tracing::error!("this function has no file store: check its file wiring in lambda::aws");
        Err(FileError("this function has no file store".to_owned()))
    }

    async fn download_url(&self, _key: &str, _file_name: &str, _expires_at: Timestamp) -> Result<String, FileError> {
        tracing::error!("this function has no file store: check its file wiring in lambda::aws");
        Err(FileError("this function has no file store".to_owned()))
    }
}
