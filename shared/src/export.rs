//! Statement exports: `POST /v1/statements/exports` records a pending export; a
//! background function (the table's stream in AWS, a task in the local gateway) writes
//! the statement as CSV through the file port; `GET /v1/statements/exports/{id}` answers
//! its state and, once ready, a download URL signed afresh for 15 minutes.
//!
//! The CSV is written a line at a time as the ledger is read, a part at a time to the
//! file store: time grows with the lines, memory does not.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::files::{FileError, FileUpload};
use crate::ids::ExportId;
use crate::member::MemberId;
use crate::money::Currency;
use crate::retry::{commit, retrying, Attempt, Commit};
use crate::statement::{position_at, LineReader, StatementRange};
use crate::store::{Doc, DocKey, Expect, StoreError, Write, WriteTarget};

/// How long a download URL works.
pub const DOWNLOAD_URL_SECONDS: i64 = 15 * 60;
/// How long an export (its record and its file) is kept: the bucket's lifecycle rule.
pub const KEEP_DAYS: i64 = 7;
/// The CSV's header row: the statement line's field names.
pub const CSV_COLUMNS: [&str; 11] = [
    "id",
    "time",
    "type",
    "reference",
    "description",
    "available_change",
    "pending_change",
    "in_transit_change",
    "available_after",
    "pending_after",
    "in_transit_after",
];
/// Bytes collected before they are handed to the file store.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Pending,
    Ready,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Ready => "ready",
            ExportStatus::Failed => "failed",
        }
    }
}

/// An export as stored (a document under `EXPORT#<member>`, kept for [`KEEP_DAYS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: ExportId,
    pub member_id: MemberId,
    pub currency: Currency,
    pub from: Timestamp,
    pub to: Timestamp,
    pub status: ExportStatus,
    /// Statement lines in the file (the header row not counted).
    pub lines: Option<u64>,
    /// Of the whole file, hex.
    pub sha256: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl Export {
    /// Where the file is kept: under the member, so one prefix holds one member's files.
    pub fn file_key(&self) -> String {
        format!("exports/{}/{}.csv", self.member_id, self.id)
    }

    /// The name the browser saves it under.
    pub fn file_name(&self) -> String {
        let day = |t: Timestamp| t.to_rfc3339()[..10].to_owned();
        format!("statement-{}-{}-{}.csv", self.currency, day(self.from), day(self.to))
    }

    pub fn range(&self) -> Result<StatementRange, ApiError> {
        StatementRange::new(self.currency, self.from, self.to)
    }
}

/// What every export partition's key starts with.
pub const PARTITION_PREFIX: &str = "EXPORT#";

/// The partition of a member's exports.
pub fn partition(member_id: &MemberId) -> String {
    format!("{PARTITION_PREFIX}{member_id}")
}

/// The export a document key names (a stream record's keys), if it names one.
pub fn named_by(key: &DocKey) -> Option<(MemberId, ExportId)> {
    let member = key.partition.strip_prefix(PARTITION_PREFIX)?;
    MemberId::parse(member).ok().zip(ExportId::parse(&key.sort))
}

fn doc_key(member_id: &MemberId, id: &ExportId) -> DocKey {
    DocKey::new(partition(member_id), id.as_str())
}

fn export_doc(export: &Export, version: u64) -> Result<Doc, StoreError> {
    Ok(Doc::new(doc_key(&export.member_id, &export.id), version, export)?
        .expiring(export.created_at.plus_seconds(KEEP_DAYS * 86_400)))
}

/// An export and its stored version.
async fn read(app: &App, member_id: &MemberId, id: &ExportId) -> Result<Option<(Export, u64)>, StoreError> {
    let found = app
        .store
        .docs(&[doc_key(member_id, id)])
        .await?
        .into_iter()
        .next()
        .flatten();
    match found {
        // The store may keep an expired document a while (DynamoDB's TTL is lazy).
        Some(doc) if doc.expires_at.is_some_and(|at| at <= app.now()) => Ok(None),
        Some(doc) => Ok(Some((doc.parse()?, doc.version))),
        None => Ok(None),
    }
}

