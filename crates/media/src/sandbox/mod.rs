//! The media sandbox: FFmpeg parses uploads in a confined process of its own, never in the
//! worker.
//!
//! The codec plugins are sandboxed by Wasmtime, but they only ever see clean PCM; FFmpeg is what
//! parses every hostile upload, natively. So each decoder, cover extraction, probe or loudness
//! measurement runs in a child process (`mp3edge media-sandbox`, [`child`]) that confines
//! itself before it reads a byte ([`confine`]: no file system, no sockets, a memory and a CPU
//! cap, a seccomp filter), on top of the limits FFmpeg itself is given ([`super::policy`]).
//! The worker ([`MediaProcess`]) serves it the upload's bytes one window at a time from the
//! store, takes PCM (or a JPEG) back over the same socket ([`wire`]), checks every reply against
//! its request, and kills the process when it falls silent, when the job is cancelled or when
//! the caller is done. An FFmpeg bug is then a failed job (a crash, an `EPERM`, an allocation
//! that fails), not a breach of the worker or of the edge that shares its process under `up`.
//!
//! The cost is one process per open decoder (a few milliseconds to start) and a copy of the
//! PCM through a socket, both small next to encoding (see the README's benchmark).

pub mod child;
mod confine;
pub mod wire;

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cover::Picture;
use super::loudness::Measured;
use super::{ChunkSource, MediaInfo, OutputRequest, SourceLayout};
use wire::{Channel, Confinement, FromChild, Normalize, OpenRequest, SampleKind, ToChild};

/// The hidden subcommand that makes `mp3edge` a media process.
pub const SUBCOMMAND: &str = "media-sandbox";

/// How media processes are started and bounded.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The program and its arguments: this binary (`/proc/self/exe media-sandbox`).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment of the process (the worker's own, with its secrets, is not passed).
    pub env: Vec<(OsString, OsString)>,
    /// Heap and other private writable memory of one process.
    pub memory_bytes: u64,
    /// How long one process may work at most (its FFmpeg calls are interrupted then, and its
    /// CPU time is capped to as much).
    pub max_duration: Duration,
    /// How long a process may go without a word (a block, a question for bytes) while it works
    /// on a request before it is killed.
    pub silence: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![SUBCOMMAND.into()],
            env: Vec::new(),
            memory_bytes: 512 << 20,
            max_duration: Duration::from_secs(3600),
            silence: Duration::from_secs(60),
        }
    }
}

static CONFIG: OnceLock<SandboxConfig> = OnceLock::new();

/// Sets how media processes are started (once, at start-up; later calls are ignored).
pub fn configure(config: SandboxConfig) {
    let _ = CONFIG.set(config);
}

fn config() -> &'static SandboxConfig {
    // The unit tests' media process is the test binary itself ([`tests::test_binary`]).
    #[cfg(test)]
    let default = tests::test_binary;
    #[cfg(not(test))]
    let default = SandboxConfig::default;
    CONFIG.get_or_init(default)
}

/// A block of PCM as the reader asked for it.
#[derive(Debug)]
pub enum Pcm {
    Float(Vec<f32>),
    S16(Vec<i16>),
    S24(Vec<i32>),
}

impl Pcm {
    pub fn len(&self) -> usize {
        match self {
            Pcm::Float(v) => v.len(),
            Pcm::S16(v) => v.len(),
            Pcm::S24(v) => v.len(),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Pcm::Float(v) => bytemuck::cast_slice_mut(v),
            Pcm::S16(v) => bytemuck::cast_slice_mut(v),
            Pcm::S24(v) => bytemuck::cast_slice_mut(v),
        }
    }

    fn zeroed(kind: SampleKind, samples: usize) -> Pcm {
        match kind {
            SampleKind::F32 => Pcm::Float(vec![0.0; samples]),
            SampleKind::S16 => Pcm::S16(vec![0; samples]),
            SampleKind::S24 => Pcm::S24(vec![0; samples]),
        }
    }
}

/// The process, shared with whoever may have to kill it from another thread.
struct ProcessSlot {
    child: Mutex<Child>,
    /// Killed on purpose (a dropped decoder, a cancelled job): its end is not a failure.
    stopped: AtomicBool,
}

impl ProcessSlot {
    fn new(child: Child) -> ProcessSlot {
        ProcessSlot { child: Mutex::new(child), stopped: AtomicBool::new(false) }
    }

