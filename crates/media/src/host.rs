//! The `mp3edge:worker/demux` host interface: FFmpeg decoding of a stored upload for the
//! converter.
//!
//! Each opened decoder runs on a thread of its own that reads the source chunks from the
//! key-value backend and decodes ahead into a small bounded queue (a few seconds of PCM), so
//! native decoding overlaps the plugin's encoding while memory stays flat. With loudness
//! normalization, that thread first runs the measuring pass ([`super::loudness`]), then decodes
//! again with the chosen gain. The thread also converts each block to the samples its reader
//! last asked for (s16 for `read`, 24-bit for `read-wide`) while the block is still in its
//! core's cache; until the first read, blocks travel as float. A segment lane's decoder is
//! restartable: once its stretch is decoded, its thread waits to decode another stretch of
//! the same stream ([`DecoderHandle::restart`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};
use wasmtime::component::Resource;

use super::loudness::Measured;
use super::sandbox::wire::{Normalize, SampleKind};
use super::sandbox::{Killer, MediaProcess, Pcm};
use super::{ChunkSource, ValueRange, OutputRequest as NativeRequest, SourceLayout, to_s16, to_s24};
use host_world::worker::mp3edge::codec::types::{AudioFormat, Picture, Tags};
use host_world::worker::mp3edge::worker::demux::{
    self, AudioStream, Loudness, LoudnessTarget, MediaInfo, OutputRequest, StoredSource,
};
use spin_host::interfaces::key_value::KeyValueBackend;
use spin_host::handles::HandleTable;
use spin_host::state::ComponentState;
use job_model::layout;

/// Blocks decoded ahead of the converter.
const READ_AHEAD_BLOCKS: usize = 4;

/// Source chunks read from a key-value backend, from the decoder's own thread.
struct StoredChunks {
    backend: Arc<dyn KeyValueBackend>,
    job_id: String,
    runtime: tokio::runtime::Handle,
}

impl ChunkSource for StoredChunks {
    fn read_range(&self, index: u32, offset: u64, len: usize) -> Result<ValueRange> {
        let key = layout::source_chunk_key(&self.job_id, index);
        self.runtime
            .block_on(self.backend.get_range(&key, offset, len))?
            .ok_or_else(|| anyhow::anyhow!("source chunk {index} is missing"))
    }
}

/// A sample type a reader takes: which blocks the decoding thread should make, and how a
/// block made before the reader asked (float) becomes it.
pub trait Sample: Copy {
    const KIND: u8;
    /// Float samples (full scale ±1.0), rounded and clipped to this type.
    fn from_floats(samples: &[f32]) -> Vec<Self>;
    fn from_pcm(pcm: Pcm) -> Vec<Self>;
    fn into_pcm(samples: Vec<Self>) -> Pcm;
}

/// No reader yet: the thread makes float blocks.
const KIND_FLOAT: u8 = 0;

/// The sample type of [`Sample::KIND`].
fn sample_kind(kind: u8) -> SampleKind {
    match kind {
        <i16 as Sample>::KIND => SampleKind::S16,
        <i32 as Sample>::KIND => SampleKind::S24,
        _ => SampleKind::F32,
    }
}

impl Sample for i16 {
    const KIND: u8 = 1;
    fn from_floats(samples: &[f32]) -> Vec<i16> {
        samples.iter().copied().map(to_s16).collect()
    }
    fn from_pcm(pcm: Pcm) -> Vec<i16> {
        match pcm {
            Pcm::S16(v) => v,
            Pcm::Float(v) => Self::from_floats(&v),
            // A reader that switched from `read-wide` (the converter never does): the block's
            // top 16 bits.
            Pcm::S24(v) => v.into_iter().map(|s| (s >> 8) as i16).collect(),
        }
    }
    fn into_pcm(samples: Vec<i16>) -> Pcm {
        Pcm::S16(samples)
    }
}

impl Sample for i32 {
    const KIND: u8 = 2;
    fn from_floats(samples: &[f32]) -> Vec<i32> {
        samples.iter().copied().map(to_s24).collect()
    }
    fn from_pcm(pcm: Pcm) -> Vec<i32> {
        match pcm {
            Pcm::S24(v) => v,
            Pcm::Float(v) => Self::from_floats(&v),
            Pcm::S16(v) => v.into_iter().map(|s| i32::from(s) << 8).collect(),
        }
    }
    fn into_pcm(samples: Vec<i32>) -> Pcm {
        Pcm::S24(samples)
    }
}

type Block = Result<Pcm, String>;

