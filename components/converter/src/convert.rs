//! The conversion pipeline: decode with the host, encode with the plugin, store in chunks.
//! The job's audio options become the host's output request (track, trim, rate, channels,
//! loudness target) and the plugin's encoder config (level, tags with the user's overrides,
//! 24-bit PCM for a codec that keeps it); what the host found (the source's streams, the
//! measured loudness) is recorded on the job.
//! Memory stays flat: one second of PCM, one output chunk being filled, and the first output
//! chunk (kept until the end, when the codec may patch its header).

use job_model::lifecycle::{Reservation, human_bytes};
use job_model::media::{AudioStream, LoudnessReport, SourceMedia};
use job_model::{Job, OutputFile, StoredFile, audio, layout};
use spin_sdk::key_value::Store;

use crate::quota::OutputQuota;

use crate::mp3edge::codec::types::{AudioFormat, EncoderConfig, Finished, HeaderPatch, Tags};
use crate::mp3edge::worker::codecs::{self, Encoder, SegmentedEncoder};
use crate::mp3edge::worker::demux::{self, Decoder, Loudness, LoudnessTarget, MediaInfo, OutputRequest, StoredSource};

/// Why an attempt failed.
pub enum Failure {
    /// The input or the requested conversion cannot work; retrying would fail the same way.
    Permanent(String),
    /// The source file itself cannot be converted (not a media file, no audio stream): like
    /// [`Failure::Permanent`], and no retry with other options can help either.
    Unusable(String),
    /// Storage trouble or missing data that may be back on the next attempt.
    Transient(String),
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure::Transient(e.to_string())
}

/// Inputs at most this long that need no change are decoded by the probe's decoder.
const PROBE_REUSE_SECS: f64 = 120.0;