    /// SIGKILL, unless it has been reaped already (std never signals a reaped process, so a
    /// reused pid is safe).
    fn kill(&self) {
        let _ = self.child.lock().unwrap_or_else(PoisonError::into_inner).kill();
    }

    /// Kills the process if it still runs (noting its peak memory first), reaps it and says how
    /// it ended.
    fn end(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if let Some(kib) = peak_rss_kib(child.id()) {
            PEAK_RSS_KIB.fetch_max(kib, Ordering::Relaxed);
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

/// Kills a media process from another thread (a cancelled job, a dropped decoder).
#[derive(Clone)]
pub struct Killer(Arc<ProcessSlot>);

impl Killer {
    pub fn kill(&self) {
        self.0.stopped.store(true, Ordering::Relaxed);
        self.0.kill();
    }
}

/// A running media process for one upload. Blocking: used from a thread of its own (the
/// process dies with the thread that started it).
pub struct MediaProcess {
    channel: Channel,
    process: Arc<ProcessSlot>,
    source: Arc<dyn ChunkSource>,
    layout: SourceLayout,
    /// (sample rate, channels) of what the open decoder returns.
    format: Option<(u32, u8)>,
    /// The reason the process failed; every later call fails with it.
    failed: Option<String>,
}

/// Tells the test binary, started as a media process, to be one ([`tests::test_binary`]).
#[cfg(test)]
const ENV_TEST_CHILD: &str = "MP3EDGE_TEST_MEDIA_PROCESS";

impl Drop for MediaProcess {
    fn drop(&mut self) {
        self.process.end();
    }
}

/// The peak resident memory of process `pid` (`VmHWM`), while it runs. (The kernel's
/// `ru_maxrss` of a child would count the worker's own memory, which a child has until it
/// executes the program.)
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()
}

/// Why a process that stopped answering stopped, for users (and the worker's log).
fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    let Some(status) = status else { return "the decoder stopped unexpectedly".into() };
    match status.signal() {
        Some(libc::SIGXCPU) => "the file took too long to decode".into(),
        Some(libc::SIGKILL) => "the decoder was stopped (it took too long or used too much memory)".into(),
        Some(libc::SIGSYS) => "the decoder attempted a forbidden operation on this file and was stopped".into(),
        Some(libc::SIGABRT) => "the decoder stopped on this file (out of memory or an internal error)".into(),
        Some(libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE) => "the file crashed the decoder (it is damaged or malicious)".into(),
        Some(signal) => format!("the decoder stopped on signal {signal}"),
        None => format!("the decoder stopped unexpectedly (exit status {})", status.code().unwrap_or(-1)),
    }
}

fn deadline_unix_ms() -> u64 {
    let deadline = SystemTime::now() + config().max_duration;
    deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Starts a media process and waits for it to be confined: the socket and the process.
fn spawn() -> Result<(Channel, Child, Confinement), String> {
    let config = config();
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("could not start the decoder: {e}"))?;
    let mut command = Command::new(&config.program);
    command
        .args(&config.args)
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env(child::ENV_MEMORY, config.memory_bytes.to_string())
        .env(child::ENV_CPU, config.max_duration.as_secs().max(1).to_string())
        .env(child::ENV_PARENT, std::process::id().to_string())
        .current_dir("/")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().map_err(|e| format!("could not start the decoder ({}): {e}", config.program.display()))?;
    let mut channel = Channel::new(ours);
    let _ = channel.stream().set_read_timeout(Some(config.silence));
    let mut child = child;
    match channel.recv::<FromChild>() {
        Ok(FromChild::Ready(confinement)) => Ok((channel, child, confinement)),
        other => {
            let _ = child.kill();
            let status = child.wait().ok();
            let reason = describe_exit(status);
            tracing::error!(answer = ?other.map(|m| format!("{m:?}")).map_err(|e| e.to_string()), %reason, "the media process did not start");
            Err(reason)
        }
    }
}

static REPORTED: Once = Once::new();

/// Media processes started, and those that ended on a failure (a crash, a signal, silence, a
/// protocol violation) rather than a request's answer.
static STARTED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
/// The largest peak resident memory of a media process, in KiB.
static PEAK_RSS_KIB: AtomicU64 = AtomicU64::new(0);
/// Whether the last media process started was fully confined (1), not (0), or none yet (2).
static CONFINED: AtomicU64 = AtomicU64::new(2);

/// The media sandbox's metrics, in the Prometheus text format.
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write;
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric("mp3edge_media_processes_total", "counter", "Confined FFmpeg processes started.", STARTED.load(Ordering::Relaxed));
    metric(
        "mp3edge_media_process_failures_total",
        "counter",
        "Confined FFmpeg processes ended by a crash, a signal, silence or a protocol violation.",
        FAILED.load(Ordering::Relaxed),
    );
    if let confined @ 0..=1 = CONFINED.load(Ordering::Relaxed) {
        metric("mp3edge_media_sandbox_confined", "gauge", "1 when the kernel confines FFmpeg fully (Landlock, seccomp, limits).", confined);
    }
    metric(
        "mp3edge_media_process_peak_rss_bytes",
        "gauge",
        "Largest resident memory of a media process, as each ended (shared library pages included).",
        PEAK_RSS_KIB.load(Ordering::Relaxed) * 1024,
    );
}

