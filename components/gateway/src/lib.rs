//! The `gateway` component: uploads (`/upload`), job status (`/jobs`, `/jobs/{id}`) and
//! downloads (`/download?fid=`, `/jobs/{id}/audio`) for authenticated users.

mod chunks;
mod config;
mod db;
mod download;
mod formats;
mod http_util;
mod jobs;
mod queue;
mod session;
mod upload;

use config::Config;
use http_util::{ApiError, ApiResult, BodyStream, Head, Reply};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::sqlite::Connection;

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
    ListJobs,
    ShowJob(String),
    /// `None` for `/download` without `?fid=`.
    Download(Option<String>),
    Formats,
}

fn route(head: &Head) -> Result<Route, ApiError> {
    let segments: Vec<&str> = head.path.trim_start_matches('/').split('/').collect();
    let get = head.method == Method::Get;
    let get_or_head = get || head.method == Method::Head;
    match segments.as_slice() {
        ["upload"] if head.method == Method::Post => Ok(Route::Upload),
        ["upload"] => Err(ApiError::method_not_allowed("POST")),
        ["download"] if get_or_head => Ok(Route::Download(head.query_param("fid"))),
        ["jobs"] if get => Ok(Route::ListJobs),
        ["jobs", id] if get => Ok(Route::ShowJob(id.to_string())),
        ["jobs"] | ["jobs", _] => Err(ApiError::method_not_allowed("GET")),
        ["jobs", id, "audio"] if get_or_head => Ok(Route::Download(Some(id.to_string()))),
        ["formats"] if get => Ok(Route::Formats),
        ["formats"] => Err(ApiError::method_not_allowed("GET")),
        ["download"] | ["jobs", _, "audio"] => Err(ApiError::method_not_allowed("GET, HEAD")),
        _ => Err(ApiError::not_found()),
    }
}

async fn serve(head: &Head, body: &mut BodyStream) -> ApiResult {
    let route = route(head)?;
    let ctx = Ctx {
        config: Config::load()?,
        db: db::open()?,
        now: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    if let Route::Formats = route {
        return formats::list(&ctx.config);
    }
    let caller = session::authenticate(&ctx, head)?;
    match route {
        Route::Upload => upload::handle(&ctx, &caller, head, body).await,
        Route::ListJobs => jobs::list(&ctx, &caller, head),
        Route::ShowJob(id) => jobs::show(&caller, &id),
        Route::Download(Some(id)) => download::handle(&caller, head, &id),
        Route::Download(None) => Err(ApiError::bad_request("missing fid", "give the job id as ?fid=")),
        Route::Formats => formats::list(&ctx.config),
    }
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let head = Head::of(&req);
    let mut body: BodyStream = Box::pin(req.into_body_stream());
    let reply = serve(&head, &mut body).await.unwrap_or_else(Reply::from);
    reply.send(out).await;
    http_util::drain(&mut body).await;
}
