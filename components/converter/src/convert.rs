//! The conversion pipeline: decode with the host, encode with the plugin, store in chunks.
//! Memory stays flat: one second of PCM, one output chunk being filled, and the first output
//! chunk (kept until the end, when the codec may patch its header).

use job_model::{Job, OutputFile, StoredFile, audio, layout};
use spin_sdk::key_value::Store;

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

/// Accumulates output into chunks and writes them; chunk 0 is written last.
struct ChunkWriter<'a> {
    store: &'a Store,
    job_id: &'a str,
    first: Option<Vec<u8>>,
    current: Vec<u8>,
    written_chunks: u32,
    size: u64,
}

impl<'a> ChunkWriter<'a> {
    fn new(store: &'a Store, job_id: &'a str) -> Self {
        ChunkWriter { store, job_id, first: None, current: Vec::with_capacity(layout::CHUNK_SIZE), written_chunks: 0, size: 0 }
    }

    fn push(&mut self, mut bytes: &[u8]) -> Result<(), Failure> {
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = layout::CHUNK_SIZE - self.current.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(now);
            bytes = later;
            if self.current.len() == layout::CHUNK_SIZE {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Closes the current chunk: the first is kept, the others are stored.
    fn seal(&mut self) -> Result<(), Failure> {
        let chunk = std::mem::replace(&mut self.current, Vec::with_capacity(layout::CHUNK_SIZE));
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

    let config = EncoderConfig { input: output, bitrate_kbps: job.options.bitrate_kbps, vbr_quality: job.options.vbr_quality, tags: info.tags.clone() };
    let encoder = Encoder::open(&format, &config).map_err(Failure::Permanent)?;
    let expected_frames = info.duration_secs.map(|d| d * f64::from(output.sample_rate)).filter(|f| *f >= 1.0);

    let AudioFormat { sample_rate, channels } = output;
    let job_id = job.id.clone();
    let mut writer = ChunkWriter::new(store, &job_id);
    let mut frames: u64 = 0;
    let mut reported = 0u8;
    loop {
        // One second of audio per round trip.
        let pcm = decoder.read(sample_rate).map_err(Failure::Permanent)?;
        if pcm.is_empty() {
            break;
        }
        frames += (pcm.len() / usize::from(channels.max(1))) as u64;
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
        file: StoredFile { size, chunks, chunk_size: layout::CHUNK_SIZE as u32, content_type: codec.content_type },
        etag: format!("{}-{size:x}", job_id.get(..16).unwrap_or(&job_id)),
        duration_secs: Some(frames as f64 / f64::from(sample_rate)),
        extension: Some(codec.extension),
    })
}