/// Logs once how media processes are confined: an error-level line when the kernel does not
/// enforce all of it.
fn report(confinement: &Confinement) {
    STARTED.fetch_add(1, Ordering::Relaxed);
    CONFINED.store(u64::from(confinement.complete()), Ordering::Relaxed);
    REPORTED.call_once(|| {
        let config = config();
        if confinement.complete() {
            tracing::info!(
                landlock = %confinement.landlock,
                seccomp = confinement.seccomp,
                memory_mib = config.memory_bytes >> 20,
                "media sandbox: FFmpeg runs confined (no file system, no network, memory and CPU capped)"
            );
        } else {
            tracing::error!(
                landlock = %confinement.landlock,
                seccomp = confinement.seccomp,
                limits = confinement.limits,
                file_refused = confinement.file_refused,
                tcp_refused = confinement.tcp_refused,
                socket_refused = confinement.socket_refused,
                "media sandbox: THIS KERNEL DOES NOT CONFINE FFmpeg FULLY; uploads are still parsed in a \
                 process of their own under resource limits, but a parser bug could reach files or the network"
            );
        }
    });
}

/// Starts a media process with no upload and says how it is confined (the worker's start-up
/// check; logged as [`MediaProcess::start`] does).
pub fn check() -> Result<Confinement, String> {
    let (channel, child, confinement) = spawn()?;
    report(&confinement);
    let slot = ProcessSlot::new(child);
    drop(channel);
    slot.end();
    Ok(confinement)
}

impl MediaProcess {
    /// A new process that will read `source`, laid out as `layout`.
    pub fn start(source: Arc<dyn ChunkSource>, layout: SourceLayout) -> Result<MediaProcess, String> {
        let (channel, child, confinement) = spawn()?;
        report(&confinement);
        Ok(MediaProcess { channel, process: Arc::new(ProcessSlot::new(child)), source, layout, format: None, failed: None })
    }

    pub fn killer(&self) -> Killer {
        Killer(self.process.clone())
    }

