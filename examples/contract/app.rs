//! The app the contract suite runs on every provider: one small function per
//! promise, each reporting what it saw to the `observed` queue so the suite
//! can watch it from outside, whatever process or cloud ran it.

use std::time::Duration;

use cloudfn::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Idempotency, Message, Method,
    RetryPolicy,
};
use serde::{Deserialize, Serialize};

/// Where every function reports what it did.
pub const OBSERVED: &str = "observed";
/// The work queue, and where its failures land.
pub const JOBS: &str = "jobs";
pub const JOBS_DLQ: &str = "jobs-dlq";
/// The FIFO queue.
pub const LEDGER: &str = "ledger";
/// The topic a handler publishes to and another function subscribes to.
pub const EVENTS: &str = "events";

/// The store one function writes and others read or race on.
pub const NOTES: &str = "notes";

/// Attempts of a `jobs` message before it is dead-lettered.
pub const JOB_ATTEMPTS: u32 = 3;

/// One report to `observed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Which function reported.
    pub function: String,
    /// The scenario's key, unique per run.
    pub key: String,
    /// The delivery attempt.
    pub attempt: u32,
    /// What the function did: `ok`, `failed`, or what it read.
    pub outcome: String,
    /// When it did it. Reports travel on a standard queue, which may
    /// reorder them; this keeps the order the functions ran in.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The W3C trace the function ran in.
    #[serde(default)]
    pub trace_id: String,
    /// The correlation id the function ran with.
    #[serde(default)]
    pub correlation_id: String,
}

/// A `jobs` message: fails retryably until attempt `fail_until` is past.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    #[serde(default)]
    pub fail_until: u32,
}

/// A `ledger` message: its sequence number within its ordering key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub seq: u32,
    #[serde(default)]
    pub fail_first: bool,
}

/// An order as `POST /orders` reads it.
#[derive(Debug, Deserialize)]
pub struct Order {
    pub id: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
}

async fn observe(ctx: &Context, key: &str, outcome: impl Into<String>) -> Result<(), Error> {
    let observation = Observation {
        function: ctx.function_name().to_owned(),
        key: key.to_owned(),
        attempt: ctx.attempt(),
        outcome: outcome.into(),
        at: chrono::Utc::now(),
        trace_id: ctx.w3c_trace_id().to_owned(),
        correlation_id: ctx.correlation_id().to_owned(),
    };
    ctx.queue(OBSERVED).send(&observation).await.map(|_| ())
}

/// `GET /echo/{name}`: what arrived, as JSON.
async fn echo(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let body = serde_json::json!({
        "name": req.path_param("name")?,
        "q": req.query_param("q"),
        "probe": req.header("x-probe"),
        "method": req.method.as_str(),
    });
    Ok(HttpResponse::json(200, &body).with_header("x-echo", "yes"))
}

/// `POST /orders`: 400 naming the field for a body of the wrong shape, 422
/// for an order with no items, else 202.
async fn orders(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let order: Order = req.json()?;
    if order.items.is_empty() || order.items.iter().any(|i| i.qty == 0 || i.sku.is_empty()) {
        return Err(Error::invalid(
            "an order needs items, each with a sku and a qty above 0",
        ));
    }
    Ok(HttpResponse::json(
        202,
        &serde_json::json!({ "id": order.id }),
    ))
}

/// `GET /slow`: runs past its one-second timeout.
async fn slow(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(HttpResponse::text(200, "too late"))
}

/// `GET /panic?boom=1` panics; without `boom` it answers 200, from the same
/// process.
async fn panics(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    if req.query_param("boom").is_some() {
        panic!("boom, as asked");
    }
    Ok(HttpResponse::text(200, "still here"))
}

/// `POST /undeclared`: sends to a queue it never declared, so the send is
/// refused with a message naming the function and the queue — a failure of
/// the function's making, which the caller must not see.
async fn undeclared(_: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    ctx.queue(JOBS).send(&serde_json::json!({})).await?;
    Ok(HttpResponse::new(202))
}

/// `POST /publish/{key}`: publishes the key to `events`; answers the trace
/// and correlation id the message carries on.
async fn publish(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let key = req.path_param("key")?.to_owned();
    ctx.topic(EVENTS)
        .publish(&serde_json::json!({ "key": key }))
        .await?;
    Ok(HttpResponse::json(
        202,
        &serde_json::json!({
            "trace_id": ctx.w3c_trace_id(),
            "correlation_id": ctx.correlation_id(),
        }),
    ))
}

/// Subscribed to `events`: reports each key it hears.
async fn listen(msg: Message<serde_json::Value>, ctx: Context) -> Result<(), Error> {
    let key = msg.body["key"].as_str().unwrap_or_default().to_owned();
    observe(&ctx, &key, "heard").await
}