/// The converter's handle to an open decoder.
pub struct DecoderHandle {
    info: MediaInfo,
    format: AudioFormat,
    loudness: Option<Loudness>,
    blocks: mpsc::Receiver<Block>,
    /// The sample type the decoding thread makes blocks in (`Sample::KIND`).
    kind: Arc<AtomicU8>,
    pending: Pcm,
    offset: usize,
    ended: bool,
    /// To a restartable decoder's thread, which waits for them once a stretch is decoded.
    restarts: Option<mpsc::UnboundedSender<Restart>>,
    /// Ends the media process at once when the handle goes (a finished, failed or cancelled
    /// conversion), even while it is decoding.
    killer: Killer,
}

impl Drop for DecoderHandle {
    fn drop(&mut self) {
        self.killer.kill();
    }
}

/// Decode another stretch of the same stream ([`Decoder::restart`]) into `blocks`.
struct Restart {
    start_secs: Option<f64>,
    end_secs: Option<f64>,
    blocks: mpsc::Sender<Block>,
    restarted: oneshot::Sender<Result<bool, String>>,
}

/// Frames of one decoded block at `rate`: half a second, small enough to start encoding
/// early. A reader that asks for this many gets each block as it was made, without a copy.
pub fn block_frames(rate: u32) -> u32 {
    (rate / 2).max(1024)
}

/// Decodes into `blocks` until the stretch ends or the reader goes away, in the sample type
/// `kind` holds when each block is asked for.
fn decode_into(process: &mut MediaProcess, rate: u32, blocks: &mpsc::Sender<Block>, kind: &AtomicU8) {
    let block_frames = block_frames(rate);
    loop {
        let block = process.read(block_frames, sample_kind(kind.load(Ordering::Relaxed)));
        let last = !matches!(&block, Ok(pcm) if pcm.len() > 0);
        if blocks.blocking_send(block).is_err() || last {
            return;
        }
    }
}

pub fn to_wit_info(info: &super::MediaInfo) -> MediaInfo {
    MediaInfo {
        container: info.container.clone(),
        codec: info.codec.clone(),
        duration_secs: info.duration_secs,
        sample_rate: info.sample_rate,
        channels: info.channels,
        audio_streams: info.audio_streams,
        streams: info
            .streams
            .iter()
            .enumerate()
            .map(|(index, st)| AudioStream {
                index: index as u32,
                codec: st.codec.clone(),
                sample_rate: st.sample_rate,
                channels: st.channels,
                language: st.language.clone(),
                title: st.title.clone(),
                default: st.default,
            })
            .collect(),
        track: info.track,
        bits_per_sample: info.bits_per_sample,
        has_video: info.has_video,
        tags: Tags {
            title: info.tags.title.clone(),
            artist: info.tags.artist.clone(),
            album: info.tags.album.clone(),
            year: info.tags.year.clone(),
            comment: info.tags.comment.clone(),
            genre: info.tags.genre.clone(),
            track: info.tags.track.clone(),
        },
    }
}

impl DecoderHandle {
    /// Opens the source on a new decoding thread and waits for the probe's outcome (after the
    /// measuring pass, when normalizing to `target`).
    pub async fn open(
        source: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        request: NativeRequest,
        target: Option<LoudnessTarget>,
    ) -> Result<DecoderHandle, String> {
        Self::spawn(source, layout, request, target, None).await
    }

    /// Like [`DecoderHandle::open`], for a decoder that [`DecoderHandle::restart`] moves on to
    /// other stretches of the stream; its thread (and the container's index) stays until the
    /// handle goes. It only decodes ([`Decoder::open_audio_only`]): its info says nothing of
    /// video.
    pub async fn open_restartable(source: Arc<dyn ChunkSource>, layout: SourceLayout, request: NativeRequest) -> Result<DecoderHandle, String> {
        let (restart_tx, restart_rx) = mpsc::unbounded_channel();
        let mut handle = Self::spawn(source, layout, request, None, Some(restart_rx)).await?;
        handle.restarts = Some(restart_tx);
        Ok(handle)
    }