    /// Ends the process after a failure of the conversation and remembers why.
    fn fail(&mut self, what: &str, error: io::Error) -> String {
        let _ = self.channel.stream().shutdown(std::net::Shutdown::Both);
        let status = self.process.end();
        if self.process.stopped.load(Ordering::Relaxed) {
            // Its decoder was dropped or its job cancelled while it was reading ahead.
            tracing::debug!(%what, "media process stopped on purpose");
            let reason = "the decoder was stopped".to_string();
            self.failed = Some(reason.clone());
            return reason;
        }
        let reason = match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "the decoder stopped responding on this file".to_string(),
            io::ErrorKind::InvalidData => "the decoder misbehaved on this file and was stopped".to_string(),
            _ => describe_exit(status),
        };
        FAILED.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%what, error = %error, ?status, %reason, "media process failed");
        self.failed = Some(reason.clone());
        reason
    }

    /// Sends `request` and serves the process's questions for source bytes until it answers.
    fn call(&mut self, request: &ToChild) -> Result<FromChild, String> {
        if let Some(reason) = &self.failed {
            return Err(reason.clone());
        }
        if let Err(e) = self.channel.send(request) {
            return Err(self.fail("sending a request", e));
        }
        loop {
            let message = match self.channel.recv::<FromChild>() {
                Ok(message) => message,
                Err(e) => return Err(self.fail("waiting for an answer", e)),
            };
            let FromChild::NeedRange { index, offset, len } = message else { return Ok(message) };
            if let Err(e) = self.serve_range(index, offset, len) {
                return Err(self.fail("serving the upload", e));
            }
        }
    }

    /// Answers a question for `len` bytes from `offset` of chunk `index` of the upload (and
    /// nothing else: the process can read its own upload, no other key).
    fn serve_range(&mut self, index: u32, offset: u64, len: u32) -> io::Result<()> {
        let layout = self.layout;
        if index >= layout.chunks || offset >= u64::from(layout.chunk_size) || len == 0 || len > layout.chunk_size {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a question for {len} bytes at {offset} of chunk {index}")));
        }
        match self.source.read_range(index, offset, len as usize) {
            Ok(range) => {
                self.channel.send(&ToChild::Range { value_len: range.value_len })?;
                self.channel.send_data(&range.bytes)
            }
            Err(e) => self.channel.send(&ToChild::RangeFailed { reason: format!("{e:#}") }),
        }
    }

    /// A protocol violation by the process: it is ended and the job fails.
    fn unexpected(&mut self, what: &str, got: FromChild) -> String {
        self.fail(what, io::Error::new(io::ErrorKind::InvalidData, format!("unexpected answer {got:?}")))
    }

    /// Opens a decoder; after a loudness measuring pass when `normalize` is set.
    pub fn open(&mut self, request: OutputRequest, audio_only: bool, normalize: Option<Normalize>) -> Result<(MediaInfo, (u32, u8), Option<Measured>), String> {
        let open = OpenRequest { layout: self.layout, request: request.clone(), audio_only, normalize, deadline_unix_ms: deadline_unix_ms() };
        match self.call(&ToChild::Open(open))? {
            FromChild::Opened { info, sample_rate, channels, measured } => {
                let expected_rate = request.sample_rate.unwrap_or(info.sample_rate);
                let expected_channels = request.channels.unwrap_or(info.channels);
                if sample_rate == 0 || channels == 0 || sample_rate != expected_rate || channels != expected_channels {
                    return Err(self.unexpected("opening", FromChild::Opened { info, sample_rate, channels, measured }));
                }
                self.format = Some((sample_rate, channels));
                Ok((info.bounded(), (sample_rate, channels), measured))
            }
            FromChild::Failed(reason) => Err(reason),
            other => Err(self.unexpected("opening", other)),
        }
    }

    /// Up to `max_frames` frames of PCM in `kind`; empty at the end of the stream.
    pub fn read(&mut self, max_frames: u32, kind: SampleKind) -> Result<Pcm, String> {
        let Some((_, channels)) = self.format else { return Err("no decoder is open".into()) };
        match self.call(&ToChild::Read { max_frames, kind })? {
            FromChild::Block { kind: got, samples } => {
                let samples = samples as usize;
                if got != kind || samples % usize::from(channels) != 0 || samples > max_frames as usize * usize::from(channels) {
                    return Err(self.unexpected("reading", FromChild::Block { kind: got, samples: samples as u32 }));
                }
                let mut pcm = Pcm::zeroed(kind, samples);
                if let Err(e) = self.channel.recv_data_exact(pcm.bytes_mut()) {
                    return Err(self.fail("reading a block", e));
                }
                Ok(pcm)
            }
            FromChild::Failed(reason) => {
                self.failed = Some(reason.clone());
                Err(reason)
            }
            other => Err(self.unexpected("reading", other)),
        }
    }

    /// Decodes `start_secs`..`end_secs` of the same stream next (see `Decoder::restart`).
    pub fn restart(&mut self, start_secs: Option<f64>, end_secs: Option<f64>) -> Result<bool, String> {
        match self.call(&ToChild::Restart { start_secs, end_secs })? {
            FromChild::Restarted(restarted) => Ok(restarted),
            FromChild::Failed(reason) => Err(reason),
            other => Err(self.unexpected("restarting", other)),
        }
    }

    /// Measures the loudness of what opening with `request` would decode.
    pub fn measure(&mut self, request: OutputRequest, normalize: Normalize) -> Result<Measured, String> {
        let open = OpenRequest { layout: self.layout, request, audio_only: false, normalize: Some(normalize), deadline_unix_ms: deadline_unix_ms() };
        match self.call(&ToChild::Measure(open))? {
            FromChild::Measured(measured) => Ok(measured),
            FromChild::Failed(reason) => Err(reason),
            other => Err(self.unexpected("measuring", other)),
        }
    }

    /// A cover picture of the video, at most `max_side` pixels on its longer side.
    pub fn cover(&mut self, max_side: u32) -> Result<Option<Picture>, String> {
        match self.call(&ToChild::Cover { layout: self.layout, max_side, deadline_unix_ms: deadline_unix_ms() })? {
            FromChild::Cover(None) => Ok(None),
            FromChild::Cover(Some((width, height))) => {
                let jpeg = match self.channel.recv_data_at_most(wire::MAX_FRAME_BYTES) {
                    Ok(jpeg) => jpeg,
                    Err(e) => return Err(self.fail("reading the cover", e)),
                };
                // The process clamps the side to at least 16 pixels.
                if !wire::plausible_jpeg(width, height, &jpeg, max_side.max(16)) {
                    return Err(self.unexpected("making the cover", FromChild::Cover(Some((width, height)))));
                }
                Ok(Some(Picture { width, height, jpeg }))
            }
            FromChild::Failed(reason) => Err(reason),
            other => Err(self.unexpected("making the cover", other)),
        }
    }
}

