//! The client side of propagation: a `reqwest-middleware` middleware that adds the current
//! trace context (`traceparent`, `tracestate`) and the current request id (`X-Request-ID`)
//! to every outgoing request, so a trace and a request id continue across services.
//!
//! ```no_run
//! let client = sightline_sdk::client::traced(reqwest::Client::new());
//! # async fn f(client: reqwest_middleware::ClientWithMiddleware) {
//! let _ = client.get("http://inventory:8081/api/stock/7").send().await;
//! # }
//! ```

use http::Extensions;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use crate::http::{X_REQUEST_ID, current_request_id};

/// The middleware; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracePropagation;

#[async_trait::async_trait]
impl Middleware for TracePropagation {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        crate::otel::inject_current(req.headers_mut());
        if !req.headers().contains_key(X_REQUEST_ID)
            && let Some(id) = current_request_id()
        {
            req.headers_mut().insert(X_REQUEST_ID, id);
        }
        next.run(req, extensions).await
    }
}

/// `client` with [`TracePropagation`].
pub fn traced(client: reqwest::Client) -> ClientWithMiddleware {
    ClientBuilder::new(client).with(TracePropagation).build()
}
