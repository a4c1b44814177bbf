//! One address for the app's HTTP functions, each a service of its own on
//! Cloud Run: a request goes on, as sent, to the function whose method
//! and route it matches, as through a load balancer's URL map in front of
//! the services.

use std::sync::Arc;

use cloudfn_core::{
    Error, HttpRequest, HttpResponse, Method,
    provider::{Route, Routes, unrouted},
};
use cloudfn_server::dev::{answer_of, forwarded, serve_loopback};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest request Cloud Run takes (HTTP/1).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Each HTTP function's URL, by route.
pub(crate) struct Front {
    routes: Routes<String>,
    http: reqwest::Client,
}

impl Front {
    /// `functions`: each HTTP function's name, method, route and URL.
    pub(crate) fn new(
        functions: &[(String, Method, String, String)],
        http: reqwest::Client,
    ) -> Result<Self, Error> {
        let routes = Routes::new(functions.iter().map(|(name, method, route, url)| {
            (name.as_str(), *method, route.as_str(), url.clone())
        }))?;
        Ok(Self { routes, http })
    }

    /// Serves on `port` of the loopback interface (0: any) until `stop`;
    /// its URL.
    pub(crate) async fn serve(
        self,
        port: u16,
        stop: CancellationToken,
    ) -> Result<(String, JoinHandle<()>), Error> {
        let front = Arc::new(self);
        serve_loopback(port, MAX_REQUEST_BYTES, stop, move |request| {
            let front = front.clone();
            async move { front.answer(request).await }
        })
        .await
    }

    async fn answer(&self, request: HttpRequest) -> HttpResponse {
        let route = self.routes.route(&request.method, &request.path);
        if let Some(response) = unrouted(&route, &request.method, &request.path) {
            return response;
        }
        let Route::Matched { target, .. } = route else {
            unreachable!("unrouted answers every other case")
        };
        let sent = forwarded(&self.http, target, &request).send().await;
        answer_of(sent).await.unwrap_or_else(|error| {
            tracing::warn!(error = %error, "the function could not be reached");
            // What Cloud Run answers when the instance is gone.
            HttpResponse::new(503)
        })
    }
}
