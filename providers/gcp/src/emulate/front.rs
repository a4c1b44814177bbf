//! One address for the app's HTTP functions, each a service of its own on
//! Cloud Run: a request goes on, as sent, to the function whose method
//! and route it matches, as through a load balancer's URL map in front of
//! the services.

use std::{sync::Arc, time::Duration};

use cloudfn_core::{
    Error, HttpRequest, HttpResponse,
    provider::{Route, Routes, unrouted},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest request Cloud Run takes (HTTP/1).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

pub(crate) struct Front {
    /// Each function's URL, by route.
    routes: Routes<String>,
    http: reqwest::Client,
}

impl Front {
    /// `functions`: each HTTP function's name, method, route and URL.
    pub(crate) fn new(
        functions: &[(String, cloudfn_core::Method, String, String)],
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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::unavailable(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::unavailable(format!("no address: {e}")))?
        );
        let front = Arc::new(self);
        let task = tokio::spawn(cloudfn_server::serve(
            listener,
            Duration::from_secs(30),
            stop,
            move |request| {
                let front = front.clone();
                async move {
                    let response =
                        match cloudfn_server::read_request(request, MAX_REQUEST_BYTES).await {
                            Ok(request) => front.answer(request).await,
                            Err(error) => HttpResponse::from_error(&error),
                        };
                    response.into_http()
                }
            },
        ));
        Ok((url, task))
    }

    async fn answer(&self, request: HttpRequest) -> HttpResponse {
        let route = self.routes.route(&request.method, &request.path);
        if let Some(response) = unrouted(&route, &request.method, &request.path) {
            return response;
        }
        let Route::Matched { target, .. } = route else {
            unreachable!("unrouted answers every other case")
        };
        self.forward(target, &request)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(error = %error, "the function could not be reached");
                // What Cloud Run answers when the instance is gone.
                HttpResponse::new(503)
            })
    }

    async fn forward(&self, base: &str, request: &HttpRequest) -> Result<HttpResponse, Error> {
        let url = match &request.query {
            Some(q) => format!("{base}{}?{q}", request.path),
            None => format!("{base}{}", request.path),
        };
        let mut headers = request.headers.clone();
        headers.remove(http::header::HOST);
        let response = self
            .http
            .request(request.method.clone(), url)
            .headers(headers)
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| Error::unavailable(format!("the function is unreachable: {e}")))?;
        let mut answer = HttpResponse::new(response.status().as_u16());
        answer.headers = response.headers().clone();
        answer.body = response
            .bytes()
            .await
            .map_err(|e| Error::unavailable(format!("the function's answer broke off: {e}")))?;
        Ok(answer)
    }
}