/// `POST /v1/statements/exports`: records the export, pending. The write is what starts
/// the background work (the table's stream; locally the gateway's task).
pub async fn request(app: &App, member_id: &MemberId, range: StatementRange) -> Result<Export, ApiError> {
    let now = app.now();
    let export = Export {
        id: ExportId::new_at(now),
        member_id: member_id.clone(),
        currency: range.currency,
        from: range.from,
        to: range.to,
        status: ExportStatus::Pending,
        lines: None,
        sha256: None,
        created_at: now,
        finished_at: None,
    };
    let writes = vec![
        Write::CheckMember {
            member_id: member_id.clone(),
            version: None,
        },
        Write::PutDoc {
            doc: export_doc(&export, 1)?,
            expect: Expect::Absent,
        },
    ];
    retrying(|| async {
        match commit(&*app.store, writes.clone()).await? {
            Commit::Applied => Ok(Attempt::Done(export.clone())),
            Commit::Refused(WriteTarget::Member) => Err(ApiError::MemberNotFound),
            // A fresh ULID cannot be taken: only a conflict gets here.
            Commit::Refused(_) | Commit::Contended => Ok(Attempt::Retry),
        }
    })
    .await
}

/// What `GET /v1/statements/exports/{id}` shows: the export, and when ready a fresh URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportView {
    pub export: Export,
    pub download: Option<(String, Timestamp)>,
}

/// `GET /v1/statements/exports/{id}`: the member's own export (another's is not found).
pub async fn view(app: &App, member_id: &MemberId, id: &ExportId) -> Result<ExportView, ApiError> {
    let (export, _) = read(app, member_id, id).await?.ok_or(ApiError::ExportNotFound)?;
    let download = match export.status {
        ExportStatus::Ready => {
            let expires_at = app.now().plus_seconds(DOWNLOAD_URL_SECONDS);
            let url = app
                .files
                .download_url(&export.file_key(), &export.file_name(), expires_at)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "signing a download URL failed");
                    ApiError::ServiceUnavailable
                })?;
            Some((url, expires_at))
        }
        ExportStatus::Pending | ExportStatus::Failed => None,
    };
    Ok(ExportView { export, download })
}

/// A CSV text cell: a leading `=`, `+`, `-`, `@`, tab or carriage return (a formula to a
/// spreadsheet) is prefixed with `'`; a cell with a comma, quote or line break is quoted,
/// its quotes doubled (RFC 4180).
pub fn text_cell(text: &str) -> String {
    let guarded = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    };
    quoted(&guarded)
}

fn quoted(cell: &str) -> String {
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// The CSV file being written: a byte-order mark (so Excel and WPS read UTF-8), the
/// header, then one CRLF-ended row per line, handed on in chunks and hashed as it goes.
struct CsvWriter {
    upload: Box<dyn FileUpload>,
    chunk: Vec<u8>,
    hash: Sha256,
    rows: u64,
}

impl CsvWriter {
    async fn start(upload: Box<dyn FileUpload>) -> Result<CsvWriter, FileError> {
        let mut writer = CsvWriter {
            upload,
            chunk: Vec::with_capacity(WRITE_CHUNK_BYTES + 1024),
            hash: Sha256::new(),
            rows: 0,
        };
        writer.push("\u{feff}").await?;
        writer.row(&CSV_COLUMNS.map(str::to_owned)).await?;
        Ok(writer)
    }

    async fn push(&mut self, text: &str) -> Result<(), FileError> {
        self.chunk.extend_from_slice(text.as_bytes());
        if self.chunk.len() >= WRITE_CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), FileError> {
        self.hash.update(&self.chunk);
        self.upload.write(&self.chunk).await?;
        self.chunk.clear();
        Ok(())
    }

    async fn row(&mut self, cells: &[String]) -> Result<(), FileError> {
        let line = format!("{}\r\n", cells.join(","));
        self.push(&line).await
    }

    async fn finish(mut self) -> Result<(u64, String), FileError> {
        self.flush().await?;
        self.upload.finish().await?;
        Ok((self.rows, hex::encode(self.hash.finalize())))
    }
}

/// Why writing an export stopped.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{0}")]
    Range(String),
}

