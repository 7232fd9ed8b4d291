//! The request body: reading it whole within a size limit, and draining what a route left
//! unread once the answer is sent.

use crate::head::Head;
use crate::reply::ApiError;
use crate::time::sleep;
use futures::{Stream, StreamExt, future};
use std::pin::{Pin, pin};
use std::time::Duration;

/// The request body, taken from the request up front so that what a route leaves unread can be
/// drained after the answer (see [`drain`]).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, wasi::io::error::Error>> + Send>>;

/// Longest time spent draining a request body after an early answer.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards what is left of the request body (at most `limit` bytes, for at most
/// [`DRAIN_TIME`]) once the answer is sent: a connection closed with unread data is reset, which
/// can destroy an early answer (413, 415, 401...) before the client has read it.
pub async fn drain(body: &mut BodyStream, limit: u64) {
    let read = async {
        let mut left = limit;
        while let Some(Ok(read)) = body.next().await {
            left = left.saturating_sub(read.len() as u64);
            if left == 0 {
                break;
            }
        }
    };
    future::select(pin!(read), pin!(sleep(DRAIN_TIME))).await;
}

/// Reads the whole body, refusing (413) anything over `limit` bytes without buffering it.
pub async fn read_body(head: &Head, body: &mut BodyStream, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, "too large", format!("the request body exceeds {limit} bytes"));
    let declared = head.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("bad body", format!("could not read the request body: {}", e.to_debug_string()))
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