    /// Decodes `start_secs`..`end_secs` of the same stream next, as a decoder opened with that
    /// trim would. False when this decoder cannot (not restartable, too near the beginning, or
    /// its thread ended): open a new one.
    pub async fn restart(&mut self, start_secs: Option<f64>, end_secs: Option<f64>) -> Result<bool, String> {
        let Some(restarts) = &self.restarts else { return Ok(false) };
        let (block_tx, block_rx) = mpsc::channel::<Block>(READ_AHEAD_BLOCKS);
        let (restarted_tx, restarted_rx) = oneshot::channel();
        // The old queue goes first: a thread still decoding into it stops there.
        self.blocks = block_rx;
        (self.pending, self.offset, self.ended) = (Pcm::Float(Vec::new()), 0, false);
        if restarts.send(Restart { start_secs, end_secs, blocks: block_tx, restarted: restarted_tx }).is_err() {
            return Ok(false);
        }
        restarted_rx.await.unwrap_or(Ok(false))
    }

    async fn spawn(
        source: Arc<dyn ChunkSource>,
        layout: SourceLayout,
        request: NativeRequest,
        target: Option<LoudnessTarget>,
        restarts: Option<mpsc::UnboundedReceiver<Restart>>,
    ) -> Result<DecoderHandle, String> {
        // A restartable decoder is a segment lane's, which needs the audio alone.
        let audio_only = restarts.is_some();
        let (opened_tx, opened_rx) = oneshot::channel();
        let (block_tx, block_rx) = mpsc::channel::<Block>(READ_AHEAD_BLOCKS);
        let kind = Arc::new(AtomicU8::new(KIND_FLOAT));
        let thread_kind = kind.clone();
        std::thread::Builder::new()
            .name("decoder".into())
            .spawn(move || {
                // The media process lives as long as this thread, which it dies with.
                let mut process = match MediaProcess::start(source, layout) {
                    Ok(process) => process,
                    Err(reason) => {
                        let _ = opened_tx.send(Err(reason));
                        return;
                    }
                };
                let killer = process.killer();
                let normalize = target.map(|t| Normalize { target_lufs: t.integrated_lufs, ceiling_dbtp: t.true_peak_dbtp });
                let (info, (rate, channels), measured) = match process.open(request, audio_only, normalize) {
                    Ok(opened) => opened,
                    Err(reason) => {
                        let _ = opened_tx.send(Err(reason));
                        return;
                    }
                };
                let opened = (to_wit_info(&info), AudioFormat { sample_rate: rate, channels }, measured.map(to_wit_loudness), killer);
                if opened_tx.send(Ok(opened)).is_err() {
                    return;
                }
                decode_into(&mut process, rate, &block_tx, &thread_kind);
                drop(block_tx);
                let Some(mut restarts) = restarts else { return };
                while let Some(restart) = restarts.blocking_recv() {
                    let restarted = process.restart(restart.start_secs, restart.end_secs);
                    let go_on = matches!(restarted, Ok(true));
                    if restart.restarted.send(restarted).is_err() || !go_on {
                        return;
                    }
                    decode_into(&mut process, rate, &restart.blocks, &thread_kind);
                }
            })
            .map_err(|e| format!("could not start a decoder thread: {e}"))?;
        let (info, format, loudness, killer) = opened_rx.await.map_err(|_| "the decoder stopped unexpectedly".to_string())??;
        Ok(DecoderHandle {
            info,
            format,
            loudness,
            blocks: block_rx,
            kind,
            pending: Pcm::Float(Vec::new()),
            offset: 0,
            ended: false,
            restarts: None,
            killer,
        })
    }

    /// Up to `max_frames` frames from the read-ahead queue as `T` samples; empty at the end.
    /// From the next block on, the decoding thread makes them in `T` itself.
    pub async fn read<T: Sample>(&mut self, max_frames: u32) -> Result<Vec<T>, String> {
        self.kind.store(T::KIND, Ordering::Relaxed);
        let channels = usize::from(self.format.channels.max(1));
        let want = (max_frames as usize).max(1) * channels;
        let mut pending = T::from_pcm(std::mem::replace(&mut self.pending, Pcm::Float(Vec::new())));
        let mut out = Vec::new();
        while out.len() < want {
            if self.offset == pending.len() {
                if self.ended {
                    break;
                }
                match self.blocks.recv().await {
                    Some(Ok(block)) if block.len() > 0 => {
                        pending = T::from_pcm(block);
                        self.offset = 0;
                    }
                    Some(Err(reason)) => {
                        self.ended = true;
                        return Err(reason);
                    }
                    Some(Ok(_)) | None => {
                        self.ended = true;
                        break;
                    }
                }
            }
            if out.is_empty() && self.offset == 0 && pending.len() == want {
                // Exactly one whole block is asked for: it goes out as it came.
                out = std::mem::take(&mut pending);
                break;
            }
            let take = (want - out.len()).min(pending.len() - self.offset);
            if out.capacity() == 0 {
                out.reserve_exact(want.min(1 << 20));
            }
            out.extend_from_slice(&pending[self.offset..self.offset + take]);
            self.offset += take;
        }
        self.pending = T::into_pcm(pending);
        Ok(out)
    }
}

