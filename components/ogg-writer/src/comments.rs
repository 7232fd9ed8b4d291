//! Vorbis comments (`KEY=value`, the tag format of Ogg Vorbis and Ogg Opus) from the platform's
//! tags and cover picture, and the comment packet layout that OpusTags uses.

pub use codec_plugin_kit::{Picture, Tags};

/// Longest tag value copied, in characters.
const MAX_TAG_CHARS: usize = 1000;

/// The comments for `tags` and `cover`, in the field names players read (`TITLE`, `ARTIST`,
/// `ALBUM`, `DATE`, `COMMENT`, `GENRE`, `TRACKNUMBER`, `METADATA_BLOCK_PICTURE`). Empty values
/// are left out; values are cut at an embedded NUL and at [`MAX_TAG_CHARS`].
pub fn comments(tags: &Tags, cover: Option<&Picture>) -> Vec<(&'static str, String)> {
    let fields = [
        ("TITLE", &tags.title),
        ("ARTIST", &tags.artist),
        ("ALBUM", &tags.album),
        ("DATE", &tags.year),
        ("COMMENT", &tags.comment),
        ("GENRE", &tags.genre),
        ("TRACKNUMBER", &tags.track),
    ];
    let mut out: Vec<(&'static str, String)> = fields
        .into_iter()
        .filter_map(|(key, value)| {
            let value: String = value.as_deref()?.chars().take_while(|&c| c != '\0').take(MAX_TAG_CHARS).collect();
            let value = value.trim();
            (!value.is_empty()).then(|| (key, value.to_string()))
        })
        .collect();
    if let Some(picture) = cover {
        out.push(("METADATA_BLOCK_PICTURE", picture_block_base64(picture)));
    }
    out
}

/// A comment packet: `magic`, the vendor string and the comments, lengths little-endian 32-bit
/// (RFC 7845 §5.2 for OpusTags; the same list Vorbis's comment header carries).
pub fn comment_packet(magic: &[u8], vendor: &str, comments: &[(&str, String)]) -> Vec<u8> {
    let mut p = magic.to_vec();
    let string = |p: &mut Vec<u8>, s: &[u8]| {
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s);
    };
    string(&mut p, vendor.as_bytes());
    p.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for (key, value) in comments {
        string(&mut p, format!("{key}={value}").as_bytes());
    }
    p
}

/// The FLAC PICTURE block of `picture` as a front cover (type 3), base64-encoded: the value
/// of `METADATA_BLOCK_PICTURE`.
pub fn picture_block_base64(picture: &Picture) -> String {
    let mut block = Vec::with_capacity(32 + picture.mime_type.len() + picture.data.len());
    let u32be = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_be_bytes());
    u32be(&mut block, 3); // front cover
    u32be(&mut block, picture.mime_type.len() as u32);
    block.extend_from_slice(picture.mime_type.as_bytes());
    u32be(&mut block, 0); // no description
    u32be(&mut block, picture.width);
    u32be(&mut block, picture.height);
    u32be(&mut block, 24); // colour depth: the converter passes JPEG or PNG in true colour
    u32be(&mut block, 0); // not indexed
    u32be(&mut block, picture.data.len() as u32);
    block.extend_from_slice(&picture.data);
    base64(&block)
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn comments_skip_empty_values_and_add_the_picture() {
        let tags = Tags { title: Some(" Song ".into()), artist: Some(String::new()), track: Some("3/12".into()), year: Some("2024\0junk".into()), ..Tags::default() };
        let picture = Picture { mime_type: "image/png".into(), width: 2, height: 1, data: vec![1, 2, 3] };
        let c = comments(&tags, Some(&picture));
        assert_eq!(&c[..3], &[("TITLE", "Song".to_string()), ("DATE", "2024".to_string()), ("TRACKNUMBER", "3/12".to_string())]);
        assert_eq!(c[3].0, "METADATA_BLOCK_PICTURE");
        // type 3, "image/png", no description, 2×1, 24 bits, not indexed, 3 bytes.
        let mut block = vec![0, 0, 0, 3, 0, 0, 0, 9];
        block.extend_from_slice(b"image/png");
        block.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(c[3].1, base64(&block));
    }

    #[test]
    fn comment_packet_layout() {
        let p = comment_packet(b"OpusTags", "v", &[("TITLE", "x".into())]);
        assert_eq!(p, b"OpusTags\x01\0\0\0v\x01\0\0\0\x07\0\0\0TITLE=x");
    }
}