/// The media description of `source` (opened and closed again in a process of its own).
pub fn probe(source: Arc<dyn ChunkSource>, layout: SourceLayout, request: OutputRequest) -> Result<MediaInfo, String> {
    let mut process = MediaProcess::start(source, layout)?;
    process.open(request, false, None).map(|(info, _, _)| info)
}

/// The loudness of what opening `source` with `request` would decode.
pub fn measure(source: Arc<dyn ChunkSource>, layout: SourceLayout, request: OutputRequest, normalize: Normalize) -> Result<Measured, String> {
    MediaProcess::start(source, layout)?.measure(request, normalize)
}

/// A cover picture of `source`'s video.
pub fn cover(source: Arc<dyn ChunkSource>, layout: SourceLayout, max_side: u32) -> Result<Option<Picture>, String> {
    MediaProcess::start(source, layout)?.cover(max_side)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;
    use crate::ValueRange;

    /// This test binary as the media process (running only [`media_process_entry`]), so the
    /// tests go through a real confined process as the worker does.
    pub(super) fn test_binary() -> SandboxConfig {
        let args = ["--exact", "sandbox::tests::media_process_entry", "--ignored", "--nocapture", "--test-threads", "1"];
        SandboxConfig {
            program: std::env::current_exe().unwrap(),
            args: args.iter().map(OsString::from).collect(),
            env: vec![(ENV_TEST_CHILD.into(), "1".into())],
            ..Default::default()
        }
    }

    /// Not a test: the media process's entry point when a test starts one.
    #[test]
    #[ignore = "the media process of the tests (see test_binary)"]
    fn media_process_entry() {
        if std::env::var_os(ENV_TEST_CHILD).is_some() {
            std::process::exit(child::main());
        }
    }

    #[test]
    fn the_media_process_can_open_no_file_and_create_no_socket() {
        let confinement = check().unwrap();
        assert!(confinement.file_refused, "{confinement:?}");
        assert!(confinement.tcp_refused, "{confinement:?}");
        assert!(confinement.socket_refused, "{confinement:?}");
        assert!(confinement.seccomp && confinement.limits, "{confinement:?}");
        // These machines have Landlock ABI 7 (see the README): anything less is a regression.
        assert!(confinement.landlock_full && confinement.landlock.starts_with("fully enforced"), "{confinement:?}");
        assert!(confinement.complete());
    }

    struct Zeros;
    impl ChunkSource for Zeros {
        fn read_range(&self, _index: u32, offset: u64, len: usize) -> anyhow::Result<ValueRange> {
            Ok(ValueRange::of(&[0u8; 4096], offset, len))
        }
    }

    /// A media process whose other end the test plays (a misbehaving one), with a real child
    /// process (`sleep`) standing in for it, so that ending it can be seen.
    fn fake(silence: Duration) -> (MediaProcess, Channel) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(Some(silence)).unwrap();
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let layout = SourceLayout { size: 8192, chunks: 2, chunk_size: 4096 };
        let process = MediaProcess {
            channel: Channel::new(ours),
            process: Arc::new(ProcessSlot::new(child)),
            source: Arc::new(Zeros),
            layout,
            format: None,
            failed: None,
        };
        (process, Channel::new(theirs))
    }

    fn ended(process: &MediaProcess) -> bool {
        matches!(process.process.child.lock().unwrap().try_wait(), Ok(Some(_)))
    }

    fn opened(child: &mut Channel) {
        let _: ToChild = child.recv().unwrap();
        let info = MediaInfo {
            container: "wav".into(),
            codec: "pcm_s16le".into(),
            duration_secs: Some(1.0),
            sample_rate: 8000,
            channels: 2,
            audio_streams: 1,
            tags: Default::default(),
            streams: Vec::new(),
            track: 0,
            bits_per_sample: 16,
            has_video: false,
        };
        child.send(&FromChild::Opened { info, sample_rate: 8000, channels: 2, measured: None }).unwrap();
    }

    #[test]
    fn a_block_larger_than_asked_ends_the_process() {
        let (mut process, mut child) = fake(Duration::from_secs(5));
        let answer = std::thread::spawn(move || {
            opened(&mut child);
            let _: ToChild = child.recv().unwrap();
            let _ = child.send(&FromChild::Block { kind: SampleKind::S16, samples: 2 * 100 + 2 });
            child
        });
        process.open(OutputRequest::default(), false, None).unwrap();
        let err = process.read(100, SampleKind::S16).unwrap_err();
        answer.join().unwrap();
        assert_eq!(err, "the decoder misbehaved on this file and was stopped");
        assert!(ended(&process));
        // Every later call fails the same way, without asking the ended process.
        assert_eq!(process.read(100, SampleKind::S16).unwrap_err(), err);
    }

    #[test]
    fn samples_of_another_length_than_announced_end_the_process() {
        let (mut process, mut child) = fake(Duration::from_secs(5));
        let answer = std::thread::spawn(move || {
            opened(&mut child);
            let _: ToChild = child.recv().unwrap();
            child.send(&FromChild::Block { kind: SampleKind::S16, samples: 4 }).unwrap();
            // The worker may hang up before these bytes are all written.
            let _ = child.send_data(&[0; 6]);
            child
        });
        process.open(OutputRequest::default(), false, None).unwrap();
        assert!(process.read(100, SampleKind::S16).is_err());
        answer.join().unwrap();
        assert!(ended(&process));
    }

    #[test]
    fn a_question_for_bytes_outside_the_upload_ends_the_process() {
        for (index, offset, len) in [(2, 0, 100), (0, 4096, 10), (1, 0, 4097), (0, 0, 0)] {
            let (mut process, mut child) = fake(Duration::from_secs(5));
            let answer = std::thread::spawn(move || {
                let _: ToChild = child.recv().unwrap();
                child.send(&FromChild::NeedRange { index, offset, len }).unwrap();
                // Nothing comes back but the end of the socket.
                let mut rest = Vec::new();
                let _ = std::io::Read::read_to_end(&mut child.stream().try_clone().unwrap(), &mut rest);
                rest
            });
            assert!(process.open(OutputRequest::default(), false, None).is_err());
            assert!(answer.join().unwrap().is_empty(), "chunk {index} at {offset}: no bytes may be served");
            assert!(ended(&process));
        }
    }

    #[test]
    fn bytes_of_the_upload_are_served_and_a_silent_process_is_ended() {
        let (mut process, mut child) = fake(Duration::from_millis(300));
        let answer = std::thread::spawn(move || {
            let _: ToChild = child.recv().unwrap();
            child.send(&FromChild::NeedRange { index: 1, offset: 4000, len: 200 }).unwrap();
            let ToChild::Range { value_len } = child.recv().unwrap() else { panic!("a range") };
            let bytes = child.recv_data_at_most(200).unwrap();
            // Then silence, longer than the limit.
            std::thread::sleep(Duration::from_millis(800));
            let _ = child.stream().try_clone().unwrap().write_all(b"late");
            (value_len, bytes.len())
        });
        let started = std::time::Instant::now();
        let err = process.open(OutputRequest::default(), false, None).unwrap_err();
        assert_eq!(err, "the decoder stopped responding on this file");
        assert!(started.elapsed() < Duration::from_millis(700), "ended after {:?}", started.elapsed());
        assert!(ended(&process));
        // The chunk is 4096 bytes long; 96 of the 200 asked for lie before its end.
        assert_eq!(answer.join().unwrap(), (4096, 96));
    }
}