pub fn to_wit_loudness(m: Measured) -> Loudness {
    Loudness { measured_lufs: m.integrated_lufs, measured_true_peak_dbtp: m.true_peak_dbtp, gain_db: m.gain_db }
}

/// Longest side of a cover picture the converter may ask for.
const MAX_COVER_SIDE: u32 = 1200;

/// What a decoder of `source` is opened with ([`DecoderInput`]), when `state`'s component may read it.
pub fn decoder_input(state: &ComponentState, source: StoredSource, request: OutputRequest) -> Result<DecoderInput, String> {
    let (chunks, layout) = stored_chunks(state, source)?;
    let (request, target) = native_request(request)?;
    Ok((chunks, layout, request, target))
}

/// The source chunks of `source`, when this component may read them.
fn stored_chunks(state: &ComponentState, source: StoredSource) -> Result<(Arc<dyn ChunkSource>, SourceLayout), String> {
    if !state.grants.key_value_stores.contains(&source.store) {
        return Err(format!("key-value store {:?} is not granted to this component", source.store));
    }
    let Some(backend) = state.services.key_value.get(&source.store) else {
        return Err(format!("no key-value store {:?}", source.store));
    };
    if !layout::is_valid_job_id(&source.job_id) {
        return Err(format!("invalid job id {:?}", source.job_id));
    }
    if source.chunk_size == 0 || u64::from(source.chunks) != source.size.div_ceil(u64::from(source.chunk_size)) {
        return Err("the stored source's size and chunk count disagree".into());
    }
    Ok((stored_source_chunks(backend, source.job_id), SourceLayout { size: source.size, chunks: source.chunks, chunk_size: source.chunk_size }))
}

/// What a decoder of `source` is opened with: its chunks and layout, when this component may
/// read them, and the checked request with the loudness target apart.
pub type DecoderInput = (Arc<dyn ChunkSource>, SourceLayout, NativeRequest, Option<LoudnessTarget>);

/// The source chunks of job `job_id` in `backend` (an id already checked), read from a
/// blocking decoder thread.
pub fn stored_source_chunks(backend: Arc<dyn KeyValueBackend>, job_id: String) -> Arc<dyn ChunkSource> {
    Arc::new(StoredChunks { backend, job_id, runtime: tokio::runtime::Handle::current() })
}

/// The decoder's request from the converter's, checked: finite, not negative trim times and a
/// finite loudness target (returned apart: it is measured before decoding).
fn native_request(request: OutputRequest) -> Result<(NativeRequest, Option<LoudnessTarget>), String> {
    let target = request.normalize;
    if let Some(t) = target
        && !(t.integrated_lufs.is_finite() && t.true_peak_dbtp.is_finite())
    {
        return Err("the loudness target must be a finite number".into());
    }
    if [request.start_secs, request.end_secs].into_iter().flatten().any(|t| !t.is_finite() || t < 0.0) {
        return Err("trim times must be finite and not negative".into());
    }
    let request = NativeRequest {
        sample_rate: request.sample_rate,
        channels: request.channels,
        track: request.track,
        start_secs: request.start_secs,
        end_secs: request.end_secs,
        gain_db: None,
    };
    Ok((request, target))
}

/// The converter's store as the demux interface sees it: the interface is implemented on this
/// type of the media crate (the store's type belongs to the runtime) and linked by
/// [`add_to_linker`].
pub struct DemuxHost<'a>(pub &'a mut ComponentState);

struct HasDemux;

impl wasmtime::component::HasData for HasDemux {
    type Data<'a> = DemuxHost<'a>;
}

/// Adds the `mp3edge:worker/demux` interface to a converter's linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<ComponentState>) -> wasmtime::Result<()> {
    demux::add_to_linker::<ComponentState, HasDemux>(linker, |state| DemuxHost(state))
}

impl demux::Host for DemuxHost<'_> {
    async fn cover(&mut self, source: StoredSource, max_side: u32) -> wasmtime::Result<Result<Option<Picture>, String>> {
        let (chunks, layout) = match stored_chunks(self.0, source) {
            Ok(found) => found,
            Err(reason) => return Ok(Err(reason)),
        };
        let max_side = max_side.min(MAX_COVER_SIDE);
        let made = tokio::task::spawn_blocking(move || super::sandbox::cover(chunks, layout, max_side))
            .await
            .unwrap_or_else(|_| Err("the cover picture could not be made".into()));
        Ok(made.map(|picture| {
            picture.map(|p| Picture { mime_type: "image/jpeg".into(), width: p.width, height: p.height, data: p.jpeg })
        }))
    }
}

