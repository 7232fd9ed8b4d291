//! The media process: FFmpeg serving one job's decoding, confined, on the worker's socket.
//!
//! Started by the worker as `mp3edge media-sandbox` with its socket as standard input, it
//! confines itself ([`super::confine`]), says so (`Ready`), then answers requests one at a
//! time: open a decoder (after a loudness measuring pass if asked), read blocks of PCM in the
//! sample type asked, restart on another stretch, measure, make a cover picture. It has no
//! access to the store: every byte of the upload comes from the worker, one window at a time
//! (`NeedRange`), so all FFmpeg ever sees of the system is that socket. It ends when the worker
//! closes the socket.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::confine::{self, ProcessLimits};
use super::wire::{Channel, FromChild, OpenRequest, SampleKind, ToChild};
use crate::{ChunkSource, Decoder, ValueRange, cover, loudness, policy, to_s16, to_s24};

/// Environment variables through which the worker passes the limits and its process id.
pub const ENV_MEMORY: &str = "MP3EDGE_MEDIA_MEMORY_BYTES";
pub const ENV_CPU: &str = "MP3EDGE_MEDIA_CPU_SECS";
pub const ENV_PARENT: &str = "MP3EDGE_MEDIA_PARENT";

/// The source's bytes, asked of the worker over the socket.
struct WorkerChunks {
    channel: Arc<Mutex<Channel>>,
}

