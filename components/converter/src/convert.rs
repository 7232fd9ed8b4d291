//! The conversion pipeline: decode with the host, encode with the plugin, store in chunks.
//! Memory stays flat: one second of PCM, one output chunk being filled, and the first output
//! chunk (kept until the end, when the codec may patch its header).

use job_model::lifecycle::{Reservation, human_bytes};
use job_model::{Job, OutputFile, StoredFile, audio, layout};
use spin_sdk::key_value::Store;

use crate::quota::OutputQuota;

use crate::mp3edge::codec::types::{AudioFormat, EncoderConfig, HeaderPatch};
use crate::mp3edge::worker::codecs::{self, Encoder};
use crate::mp3edge::worker::demux::{Decoder, OutputRequest, StoredSource};

/// Why an attempt failed.
pub enum Failure {
    /// The input or the requested conversion cannot work; retrying would fail the same way.
    Permanent(String),
    /// Storage trouble or missing data that may be back on the next attempt.
    Transient(String),
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure::Transient(e.to_string())
}

/// Progress is recorded at most every this many percent.
const PROGRESS_STEP: u8 = 5;

/// Accumulates output into chunks of the job's chunk size and writes them; chunk 0 is written
/// last. Every chunk is counted against the owner's quota before it is stored, and the output
/// is held to the job's size cap, so a small input cannot fill the store (a failed attempt's
/// chunks are removed by the worker).
struct ChunkWriter<'a> {
    store: &'a Store,
    job_id: &'a str,
    chunk_size: usize,
    quota: OutputQuota,
    max_bytes: u64,
    first: Option<Vec<u8>>,
    current: Vec<u8>,
    written_chunks: u32,
    size: u64,
}

