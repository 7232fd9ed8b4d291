//! The `gateway` component: uploads (`/upload`, and resumable ones at `/uploads`: tus), job
//! status (`/jobs`, `/jobs/{id}`) and downloads (`/download?fid=`, `/jobs/{id}/audio`) for
//! authenticated users.

mod accounts;
mod chunks;
mod config;
mod db;
mod download;
mod events;
mod formats;
mod import;
mod jobs;
mod queue;
mod resumable;
mod session;
mod upload;

use config::Config;
use edge_spin::{ApiError, ApiResult, BodyStream, Cors, Head, Reply};
use session::TokenFrom;
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::sqlite::Connection;

/// Most request-body bytes read and discarded after an early answer (see `edge_spin::drain`).
const DRAIN_LIMIT: u64 = 64 << 20;

/// What every route needs: configuration, the database and the time of the request.
pub struct Ctx {
    pub config: Config,
    pub db: Connection,
    /// Unix seconds.
    pub now: u64,
}

/// A matched route (the method already checked).
enum Route {
    Upload,
    /// `POST /uploads`: a resumable upload (tus creation).
    CreateUpload,
    /// `HEAD /uploads/{id}`.
    UploadStatus(String),
    /// `PATCH /uploads/{id}`.
    AppendUpload(String),
    /// `DELETE /uploads/{id}`.
    TerminateUpload(String),
    ListJobs,
    ShowJob(String),
    DeleteJob(String),
    /// `POST /jobs/{id}/retry`.
    RetryJob(String),
    /// `GET /jobs/{id}/events`.
    JobEvents(String),
    /// `None` for `/download` without `?fid=`.
    Download(Option<String>),
    /// `POST /jobs/{id}/link`: a signed download link.
    Link(String),
    Formats,
    /// `OPTIONS` on a resource supporting these methods (`true`: a tus resource, whose
    /// answer also says what the server supports).
    Options(&'static str, bool),
}

/// The methods a path supports (`None`: no such resource).
impl Route {
    /// The job a route concerns, for the request log (only a well-formed id).
    fn job_id(&self) -> Option<&str> {
        let id = match self {
            Route::ShowJob(id)
            | Route::DeleteJob(id)
            | Route::RetryJob(id)
            | Route::JobEvents(id)
            | Route::Link(id)
            | Route::UploadStatus(id)
            | Route::AppendUpload(id)
            | Route::TerminateUpload(id) => Some(id),
            Route::Download(id) => id.as_ref(),
            _ => None,
        };
        id.map(String::as_str).filter(|id| job_model::layout::is_valid_job_id(id))
    }
}

fn methods(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["upload"] | ["uploads"] => Some("POST"),
        ["uploads", _] => Some("HEAD, PATCH, DELETE"),
        ["download"] | ["jobs", _, "audio"] => Some("GET, HEAD"),
        ["jobs", _] => Some("GET, DELETE"),
        ["jobs", _, "retry"] | ["jobs", _, "link"] => Some("POST"),
        ["jobs"] | ["jobs", _, "events"] | ["formats"] => Some("GET"),
        _ => None,
    }
}

