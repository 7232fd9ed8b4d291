//! The video tracks of an MP4/QuickTime file, for decoders that need only its audio.
//!
//! FFmpeg's MP4 demuxer builds an index of every sample of every track when it opens a file:
//! for an hour of 25 fps video, 2 MiB for the video track alone, held as long as the decoder
//! lives. A segment lane's decoder lives for the whole job and never looks at the video, so
//! its reader presents each video `trak` box as a `free` box (same size, so every offset stays
//! valid), which the demuxer skips. Only a plain file is touched: `ftyp` first, one `moov`,
//! no fragments (`mvex`) and no compressed header; anything else is left as it is.

/// Box type a hidden track is shown as.
pub(super) const HIDDEN: [u8; 4] = *b"free";

/// Boxes looked at before giving up (a hostile file cannot make the walk long).
const MAX_BOXES: usize = 4096;

/// Reads `buf.len()` bytes at an offset of the file.
pub(super) type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> Result<(), String> + 'a;

/// One box: where its type field and its contents are.
#[derive(Clone, Copy)]
struct Mp4Box {
    kind: [u8; 4],
    /// Offset of the 4-byte type field.
    kind_at: u64,
    body: u64,
    end: u64,
}

/// The boxes within `start..end`, or `None` when they do not tile it exactly.
fn children(read: &mut ReadAt, start: u64, end: u64, budget: &mut usize) -> Option<Vec<Mp4Box>> {
    let mut boxes = Vec::new();
    let mut at = start;
    while at < end {
        *budget = budget.checked_sub(1)?;
        let mut head = [0u8; 8];
        read(at, &mut head).ok()?;
        let size32 = u32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        let kind: [u8; 4] = head[4..].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            0 => (end - at, 8),
            1 => {
                let mut large = [0u8; 8];
                read(at + 8, &mut large).ok()?;
                (u64::from_be_bytes(large), 16)
            }
            n => (u64::from(n), 8),
        };
        let box_end = at.checked_add(size).filter(|&e| size >= header && e <= end)?;
        boxes.push(Mp4Box { kind, kind_at: at + 4, body: at + header, end: box_end });
        at = box_end;
    }
    Some(boxes)
}

fn find(boxes: &[Mp4Box], kind: &[u8; 4]) -> Option<Mp4Box> {
    boxes.iter().find(|b| &b.kind == kind).copied()
}

/// Offsets of the type fields of the video `trak` boxes of a plain MP4/QuickTime file of
/// `size` bytes; empty for any other file.
pub(super) fn video_track_kinds(read: &mut ReadAt, size: u64) -> Vec<u64> {
    walk(read, size).unwrap_or_default()
}

fn walk(read: &mut ReadAt, size: u64) -> Option<Vec<u64>> {
    let mut budget = MAX_BOXES;
    let top = children(read, 0, size, &mut budget)?;
    if top.first()?.kind != *b"ftyp" || top.iter().filter(|b| &b.kind == b"moov").count() != 1 {
        return None;
    }
    let moov_box = find(&top, b"moov")?;
    let moov = children(read, moov_box.body, moov_box.end, &mut budget)?;
    if find(&moov, b"mvex").is_some() || find(&moov, b"cmov").is_some() || top.iter().any(|b| &b.kind == b"moof") {
        return None;
    }
    let mut video = Vec::new();
    for trak in moov.iter().filter(|b| &b.kind == b"trak") {
        let inside = children(read, trak.body, trak.end, &mut budget)?;
        let mdia = find(&inside, b"mdia")?;
        let hdlr = find(&children(read, mdia.body, mdia.end, &mut budget)?, b"hdlr")?;
        // hdlr: version and flags (4), pre-defined / component type (4), handler type (4).
        let mut handler = [0u8; 4];
        if hdlr.body + 12 > hdlr.end {
            return None;
        }
        read(hdlr.body + 8, &mut handler).ok()?;
        if handler == *b"vide" {
            video.push(trak.kind_at);
        }
    }
    // A file of video alone stays as it is: its decoder reports that it has no audio.
    if video.len() == moov.iter().filter(|b| &b.kind == b"trak").count() {
        return None;
    }
    Some(video)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [&((body.len() + 8) as u32).to_be_bytes()[..], kind, body].concat()
    }

    fn trak(handler: &[u8; 4]) -> Vec<u8> {
        let hdlr = mp4_box(b"hdlr", &[&[0u8; 8][..], handler, &[0u8; 13]].concat());
        mp4_box(b"trak", &[mp4_box(b"tkhd", &[0; 20]), mp4_box(b"mdia", &[mp4_box(b"mdhd", &[0; 24]), hdlr].concat())].concat())
    }

    fn kinds(file: &[u8]) -> Vec<u64> {
        let mut read = |at: u64, buf: &mut [u8]| -> Result<(), String> {
            let at = at as usize;
            let part = file.get(at..at + buf.len()).ok_or("past the end")?;
            buf.copy_from_slice(part);
            Ok(())
        };
        video_track_kinds(&mut read, file.len() as u64)
    }

    #[test]
    fn the_video_tracks_of_a_plain_file_are_found() {
        let ftyp = mp4_box(b"ftyp", b"isom\0\0\0\0");
        let (video, audio) = (trak(b"vide"), trak(b"soun"));
        let moov = mp4_box(b"moov", &[mp4_box(b"mvhd", &[0; 100]), video.clone(), audio].concat());
        let file = [ftyp.clone(), moov, mp4_box(b"mdat", &[7; 64])].concat();
        let at = kinds(&file);
        assert_eq!(at.len(), 1);
        assert_eq!(&file[at[0] as usize..at[0] as usize + 4], b"trak");
        assert_eq!(at[0] as usize, ftyp.len() + 8 + 108 + 4, "the first trak's type field");

        // Fragmented, compressed, video-only, not MP4, or not tiling: left alone.
        let fragmented = [ftyp.clone(), mp4_box(b"moov", &[video.clone(), trak(b"soun"), mp4_box(b"mvex", &[])].concat())].concat();
        assert!(kinds(&fragmented).is_empty());
        let video_only = [ftyp.clone(), mp4_box(b"moov", &video)].concat();
        assert!(kinds(&video_only).is_empty());
        assert!(kinds(&[mp4_box(b"moov", &[video.clone(), trak(b"soun")].concat())].concat()).is_empty(), "no ftyp");
        let mut broken = [ftyp.clone(), mp4_box(b"moov", &[video.clone(), trak(b"soun")].concat())].concat();
        broken.truncate(broken.len() - 3);
        assert!(kinds(&broken).is_empty());
        let mut huge = [ftyp, mp4_box(b"moov", &[video, trak(b"soun")].concat())].concat();
        huge[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(kinds(&huge).is_empty());
        assert!(kinds(b"RIFF\0\0\0\0WAVEfmt ").is_empty());
    }
}
