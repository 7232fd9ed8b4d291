//! What the Ogg codec plugins (Opus, Vorbis) share and no crate gives them in the shape they
//! need: an Ogg page writer ([`OggStream`], RFC 3533) that hands out finished pages as bytes,
//! the Vorbis comment list built from the platform's tags ([`comments`]), the FLAC picture block
//! behind `METADATA_BLOCK_PICTURE` ([`picture_block_base64`]), and the reordering of the
//! decoder's channel layout into Vorbis channel order ([`vorbis_order`]), which both Ogg Vorbis
//! and Opus mapping family 1 use. Plain Rust, no I/O (but for `testing`, the tests both
//! plugins run, compiled for their native tests only).

mod comments;
mod pages;
#[cfg(feature = "testing")]
pub mod testing;

pub use comments::{Picture, Tags, comment_packet, comments, picture_block_base64};
pub use pages::OggStream;

/// Most channels either codec accepts: Vorbis channel order is defined up to 7.1.
pub const MAX_CHANNELS: u8 = 8;

/// For each output channel in Vorbis order, the input channel it takes, for `channels` (1–8)
/// interleaved in FFmpeg's default layout for that count, which is what the worker's decoder
/// delivers: 3.0 (FL FR FC), 4.0, 5.0 (FL FR FC BL BR), 5.1 (FL FR FC LFE BL BR), 6.1 (FL FR FC
/// LFE BC SL SR), 7.1 (FL FR FC LFE BL BR SL SR).
pub fn vorbis_order(channels: u8) -> &'static [usize] {
    match channels {
        // L C R
        3 => &[0, 2, 1],
        // FL C FR RL RR (from FL FR FC BL BR)
        5 => &[0, 2, 1, 3, 4],
        // FL C FR RL RR LFE (from FL FR FC LFE BL BR)
        6 => &[0, 2, 1, 4, 5, 3],
        // FL C FR SL SR BC LFE (from FL FR FC LFE BC SL SR)
        7 => &[0, 2, 1, 5, 6, 4, 3],
        // FL C FR SL SR BL BR LFE (from FL FR FC LFE BL BR SL SR)
        8 => &[0, 2, 1, 6, 7, 4, 5, 3],
        // Mono and stereo are the same in both; 4.0 (FL FR FC BC) has no Vorbis equivalent
        // (FL FR RL RR), so its channels keep their places.
        1 => &[0],
        2 => &[0, 1],
        _ => &[0, 1, 2, 3],
    }
}

/// Reorders interleaved `pcm` from FFmpeg's layout to Vorbis order (see [`vorbis_order`]).
pub fn to_vorbis_order<T: Copy>(pcm: &[T], channels: u8) -> Vec<T> {
    let order = vorbis_order(channels);
    pcm.chunks_exact(order.len())
        .flat_map(|frame| order.iter().map(move |&from| frame[from]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vorbis_order_is_a_permutation_with_the_centre_second() {
        for channels in 1..=MAX_CHANNELS {
            let order = vorbis_order(channels);
            assert_eq!(order.len(), channels as usize);
            let mut sorted = order.to_vec();
            sorted.sort();
            assert_eq!(sorted, (0..channels as usize).collect::<Vec<_>>());
            if channels == 3 || channels >= 5 {
                assert_eq!(order[1], 2, "FFmpeg's FC is Vorbis's second channel");
            }
            if channels >= 6 {
                assert_eq!(*order.last().unwrap(), 3, "FFmpeg's LFE is Vorbis's last channel");
            }
        }
        assert_eq!(to_vorbis_order(&[1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16], 6), [1, 3, 2, 5, 6, 4, 11, 13, 12, 15, 16, 14]);
    }
}
