//! WebAssembly component glue: exports [`Mp3Session`] as the `encoder` interface.

use crate::{BITRATES_KBPS, Config, Mp3Session, SAMPLE_RATES, Tags};
use codec_plugin_kit::{Codec, CodecInfo, EncoderConfig, Finished};

impl Codec for Mp3Session {
    fn info() -> CodecInfo {
        CodecInfo {
            name: "mp3-lame".into(),
            extension: "mp3".into(),
            content_type: "audio/mpeg".into(),
            sample_rates: SAMPLE_RATES.to_vec(),
            max_channels: 2,
            bitrates: BITRATES_KBPS.to_vec(),
            levels: Vec::new(),
            bit_depths: vec![16],
            cover: true,
            vbr: true,
        }
    }

    fn start(c: EncoderConfig) -> Result<Self, String> {
        let t = c.tags;
        Mp3Session::new(&Config {
            sample_rate: c.input.sample_rate,
            channels: c.input.channels,
            bitrate_kbps: c.bitrate_kbps,
            vbr_quality: c.vbr_quality,
            tags: Tags {
                title: t.title,
                artist: t.artist,
                album: t.album,
                year: t.year,
                comment: t.comment,
                genre: t.genre,
                track: t.track,
                picture: c.cover.map(|p| p.data),
            },
        })
    }

    fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, String> {
        Mp3Session::encode(self, pcm)
    }

    fn finish(self) -> Result<Finished, String> {
        Mp3Session::finish(self)
    }
}

codec_plugin_kit::export_codec!(Mp3Session);
