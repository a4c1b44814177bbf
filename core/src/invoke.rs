//! The invocation engine: what every provider calls to run a function once
//! its platform's event is read — duplicate suppression, the deadline, panics
//! caught per invocation, HTTP errors as responses, and batches with partial
//! failure and FIFO order.

use std::{borrow::Cow, future::Future, panic::AssertUnwindSafe, time::Duration};

use futures::{FutureExt, StreamExt};
use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use tracing::Instrument;

use crate::{
    Context, Error, Function, HttpRequest, HttpResponse, IdempotencyKey, Message, Trigger,
    event::{Event, Output},
    idempotency::{self, Claim},
    store::Version,
};

/// The most handlers of one batch that run at once. An SQS batch may hold
/// 10,000 messages: started all together they would open as many
/// connections to whatever the handlers call, and hold every one of their
/// buffers at the same time.
pub(crate) const MAX_RUNS_AT_ONCE: usize = 64;

/// Runs a [`Function`] on neutral events: what a provider calls once it has
/// read its platform's event. Handler authors never need it.
///
/// ```
/// use cloudfn_core::{Context, Error, Function, HttpRequest, HttpResponse, Method};
/// use cloudfn_core::provider::{ContextBuilder, Invoke, Services};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let f = Function::http("hi", Method::Get, "/", |_: HttpRequest, _: Context| async {
///     Ok::<_, Error>(HttpResponse::text(200, "hi"))
/// });
/// let ctx = ContextBuilder::new(&f, &Services::detached("test")).build();
/// let request = HttpRequest::new(http::Method::GET, "/");
/// assert_eq!(f.invoke_http(request, ctx).await.status, 200);
/// # });
/// ```
pub trait Invoke {
    /// Runs one invocation: duplicate suppression, the deadline, and a panic
    /// caught as an [`crate::ErrorKind::Internal`] error of this invocation
    /// alone; all inside a tracing span naming the function, invocation and
    /// attempt.
    fn invoke(
        &self,
        event: Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Output, Error>> + Send;

    /// Runs an HTTP invocation and always produces a response: the caller's
    /// own mistakes answer their kind's status with a JSON body; anything
    /// else is logged in full and answered with a generic 5xx naming the
    /// invocation, so nothing private reaches callers.
    fn invoke_http(
        &self,
        request: HttpRequest,
        ctx: Context,
    ) -> impl Future<Output = HttpResponse> + Send;

    /// Runs a batch of messages, each with its own context, and returns each
    /// one's result in order. One failure does not fail the others. On a FIFO
    /// trigger the messages of one ordering key run one at a time, in order
    /// (different keys side by side), and after a failure the later messages
    /// of that key are not attempted (and fail retryably) so their order holds.
    fn invoke_batch(
        &self,
        batch: Vec<(Message, Context)>,
    ) -> impl Future<Output = Vec<Result<(), Error>>> + Send;
}

impl Invoke for Function {
    fn invoke(
        &self,
        event: Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Output, Error>> + Send {
        self.run(event, ctx)
    }

    fn invoke_http(
        &self,
        request: HttpRequest,
        ctx: Context,
    ) -> impl Future<Output = HttpResponse> + Send {
        self.run_http(request, ctx)
    }

    fn invoke_batch(
        &self,
        batch: Vec<(Message, Context)>,
    ) -> impl Future<Output = Vec<Result<(), Error>>> + Send {
        self.run_batch(batch)
    }
}

impl Function {
    /// Runs one invocation: duplicate suppression, the deadline, and a panic
    /// caught as an [`crate::ErrorKind::Internal`] error of this invocation
    /// alone; all inside a tracing span naming the function, invocation and
    /// attempt.
    pub(crate) async fn run(&self, event: Event, ctx: Context) -> Result<Output, Error> {
        // A message goes on with the trace and correlation its sender handed on.
        let ctx = match &event {
            Event::Message(message) => ctx.continuing(&message.attributes),
            _ => ctx,
        };
        let span = tracing::info_span!(
            "invocation",
            function = %self.name,
            invocation_id = %ctx.invocation_id(),
            attempt = ctx.attempt(),
            trace_id = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
        );
        if let Some(trace_id) = ctx.trace_id() {
            span.record("trace_id", trace_id);
        }
        if let Event::Message(message) = &event
            && message
                .attributes
                .contains_key(crate::propagation::CORRELATION_ID)
        {
            span.record("correlation_id", ctx.correlation_id());
        }
        async move {
            let key = self.idempotency_key(&event);
            let mut claim = None;
            // The idempotency store's futures are boxed: most functions
            // have none, and would otherwise carry their size in every
            // invocation's future.
            if let Some(key) = &key {
                match Box::pin(self.claim(key, &ctx)).await? {
                    Some(token) => claim = Some(token),
                    None => {
                        tracing::info!(key = ?key, "duplicate delivery suppressed");
                        return Ok(Output::Done);
                    }
                }
            }
            let result = self.run_guarded(event, ctx.clone()).await;
            if let (Some(key), Some(held), Some(policy)) = (&key, claim, &self.policy.idempotency) {
                let store = ctx.idempotency_store();
                let recorded = match &result {
                    Ok(_) => Box::pin(idempotency::complete(&store, key, policy.ttl)).await,
                    Err(_) => Box::pin(idempotency::release(&store, key, held)).await,
                };
                if let Err(e) = recorded {
                    tracing::warn!(error = %e, key = ?key, "idempotency store failed");
                }
            }
            match &result {
                Ok(_) => tracing::debug!("invocation succeeded"),
                Err(e) => tracing::warn!(kind = %e.kind(), retryable = e.is_retryable(), error = %e, "invocation failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Runs `event` by the function's retry policy within this one call,
    /// for platforms that do not retry it by that policy themselves (a
    /// timer, a storage change): each attempt gets `context(attempt)`, and
    /// a retryable failure with attempts left waits out the backoff and runs
    /// again. What fails for good comes back with the attempt it failed on,
    /// for the caller to dead-letter.
    pub async fn invoke_retrying(
        &self,
        event: Event,
        context: impl Fn(u32) -> Context,
    ) -> Result<(), (Error, u32)> {
        let mut attempt = 1;
        loop {
            let Err(error) = self.run(event.clone(), context(attempt)).await else {
                return Ok(());
            };
            match crate::conventions::settle(&error, attempt, &self.policy.retry) {
                crate::conventions::Settlement::Retry { delay } => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                crate::conventions::Settlement::DeadLetter => return Err((error, attempt)),
            }
        }
    }

    /// Claims `key`; `None` if it was processed already. While another
    /// invocation holds it, waits for that one to finish (rather than failing
    /// and spending an attempt), up to this invocation's deadline.
    async fn claim(&self, key: &str, ctx: &Context) -> Result<Option<Version>, Error> {
        let store = ctx.idempotency_store();
        let mut pause = Duration::from_millis(5);
        loop {
            match idempotency::claim(&store, key, self.policy.timeout)
                .await
                .map_err(Error::private)?
            {
                Claim::Acquired(held) => return Ok(Some(held)),
                Claim::Completed => return Ok(None),
                Claim::InProgress if ctx.remaining() > pause => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Claim::InProgress => {
                    return Err(Error::unavailable(format!(
                        "key `{key}` is still being processed by another invocation"
                    )));
                }
            }
        }
    }

    async fn run_guarded(&self, event: Event, ctx: Context) -> Result<Output, Error> {
        let remaining = ctx.remaining();
        let run = AssertUnwindSafe((self.handler)(event, ctx)).catch_unwind();
        match tokio::time::timeout(remaining, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(Error::internal(format!(
                "handler panicked: {}",
                panic_message(panic.as_ref())
            ))),
            Err(_) => Err(Error::timeout(format!(
                "function `{}` ran past its deadline ({:?} left at start)",
                self.name, remaining
            ))),
        }
    }

    fn idempotency_key(&self, event: &Event) -> Option<String> {
        let (Some(idempotency), Event::Message(message)) = (&self.policy.idempotency, event) else {
            return None;
        };
        let key = match &idempotency.key {
            // A topic message's copies and redeliveries share the publisher's
            // id, whatever the subscription queue called them.
            IdempotencyKey::MessageId => message
                .attribute(crate::messaging::PUBLISHED_ID)
                .unwrap_or(&message.id)
                .to_owned(),
            // A body without the field has no business key; fall back to the
            // message id so redeliveries are still suppressed.
            IdempotencyKey::BodyField(pointer) => {
                body_field(&message.body, pointer).unwrap_or_else(|| message.id.clone())
            }
        };
        Some(format!("{}/{}", self.name, key))
    }

    /// Runs an HTTP invocation and always produces a response: the caller's
    /// own mistakes answer their kind's status with a JSON body; anything
    /// else is logged in full and answered with a generic 5xx naming the
    /// invocation ([`HttpResponse::from_invocation_error`]).
    pub(crate) async fn run_http(&self, request: HttpRequest, ctx: Context) -> HttpResponse {
        if request.body.len() > self.policy.max_body_bytes {
            return HttpResponse::from_error(&Error::too_large(format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                request.body.len(),
                self.policy.max_body_bytes
            )));
        }
        let invocation_id = ctx.invocation_id().to_owned();
        match self.run(Event::Http(request), ctx).await {
            Ok(Output::Http(response)) => response,
            Ok(Output::Done | Output::Value(_)) => HttpResponse::new(204),
            Err(e) => HttpResponse::from_invocation_error(&e, &invocation_id),
        }
    }

    /// Runs a batch of messages, each with its own context, and returns each
    /// one's result in order. One failure does not fail the others. On a FIFO
    /// trigger the messages of one ordering key run one at a time, in order
    /// (different keys side by side), and after a failure the later messages
    /// of that key are not attempted (and fail retryably) so their order holds.
    pub(crate) async fn run_batch(&self, batch: Vec<(Message, Context)>) -> Vec<Result<(), Error>> {
        let fifo = matches!(self.trigger, Trigger::Queue { fifo: true, .. });
        if !fifo {
            let runs = batch
                .into_iter()
                .map(|(message, ctx)| self.run(Event::Message(message), ctx));
            return futures::stream::iter(runs)
                .buffered(MAX_RUNS_AT_ONCE)
                .map(|r| r.map(|_| ()))
                .collect()
                .await;
        }
        // Groups run side by side; within a group, one at a time in order,
        // and once one fails the rest of its group is not attempted.
        type Group = (Option<String>, Vec<(usize, Message, Context)>);
        let mut groups: Vec<Group> = Vec::new();
        let total = batch.len();
        for (index, (message, ctx)) in batch.into_iter().enumerate() {
            match groups
                .iter_mut()
                .find(|(key, _)| *key == message.ordering_key)
            {
                Some((_, items)) => items.push((index, message, ctx)),
                None => groups.push((message.ordering_key.clone(), vec![(index, message, ctx)])),
            }
        }
        let runs = groups.into_iter().map(|(key, items)| async move {
            let mut results = Vec::with_capacity(items.len());
            let mut failed = false;
            for (index, message, ctx) in items {
                let result = if failed {
                    Err(Error::unavailable(format!(
                        "not attempted: an earlier message of ordering key {key:?} failed"
                    )))
                } else {
                    self.run(Event::Message(message), ctx).await.map(|_| ())
                };
                failed |= result.is_err();
                results.push((index, result));
            }
            results
        });
        let mut ordered: Vec<Option<Result<(), Error>>> = (0..total).map(|_| None).collect();
        let groups: Vec<_> = futures::stream::iter(runs)
            .buffer_unordered(MAX_RUNS_AT_ONCE)
            .collect()
            .await;
        for (index, result) in groups.into_iter().flatten() {
            ordered[index] = Some(result);
        }
        ordered
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect()
    }
}

/// The text of the field JSON pointer `pointer` names in `body`: a string
/// without its quotes, any other value as its JSON text; `None` when the
/// body is not JSON or has no such field.
///
/// The same answer as `Value::pointer` on the parsed body, but only the
/// field itself is built: the rest of the body is checked and skipped.
fn body_field(body: &[u8], pointer: &str) -> Option<String> {
    let tokens: Vec<Cow<'_, str>> = match pointer {
        "" => Vec::new(),
        _ => pointer
            .strip_prefix('/')?
            .split('/')
            .map(|token| {
                if token.contains('~') {
                    Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
                } else {
                    Cow::Borrowed(token)
                }
            })
            .collect(),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let field = Walk(&tokens).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    field.map(|value| match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Follows the pointer's remaining tokens down one JSON value, skipping
/// everything off the path, and gives the value at its end.
struct Walk<'p>(&'p [Cow<'p, str>]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<serde_json::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.0 {
            [] => serde_json::Value::deserialize(deserializer).map(Some),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = (&self.0[0], &self.0[1..]);
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(token))? {
            if matches {
                // A repeated key counts as its last occurrence, as in a
                // `serde_json::Value`.
                found = map.next_value_seed(Walk(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = (&self.0[0], &self.0[1..]);
        // As `Value::pointer` reads an index: no sign, no leading zero.
        let index = if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
            None
        } else {
            token.parse::<usize>().ok()
        };
        let mut found = None;
        let mut at = 0;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(Walk(rest))? {
                    Some(field) => found = field,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object key is the pointer's token, without copying the key.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod batch_tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::provider::{ContextBuilder, Services};

    /// A batch of thousands runs at most [`MAX_RUNS_AT_ONCE`] handlers at a
    /// time, standard and FIFO alike, and every message still gets its own
    /// result in order.
    #[tokio::test]
    async fn a_big_batch_runs_a_bounded_number_at_once() {
        for fifo in [false, true] {
            let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (r, m) = (running.clone(), most.clone());
            let handler = move |message: Message<String>, _: Context| {
                let (running, most) = (r.clone(), m.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Let every other started handler run up to here too.
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    match message.body.as_str() {
                        "fail" => Err(Error::invalid("no")),
                        _ => Ok(()),
                    }
                }
            };
            let function = if fifo {
                Function::fifo_queue("work", "jobs", handler)
            } else {
                Function::queue("work", "jobs", handler)
            };
            let services = Services::detached("test");
            let batch: Vec<_> = (0..1_000)
                .map(|i| {
                    let mut message = Message::new(
                        i.to_string(),
                        "jobs",
                        if i == 7 { r#""fail""# } else { r#""ok""# },
                    );
                    message.ordering_key = Some(format!("g-{i}"));
                    (message, ContextBuilder::new(&function, &services).build())
                })
                .collect();
            let results = function.run_batch(batch).await;
            assert_eq!(results.len(), 1_000);
            assert!(results[7].is_err() && results.iter().filter(|r| r.is_err()).count() == 1);
            let most = most.load(Ordering::SeqCst);
            assert!(
                (2..=MAX_RUNS_AT_ONCE).contains(&most) && most < 1_000,
                "fifo {fifo}: {most} handlers ran at once"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::body_field;

    /// What reading the whole body as a `Value` gives, the reference.
    fn by_value(body: &str, pointer: &str) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|body| {
                body.pointer(pointer).map(|value| match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
    }

    #[test]
    fn a_body_field_reads_as_the_whole_parsed_body_would() {
        let body = r#"{"id":"o-1","n":42,"f":1.5,"ok":true,"none":null,
            "nested":{"b":[1,{"c":"deep"}],"a":{"z":1,"y":[2]}},
            "list":["x","y"],"a/b":"slash","m~n":"tilde","escaped":"yes",
            "dup":1,"dup":{"k":"last"},"":"empty","big":123456789012345678901234567890}"#;
        for pointer in [
            "",
            "/id",
            "/n",
            "/f",
            "/ok",
            "/none",
            "/nested",
            "/nested/b",
            "/nested/b/1/c",
            "/nested/b/0",
            "/nested/b/2",
            "/nested/b/01",
            "/nested/b/+1",
            "/nested/b/-1",
            "/nested/a",
            "/list/1",
            "/list/x",
            "/a~1b",
            "/m~0n",
            "/escaped",
            "/dup",
            "/dup/k",
            "/",
            "/big",
            "/missing",
            "/id/deeper",
            "id",
        ] {
            assert_eq!(
                body_field(body.as_bytes(), pointer),
                by_value(body, pointer),
                "{pointer:?}"
            );
        }
        assert_eq!(body_field(body.as_bytes(), "/id").as_deref(), Some("o-1"));
        assert_eq!(body_field(body.as_bytes(), "/n").as_deref(), Some("42"));
    }

    #[test]
    fn a_body_that_is_not_json_has_no_field() {
        for body in [
            "plain text",
            r#"{"id":"o-1""#,
            r#"{"id":"o-1"} trailing"#,
            r#"{"id":"o-1","rest":[1,2}"#,
            "",
        ] {
            assert_eq!(body_field(body.as_bytes(), "/id"), None, "{body}");
            assert_eq!(by_value(body, "/id"), None, "{body}");
        }
        assert_eq!(body_field(br#"["a","b"]"#, "/1").as_deref(), Some("b"));
        assert_eq!(body_field(br#""text""#, "").as_deref(), Some("text"));
    }
}
