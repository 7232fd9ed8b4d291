//! The media sandbox's wire: how the worker and its confined FFmpeg process talk.
//!
//! One Unix socket (the child's standard input) carries frames both ways: a `u32` length
//! (little endian), a `u8` kind, then the payload. A control frame is one message, encoded with
//! `postcard` ([`ToChild`], [`FromChild`]); a data frame is raw bytes that the control frame
//! before it announced (a range of the stored source, PCM samples, a JPEG). Frames are bounded
//! on reading, so neither side can make the other allocate more than [`MAX_FRAME_BYTES`]; the
//! worker also checks every reply against its request (the child runs hostile input).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use crate::loudness::Measured;
use crate::{MediaInfo, OutputRequest, SourceLayout};

const KIND_CONTROL: u8 = 1;
const KIND_DATA: u8 = 2;
/// Largest control frame (a media description with its tags is a few KiB).
pub const MAX_CONTROL_BYTES: usize = 256 << 10;
/// Largest data frame: a block of PCM (half a second of 8 channels at 384 kHz as float is
/// 6 MiB) or a range of a source chunk.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// The sample type of a block of PCM.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// Float, full scale ±1.0.
    F32,
    /// 16-bit.
    S16,
    /// 24-bit in the low bits of an `i32`.
    S24,
}

impl SampleKind {
    pub fn bytes(self) -> usize {
        match self {
            SampleKind::S16 => 2,
            SampleKind::F32 | SampleKind::S24 => 4,
        }
    }
}

/// Loudness normalization: the integrated loudness aimed at and the true-peak ceiling.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub target_lufs: f64,
    pub ceiling_dbtp: f64,
}

/// What to open: the source's layout, the decoder request, how to open it, and until when the
/// work may go on (milliseconds since the Unix epoch; 0: no deadline).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct OpenRequest {
    pub layout: SourceLayout,
    pub request: OutputRequest,
    /// Only decode (see `Decoder::open_audio_only`).
    pub audio_only: bool,
    /// Measure first and open with the gain that reaches the target.
    pub normalize: Option<Normalize>,
    pub deadline_unix_ms: u64,
}

/// From the worker to the child.
#[derive(Serialize, Deserialize, Debug)]
pub enum ToChild {
    /// Open a decoder (replacing any open one); answered by `Opened` or `Failed`.
    Open(OpenRequest),
    /// The next block of at most `max_frames` frames; answered by `Block` (empty at the end).
    Read { max_frames: u32, kind: SampleKind },
    /// Decode another stretch of the same stream; answered by `Restarted`.
    Restart { start_secs: Option<f64>, end_secs: Option<f64> },
    /// Measure the loudness of what `Open` would decode; answered by `Measured`.
    Measure(OpenRequest),
    /// A cover picture of the video; answered by `Cover`.
    Cover { layout: SourceLayout, max_side: u32, deadline_unix_ms: u64 },
    /// The answer to `NeedRange`: the whole chunk's length, then a data frame with the bytes.
    Range { value_len: u64 },
    /// The answer to `NeedRange` when the store could not give the bytes.
    RangeFailed { reason: String },
}

/// From the child to the worker.
#[derive(Serialize, Deserialize, Debug)]
pub enum FromChild {
    /// Sent once, confined, before the first request: how the kernel confines the child.
    Ready(Confinement),
    /// Bytes of the stored source (`len` from `offset` of chunk `index`); answered by `Range`.
    NeedRange { index: u32, offset: u64, len: u32 },
    Opened { info: MediaInfo, sample_rate: u32, channels: u8, measured: Option<Measured> },
    /// A block of `samples` samples follows as a data frame (none at the end of the stream).
    Block { kind: SampleKind, samples: u32 },
    Restarted(bool),
    Measured(Measured),
    /// The picture's size; its JPEG follows as a data frame.
    Cover(Option<(u32, u32)>),
    /// The request failed; a reason for users.
    Failed(String),
}

/// What confines the child, as it found it after confining itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// Landlock: "fully enforced (ABI n)", "partially enforced (ABI n)" or why not.
    pub landlock: String,
    /// Whether the kernel enforces no file system access and no network at all.
    pub landlock_full: bool,
    /// The seccomp filter is installed.
    pub seccomp: bool,
    /// Resource limits set (memory, CPU, files).
    pub limits: bool,
    /// Checked under Landlock: opening a file failed with `EACCES`.
    pub file_refused: bool,
    /// Checked under Landlock: connecting a TCP socket failed with `EACCES`.
    pub tcp_refused: bool,
    /// Checked under the seccomp filter: creating a socket failed with `EPERM`.
    pub socket_refused: bool,
}

impl Confinement {
    pub fn complete(&self) -> bool {
        self.landlock_full && self.seccomp && self.limits && self.file_refused && self.tcp_refused && self.socket_refused
    }
}

