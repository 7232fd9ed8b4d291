//! The descriptive tags of an output, as FFmpeg reads them from an upload (the host's `media`
//! crate) and as a codec plugin writes them (through `codec-plugin-kit`): one type, so what is
//! read is what is written. No WIT and no I/O: it builds natively and for wasm alike.

/// Descriptive tags, each absent unless known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub year: Option<String>,
    pub comment: Option<String>,
    pub genre: Option<String>,
    /// `3` or `3/12`.
    pub track: Option<String>,
}