impl<'a> ChunkWriter<'a> {
    fn new(store: &'a Store, job_id: &'a str, chunk_size: usize, quota: OutputQuota, max_bytes: u64) -> Self {
        ChunkWriter {
            store,
            job_id,
            chunk_size,
            quota,
            max_bytes,
            first: None,
            current: Vec::with_capacity(chunk_size),
            written_chunks: 0,
            size: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), Failure> {
        self.size += bytes.len() as u64;
        if self.max_bytes > 0 && self.size > self.max_bytes {
            return Err(Failure::Permanent(format!(
                "the output would be larger than the limit of {} per job",
                human_bytes(self.max_bytes)
            )));
        }
        while !bytes.is_empty() {
            let room = self.chunk_size - self.current.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = later;
            if self.current.len() == self.chunk_size {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Counts `bytes` of output against the owner's quota.
    fn count(&self, bytes: u64) -> Result<(), Failure> {
        match self.quota.reserve(bytes).map_err(Failure::Transient)? {
            Reservation::Granted { .. } => Ok(()),
            Reservation::Refused { used } => Err(Failure::Permanent(format!(
                "the output would take you past your storage quota of {} (you hold {}); delete jobs and retry",
                human_bytes(self.quota.limit),
                human_bytes(used)
            ))),
        }
    }

    /// Closes the current chunk: the first is kept, the others are stored.
    fn seal(&mut self) -> Result<(), Failure> {
        self.count(self.size)?;
        let chunk = std::mem::replace(&mut self.current, Vec::with_capacity(self.chunk_size));
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            let index = self.written_chunks + 1;
            self.store.set(&layout::output_chunk_key(self.job_id, index), &chunk).map_err(transient)?;
            self.written_chunks += 1;
        }
        Ok(())
    }

    /// Applies the codec's header patch, stores what is left, returns (size, chunks).
    fn finish(mut self, patch: Option<HeaderPatch>) -> Result<(u64, u32), Failure> {
        if !self.current.is_empty() || self.first.is_none() {
            self.seal()?;
        }
        let mut first = self.first.take().unwrap_or_default();
        if let Some(patch) = patch {
            let start = usize::try_from(patch.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(patch.bytes.len());
            if end > first.len() {
                return Err(Failure::Permanent(format!(
                    "the codec's header patch ({} bytes at {}) falls outside the first chunk",
                    patch.bytes.len(),
                    patch.offset
                )));
            }
            first[start..end].copy_from_slice(&patch.bytes);
        }
        self.count(self.size)?;
        self.store.set(&layout::output_chunk_key(self.job_id, 0), &first).map_err(transient)?;
        Ok((self.size, self.written_chunks + 1))
    }
}

/// Converts the job's source to its requested format and stores the result.
pub fn convert(store: &Store, job: &mut Job, mut progress: impl FnMut(&mut Job, u8)) -> Result<OutputFile, Failure> {
    for n in 0..job.source.chunks {
        if !store.exists(&layout::source_chunk_key(&job.id, n)).map_err(transient)? {
            return Err(Failure::Transient(format!("source chunk {n} of {} is missing", job.source.chunks)));
        }
    }
    let format = job.options.format.clone();
    let codec = codecs::formats()
        .into_iter()
        .find(|entry| entry.format == format)
        .map(|entry| entry.codec)
        .ok_or_else(|| Failure::Permanent(format!("no codec plugin provides the format {format:?}")))?;

    let source = StoredSource {
        store: "default".into(),
        job_id: job.id.clone(),
        size: job.source.size,
        chunks: job.source.chunks,
        chunk_size: job.source.chunk_size,
    };
    let no_change = OutputRequest { sample_rate: None, channels: None };
    let probe = Decoder::open(&source, no_change).map_err(Failure::Permanent)?;
    let info = probe.info();
    let (rate, channels) = audio::choose_output_format(info.sample_rate, info.channels, &codec.sample_rates, codec.max_channels);
    let decoder = if (rate, channels) == (info.sample_rate, info.channels) {
        probe
    } else {
        drop(probe);
        let request = OutputRequest { sample_rate: Some(rate), channels: Some(channels) };
        Decoder::open(&source, request).map_err(Failure::Permanent)?
    };
    let output = decoder.output_format();

    let config = EncoderConfig {
        input: output,
        bitrate_kbps: job.options.bitrate_kbps,
        vbr_quality: job.options.vbr_quality,
        level: None,
        bits_per_sample: 16,
        total_frames: None,
        tags: info.tags.clone(),
        cover: None,
    };
    let encoder = Encoder::open(&format, &config).map_err(Failure::Permanent)?;
    let expected_frames = info.duration_secs.map(|d| d * f64::from(output.sample_rate)).filter(|f| *f >= 1.0);
    let max_secs = job.policy.max_duration_secs;
    let too_long = || Failure::Permanent(format!("the audio is longer than the limit of {max_secs} seconds per job"));
    if max_secs > 0 && info.duration_secs.is_some_and(|d| d > max_secs as f64) {
        return Err(too_long());
    }
    let max_frames = max_secs.saturating_mul(u64::from(output.sample_rate));

    let AudioFormat { sample_rate, channels } = output;
    let job_id = job.id.clone();
    let chunk_size = match job.source.chunk_size {
        0 => layout::CHUNK_SIZE,
        n => n as usize,
    };
    let quota = OutputQuota::open(&job.owner, &job_id, job.policy.quota_bytes).map_err(Failure::Transient)?;
    let mut writer = ChunkWriter::new(store, &job_id, chunk_size, quota, job.policy.max_output_bytes);
    let mut frames: u64 = 0;
    let mut reported = 0u8;
    loop {
        // One second of audio per round trip.
        let pcm = decoder.read(sample_rate).map_err(Failure::Permanent)?;
        if pcm.is_empty() {
            break;
        }
        frames += (pcm.len() / usize::from(channels.max(1))) as u64;
        if max_secs > 0 && frames > max_frames {
            return Err(too_long());
        }
        let encoded = encoder.encode(&pcm).map_err(Failure::Permanent)?;
        writer.push(&encoded)?;
        if let Some(expected) = expected_frames {
            let percent = ((frames as f64 / expected) * 100.0).clamp(0.0, 99.0) as u8;
            if percent >= reported + PROGRESS_STEP {
                reported = percent;
                progress(job, percent);
            }
        }
    }
    if frames == 0 {
        return Err(Failure::Permanent("the audio stream holds no samples".into()));
    }
    let finished = encoder.finish().map_err(Failure::Permanent)?;
    writer.push(&finished.tail)?;
    let (size, chunks) = writer.finish(finished.patch)?;
    Ok(OutputFile {
        file: StoredFile { size, chunks, chunk_size: chunk_size as u32, content_type: codec.content_type },
        etag: format!("{}-{size:x}", job_id.get(..16).unwrap_or(&job_id)),
        duration_secs: Some(frames as f64 / f64::from(sample_rate)),
        extension: Some(codec.extension),
    })
}
