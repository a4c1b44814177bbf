//! HTTP events: API Gateway REST (v1), HTTP API (v2) and Function URLs (the v2
//! shape), and ALB target groups — into `HttpRequest`, and the matching
//! response shape back.

use std::collections::HashMap;

use aws_lambda_events::{
    alb::{AlbTargetGroupRequest, AlbTargetGroupResponse},
    apigw::{
        ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
        ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
        ApiGatewayV2httpResponse,
    },
    encodings::Body,
    query_map::QueryMap,
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use cloudfn_core::{Error, HttpRequest, HttpResponse};
use http::{
    HeaderMap, HeaderName, HeaderValue,
    header::{COOKIE, SET_COOKIE},
};
use serde::{Serialize, de::IgnoredAny};
use serde_json::Value;

/// Which HTTP integration sent the event; the response must be in its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSource {
    /// API Gateway REST API (payload 1.0).
    RestV1,
    /// API Gateway HTTP API or a Function URL (payload 2.0).
    HttpV2,
    /// An ALB target group; `multi_value` when the group has multi-value headers on.
    Alb {
        /// Whether requests and responses use `multiValueHeaders`.
        multi_value: bool,
    },
}

/// The shapes an HTTP function accepts, for error messages.
pub const EXPECTED: &str = "an API Gateway HTTP API / Function URL event (\"version\":\"2.0\"), \
     an API Gateway REST event (\"httpMethod\" with \"requestContext\"), or an ALB event (\"requestContext\":{\"elb\":…})";

/// Just enough of an event to tell which integration sent it, read in one
/// pass without building the whole document.
#[derive(serde::Deserialize)]
struct Probe {
    version: Option<String>,
    #[serde(rename = "httpMethod")]
    http_method: Option<IgnoredAny>,
    #[serde(rename = "multiValueHeaders")]
    multi_value_headers: Option<IgnoredAny>,
    #[serde(rename = "requestContext")]
    request_context: Option<ProbeContext>,
}

#[derive(serde::Deserialize)]
struct ProbeContext {
    elb: Option<IgnoredAny>,
    http: Option<IgnoredAny>,
}

/// Tells which integration sent `event` (JSON), or `None` if it is no HTTP event.
pub fn source_of(event: &[u8]) -> Option<HttpSource> {
    let probe: Probe = serde_json::from_slice(event).ok()?;
    let context = probe.request_context?;
    if context.elb.is_some() {
        Some(HttpSource::Alb {
            multi_value: probe.multi_value_headers.is_some(),
        })
    } else if probe.version.as_deref() == Some("2.0") && context.http.is_some() {
        Some(HttpSource::HttpV2)
    } else if probe.http_method.is_some() {
        Some(HttpSource::RestV1)
    } else {
        None
    }
}

/// Reads an HTTP event of a known source into a request. Path parameters are
/// the ones API Gateway matched, if any.
pub fn decode(event: &[u8], source: HttpSource) -> Result<HttpRequest, Error> {
    let shape = |e: serde_json::Error| Error::bad_input(format!("malformed {source:?} event: {e}"));
    match source {
        HttpSource::HttpV2 => {
            let e: ApiGatewayV2httpRequest = serde_json::from_slice(event).map_err(shape)?;
            let mut headers = e.headers;
            if let Some(cookies) = e.cookies.filter(|c| !c.is_empty()) {
                // HTTP APIs move cookies out of the headers; handlers expect them back.
                if let Ok(value) = HeaderValue::from_str(&cookies.join("; ")) {
                    headers.insert(http::header::COOKIE, value);
                }
            }
            cloudfn_core::event::mark_sensitive(&mut headers);
            let path = strip_stage(
                e.raw_path.as_deref().unwrap_or("/"),
                e.request_context.stage.as_deref(),
            );
            Ok(HttpRequest {
                method: e.request_context.http.method,
                path,
                query: e.raw_query_string.filter(|q| !q.is_empty()),
                headers,
                path_params: e.path_parameters.into_iter().collect(),
                body: body(e.body, e.is_base64_encoded)?,
            })
        }
        HttpSource::RestV1 => {
            let e: ApiGatewayProxyRequest = serde_json::from_slice(event).map_err(shape)?;
            // `path` is the request path without the stage; the stage only
            // appears in requestContext.path.
            Ok(HttpRequest {
                method: e.http_method,
                path: e.path.unwrap_or_else(|| "/".into()),
                query: query_string(
                    &e.multi_value_query_string_parameters,
                    &e.query_string_parameters,
                    true,
                ),
                headers: merge_headers(e.headers, e.multi_value_headers),
                path_params: e.path_parameters.into_iter().collect(),
                body: body(e.body, e.is_base64_encoded)?,
            })
        }
        HttpSource::Alb { .. } => {
            let e: AlbTargetGroupRequest = serde_json::from_slice(event).map_err(shape)?;
            // ALB passes query parameters still URL-encoded: keep them as they are.
            Ok(HttpRequest {
                method: e.http_method,
                path: e.path.unwrap_or_else(|| "/".into()),
                query: query_string(
                    &e.multi_value_query_string_parameters,
                    &e.query_string_parameters,
                    false,
                ),
                headers: merge_headers(e.headers, e.multi_value_headers),
                path_params: Default::default(),
                body: body(e.body, e.is_base64_encoded)?,
            })
        }
    }
}

