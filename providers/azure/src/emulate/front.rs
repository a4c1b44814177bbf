//! The host's HTTP front: each request routed by the `httpTrigger`s'
//! routes and methods and posted to the handler in the wrapped form, its
//! `res` output turned back into the response; or, with
//! `enableForwardingHttpRequest`, forwarded to the handler as sent.

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use cloudfn_core::{
    Error, HttpRequest, HttpResponse, Method,
    provider::{Route, Routes, unrouted},
};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Declared, consumers::Host, payload};

/// The largest request the host takes.
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

pub(crate) struct Front {
    host: Arc<Host>,
    /// Function names by route; `None` when the host forwards.
    routes: Option<Routes<String>>,
}

impl Front {
    pub(crate) fn new(
        host: Arc<Host>,
        functions: &[Declared],
        forwarding: bool,
    ) -> Result<Self, Error> {
        let routes = if forwarding {
            None
        } else {
            let mut entries = Vec::new();
            for f in functions.iter().filter(|f| f.kind() == "httpTrigger") {
                let route = format!("/{}", f.field("route"));
                let methods: Vec<Method> = match f.trigger.get("methods").and_then(Value::as_array)
                {
                    None => vec![Method::Any],
                    Some(methods) => methods
                        .iter()
                        .filter_map(|m| m.as_str())
                        .filter_map(|m| {
                            serde_json::from_value(Value::String(m.to_ascii_uppercase())).ok()
                        })
                        .collect(),
                };
                for method in methods {
                    entries.push((f.name.clone(), method, route.clone()));
                }
            }
            Some(Routes::new(entries.iter().map(|(name, method, route)| {
                (name.as_str(), *method, route.as_str(), name.clone())
            }))?)
        };
        Ok(Self { host, routes })
    }

    /// Serves on `port` of the loopback interface (0: any) until `stop`.
    pub(crate) async fn serve(
        self,
        port: u16,
        stop: CancellationToken,
    ) -> Result<(String, JoinHandle<()>), Error> {
        // The wrapped form names the request's own URL, so the front must
        // know its address before it answers.
        let base = Arc::new(std::sync::OnceLock::<String>::new());
        let front = Arc::new(self);
        let known = base.clone();
        let (url, task) =
            cloudfn_server::dev::serve_loopback(port, MAX_REQUEST_BYTES, stop, move |request| {
                let (front, base) = (front.clone(), known.clone());
                async move {
                    let base = base.get().map(String::as_str).unwrap_or_default();
                    front.answer(base, request).await
                }
            })
            .await?;
        let _ = base.set(url.clone());
        Ok((url, task))
    }

    async fn answer(&self, base: &str, request: HttpRequest) -> HttpResponse {
        let result = match &self.routes {
            None => self.forward(&request).await,
            Some(routes) => {
                let route = routes.route(&request.method, &request.path);
                if let Some(response) = unrouted(&route, &request.method, &request.path) {
                    return response;
                }
                let Route::Matched { target, params } = route else {
                    unreachable!("unrouted answers every other case")
                };
                self.wrapped(base, target, &params, &request).await
            }
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(error = %error, "the host could not answer");
            // What the host's caller sees when the invocation fails.
            HttpResponse::new(500)
        })
    }

    /// The request posted to `/<function>`, the answer read from `res`.
    async fn wrapped(
        &self,
        base: &str,
        function: &str,
        params: &BTreeMap<String, String>,
        request: &HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &request.headers {
            headers
                .entry(name.as_str().to_owned())
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let mut query: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in request.query_pairs() {
            query
                .entry(name)
                .and_modify(|joined| {
                    joined.push(',');
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
        let url = match &request.query {
            Some(q) => format!("{base}{}?{q}", request.path),
            None => format!("{base}{}", request.path),
        };
        let call = payload::HttpCall {
            url: &url,
            method: request.method.as_str(),
            headers: &headers,
            query: &query,
            params,
            body: &request.body,
        };
        let (status, answer) = self
            .host
            .invoke(function, &payload::http(function, &call))
            .await?;
        if !(200..=299).contains(&status) {
            return Err(Error::internal(format!(
                "the handler answered {status}: {answer}"
            )));
        }
        let res = &answer["Outputs"]["res"];
        let status = match &res["statusCode"] {
            Value::String(s) => s.parse().unwrap_or(500),
            Value::Number(n) => n.as_u64().unwrap_or(500) as u16,
            _ => 200,
        };
        let mut response = HttpResponse::new(status);
        for (name, value) in res["headers"].as_object().into_iter().flatten() {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            response = response.with_header(name, &value);
        }
        let body = match &res["body"] {
            Value::Null => Bytes::new(),
            Value::String(s) => Bytes::from(s.clone()),
            other => Bytes::from(serde_json::to_string_pretty(other).unwrap_or_default()),
        };
        Ok(response.with_body(body))
    }

    /// The request sent on to the handler as it came.
    async fn forward(&self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        let sent = cloudfn_server::dev::forwarded(&self.host.http, &self.host.handler, request)
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .send()
            .await;
        cloudfn_server::dev::answer_of(sent).await
    }
}
