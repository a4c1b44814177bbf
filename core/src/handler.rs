//! Handlers: plain async functions, or any `tower::Service` for HTTP.

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use crate::{
    Context, Error, HttpRequest, HttpResponse, Message,
    event::{Event, Output},
};

/// Something that handles events of type `E` and produces `O`.
///
/// Implemented for every `async fn(E, Context) -> Result<O, Error>` (and
/// closures of that shape), so a handler is usually just a function:
///
/// ```
/// use cloudfn_core::{Context, Error, HttpRequest, HttpResponse};
///
/// async fn hello(req: HttpRequest, _ctx: Context) -> Result<HttpResponse, Error> {
///     let name = req.query_param("name").unwrap_or_else(|| "world".into());
///     Ok(HttpResponse::text(200, format!("hello, {name}")))
/// }
/// # fn assert_handler<H: cloudfn_core::Handler<HttpRequest, HttpResponse>>(_: H) {}
/// # assert_handler(hello);
/// ```
pub trait Handler<E, O>: Send + Sync + 'static {
    /// The future of one invocation.
    type Future: Future<Output = Result<O, Error>> + Send + 'static;

    /// Handles one event.
    fn call(&self, event: E, ctx: Context) -> Self::Future;
}

impl<F, Fut, E, O> Handler<E, O> for F
where
    F: Fn(E, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, Error>> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, event: E, ctx: Context) -> Fut {
        self(event, ctx)
    }
}

/// A handler with its event type erased, as [`crate::Function`] stores it.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(Event, Context) -> BoxFuture<'static, Result<Output, Error>> + Send + Sync>;

fn wrong_event(expected: &str, got: &Event) -> Error {
    Error::internal(format!(
        "a {expected} function was invoked with a {} event",
        got.kind()
    ))
}

pub(crate) fn erase_http<H>(handler: H) -> ErasedHandler
where
    H: Handler<HttpRequest, HttpResponse>,
{
    let handler = Arc::new(handler);
    Arc::new(move |event, ctx| {
        let handler = handler.clone();
        Box::pin(async move {
            match event {
                Event::Http(req) => handler.call(req, ctx).await.map(Output::Http),
                other => Err(wrong_event("http", &other)),
            }
        })
    })
}

pub(crate) fn erase_message<T, H>(handler: H) -> ErasedHandler
where
    T: serde::de::DeserializeOwned + Send + 'static,
    H: Handler<Message<T>, ()>,
{
    erase_decoded(handler, "message", |()| Ok(Output::Done))
}

/// A step function's handler: the step's input arrives as a message (see
/// [`crate::workflow::StepCall`]) and what it returns is the step's output.
pub(crate) fn erase_step<T, O, H>(handler: H) -> ErasedHandler
where
    T: serde::de::DeserializeOwned + Send + 'static,
    O: serde::Serialize + Send + 'static,
    H: Handler<Message<T>, O>,
{
    erase_decoded(handler, "step", |output| {
        serde_json::to_value(output)
            .map(Output::Value)
            .map_err(|e| Error::internal(format!("the step's output cannot be serialised: {e}")))
    })
}

/// Erases a handler of messages whose body is read as JSON into `T`, its
/// result made an [`Output`] by `output`.
fn erase_decoded<T, O, H>(
    handler: H,
    label: &'static str,
    output: fn(O) -> Result<Output, Error>,
) -> ErasedHandler
where
    T: serde::de::DeserializeOwned + Send + 'static,
    O: Send + 'static,
    H: Handler<Message<T>, O>,
{
    let handler = Arc::new(handler);
    Arc::new(move |event, ctx| {
        let handler = handler.clone();
        Box::pin(async move {
            match event {
                Event::Message(raw) => output(handler.call(raw.decode::<T>()?, ctx).await?),
                other => Err(wrong_event(label, &other)),
            }
        })
    })
}

/// Erases a handler of an event kind that [`Event`] carries as-is.
macro_rules! erase_plain {
    ($fn_name:ident, $ty:ty, $variant:ident, $label:literal) => {
        pub(crate) fn $fn_name<H>(handler: H) -> ErasedHandler
        where
            H: Handler<$ty, ()>,
        {
            let handler = Arc::new(handler);
            Arc::new(move |event, ctx| {
                let handler = handler.clone();
                Box::pin(async move {
                    match event {
                        Event::$variant(e) => handler.call(e, ctx).await.map(|()| Output::Done),
                        other => Err(wrong_event($label, &other)),
                    }
                })
            })
        }
    };
}

erase_plain!(erase_tick, crate::ScheduledTick, Tick, "schedule");
erase_plain!(erase_storage, crate::StorageEvent, Storage, "storage");

/// The error type `tower` services commonly box into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `tower::Service` that can serve an HTTP function: an axum `Router`, or
/// any service from `http::Request` to `http::Response`. Implemented for every
/// such service; it only names the bounds once.
pub trait HttpService<B>:
    tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower::Service<
            http::Request<Full<Bytes>>,
            Response = http::Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// Adapts an [`HttpService`] into an HTTP handler. The route's parameters
/// travel in the request's extensions as [`PathParams`].
pub(crate) fn erase_service<S, B>(service: S) -> ErasedHandler
where
    S: HttpService<B>,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    erase_http(move |req: HttpRequest, _ctx: Context| {
        let service = service.clone();
        async move {
            let request = to_http_request(req)?;
            let response = service
                .oneshot(request)
                .await
                .map_err(|e| Error::internal(format!("HTTP service failed: {}", e.into())))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| Error::internal(format!("HTTP service body failed: {}", e.into())))?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        }
    })
}

/// The route parameters of a request handed to a `tower::Service` handler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(pub std::collections::BTreeMap<String, String>);

fn to_http_request(req: HttpRequest) -> Result<http::Request<Full<Bytes>>, Error> {
    let uri = match &req.query {
        Some(query) => format!("{}?{}", req.path, query),
        None => req.path.clone(),
    };
    let mut request = http::Request::builder()
        .method(req.method)
        .uri(uri)
        .body(Full::new(req.body))
        .map_err(|e| Error::bad_input(format!("request cannot be rebuilt: {e}")))?;
    *request.headers_mut() = req.headers;
    request.extensions_mut().insert(PathParams(req.path_params));
    Ok(request)
}