/// HTTP APIs put the stage in `rawPath` (`/prod/orders`) unless it is
/// `$default`; routes are written without it.
fn strip_stage(raw_path: &str, stage: Option<&str>) -> String {
    match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => {
            let prefix = format!("/{stage}");
            match raw_path.strip_prefix(&prefix) {
                Some("") => "/".to_owned(),
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                _ => raw_path.to_owned(),
            }
        }
        _ => raw_path.to_owned(),
    }
}

fn body(body: Option<String>, base64: bool) -> Result<Bytes, Error> {
    match body {
        None => Ok(Bytes::new()),
        Some(text) if base64 => BASE64
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|e| Error::bad_input(format!("body is marked base64 but is not: {e}"))),
        Some(text) => Ok(Bytes::from(text)),
    }
}

/// Multi-value headers hold every value when present; single-value headers
/// fill in the rest.
fn merge_headers(mut single: HeaderMap, multi: HeaderMap) -> HeaderMap {
    cloudfn_core::event::mark_sensitive(&mut single);
    if multi.is_empty() {
        return single;
    }
    let mut merged = multi;
    cloudfn_core::event::mark_sensitive(&mut merged);
    for (name, value) in &single {
        if !merged.contains_key(name) {
            merged.insert(name.clone(), value.clone());
        }
    }
    merged
}

fn query_string(
    multi: &aws_lambda_events::query_map::QueryMap,
    single: &aws_lambda_events::query_map::QueryMap,
    encode: bool,
) -> Option<String> {
    let params = if multi.is_empty() { single } else { multi };
    if params.is_empty() {
        return None;
    }
    let pairs: Vec<(&str, &str)> = params.iter().collect();
    if encode {
        let mut out = form_urlencoded::Serializer::new(String::new());
        out.extend_pairs(pairs);
        Some(out.finish())
    } else {
        Some(
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        )
    }
}

/// An HTTP response in the shape of the integration that sent the request,
/// ready to serialise as the invocation's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum IntegrationResponse {
    /// For API Gateway REST APIs (payload 1.0).
    RestV1(ApiGatewayProxyResponse),
    /// For API Gateway HTTP APIs and Function URLs (payload 2.0).
    HttpV2(ApiGatewayV2httpResponse),
    /// For ALB target groups.
    Alb(AlbTargetGroupResponse),
}

/// The response in the shape `source` expects.
pub fn encode(response: HttpResponse, source: HttpSource) -> IntegrationResponse {
    let HttpResponse {
        status,
        headers,
        body,
    } = response;
    let (body, is_base64_encoded) = match std::str::from_utf8(&body) {
        Ok(text) => (Body::Text(text.to_owned()), false),
        Err(_) => (Body::Binary(body.to_vec()), true),
    };
    let status_code = i64::from(status.as_u16());
    match source {
        HttpSource::HttpV2 => {
            let mut out = ApiGatewayV2httpResponse::default();
            out.status_code = status_code;
            out.cookies = headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect();
            out.headers = joined_headers(&headers, true);
            out.body = Some(body);
            out.is_base64_encoded = is_base64_encoded;
            IntegrationResponse::HttpV2(out)
        }
        HttpSource::RestV1 => {
            // API Gateway merges `headers` into `multiValueHeaders`; filling
            // both would add a joined `set-cookie` beside the real ones.
            let mut out = ApiGatewayProxyResponse::default();
            out.status_code = status_code;
            out.multi_value_headers = text_headers(headers);
            out.body = Some(body);
            out.is_base64_encoded = is_base64_encoded;
            IntegrationResponse::RestV1(out)
        }
        HttpSource::Alb { multi_value } => {
            let reason = status.canonical_reason().unwrap_or("");
            let mut out = AlbTargetGroupResponse::default();
            out.status_code = status_code;
            out.status_description = Some(format!("{status_code} {reason}").trim_end().to_owned());
            // The target group reads only the field of its header mode.
            if multi_value {
                out.multi_value_headers = text_headers(headers);
            } else {
                out.headers = joined_headers(&headers, false);
            }
            out.body = Some(body);
            out.is_base64_encoded = is_base64_encoded;
            IntegrationResponse::Alb(out)
        }
    }
}