fn route(head: &Head) -> Result<Route, ApiError> {
    let segments: Vec<&str> = head.path.trim_start_matches('/').split('/').collect();
    let allowed = methods(&segments).ok_or_else(ApiError::not_found)?;
    let get = head.method == Method::Get;
    let get_or_head = get || head.method == Method::Head;
    match segments.as_slice() {
        _ if head.method == Method::Options => Ok(Route::Options(allowed, segments[0] == "uploads")),
        ["upload"] if head.method == Method::Post => Ok(Route::Upload),
        ["uploads"] if head.method == Method::Post => Ok(Route::CreateUpload),
        ["uploads", id] if head.method == Method::Head => Ok(Route::UploadStatus(id.to_string())),
        ["uploads", id] if head.method == Method::Patch => Ok(Route::AppendUpload(id.to_string())),
        ["uploads", id] if head.method == Method::Delete => Ok(Route::TerminateUpload(id.to_string())),
        ["download"] if get_or_head => Ok(Route::Download(head.query_param("fid"))),
        ["jobs"] if get => Ok(Route::ListJobs),
        ["jobs", id] if get => Ok(Route::ShowJob(id.to_string())),
        ["jobs", id] if head.method == Method::Delete => Ok(Route::DeleteJob(id.to_string())),
        ["jobs", id, "retry"] if head.method == Method::Post => Ok(Route::RetryJob(id.to_string())),
        ["jobs", id, "link"] if head.method == Method::Post => Ok(Route::Link(id.to_string())),
        ["jobs", id, "audio"] if get_or_head => Ok(Route::Download(Some(id.to_string()))),
        ["jobs", id, "events"] if get => Ok(Route::JobEvents(id.to_string())),
        ["formats"] if get => Ok(Route::Formats),
        _ => Err(ApiError::method_not_allowed(allowed)),
    }
}

async fn serve(route: Route, head: &Head, body: &mut BodyStream) -> ApiResult {
    let ctx = Ctx {
        config: Config::load()?,
        db: db::open()?,
        now: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    if let Route::Formats = route {
        return formats::list(&ctx.config);
    }
    // A signed link is its own credential.
    if let Route::Download(Some(id)) = &route
        && head.query_param("sig").is_some()
    {
        return download::handle_signed(&ctx, head, id);
    }
    // Only the event stream takes the token from the query: EventSource cannot send headers.
    let from = if matches!(route, Route::JobEvents(_)) { TokenFrom::HeaderOrQuery } else { TokenFrom::Header };
    let caller = session::authenticate(&ctx, head, from)?;
    let job = route.job_id().map(str::to_string);
    let answer = match route {
        Route::Upload => upload::handle(&ctx, &caller, head, body).await,
        Route::CreateUpload => resumable::create(&ctx, &caller, head, body).await,
        Route::UploadStatus(id) => resumable::status(&ctx, &caller, head, &id),
        Route::AppendUpload(id) => resumable::append(&ctx, &caller, head, body, &id).await,
        Route::TerminateUpload(id) => resumable::terminate(&ctx, &caller, head, &id),
        Route::ListJobs => jobs::list(&ctx, &caller, head),
        Route::ShowJob(id) => jobs::show(&caller, &id),
        Route::DeleteJob(id) => jobs::delete(&ctx, &caller, &id),
        Route::RetryJob(id) => jobs::retry(&ctx, &caller, head, &id),
        Route::JobEvents(id) => events::handle(&ctx, &caller, &id),
        Route::Download(Some(id)) => download::handle(&caller, head, &id),
        Route::Link(id) => download::link(&ctx, &caller, &id),
        Route::Download(None) => Err(ApiError::bad_request("missing fid", "give the job id as ?fid=")),
        Route::Formats => formats::list(&ctx.config),
        // Answered by `handle` before anything is loaded.
        Route::Options(..) => Err(ApiError::not_found()),
    };
    Ok(answer.unwrap_or_else(Reply::from).for_log(Some(&caller.email), job.as_deref()))
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = Head::of(&req);
    let cors = Cors::of(&head);
    let mut body: BodyStream = Box::pin(req.into_body_stream());
    let reply = match route(&head) {
        // Preflights carry no credentials and need nothing else.
        Ok(Route::Options(methods, false)) => cors.preflight(methods),
        // tus discovery: what the server supports, with or without a preflight.
        Ok(Route::Options(methods, true)) => match Config::load() {
            Ok(config) => resumable::capabilities(config.max_upload_bytes, cors.preflight(methods)),
            Err(e) => cors.apply(Reply::from(e)),
        },
        Ok(route) => cors.apply(serve(route, &head, &mut body).await.unwrap_or_else(Reply::from)),
        Err(e) => cors.apply(Reply::from(e)),
    };
    reply.send(out).await;
    edge_spin::drain(&mut body, DRAIN_LIMIT).await;
}
