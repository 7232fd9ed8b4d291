//! Chunked files in the key-value store: writing an upload chunk by chunk (deleting what was
//! written unless the upload is kept), and streaming a byte range of a stored output.

use crate::accounts::{Accounts, is_full};
use edge_spin::ApiError;
use futures::{Sink, SinkExt};
use job_model::layout::{output_chunk_key, source_chunk_key};
use job_model::lifecycle::{Reservation, UploadReservation, human_bytes, source_field};
use spin_sdk::key_value::Store;

pub fn open_store() -> Result<Store, ApiError> {
    Store::open("default").map_err(|e| ApiError::internal("key-value store unavailable", e))
}

pub fn too_large(max: u64) -> ApiError {
    ApiError::new(413, "too large", format!("the upload exceeds the limit of {} ({max} bytes)", human_bytes(max)))
}

pub fn quota_exceeded(quota: u64, used: u64) -> ApiError {
    ApiError::new(
        413,
        "quota_exceeded",
        format!(
            "this upload would take you past your storage quota of {} ({quota} bytes); you hold {} ({used} bytes). \
             Delete jobs or wait for them to expire.",
            human_bytes(quota),
            human_bytes(used)
        ),
    )
}

/// A key-value write failed: 507 when the store is full, else 500.
pub fn store_error(what: &str, e: spin_sdk::key_value::Error) -> ApiError {
    match &e {
        spin_sdk::key_value::Error::Other(detail) if is_full(detail) => {
            eprintln!("{what}: {detail}");
            ApiError::new(507, "storage full", "the service's storage is full; try again later")
        }
        _ => ApiError::internal(what, e),
    }
}

/// Longest an upload waits for room in the quota that a later upload of the same owner is to
/// make (by giving way, or by ending); then it is refused as well.
const QUOTA_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
/// How often a waiting upload asks again.
const QUOTA_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The owner's quota as an upload grows. An announced size (`Content-Length`) is reserved
/// whole before the body is read, so parallel uploads that fit together are all accepted and
/// one that does not is refused at once. Otherwise bytes are reserved a chunk ahead as they
/// arrive (one Redis round trip per chunk), and exactly when the next chunk would not fit, so
/// a file that just fits passes; when the quota is full, the owner's upload that started last
/// gives way and the earlier ones wait for the room it frees (see
/// `job_model::lifecycle::UPLOAD_RESERVE_SCRIPT`), so that as many finish as fit.
pub struct QuotaGuard<'a> {
    pub accounts: &'a Accounts,
    pub owner: &'a str,
    pub job_id: &'a str,
    pub quota: u64,
    pub reserved: u64,
    /// Seconds without progress after which the upload counts as abandoned.
    pub stale_secs: u64,
    /// When the upload last said it is alive (Unix seconds).
    pub alive_at: u64,
}

impl QuotaGuard<'_> {
    fn reserve(&mut self, bytes: u64) -> Result<Reservation, ApiError> {
        let reservation = self.accounts.reserve(self.owner, &source_field(self.job_id), bytes, self.quota)?;
        if let Reservation::Granted { .. } = reservation {
            self.reserved = bytes;
        }
        Ok(reservation)
    }

    /// Reserves the size the headers announce: the whole body (which a multipart upload's
    /// file is smaller than), or when that does not fit, the body less the room allowed for
    /// the framing (`overhead`; the rest is then reserved as it arrives). 413 when neither fits.
    pub fn announce(&mut self, length: u64, overhead: u64) -> Result<(), ApiError> {
        let mut answer = self.reserve(length)?;
        if overhead > 0 && matches!(answer, Reservation::Refused { .. }) {
            answer = self.reserve(length.saturating_sub(overhead))?;
        }
        match answer {
            Reservation::Granted { .. } => Ok(()),
            Reservation::Refused { used } => Err(quota_exceeded(self.quota, used)),
        }
    }

    /// Makes sure `size` bytes are counted; `chunk` is how far ahead to reserve. With no room,
    /// the latest of the owner's uploads gives way (413) and an earlier one waits for the room
    /// that makes, for at most [`QUOTA_WAIT`].
    pub fn cover(&mut self, size: u64, chunk: u64) -> Result<(), ApiError> {
        if size <= self.reserved {
            return Ok(());
        }
        let ahead = size.div_ceil(chunk.max(1)) * chunk.max(1);
        let waiting_since = wasi::clocks::monotonic_clock::now();
        loop {
            // A chunk ahead when there is room for it, else exactly what arrived.
            let mut wanted = ahead;
            let mut answer = self.accounts.reserve_upload(self.owner, self.job_id, wanted, self.quota)?;
            if ahead > size && !matches!(answer, UploadReservation::Granted { .. }) {
                wanted = size;
                answer = self.accounts.reserve_upload(self.owner, self.job_id, wanted, self.quota)?;
            }
            match answer {
                UploadReservation::Granted { .. } => {
                    self.reserved = wanted;
                    return Ok(());
                }
                UploadReservation::Refused { used } => return Err(quota_exceeded(self.quota, used)),
                UploadReservation::Wait { used } => {
                    let waited = wasi::clocks::monotonic_clock::now().saturating_sub(waiting_since);
                    if waited >= QUOTA_WAIT.as_nanos() as u64 {
                        return Err(quota_exceeded(self.quota, used));
                    }
                    self.keep_alive()?;
                    wasi::clocks::monotonic_clock::subscribe_duration(QUOTA_RETRY.as_nanos() as u64).block();
                }
            }
        }
    }

    /// Counts exactly `size` bytes (the upload's final size).
    pub fn settle(&mut self, size: u64) -> Result<(), ApiError> {
        match self.reserve(size)? {
            Reservation::Granted { .. } => Ok(()),
            Reservation::Refused { used } => Err(quota_exceeded(self.quota, used)),
        }
    }

    /// Tells the sweeper the upload is alive, at most every tenth of the stale time: bytes
    /// arriving slowly keep it alive, not only whole chunks.
    fn keep_alive(&mut self) -> Result<(), ApiError> {
        let now = edge_spin::unix_now();
        if now.saturating_sub(self.alive_at) < (self.stale_secs / 10).max(1) {
            return Ok(());
        }
        self.alive_at = now;
        self.accounts.keep_alive(self.job_id, now + self.stale_secs)
    }
}