/// Longest side of the cover picture taken from the video, in pixels.
const COVER_MAX_SIDE: u32 = 500;

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

    /// Closes the current chunk: the first is kept, the others are stored. A stored chunk's
    /// buffer is reused for the next one, so the component holds two chunks (the first and
    /// the current), never a third for a moment: wasm memory does not shrink, and a
    /// moment's peak stays for the instance's life.
    fn seal(&mut self) -> Result<(), Failure> {
        self.count(self.size)?;
        if self.first.is_none() {
            self.first = Some(std::mem::replace(&mut self.current, Vec::with_capacity(self.chunk_size)));
        } else {
            let index = self.written_chunks + 1;
            self.store.set(&layout::output_chunk_key(self.job_id, index), &self.current).map_err(transient)?;
            self.current.clear();
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
    let no_change = OutputRequest {
        sample_rate: None,
        channels: None,
        track: None,
        start_secs: None,
        end_secs: None,
        normalize: None,
    };
    let probe = Decoder::open(&source, no_change).map_err(Failure::Unusable)?;
    let info = probe.info();
    job.media = Some(source_media(&info));
    let options = job.options.clone();
    let track = match options.track {
        Some(track) if track >= info.audio_streams => {
            return Err(Failure::Permanent(format!(
                "track {track} does not exist: the file has {} audio stream{} (track 0{})",
                info.audio_streams,
                if info.audio_streams == 1 { "" } else { "s" },
                if info.audio_streams == 1 { String::new() } else { format!(" to {}", info.audio_streams - 1) }
            )));
        }
        track => track.unwrap_or(info.track),
    };
    let stream = info.streams.get(track as usize).cloned();
    let (stream_rate, stream_channels) = stream.map_or((info.sample_rate, info.channels), |s| (s.sample_rate, s.channels));
    let (auto_rate, auto_channels) =
        audio::choose_output_format(stream_rate, stream_channels, &codec.sample_rates, codec.max_channels);
    let rate = match options.sample_rate {
        Some(rate) if !codec.sample_rates.is_empty() && !codec.sample_rates.contains(&rate) => {
            return Err(Failure::Permanent(format!("{format} does not take a rate of {rate} Hz")));
        }
        rate => rate.unwrap_or(auto_rate),
    };
    let channels = match options.channels {
        Some(channels) if channels > codec.max_channels => {
            return Err(Failure::Permanent(format!("{format} takes at most {} channels", codec.max_channels)));
        }
        channels => channels.unwrap_or(auto_channels),
    };
    let request = OutputRequest {
        sample_rate: Some(rate),
        channels: Some(channels),
        track: Some(track),
        start_secs: options.start_secs,
        end_secs: options.end_secs,
        normalize: options
            .normalize
            .map(|n| LoudnessTarget { integrated_lufs: n.target_lufs, true_peak_dbtp: n.true_peak_dbtp }),
    };
    let untouched = options.track.is_none()
        && options.start_secs.is_none()
        && options.end_secs.is_none()
        && options.normalize.is_none()
        && (rate, channels) == (info.sample_rate, info.channels);

    // The length after the trim, when the source says how long it is.
    let start = options.start_secs.unwrap_or(0.0);
    let end = match (info.duration_secs, options.end_secs) {
        (Some(duration), Some(end)) => Some(duration.min(end)),
        (duration, end) => duration.or(end),
    };
    let duration_secs = end.map(|end| end - start).filter(|d| *d > 0.0);
    let max_secs = job.policy.max_duration_secs;
    let too_long = || Failure::Permanent(format!("the audio is longer than the limit of {max_secs} seconds per job"));
    if max_secs > 0 && duration_secs.is_some_and(|d| d > max_secs as f64) {
        return Err(too_long());
    }
    // The probe's decoder holds the container's index: megabytes for a long video, and the
    // cover's decoder and the segment lanes' build their own. It is kept only to decode a
    // short input that needs no change (its index is then small and opening again would
    // cost more than it); otherwise it goes now and the serial path opens its own.
    let probe = (untouched && duration_secs.is_some_and(|d| d <= PROBE_REUSE_SECS)).then_some(probe);
    // A frame of the video as the cover, unless the user said `cover=none` or the format has
    // no place for one. A cover that cannot be made leaves the output without one.
    let cover = if options.cover && codec.cover && info.has_video {
        demux::cover(&source, COVER_MAX_SIDE).unwrap_or_else(|e| {
            eprintln!("job {}: no cover picture: {e}", job.id);
            None
        })
    } else {
        None
    };
    let config_for = |info: &MediaInfo, input: AudioFormat, wide: bool| EncoderConfig {
        input,
        bitrate_kbps: options.bitrate_kbps,
        vbr_quality: options.vbr_quality,
        level: options.level,
        bits_per_sample: if wide { 24 } else { 16 },
        total_frames: duration_secs.map(|d| (d * f64::from(input.sample_rate)).round() as u64),
        tags: merged_tags(info, job),
        cover: cover.clone(),
    };

    // A long input whose plugin encodes in segments is encoded on every core at once; a
    // codec that keeps 24-bit sources (none segments yet) and everything else go serially.
    let wide_source = codec.bit_depths.contains(&24) && info.bits_per_sample > 16;
    let segmented = if wide_source {
        None
    } else {
        let config = config_for(&info, AudioFormat { sample_rate: rate, channels }, false);
        SegmentedEncoder::open(&format, &config, &source, request.clone()).map_err(Failure::Permanent)?
    };
    let mut encoding = match segmented {
        Some(segments) => {
            // The host decodes each segment by itself.
            drop(probe);
            Encoding::Segmented(segments)
        }
        None => {
            let decoder = match probe {
                Some(probe) => probe,
                None => Decoder::open(&source, request).map_err(Failure::Permanent)?,
            };
            let info = decoder.info();
            let output = decoder.output_format();
            // A codec that keeps 24-bit audio gets it from a source that has more than 16 bits.
            let wide = codec.bit_depths.contains(&24) && info.bits_per_sample > 16;
            let encoder = Encoder::open(&format, &config_for(&info, output, wide)).map_err(Failure::Permanent)?;
            Encoding::Serial { decoder, encoder, wide, channels: usize::from(output.channels.max(1)), frames: 0 }
        }
    };
    let sample_rate = rate;
    let expected_frames = duration_secs.map(|d| d * f64::from(sample_rate)).filter(|f| *f >= 1.0);
    let max_frames = max_secs.saturating_mul(u64::from(sample_rate));

    let job_id = job.id.clone();
    let chunk_size = match job.source.chunk_size {
        0 => layout::CHUNK_SIZE,
        n => n as usize,
    };
    let quota = OutputQuota::open(&job.owner, &job_id, job.policy.quota_bytes).map_err(Failure::Transient)?;
    // What the output takes at least is held to the limits before a byte of it is written
    // (2.6 KB of compressed silence asked for as 192 kHz WAV is gigabytes); and reserved, so
    // that parallel jobs cannot all start with room for one.
    let shape = audio::OutputShape {
        content_type: &codec.content_type,
        seconds: duration_secs.unwrap_or(0.0),
        sample_rate,
        channels,
        bits: if wide_source { 24 } else { 16 },
        constant_kbps: options.bitrate_kbps.filter(|_| options.vbr_quality.is_none()),
    };
    if let Some(least) = audio::least_output_bytes(shape) {
        let described = format!("at least {} ({:.0} s of {format} at {sample_rate} Hz, {channels} channel{})", human_bytes(least), shape.seconds, if channels == 1 { "" } else { "s" });
        let max = job.policy.max_output_bytes;
        if max > 0 && least > max {
            return Err(Failure::Permanent(format!("the output would take {described}, more than the limit of {} per job", human_bytes(max))));
        }
        if let Reservation::Refused { used } = quota.reserve(least).map_err(Failure::Transient)? {
            return Err(Failure::Permanent(format!(
                "the output would take {described}, more than is left of your storage quota of {} (you hold {}); delete jobs or choose a smaller format",
                human_bytes(quota.limit),
                human_bytes(used)
            )));
        }
    }
    let mut writer = ChunkWriter::new(store, &job_id, chunk_size, quota, job.policy.max_output_bytes);
    let mut frames: u64 = 0;
    let mut reported = 0u8;
    while let Some((encoded, encoded_frames)) = encoding.next(sample_rate)? {
        frames = encoded_frames;
        if max_secs > 0 && frames > max_frames {
            return Err(too_long());
        }
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
    let finished = encoding.finish().map_err(Failure::Permanent)?;
    writer.push(&finished.tail)?;
    let (size, chunks) = writer.finish(finished.patch)?;
    if let (Some(target), Some(measured)) = (options.normalize, encoding.loudness()) {
        job.loudness = Some(LoudnessReport::new(
            target.target_lufs,
            target.true_peak_dbtp,
            measured.measured_lufs,
            measured.measured_true_peak_dbtp,
            measured.gain_db,
        ));
    }
    Ok(OutputFile {
        file: StoredFile { size, chunks, chunk_size: chunk_size as u32, content_type: codec.content_type },
        etag: format!("{}-{size:x}", job_id.get(..16).unwrap_or(&job_id)),
        duration_secs: Some(frames as f64 / f64::from(sample_rate)),
        extension: Some(codec.extension),
    })
}

/// Where the output comes from: the decoder feeding one encoder, or the worker's segmented
/// encode (which decodes by itself).
enum Encoding {
    Serial { decoder: Decoder, encoder: Encoder, wide: bool, channels: usize, frames: u64 },
    Segmented(SegmentedEncoder),
}

impl Encoding {
    /// The next output bytes and the PCM frames encoded up to them; `None` at the end.
    fn next(&mut self, sample_rate: u32) -> Result<Option<(Vec<u8>, u64)>, Failure> {
        match self {
            Encoding::Serial { decoder, encoder, wide, channels, frames } => {
                // One second of audio per round trip.
                let (encoded, samples) = if *wide {
                    let pcm = decoder.read_wide(sample_rate).map_err(Failure::Permanent)?;
                    if pcm.is_empty() {
                        return Ok(None);
                    }
                    (encoder.encode_wide(&pcm), pcm.len())
                } else {
                    let pcm = decoder.read(sample_rate).map_err(Failure::Permanent)?;
                    if pcm.is_empty() {
                        return Ok(None);
                    }
                    (encoder.encode(&pcm), pcm.len())
                };
                *frames += (samples / *channels) as u64;
                Ok(Some((encoded.map_err(Failure::Permanent)?, *frames)))
            }
            Encoding::Segmented(segments) => Ok(segments.next().map_err(Failure::Permanent)?.map(|part| (part.bytes, part.frames))),
        }
    }

    fn finish(&self) -> Result<Finished, String> {
        match self {
            Encoding::Serial { encoder, .. } => encoder.finish(),
            Encoding::Segmented(segments) => segments.finish(),
        }
    }

    fn loudness(&self) -> Option<Loudness> {
        match self {
            Encoding::Serial { decoder, .. } => decoder.loudness(),
            Encoding::Segmented(segments) => segments.loudness(),
        }
    }
}

/// The source's streams as the job records them.
fn source_media(info: &MediaInfo) -> SourceMedia {
    SourceMedia {
        container: info.container.clone(),
        duration_secs: info.duration_secs,
        audio_streams: info
            .streams
            .iter()
            .map(|s| AudioStream {
                index: s.index,
                codec: s.codec.clone(),
                sample_rate: s.sample_rate,
                channels: s.channels,
                language: s.language.clone(),
                title: s.title.clone(),
                default: s.default,
            })
            .collect(),
        video: info.has_video,
    }
}

/// The source's tags with the user's `title`, `artist` and `album` over them.
fn merged_tags(info: &MediaInfo, job: &Job) -> Tags {
    let mut tags = info.tags.clone();
    let options = &job.options;
    if options.title.is_some() {
        tags.title = options.title.clone();
    }
    if options.artist.is_some() {
        tags.artist = options.artist.clone();
    }
    if options.album.is_some() {
        tags.album = options.album.clone();
    }
    tags
}
