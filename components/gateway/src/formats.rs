//! The output formats users may ask for: what the worker's codec plugins provide (published in
//! the key-value store under `mp3edge:formats`), or the `formats` variable until a worker has
//! said so. `GET /formats` lists them without authentication.

use job_model::naming::content_type_for_format;
use job_model::{FormatInfo, layout};
use spin_sdk::key_value::Store;

use crate::config::Config;
use edge_spin::{ApiError, ApiResult, Reply};

pub fn available(config: &Config) -> Result<Vec<FormatInfo>, ApiError> {
    let store = Store::open_default().map_err(|e| ApiError::new(503, "storage unavailable", e.to_string()))?;
    let published = store
        .get(layout::FORMATS_KEY)
        .map_err(|e| ApiError::new(503, "storage unavailable", e.to_string()))?
        .and_then(|bytes| serde_json::from_slice::<Vec<FormatInfo>>(&bytes).ok())
        .filter(|formats| !formats.is_empty());
    Ok(published.unwrap_or_else(|| {
        config
            .formats
            .iter()
            .map(|format| FormatInfo {
                format: format.clone(),
                codec: String::new(),
                extension: format.clone(),
                content_type: content_type_for_format(format).to_string(),
                bitrates: None,
                bitrates_by_rate: None,
                vbr: None,
                sample_rates: None,
                max_channels: None,
                levels: None,
                cover: None,
            })
            .collect()
    }))
}

pub fn list(config: &Config) -> ApiResult {
    Ok(Reply::json(200, &available(config)?))
}
