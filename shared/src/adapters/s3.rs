//! The file port over Amazon S3: exports are written as multipart uploads a part at a
//! time (a small file as one `PutObject`), and downloaded through presigned `GetObject`
//! URLs. The bucket encrypts at rest, blocks public access and deletes exports after
//! seven days (`template.yaml`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::clock::Timestamp;
use crate::files::{ExportFiles, FileError, FileUpload};

/// Bytes per uploaded part: above S3's 5 MiB least part, and the most an export holds
/// in memory at once.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3Files {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Files {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Files {
        S3Files {
            client,
            bucket: bucket.into(),
        }
    }
}

fn failed<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    what: &str,
) -> impl FnOnce(aws_sdk_s3::error::SdkError<E, R>) -> FileError + '_ {
    move |e| FileError(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))
}

struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    content_type: String,
    buffer: Vec<u8>,
    /// Set once the file outgrows one part.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl S3Upload {
    async fn upload_part(&mut self) -> Result<(), FileError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(&self.content_type)
                    .send()
                    .await
                    .map_err(failed("CreateMultipartUpload"))?;
                let id = created
                    .upload_id
                    .ok_or_else(|| FileError("CreateMultipartUpload returned no upload id".to_owned()))?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| FileError("too many parts".to_owned()))?;
        let body = std::mem::take(&mut self.buffer);
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(failed("UploadPart"))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag)
                .build(),
        );
        self.buffer.reserve(PART_BYTES);
        Ok(())
    }
}

#[async_trait]
impl FileUpload for S3Upload {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART_BYTES {
            self.upload_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), FileError> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Smaller than a part: one PutObject.
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                .send()
                .await
                .map_err(failed("PutObject"))?;
            return Ok(());
        };
        if !self.buffer.is_empty() {
            self.upload_part().await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(failed("CompleteMultipartUpload"))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        if let Some(upload_id) = &self.upload_id {
            // Best effort: the bucket's lifecycle rule also aborts incomplete uploads.
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "abort of an export upload failed");
            }
        }
    }
}

#[async_trait]
impl ExportFiles for S3Files {
    async fn create(&self, key: &str, content_type: &str) -> Result<Box<dyn FileUpload>, FileError> {
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
        }))
    }

    async fn download_url(&self, key: &str, file_name: &str, expires_at: Timestamp) -> Result<String, FileError> {
        let now_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let seconds = u64::try_from(expires_at.unix_millis().saturating_sub(now_millis) / 1000)
            .unwrap_or(0)
            .max(1);
        let config =
            PresigningConfig::expires_in(Duration::from_secs(seconds)).map_err(|e| FileError(e.to_string()))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            // The browser saves the file under this name.
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .presigned(config)
            .await
            .map_err(failed("presigning GetObject"))?;
        Ok(presigned.uri().to_owned())
    }
}
