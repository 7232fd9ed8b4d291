//! `GET|HEAD /download?fid={id}` and `GET|HEAD /jobs/{id}/audio`: the converted audio, with
//! validators (`ETag`, `If-None-Match`) and single byte ranges; with a bearer token, or as a
//! signed link (`?expires=…&sig=…`, made by `POST /jobs/{id}/link`) that needs none.

use crate::Ctx;
use crate::chunks::{OutputRange, open_store};
use crate::jobs::{download_url, read_job, visible_job};
use crate::session::Caller;
use edge_spin::{ApiError, ApiResult, Body, Head, Reply};
use job_model::layout::is_valid_job_id;
use job_model::{Job, JobStatus};
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
    serve(store, head, job)
}

/// A download by signed link: 403 for an expired, altered or another job's link, and for
/// the link of an owner who has been deactivated since (the link stands for the owner, whose
/// rights end at once); 404 once the job is gone.
pub fn handle_signed(ctx: &Ctx, head: &Head, id: &str) -> ApiResult {
    let forbidden = |detail: &str| ApiError::new(403, "forbidden", detail);
    let expires = head.query_param("expires").and_then(|e| e.parse::<u64>().ok()).ok_or_else(|| forbidden("the link has no valid expiry"))?;
    let sig = head.query_param("sig").unwrap_or_default();
    if !is_valid_job_id(id) {
        return Err(ApiError::not_found());
    }
    ctx.config.links.verify(id, expires, &sig, ctx.now).map_err(|e| forbidden(&e.to_string()))?;
    let store = open_store()?;
    let job = read_job(&store, id)?.ok_or_else(ApiError::not_found)?;
    if !crate::db::is_active_user(&ctx.db, &job.owner)? {
        return Err(forbidden("the link no longer works: the account that shared it is deactivated"));
    }
    serve(store, head, job)
}

/// `POST /jobs/{id}/link`: a link to the job's audio that works without a token until it
/// expires (`download_link_secs`).
pub fn link(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult {
    let job = visible_job(&open_store()?, caller, id)?;
    if job.status != JobStatus::Done {
        return Err(ApiError::new(409, "not ready", format!("job is {}", job.status.as_str())).field("status", job.status.as_str()));
    }
    let expires_at = ctx.now + ctx.config.download_link_secs;
    let sig = ctx.config.links.sign(&job.id, expires_at);
    let url = format!("{}?expires={expires_at}&sig={sig}", download_url(&job.id));
    Ok(Reply::json(200, &api_model::jobs::SignedLink { url, expires_at }))
}

fn serve(store: spin_sdk::key_value::Store, head: &Head, job: Job) -> ApiResult {
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
        .header("content-type", edge_http::accept::served_type(head.header("accept"), &output.file.content_type))
        .header("content-length", (end - start).to_string())
        .header("vary", "accept")
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