/// Writes the statement of `export` as CSV: every line of the range with its running
/// balances. Returns the number of lines and the file's SHA-256.
async fn write_csv(app: &App, export: &Export) -> Result<(u64, String), ExportError> {
    let range = export.range().map_err(|e| ExportError::Range(e.to_string()))?;
    let upload = app.files.create(&export.file_key(), "text/csv; charset=utf-8").await?;
    let mut csv = CsvWriter::start(upload).await?;
    let written = async {
        let mut running = position_at(app, &export.member_id, range.currency, range.from).await?;
        let mut lines = LineReader::new(app, &export.member_id, range.currency, range.from, range.to);
        while let Some(line) = lines.next().await? {
            running = running
                .after_line(&line)
                .ok_or_else(|| StoreError::Corrupt("statement sums overflow".to_owned()))?;
            let change = line.change;
            let after = running.balance;
            csv.row(&[
                text_cell(&line.id),
                text_cell(&line.time.to_rfc3339()),
                text_cell(line.line_type.as_str()),
                text_cell(&line.reference),
                text_cell(line.description()),
                change.available.to_string(),
                change.pending.to_string(),
                change.in_transit.to_string(),
                after.available.to_string(),
                after.pending.to_string(),
                after.in_transit.to_string(),
            ])
            .await?;
            csv.rows += 1;
        }
        Ok::<(), ExportError>(())
    }
    .await;
    match written {
        Ok(()) => Ok(csv.finish().await?),
        Err(error) => {
            csv.upload.abort().await;
            Err(error)
        }
    }
}

/// Makes the file of a pending export and records the outcome: `ready` with its line
/// count and SHA-256, or `failed`. An export that is not pending (a repeated trigger) is
/// left as it is. Store and file outages are returned, so the trigger retries.
pub async fn run(app: &App, member_id: &MemberId, id: &ExportId) -> Result<ExportStatus, ApiError> {
    let Some((export, version)) = read(app, member_id, id).await? else {
        tracing::warn!(export_id = %id, "export to run not found (expired or never made)");
        return Ok(ExportStatus::Failed);
    };
    if export.status != ExportStatus::Pending {
        return Ok(export.status);
    }
    let started = std::time::Instant::now();
    let outcome = write_csv(app, &export).await;
    let mut finished = Export {
        finished_at: Some(app.now()),
        ..export
    };
    match outcome {
        Ok((lines, sha256)) => {
            finished.status = ExportStatus::Ready;
            finished.lines = Some(lines);
            finished.sha256 = Some(sha256);
            tracing::info!(
                export_id = %finished.id,
                lines,
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "export written"
            );
        }
        Err(ExportError::Range(reason)) => {
            tracing::error!(export_id = %finished.id, reason, "export has an invalid range");
            finished.status = ExportStatus::Failed;
        }
        Err(ExportError::Store(e)) => return Err(e.into()),
        Err(ExportError::File(e)) => {
            tracing::error!(export_id = %finished.id, error = %e, "writing an export failed");
            return Err(ApiError::ServiceUnavailable);
        }
    }
    let status = finished.status;
    let write = Write::PutDoc {
        doc: export_doc(&finished, version + 1)?,
        expect: Expect::Version(version),
    };
    retrying(|| async {
        match commit(&*app.store, vec![write.clone()]).await? {
            // Refused: another run finished it first, and its file is the same statement.
            Commit::Applied | Commit::Refused(_) => Ok(Attempt::Done(())),
            Commit::Contended => Ok(Attempt::Retry),
        }
    })
    .await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_cells_quoted_per_rfc_4180() {
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text_cell("+1"), "'+1");
        assert_eq!(text_cell("-1"), "'-1");
        assert_eq!(text_cell("@sum"), "'@sum");
        assert_eq!(text_cell("\tx"), "'\tx");
        assert_eq!(text_cell("\rx"), "\"'\rx\"");
        assert_eq!(text_cell("a,b"), "\"a,b\"");
        assert_eq!(text_cell("订单收款"), "订单收款");
        assert_eq!(text_cell("a\nb"), "\"a\nb\"");
    }
}
