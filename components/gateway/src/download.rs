//! `GET|HEAD /download?fid={id}` and `GET|HEAD /jobs/{id}/audio`: the converted audio, with
//! validators (`ETag`, `If-None-Match`) and single byte ranges.

use crate::chunks::{OutputRange, open_store};
use crate::jobs::visible_job;
use crate::session::Caller;
use edge_spin::{ApiError, ApiResult, Body, Head, Reply};
use job_model::JobStatus;
use job_model::naming::{content_disposition, output_name};
use job_model::range::{RangeRequest, parse_range};
use spin_sdk::http::Method;

/// Whether an `If-None-Match` value matches the (unquoted) entity tag (weak comparison).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*"
            || candidate.trim_start_matches("W/").strip_prefix('"').and_then(|c| c.strip_suffix('"')) == Some(etag)
    })
}

pub fn handle(caller: &Caller, head: &Head, id: &str) -> ApiResult {
    let store = open_store()?;
    let job = visible_job(&store, caller, id)?;
    let output = match (job.status, &job.output) {
        (JobStatus::Done, Some(output)) => output,
        (JobStatus::Done, None) => return Err(ApiError::internal("job is done but has no output", &job.id)),
        (status, _) => {
            return Err(
                ApiError::new(409, "not ready", format!("job is {}", status.as_str())).field("status", status.as_str())
            );
        }
    };
    let (total, chunk_size) = (output.file.size, u64::from(output.file.chunk_size));
    if chunk_size == 0 && total > 0 {
        return Err(ApiError::internal("stored output has a chunk size of 0", &job.id));
    }
    let etag = format!("\"{}\"", output.etag);
    let extension = output.extension.as_deref().unwrap_or(&job.options.format);
    let file_name = output_name(&job.source_name, extension);
    let validators = |reply: Reply| reply.header("etag", &etag).header("accept-ranges", "bytes");

    if head.header("if-none-match").is_some_and(|value| etag_matches(value, &output.etag)) {
        return Ok(validators(Reply::empty(304)));
    }
    // A range is only honoured for the representation the client already has (`If-Range`).
    let range = head.header("range").filter(|_| head.header("if-range").is_none_or(|tag| tag.trim() == etag));
    let (status, start, end, content_range) = match parse_range(range, total) {
        RangeRequest::Full => (200, 0, total, None),
        RangeRequest::Partial(r) => (206, r.start, r.end + 1, Some(r.content_range(total))),
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::new(416, "range not satisfiable", format!("the file has {total} bytes"))
                .header("content-range", format!("bytes */{total}")));
        }
    };
    let body = if head.method == Method::Head {
        Body::Empty
    } else {
        let range = OutputRange { store, job_id: job.id.clone(), chunk_size, start, end };
        Body::stream(|sink| range.stream(sink))
    };
    let reply = validators(Reply::new(status, body))
        .header("content-type", &output.file.content_type)
        .header("content-length", (end - start).to_string())
        .header("content-disposition", content_disposition(&file_name));
    Ok(match content_range {
        Some(value) => reply.header("content-range", value),
        None => reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"abc\", \"x\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abcd\"", "abc"));
        assert!(!etag_matches("abc", "abc"));
    }
}