/// One end of the socket, with frame reading and writing.
pub struct Channel {
    stream: UnixStream,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Channel {
    pub fn new(stream: UnixStream) -> Channel {
        Channel { stream }
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    fn write_header(&mut self, kind: u8, len: usize) -> io::Result<()> {
        let len = u32::try_from(len).map_err(|_| invalid(format!("a frame of {len} bytes")))?;
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4] = kind;
        self.stream.write_all(&header)
    }

    pub fn send<T: Serialize>(&mut self, message: &T) -> io::Result<()> {
        let bytes = postcard::to_stdvec(message).map_err(|e| invalid(format!("encoding a message: {e}")))?;
        self.write_header(KIND_CONTROL, bytes.len())?;
        self.stream.write_all(&bytes)
    }

    pub fn send_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_header(KIND_DATA, bytes.len())?;
        self.stream.write_all(bytes)
    }

    /// The next frame's kind and length, checked against the largest frame of that kind.
    fn recv_header(&mut self, want: u8) -> io::Result<usize> {
        let mut header = [0u8; 5];
        self.stream.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        match header[4] {
            kind if kind != want => Err(invalid(format!("a frame of kind {kind} where kind {want} was due"))),
            KIND_CONTROL if len > MAX_CONTROL_BYTES => Err(invalid(format!("a message of {len} bytes"))),
            KIND_DATA if len > MAX_FRAME_BYTES => Err(invalid(format!("a data frame of {len} bytes"))),
            _ => Ok(len),
        }
    }

    /// The next frame, which must be a control message.
    pub fn recv<T: for<'de> Deserialize<'de>>(&mut self) -> io::Result<T> {
        let len = self.recv_header(KIND_CONTROL)?;
        let mut bytes = vec![0u8; len];
        self.stream.read_exact(&mut bytes)?;
        postcard::from_bytes(&bytes).map_err(|e| invalid(format!("a malformed message: {e}")))
    }

    /// The next frame, which must be data of exactly `out.len()` bytes, into `out`.
    pub fn recv_data_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        match self.recv_header(KIND_DATA)? {
            len if len == out.len() => self.stream.read_exact(out),
            len => Err(invalid(format!("{len} bytes of data where {} were due", out.len()))),
        }
    }

    /// The next frame, which must be data of at most `max` bytes.
    pub fn recv_data_at_most(&mut self, max: usize) -> io::Result<Vec<u8>> {
        match self.recv_header(KIND_DATA)? {
            len if len <= max => {
                let mut bytes = vec![0u8; len];
                self.stream.read_exact(&mut bytes)?;
                Ok(bytes)
            }
            len => Err(invalid(format!("{len} bytes of data where at most {max} were due"))),
        }
    }
}

/// A JPEG's size check: what a cover picture must look like to be accepted from the child.
pub fn plausible_jpeg(width: u32, height: u32, jpeg: &[u8], max_side: u32) -> bool {
    (1..=max_side).contains(&width) && (1..=max_side).contains(&height) && jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.len() >= 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_unexpected_ones_are_refused() {
        let pair = || {
            let (a, b) = UnixStream::pair().unwrap();
            (Channel::new(a), Channel::new(b))
        };
        let (mut a, mut b) = pair();
        a.send(&ToChild::Read { max_frames: 22050, kind: SampleKind::S16 }).unwrap();
        a.send_data(&[1, 2, 3]).unwrap();
        match b.recv::<ToChild>().unwrap() {
            ToChild::Read { max_frames: 22050, kind: SampleKind::S16 } => {}
            other => panic!("{other:?}"),
        }
        let mut out = [0u8; 3];
        b.recv_data_exact(&mut out).unwrap();
        assert_eq!(out, [1, 2, 3]);
        // Data of another length than announced.
        a.send_data(&[9; 4]).unwrap();
        assert!(b.recv_data_exact(&mut out).is_err());
        // Data where a message is due, and a message where data is due.
        let (mut a, mut b) = pair();
        a.send_data(&[1]).unwrap();
        assert!(b.recv::<ToChild>().is_err());
        let (mut a, mut b) = pair();
        a.send(&FromChild::Restarted(true)).unwrap();
        assert!(b.recv_data_at_most(10).is_err());
        // A frame longer than any may be is refused before anything is allocated for it.
        let (a, mut b) = pair();
        let mut raw = a.stream().try_clone().unwrap();
        raw.write_all(&((MAX_FRAME_BYTES as u32 + 1).to_le_bytes())).unwrap();
        raw.write_all(&[KIND_DATA]).unwrap();
        assert!(b.recv_data_at_most(usize::MAX).is_err());
        // A message that does not decode.
        let (a, mut b) = pair();
        let mut raw = a.stream().try_clone().unwrap();
        raw.write_all(&[3, 0, 0, 0, KIND_CONTROL, 0xff, 0xff, 0xff]).unwrap();
        assert!(b.recv::<ToChild>().is_err());
    }
}