/// Writes an upload as chunks of `chunk_size` bytes (the last one shorter), holding at most one
/// chunk, within the upload limit and the owner's quota. Dropping it deletes the chunks written
/// so far unless [`ChunkWriter::keep`] was called.
pub struct ChunkWriter<'a> {
    store: &'a Store,
    job_id: &'a str,
    chunk_size: usize,
    max: u64,
    quota: QuotaGuard<'a>,
    buf: Vec<u8>,
    size: u64,
    chunks: u32,
    keep: bool,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(store: &'a Store, job_id: &'a str, chunk_size: u32, max: u64, quota: QuotaGuard<'a>) -> ChunkWriter<'a> {
        let chunk_size = chunk_size as usize;
        ChunkWriter { store, job_id, chunk_size, max, quota, buf: Vec::with_capacity(chunk_size), size: 0, chunks: 0, keep: false }
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), ApiError> {
        self.size += data.len() as u64;
        if self.size > self.max {
            return Err(too_large(self.max));
        }
        self.quota.cover(self.size, self.chunk_size as u64)?;
        self.quota.keep_alive()?;
        while !data.is_empty() {
            let take = (self.chunk_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk_size {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ApiError> {
        self.store
            .set(&source_chunk_key(self.job_id, self.chunks), &self.buf)
            .map_err(|e| store_error("could not store an upload chunk", e))?;
        self.chunks += 1;
        self.buf.clear();
        Ok(())
    }

    /// Stores the last, partial chunk and counts the exact size; returns the file's size and
    /// chunk count.
    pub fn finish(&mut self) -> Result<(u64, u32), ApiError> {
        if !self.buf.is_empty() {
            self.flush()?;
        }
        self.quota.settle(self.size)?;
        Ok((self.size, self.chunks))
    }

    /// Keeps the written chunks when the writer is dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for ChunkWriter<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // From the last down: an interrupted cleanup leaves a run from chunk 0 that the sweeper
        // finds and finishes.
        for index in (0..self.chunks).rev() {
            let key = source_chunk_key(self.job_id, index);
            if let Err(e) = self.store.delete(&key) {
                eprintln!("could not delete {key}: {e:?}");
            }
        }
    }
}

/// Which part of which chunks make up the bytes `start..end` of a file stored in chunks of
/// `chunk_size` bytes: `(chunk index, from, to)` with `from..to` relative to the chunk.
pub fn chunk_slices(start: u64, end: u64, chunk_size: u64) -> impl Iterator<Item = (u32, usize, usize)> {
    let chunk_size = chunk_size.max(1);
    let indices = if start < end { start / chunk_size..(end - 1) / chunk_size + 1 } else { 0..0 };
    indices.map(move |index| {
        let base = index * chunk_size;
        (index as u32, start.saturating_sub(base) as usize, ((end - base).min(chunk_size)) as usize)
    })
}

/// The bytes `start..end` of a job's stored output, to be streamed as a response body.
pub struct OutputRange {
    pub store: Store,
    pub job_id: String,
    pub chunk_size: u64,
    pub start: u64,
    pub end: u64,
}

impl OutputRange {
    /// Sends the range chunk by chunk. The status is already sent, so a missing chunk or a
    /// client that went away can only be logged; the body then ends short.
    pub async fn stream<E: std::fmt::Debug>(self, sink: impl Sink<Vec<u8>, Error = E>) {
        let mut sink = std::pin::pin!(sink);
        for (index, from, to) in chunk_slices(self.start, self.end, self.chunk_size) {
            let key = output_chunk_key(&self.job_id, index);
            let mut chunk = match self.store.get(&key) {
                Ok(Some(chunk)) if chunk.len() >= to => chunk,
                Ok(Some(chunk)) => return eprintln!("{key} holds {} bytes, expected at least {to}", chunk.len()),
                Ok(None) => return eprintln!("{key} is missing; download cut short"),
                Err(e) => return eprintln!("could not read {key}: {e:?}"),
            };
            chunk.truncate(to);
            chunk.drain(..from);
            if let Err(e) = sink.send(chunk).await {
                return eprintln!("download of job {} interrupted: {e:?}", self.job_id);
            }
        }
        if let Err(e) = sink.close().await {
            eprintln!("could not finish the download of job {}: {e:?}", self.job_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices() {
        let all: Vec<_> = chunk_slices(0, 25, 10).collect();
        assert_eq!(all, [(0, 0, 10), (1, 0, 10), (2, 0, 5)]);
        let part: Vec<_> = chunk_slices(12, 14, 10).collect();
        assert_eq!(part, [(1, 2, 4)]);
        let across: Vec<_> = chunk_slices(9, 21, 10).collect();
        assert_eq!(across, [(0, 9, 10), (1, 0, 10), (2, 0, 1)]);
        assert_eq!(chunk_slices(5, 5, 10).count(), 0);
    }
}