impl demux::HostDecoder for DemuxHost<'_> {
    async fn open(&mut self, source: StoredSource, request: OutputRequest) -> wasmtime::Result<Result<Resource<demux::Decoder>, String>> {
        let (chunks, layout, request, target) = match decoder_input(self.0, source, request) {
            Ok(input) => input,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(match DecoderHandle::open(chunks, layout, request, target).await {
            Ok(handle) => Ok(self.0.table.push_handle(handle)?),
            Err(reason) => Err(reason),
        })
    }

    async fn info(&mut self, this: Resource<demux::Decoder>) -> wasmtime::Result<MediaInfo> {
        Ok(self.0.table.handle::<_, DecoderHandle>(&this)?.info.clone())
    }

    async fn output_format(&mut self, this: Resource<demux::Decoder>) -> wasmtime::Result<AudioFormat> {
        Ok(self.0.table.handle::<_, DecoderHandle>(&this)?.format)
    }

    async fn loudness(&mut self, this: Resource<demux::Decoder>) -> wasmtime::Result<Option<Loudness>> {
        Ok(self.0.table.handle::<_, DecoderHandle>(&this)?.loudness)
    }

    async fn read(&mut self, this: Resource<demux::Decoder>, max_frames: u32) -> wasmtime::Result<Result<Vec<i16>, String>> {
        Ok(self.0.table.handle_mut::<_, DecoderHandle>(&this)?.read::<i16>(max_frames).await)
    }

    async fn read_wide(&mut self, this: Resource<demux::Decoder>, max_frames: u32) -> wasmtime::Result<Result<Vec<i32>, String>> {
        Ok(self.0.table.handle_mut::<_, DecoderHandle>(&this)?.read::<i32>(max_frames).await)
    }

    async fn drop(&mut self, this: Resource<demux::Decoder>) -> wasmtime::Result<()> {
        self.0.table.delete_handle::<_, DecoderHandle>(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{ffmpeg, source, tmp};
    use crate::Decoder;

    async fn open(wav: &[u8]) -> DecoderHandle {
        let (chunks, layout) = source(wav.to_vec());
        DecoderHandle::open(chunks, layout, NativeRequest::default(), None).await.unwrap()
    }

    async fn read_all<T: Sample>(handle: &mut DecoderHandle, max_frames: u32) -> Vec<T> {
        let mut all = Vec::new();
        loop {
            let block = handle.read::<T>(max_frames).await.unwrap();
            if block.is_empty() {
                return all;
            }
            assert!(block.len() <= max_frames as usize * 2);
            all.extend(block);
        }
    }

    #[tokio::test]
    async fn blocks_come_in_the_readers_sample_type_with_the_same_samples() {
        let dir = tmp();
        let wav = ffmpeg(dir.path(), "tone.wav", &["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-ac", "2", "-ar", "44100"]);
        let float = {
            let (chunks, layout) = source(wav.clone());
            let mut decoder = Decoder::open(chunks, layout, NativeRequest::default()).unwrap();
            decoder.read_f32(usize::MAX / 4).unwrap()
        };
        assert_eq!(float.len(), 3 * 44100 * 2);
        let s16: Vec<i16> = float.iter().map(|&s| to_s16(s)).collect();
        let s24: Vec<i32> = float.iter().map(|&s| to_s24(s)).collect();
        // Whole blocks (handed over as made), then pieces across block boundaries.
        assert_eq!(read_all::<i16>(&mut open(&wav).await, block_frames(44100)).await, s16);
        assert_eq!(read_all::<i16>(&mut open(&wav).await, 1000).await, s16);
        assert_eq!(read_all::<i32>(&mut open(&wav).await, 7001).await, s24);
        // A reader that switches loses no sample; blocks made for the earlier type keep its
        // precision.
        let mut handle = open(&wav).await;
        let first = handle.read::<i16>(1000).await.unwrap();
        assert_eq!(first, s16[..2000]);
        let rest = read_all::<i32>(&mut handle, 4096).await;
        assert_eq!(rest.len(), s24.len() - 2000);
        for (i, (&got, &exact)) in rest.iter().zip(&s24[2000..]).enumerate() {
            assert!(got == exact || got == i32::from(s16[2000 + i]) << 8, "sample {i}: {got} vs {exact}");
        }
    }
}