/// Headers as one value each; repeated headers joined with `, ` (except
/// `set-cookie` on HTTP APIs, which travels in `cookies`). Values that are
/// not text are left out, as everywhere in the answer.
fn joined_headers(headers: &HeaderMap, skip_cookies: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if skip_cookies && name == SET_COOKIE {
            continue;
        }
        let mut values = headers.get_all(name).iter().filter(|v| v.to_str().is_ok());
        let value = match values.next() {
            None => HeaderValue::from_static(""),
            // Cookies cannot be joined with commas; where only one value fits
            // (ALB without multi-value headers), the first one goes.
            Some(first) if name == SET_COOKIE => first.clone(),
            Some(first) => {
                let mut joined = first.as_bytes().to_vec();
                for value in values {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(value.as_bytes());
                }
                match HeaderValue::from_bytes(&joined) {
                    Ok(value) => value,
                    Err(_) => continue,
                }
            }
        };
        out.insert(name.clone(), value);
    }
    out
}

/// Every header value that is text: the typed responses cannot serialise
/// the others.
fn text_headers(headers: HeaderMap) -> HeaderMap {
    if headers.values().all(|v| v.to_str().is_ok()) {
        return headers;
    }
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        if value.to_str().is_ok() {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The HTTP API (payload 2.0) event API Gateway would send for `request`:
/// what the local emulation feeds a bootstrap.
pub fn v2_event(
    request: &HttpRequest,
    route_key: &str,
    request_id: &str,
) -> ApiGatewayV2httpRequest {
    let mut headers = HeaderMap::with_capacity(request.headers.keys_len());
    let mut cookies = Vec::new();
    for name in request.headers.keys() {
        let values: Vec<&str> = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == COOKIE {
            cookies.extend(values.iter().flat_map(|v| v.split("; ")).map(str::to_owned));
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&values.join(",")) {
            headers.insert(name.clone(), value);
        }
    }
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in request.query_pairs() {
        query.entry(name).or_default().push(value);
    }
    let (body, is_base64) = match std::str::from_utf8(&request.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (BASE64.encode(&request.body), true),
    };
    let now = chrono::Utc::now();

    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = request.method.clone();
    http.path = Some(request.path.clone());
    http.protocol = Some("HTTP/1.1".to_owned());
    http.source_ip = Some("127.0.0.1".to_owned());
    http.user_agent = Some(request.header("user-agent").unwrap_or("").to_owned());

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.account_id = Some("000000000000".to_owned());
    context.apiid = Some("cloudfn-local".to_owned());
    context.domain_name = Some(request.header("host").unwrap_or("localhost").to_owned());
    context.domain_prefix = Some("cloudfn-local".to_owned());
    context.http = http;
    context.request_id = Some(request_id.to_owned());
    context.route_key = Some(route_key.to_owned());
    context.stage = Some("$default".to_owned());
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(request.path.clone());
    event.raw_query_string = Some(request.query.clone().unwrap_or_default());
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters = request.path_params.clone().into_iter().collect();
    event.request_context = context;
    event.body = (!body.is_empty()).then_some(body);
    event.is_base64_encoded = is_base64;
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    keep_v1_method_truthful(&mut event, &request.method);
    event
}

/// The type still carries payload 1.0's `httpMethod` and always serialises
/// it; left alone it would say GET whatever the request.
#[allow(deprecated)]
fn keep_v1_method_truthful(event: &mut ApiGatewayV2httpRequest, method: &http::Method) {
    event.http_method = method.clone();
}

/// Reads an HTTP API (payload 2.0) response, as API Gateway does: a JSON
/// object with `statusCode`, or else any JSON taken as a 200 body.
pub fn decode_v2_response(value: Value) -> Result<HttpResponse, Error> {
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        return Ok(HttpResponse::json(200, &value));
    };
    let mut response = HttpResponse::new(status as u16);
    if let Some(headers) = value.get("headers").and_then(Value::as_object) {
        for (name, v) in headers {
            if let (Ok(name), Some(Ok(v))) = (
                HeaderName::try_from(name.as_str()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                response.headers.append(name, v);
            }
        }
    }
    for cookie in value
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Ok(v)) = cookie.as_str().map(HeaderValue::from_str) {
            response.headers.append(SET_COOKIE, v);
        }
    }
    let base64 = value
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    response.body = body(
        value.get("body").and_then(Value::as_str).map(str::to_owned),
        base64,
    )?;
    Ok(response)
}
