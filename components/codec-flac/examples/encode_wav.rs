//! Times the plugin's encoder natively: `cargo run --release -p codec-flac --example encode_wav -- IN.wav OUT.flac [LEVEL]`
//! (16-bit PCM WAV), so its CPU can be set against the WebAssembly plugin's under the host.

use codec_plugin_kit::{Codec, EncoderConfig};
use codec_flac::FlacSession;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let wav = std::fs::read(&args[1]).expect("reading the WAV");
    let level = args.get(3).map(|l| l.parse().expect("a level"));
    // The "data" chunk; the format chunk's fields at their fixed offsets.
    let channels = u16::from_le_bytes([wav[22], wav[23]]) as u8;
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let at = wav.windows(4).position(|w| w == b"data").expect("a data chunk");
    let len = u32::from_le_bytes(wav[at + 4..at + 8].try_into().unwrap()) as usize;
    let pcm: Vec<i16> = wav[at + 8..at + 8 + len].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let started = std::time::Instant::now();
    let mut s = FlacSession::new(EncoderConfig { sample_rate: rate, channels, bits_per_sample: 16, level, ..EncoderConfig::default() }).unwrap();
    let mut out = Vec::new();
    for chunk in pcm.chunks(usize::from(channels) * 4096) {
        out.extend(s.encode(chunk).unwrap());
    }
    let fin = s.finish().unwrap();
    out.extend(fin.tail);
    if let Some(p) = fin.patch {
        out[p.offset as usize..p.offset as usize + p.bytes.len()].copy_from_slice(&p.bytes);
    }
    eprintln!("{:.3} s, {} bytes", started.elapsed().as_secs_f64(), out.len());
    std::fs::write(&args[2], out).unwrap();
}