impl ChunkSource for WorkerChunks {
    fn read_range(&self, index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange> {
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        let len = u32::try_from(len)?;
        channel.send(&FromChild::NeedRange { index, offset, len })?;
        match channel.recv::<ToChild>()? {
            ToChild::Range { value_len } => Ok(ValueRange { bytes: channel.recv_data_at_most(len as usize)?, value_len }),
            ToChild::RangeFailed { reason } => anyhow::bail!(reason),
            other => anyhow::bail!("the worker answered a range with {other:?}"),
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The process's entry point, on the socket at standard input; returns its exit status.
pub fn main() -> i32 {
    let limits = ProcessLimits { memory_bytes: env_u64(ENV_MEMORY, 512 << 20), cpu_secs: env_u64(ENV_CPU, 3600) };
    let parent = std::env::var(ENV_PARENT).ok().and_then(|v| v.parse().ok());
    // SAFETY: the worker gave this process its socket as standard input, owned by no one else.
    let stream = unsafe { UnixStream::from_raw_fd(0) };
    serve(stream, limits, parent)
}

/// Confines this process, then serves requests on `stream` until it closes.
pub fn serve(stream: UnixStream, limits: ProcessLimits, parent: Option<u32>) -> i32 {
    // FFmpeg's logging is silenced while the process can still do anything it likes.
    crate::silence_ffmpeg_logs();
    let confinement = confine::confine(limits, parent);
    let channel = Arc::new(Mutex::new(Channel::new(stream)));
    let lock = || channel.lock().unwrap_or_else(PoisonError::into_inner);
    if lock().send(&FromChild::Ready(confinement)).is_err() {
        return 1;
    }
    let mut server = Server { channel: channel.clone(), decoder: None };
    loop {
        let request = match lock().recv::<ToChild>() {
            Ok(request) => request,
            // The worker closed the socket: done.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return 0,
            Err(_) => return 1,
        };
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.answer(request)));
        match answered {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return 1,
            Err(_) => {
                let _ = lock().send(&FromChild::Failed("the decoder stopped on an internal error".into()));
                return 1;
            }
        }
    }
}

struct Server {
    channel: Arc<Mutex<Channel>>,
    decoder: Option<Decoder>,
}

fn deadline(unix_ms: u64) -> Option<SystemTime> {
    (unix_ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(unix_ms))
}

impl Server {
    fn source(&self) -> Arc<dyn ChunkSource> {
        Arc::new(WorkerChunks { channel: self.channel.clone() })
    }

    fn send(&self, message: &FromChild) -> std::io::Result<()> {
        self.channel.lock().unwrap_or_else(PoisonError::into_inner).send(message)
    }

    /// Answers one request; Err only when the socket failed (the process then ends).
    fn answer(&mut self, request: ToChild) -> std::io::Result<()> {
        match request {
            ToChild::Open(open) => {
                self.decoder = None;
                let reply = match self.open(open) {
                    Ok(reply) => reply,
                    Err(reason) => FromChild::Failed(reason),
                };
                self.send(&reply)
            }
            ToChild::Read { max_frames, kind } => self.read(max_frames, kind),
            ToChild::Restart { start_secs, end_secs } => {
                let reply = match self.decoder.as_mut().map(|d| d.restart(start_secs, end_secs)) {
                    Some(Ok(restarted)) => FromChild::Restarted(restarted),
                    Some(Err(reason)) => FromChild::Failed(reason),
                    None => FromChild::Failed("no decoder is open".into()),
                };
                self.send(&reply)
            }
            ToChild::Measure(open) => {
                self.decoder = None;
                policy::set_deadline(deadline(open.deadline_unix_ms));
                let reply = match open.normalize {
                    None => FromChild::Failed("nothing to measure against".into()),
                    Some(n) => match loudness::measure(self.source(), open.layout, open.request, n.target_lufs, n.ceiling_dbtp) {
                        Ok(measured) => FromChild::Measured(measured),
                        Err(reason) => FromChild::Failed(reason),
                    },
                };
                self.send(&reply)
            }
            ToChild::Cover { layout, max_side, deadline_unix_ms } => {
                self.decoder = None;
                policy::set_deadline(deadline(deadline_unix_ms));
                match cover::cover(self.source(), layout, max_side) {
                    Ok(Some(picture)) => {
                        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
                        channel.send(&FromChild::Cover(Some((picture.width, picture.height))))?;
                        channel.send_data(&picture.jpeg)
                    }
                    Ok(None) => self.send(&FromChild::Cover(None)),
                    Err(reason) => self.send(&FromChild::Failed(reason)),
                }
            }
            ToChild::Range { .. } | ToChild::RangeFailed { .. } => {
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a range answer without a question"))
            }
        }
    }

    fn open(&mut self, open: OpenRequest) -> Result<FromChild, String> {
        policy::set_deadline(deadline(open.deadline_unix_ms));
        let mut request = open.request;
        let mut measured = None;
        if let Some(n) = open.normalize {
            let m = loudness::measure(self.source(), open.layout, request.clone(), n.target_lufs, n.ceiling_dbtp)?;
            request.gain_db = Some(m.gain_db);
            measured = Some(m);
        }
        let decoder = if open.audio_only {
            Decoder::open_audio_only(self.source(), open.layout, request)?
        } else {
            Decoder::open(self.source(), open.layout, request)?
        };
        let (sample_rate, channels) = decoder.output_format();
        let reply = FromChild::Opened { info: decoder.info().clone(), sample_rate, channels, measured };
        self.decoder = Some(decoder);
        Ok(reply)
    }

    /// A block in the sample type asked for: a `Block` message, then its samples.
    fn read(&mut self, max_frames: u32, kind: SampleKind) -> std::io::Result<()> {
        let Some(decoder) = self.decoder.as_mut() else {
            return self.send(&FromChild::Failed("no decoder is open".into()));
        };
        // Samples travel in this machine's byte order: both ends are the same binary.
        let block = decoder.read_with(max_frames as usize, |pcm| match kind {
            SampleKind::F32 => Samples::F32(pcm.to_vec()),
            SampleKind::S16 => Samples::S16(pcm.iter().copied().map(to_s16).collect()),
            SampleKind::S24 => Samples::S24(pcm.iter().copied().map(to_s24).collect()),
        });
        let mut channel = self.channel.lock().unwrap_or_else(PoisonError::into_inner);
        match block {
            Ok(samples) => {
                let bytes = samples.bytes();
                channel.send(&FromChild::Block { kind, samples: (bytes.len() / kind.bytes()) as u32 })?;
                channel.send_data(bytes)
            }
            Err(reason) => channel.send(&FromChild::Failed(reason)),
        }
    }
}

/// A block converted for the worker.
enum Samples {
    F32(Vec<f32>),
    S16(Vec<i16>),
    S24(Vec<i32>),
}

impl Samples {
    fn bytes(&self) -> &[u8] {
        match self {
            Samples::F32(v) => bytemuck::cast_slice(v),
            Samples::S16(v) => bytemuck::cast_slice(v),
            Samples::S24(v) => bytemuck::cast_slice(v),
        }
    }
}
