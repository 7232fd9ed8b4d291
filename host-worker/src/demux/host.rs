//! The `mp3edge:worker/demux` host interface: FFmpeg decoding of a stored upload for the
//! converter.
//!
//! Each opened decoder runs on a thread of its own that reads the source chunks from the
//! key-value backend and decodes ahead into a small bounded queue (a few seconds of PCM), so
//! native decoding overlaps the plugin's encoding while memory stays flat.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};
use wasmtime::component::Resource;

use super::{ChunkSource, Decoder, OutputRequest as NativeRequest, SourceLayout};
use crate::bindings::worker::mp3edge::codec::types::{AudioFormat, Tags};
use crate::bindings::worker::mp3edge::worker::demux::{self, MediaInfo, OutputRequest, StoredSource};
use crate::key_value::KeyValueBackend;
use crate::state::ComponentState;
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
    fn read_chunk(&self, index: u32) -> Result<Vec<u8>> {
        let key = layout::source_chunk_key(&self.job_id, index);
        self.runtime
            .block_on(self.backend.get(&key))?
            .ok_or_else(|| anyhow::anyhow!("source chunk {index} is missing"))
    }
}

type Block = Result<Vec<i16>, String>;

/// The converter's handle to an open decoder.
pub struct DecoderHandle {
    info: MediaInfo,
    format: AudioFormat,
    blocks: mpsc::Receiver<Block>,
    pending: Vec<i16>,
    offset: usize,
    ended: bool,
}

fn to_wit_info(info: &super::MediaInfo) -> MediaInfo {
    MediaInfo {
        container: info.container.clone(),
        codec: info.codec.clone(),
        duration_secs: info.duration_secs,
        sample_rate: info.sample_rate,
        channels: info.channels,
        audio_streams: info.audio_streams,
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
    /// Opens the source on a new decoding thread and waits for the probe's outcome.
    async fn open(source: Arc<dyn ChunkSource>, layout: SourceLayout, request: NativeRequest) -> Result<DecoderHandle, String> {
        let (opened_tx, opened_rx) = oneshot::channel();
        let (block_tx, block_rx) = mpsc::channel::<Block>(READ_AHEAD_BLOCKS);
        std::thread::Builder::new()
            .name("decoder".into())
            .spawn(move || {
                let mut decoder = match Decoder::open(source, layout, request) {
                    Ok(d) => d,
                    Err(reason) => {
                        let _ = opened_tx.send(Err(reason));
                        return;
                    }
                };
                let (rate, channels) = decoder.output_format();
                if opened_tx.send(Ok((to_wit_info(decoder.info()), AudioFormat { sample_rate: rate, channels }))).is_err() {
                    return;
                }
                // Half a second per block: small enough to start encoding early.
                let block_frames = (rate as usize / 2).max(1024);
                loop {
                    let block = decoder.read(block_frames);
                    let last = !matches!(&block, Ok(pcm) if !pcm.is_empty());
                    if block_tx.blocking_send(block).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|e| format!("could not start a decoder thread: {e}"))?;
        let (info, format) = opened_rx.await.map_err(|_| "the decoder stopped unexpectedly".to_string())??;
        Ok(DecoderHandle { info, format, blocks: block_rx, pending: Vec::new(), offset: 0, ended: false })
    }

    /// Up to `max_frames` frames from the read-ahead queue; empty at the end.
    async fn read(&mut self, max_frames: u32) -> Result<Vec<i16>, String> {
        let channels = usize::from(self.format.channels.max(1));
        let want = (max_frames as usize).max(1) * channels;
        let mut out = Vec::with_capacity(want.min(1 << 20));
        while out.len() < want {
            if self.offset == self.pending.len() {
                if self.ended {
                    break;
                }
                match self.blocks.recv().await {
                    Some(Ok(block)) if !block.is_empty() => {
                        self.pending = block;
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
            let take = (want - out.len()).min(self.pending.len() - self.offset);
            out.extend_from_slice(&self.pending[self.offset..self.offset + take]);
            self.offset += take;
        }
        Ok(out)
    }
}

impl demux::Host for ComponentState {}

impl demux::HostDecoder for ComponentState {
    async fn open(&mut self, source: StoredSource, request: OutputRequest) -> wasmtime::Result<Result<Resource<DecoderHandle>, String>> {
        if !self.grants.key_value_stores.contains(&source.store) {
            return Ok(Err(format!("key-value store {:?} is not granted to this component", source.store)));
        }
        let Some(backend) = self.services.key_value.get(&source.store) else {
            return Ok(Err(format!("no key-value store {:?}", source.store)));
        };
        if !layout::is_valid_job_id(&source.job_id) {
            return Ok(Err(format!("invalid job id {:?}", source.job_id)));
        }
        if source.chunk_size == 0 || u64::from(source.chunks) != source.size.div_ceil(u64::from(source.chunk_size)) {
            return Ok(Err("the stored source's size and chunk count disagree".into()));
        }
        let chunks = Arc::new(StoredChunks { backend, job_id: source.job_id, runtime: tokio::runtime::Handle::current() });
        let layout = SourceLayout { size: source.size, chunks: source.chunks, chunk_size: source.chunk_size };
        let request = NativeRequest { sample_rate: request.sample_rate, channels: request.channels };
        Ok(match DecoderHandle::open(chunks, layout, request).await {
            Ok(handle) => Ok(self.table.push(handle)?),
            Err(reason) => Err(reason),
        })
    }

    async fn info(&mut self, this: Resource<DecoderHandle>) -> wasmtime::Result<MediaInfo> {
        Ok(self.table.get(&this)?.info.clone())
    }

    async fn output_format(&mut self, this: Resource<DecoderHandle>) -> wasmtime::Result<AudioFormat> {
        Ok(self.table.get(&this)?.format)
    }

    async fn read(&mut self, this: Resource<DecoderHandle>, max_frames: u32) -> wasmtime::Result<Result<Vec<i16>, String>> {
        Ok(self.table.get_mut(&this)?.read(max_frames).await)
    }

    async fn drop(&mut self, this: Resource<DecoderHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
