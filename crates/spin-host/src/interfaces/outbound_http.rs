//! Outbound HTTP for components (`wasi:http/outgoing-handler`): a request leaves only for an
//! address the component's `allowed_outbound_hosts` allows; any other is `HttpRequestDenied`.

use wasmtime_wasi_http::WasiHttpHooks;

use crate::outbound::OutboundPolicy;

/// Outbound HTTP for components: only to allowed hosts.
#[derive(Default)]
pub struct OutboundHttpHooks {
    pub policy: OutboundPolicy,
}

impl WasiHttpHooks for OutboundHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let uri = request.uri();
        let allowed = uri.host().is_some_and(|h| {
            self.policy.allows(uri.scheme_str().unwrap_or("https"), h.trim_matches(['[', ']']), uri.port_u16())
        });
        if !allowed {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
