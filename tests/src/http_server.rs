//! [`serve_http`]: a real HTTP server a test stands up for the platform to fetch from (a media
//! source, a link to import, a redirect), with fixed answers per path.

/// What a [`serve_http`] route answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with a body of this content type.
    File { content_type: &'static str, body: bytes::Bytes },
    /// 302 to this location.
    Redirect(String),
}

/// A real HTTP server on `127.0.0.1` for a test (a media source, a link to import): each path
/// gets its [`Answer`], any other a 404. It runs until the test's runtime ends.
pub async fn serve_http(routes: std::collections::HashMap<String, Answer>) -> std::net::SocketAddr {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = std::sync::Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let routes = routes.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let answer = routes.get(req.uri().path()).cloned();
                    async move {
                        let response = hyper::Response::builder();
                        let response = match answer {
                            Some(Answer::File { content_type, body }) => response.header("content-type", content_type).body(Full::new(body)),
                            Some(Answer::Redirect(location)) => response.status(302).header("location", location).body(Full::new(bytes::Bytes::new())),
                            None => response.status(404).body(Full::new(bytes::Bytes::new())),
                        };
                        Ok::<_, std::convert::Infallible>(response.expect("a valid response"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}
