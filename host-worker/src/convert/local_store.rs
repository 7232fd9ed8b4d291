//! A key-value backend over two local files, for `mp3edge convert`: the converter component
//! reads the source's chunks and writes the output's exactly as it does on the platform, but the
//! source chunks are read straight from the input file and the output chunks are written
//! straight into the output file at their offsets, so a one-shot conversion copies nothing and
//! needs no store. Every other key (the job record, the format list) lives in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use anyhow::{Context, Result};
use async_trait::async_trait;
use job_model::layout;

use spin_host::interfaces::key_value::{KeyValueBackend, ValueRange};

/// One job's files: the source as `job:<id>:src:N`, the output as `job:<id>:out:N`.
pub struct LocalFilesKeyValue {
    source_prefix: String,
    output_prefix: String,
    source: File,
    source_size: u64,
    output: File,
    chunk_size: u64,
    others: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl LocalFilesKeyValue {
    /// Serves `source` (read in `chunk_size` chunks) and `output` (written at chunk offsets) as
    /// the files of job `job_id`.
    pub fn new(job_id: &str, source: File, output: File, chunk_size: u64) -> Result<LocalFilesKeyValue> {
        let source_size = source.metadata().context("reading the input's size")?.len();
        let prefix = |kind: &str| format!("job:{job_id}:{kind}:");
        Ok(LocalFilesKeyValue {
            source_prefix: prefix("src"),
            output_prefix: prefix("out"),
            source,
            source_size,
            output,
            chunk_size: chunk_size.max(1),
            others: Mutex::default(),
        })
    }

    fn chunk_index(key: &str, prefix: &str) -> Option<u64> {
        key.strip_prefix(prefix).and_then(|n| n.parse().ok())
    }

    fn others(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.others.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `len` bytes from `offset` of source chunk `index`, read from the input file; `None`
    /// past the input's end.
    fn read_source_range(&self, index: u64, offset: u64, len: usize) -> Result<Option<ValueRange>> {
        let chunk_start = index.saturating_mul(self.chunk_size);
        if chunk_start >= self.source_size {
            return Ok(None);
        }
        let value_len = self.chunk_size.min(self.source_size - chunk_start);
        let span = ValueRange::span(value_len, offset, len);
        let mut bytes = vec![0u8; (span.end - span.start) as usize];
        self.source.read_exact_at(&mut bytes, chunk_start + span.start).context("reading the input")?;
        Ok(Some(ValueRange { bytes, value_len }))
    }
}

#[async_trait]
impl KeyValueBackend for LocalFilesKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some(index) = Self::chunk_index(key, &self.source_prefix) {
            let whole = usize::try_from(self.chunk_size).unwrap_or(usize::MAX);
            return Ok(self.read_source_range(index, 0, whole)?.map(|range| range.bytes));
        }
        Ok(self.others().get(key).cloned())
    }

    /// A source chunk's range is read from the input file alone.
    async fn get_range(&self, key: &str, offset: u64, len: usize) -> Result<Option<ValueRange>> {
        if let Some(index) = Self::chunk_index(key, &self.source_prefix) {
            return self.read_source_range(index, offset, len);
        }
        Ok(self.others().get(key).map(|value| ValueRange::of(value, offset, len)))
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        if let Some(index) = Self::chunk_index(key, &self.output_prefix) {
            // Every chunk but the last is full, so chunk N starts at N × chunk size.
            return self.output.write_all_at(value, index * self.chunk_size).context("writing the output");
        }
        if key.starts_with(&self.source_prefix) {
            anyhow::bail!("the input file is read-only");
        }
        self.others().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        // A failed attempt's output chunks are dropped with the whole output file by the caller.
        self.others().remove(key);
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        if let Some(index) = Self::chunk_index(key, &self.source_prefix) {
            return Ok(index.saturating_mul(self.chunk_size) < self.source_size);
        }
        Ok(self.others().contains_key(key))
    }

    async fn get_keys(&self) -> Result<Vec<String>> {
        let chunks = layout::chunk_count(self.source_size, self.chunk_size);
        let mut keys: Vec<String> = (0..chunks).map(|i| format!("{}{i:06}", self.source_prefix)).collect();
        keys.extend(self.others().keys().cloned());
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn source_chunks_come_from_the_input_and_output_chunks_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("in"), &input).unwrap();
        let source = File::open(dir.path().join("in")).unwrap();
        let output = File::create(dir.path().join("out")).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let kv = LocalFilesKeyValue::new(id, source, output, 1000).unwrap();
        assert_eq!(kv.get(&layout::source_chunk_key(id, 0)).await.unwrap().unwrap(), &input[..1000]);
        assert_eq!(kv.get(&layout::source_chunk_key(id, 2)).await.unwrap().unwrap(), &input[2000..]);
        assert_eq!(kv.get(&layout::source_chunk_key(id, 3)).await.unwrap(), None);
        let range = kv.get_range(&layout::source_chunk_key(id, 2), 100, 1000).await.unwrap().unwrap();
        assert_eq!((&range.bytes[..], range.value_len), (&input[2100..], 500));
        let range = kv.get_range(&layout::source_chunk_key(id, 1), 990, 5).await.unwrap().unwrap();
        assert_eq!((&range.bytes[..], range.value_len), (&input[1990..1995], 1000));
        assert_eq!(kv.get_range(&layout::source_chunk_key(id, 3), 0, 5).await.unwrap(), None);
        assert!(kv.set(&layout::source_chunk_key(id, 0), b"x").await.is_err());
        // The converter writes chunk 0 last.
        kv.set(&layout::output_chunk_key(id, 1), &[2u8; 1000]).await.unwrap();
        kv.set(&layout::output_chunk_key(id, 2), &[3u8; 10]).await.unwrap();
        kv.set(&layout::output_chunk_key(id, 0), &[1u8; 1000]).await.unwrap();
        let written = std::fs::read(dir.path().join("out")).unwrap();
        assert_eq!(written.len(), 2010);
        assert!(written[..1000].iter().all(|b| *b == 1) && written[1000..2000].iter().all(|b| *b == 2));
        kv.set("job:x", b"{}").await.unwrap();
        assert_eq!(kv.get("job:x").await.unwrap().unwrap(), b"{}");
        assert!(kv.get_keys().await.unwrap().contains(&"job:x".to_string()));
    }
}