/// Consumes `jobs`: fails retryably until its attempt passes `fail_until`.
async fn work(msg: Message<Job>, ctx: Context) -> Result<(), Error> {
    if ctx.attempt() <= msg.body.fail_until {
        observe(&ctx, &msg.body.id, "failed").await?;
        return Err(Error::unavailable(format!(
            "job {} fails until attempt {}",
            msg.body.id, msg.body.fail_until
        )));
    }
    observe(&ctx, &msg.body.id, "ok").await
}

/// Consumes the FIFO `ledger`: reports each entry's sequence number; an
/// entry marked `fail_first` fails its first attempt.
async fn book(msg: Message<Entry>, ctx: Context) -> Result<(), Error> {
    let entry = msg.body;
    if entry.fail_first && ctx.attempt() == 1 {
        return Err(Error::unavailable(format!(
            "entry {} fails once",
            entry.seq
        )));
    }
    observe(&ctx, &entry.key, entry.seq.to_string()).await
}

/// `PUT /notes/{key}`: keeps the body (JSON) under the key; 204.
async fn note_put(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let value: serde_json::Value = req.json()?;
    ctx.store(NOTES).put(req.path_param("key")?, &value).await?;
    Ok(HttpResponse::new(204))
}

/// `GET /notes/{key}`: what is kept under the key, or 404.
async fn note_get(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let key = req.path_param("key")?;
    let note = ctx
        .store(NOTES)
        .get::<serde_json::Value>(key)
        .await?
        .ok_or_else(|| Error::not_found(format!("no note `{key}`")))?;
    Ok(HttpResponse::json(200, &note.value))
}

/// `POST /claims/{side}/{key}` (served by `claim-a` and `claim-b`): keeps
/// the side under the key unless something is there; 201 if this request
/// did, 409 if another got there first.
async fn claim(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let key = format!("claim-{}", req.path_param("key")?);
    let me = ctx.function_name().to_owned();
    match ctx.store(NOTES).put_if_absent(&key, &me).await? {
        Some(_) => Ok(HttpResponse::json(201, &me)),
        None => Err(Error::conflict(format!("`{key}` is taken"))),
    }
}

/// Every minute: reports that it fired.
async fn tick(tick: cloudfn::ScheduledTick, ctx: Context) -> Result<(), Error> {
    observe(&ctx, "tick", tick.scheduled_time.to_rfc3339()).await
}

/// Quick retries: a contract run should not wait on production backoff.
fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts)
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_millis(400))
}

/// The variable that, set to `off`, leaves the FIFO function out: for
/// providers without FIFO queues, which skip its scenario and would refuse
/// the app.
pub const FIFO_VARIABLE: &str = "CONTRACT_FIFO";

/// The contract app, as the environment asks ([`FIFO_VARIABLE`]).
pub fn app() -> App {
    app_for(std::env::var(FIFO_VARIABLE).as_deref() != Ok("off"))
}

/// The contract app, with its FIFO function or without.
pub fn app_for(fifo: bool) -> App {
    let app = App::new("contract")
        .function(Function::http("echo", Method::Get, "/echo/{name}", echo))
        .function(Function::http("orders", Method::Post, "/orders", orders))
        .function(
            Function::http("slow", Method::Get, "/slow", slow).timeout(Duration::from_secs(1)),
        )
        .function(Function::http("panics", Method::Get, "/panic", panics))
        .function(Function::http(
            "undeclared",
            Method::Post,
            "/undeclared",
            undeclared,
        ))
        .function(
            Function::http("publish", Method::Post, "/publish/{key}", publish).publishes_to(EVENTS),
        )
        .function(Function::topic("listen", EVENTS, listen).sends_to(OBSERVED))
        .function(
            Function::queue("work", JOBS, work)
                .retry(quick(JOB_ATTEMPTS))
                .dead_letter(JOBS_DLQ)
                .idempotent(Idempotency::by_body_field("/id"))
                .timeout(Duration::from_secs(10))
                .sends_to(OBSERVED),
        )
        .function(Function::schedule("tick", "* * * * *", tick).sends_to(OBSERVED))
        .function(
            Function::http("note-put", Method::Put, "/notes/{key}", note_put).uses_store(NOTES),
        )
        .function(
            Function::http("note-get", Method::Get, "/notes/{key}", note_get).reads_store(NOTES),
        )
        // Two functions, so on a cloud the race is between two processes.
        .function(
            Function::http("claim-a", Method::Post, "/claims/a/{key}", claim).uses_store(NOTES),
        )
        .function(
            Function::http("claim-b", Method::Post, "/claims/b/{key}", claim).uses_store(NOTES),
        );
    if !fifo {
        return app;
    }
    app.function(
        Function::fifo_queue("book", LEDGER, book)
            .retry(quick(5))
            .timeout(Duration::from_secs(10))
            .sends_to(OBSERVED),
    )
}
