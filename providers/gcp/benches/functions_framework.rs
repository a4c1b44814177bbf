//! The functions-framework server against its peers, in one run, on
//! loopback:
//!
//! - checkout: the shop's `POST /orders` — the JSON order read, its
//!   customer and items checked as the shop checks them, 202 with a fresh
//!   order id — served by cloudfn-gcp (`serve_on`, an HTTP function on its
//!   route), by a bare hyper server doing the same with `serde_json` and
//!   nothing else, and by Google's functions framework for Node.js running
//!   the same checkout in JavaScript (`bench/peers/ff-node`). The shop's
//!   own checkout also records the order in a store and sends it to a
//!   queue; here no contender does, so that the server is what is measured.
//! - push: a Pub/Sub push envelope POSTed to a queue function, the order
//!   in its base64 `data` decoded and checked, 204 (an ack): cloudfn-gcp
//!   against bare hyper with serde_json, base64 and chrono.
//!
//! Each Rust server runs alone on a thread of its own (a current-thread
//! runtime; the client has the other core), as Node runs its event loop,
//! and each server's CPU time per request is reported beside the rates
//! (Node's counts every thread of its process: the garbage collector's
//! helpers too). Then, with criterion, the same work without sockets: one
//! request in memory answered by `FunctionServer::answer` against the
//! peer's function.
//!
//! Then start-up to the first answered request of the `hello` example
//! built with the `gcp` feature, when `CLOUDFN_HELLO` names it — with
//! `GOOGLE_CLOUD_PROJECT` set, as deployed (the Pub/Sub and Firestore
//! clients are built before serving), and without — and of the Node peer.
//! With criterion's `--profile-time`, only the in-memory work runs.
//!
//! The Node peer is found in `$FF_NODE_MODULES`, else in
//! `${XDG_CACHE_HOME:-~/.cache}/cloudfn-bench/ff-node/node_modules`, where
//! `scripts/bench-gcp` installs it; without it (or without `node`) its
//! column is skipped, saying so.
//!
//! cargo bench -p cloudfn-gcp --bench functions_framework

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudfn_bench_support::{
    CONNECTIONS, Column, Load, ROUND, ROUNDS, Ready, Round, STARTS, client_runtime, drive,
    first_answer, free_port, measure, median, metered, process_cpu_time, range, serve_hyper,
    start_ups,
};
use cloudfn_core::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method, provider::Services,
};
use cloudfn_gcp::runtime::FunctionServer;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// One line of an order, as the shop has it.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Read, as the shop reads it; the bench only checks `qty`.
struct LineItem {
    sku: String,
    qty: u32,
}

/// What a customer posts to `/orders`.
#[derive(Debug, Deserialize)]
struct NewOrder {
    customer: String,
    items: Vec<LineItem>,
}

/// An accepted order, as it travels on the `orders` queue.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Read whole, as the shop's `charge` reads it.
struct Order {
    id: String,
    customer: String,
    items: Vec<LineItem>,
}

/// The shop's checks of an order, shared by the contenders so that they
/// do the same work: the field at fault and why, or nothing.
fn problem(customer: &str, items: &[LineItem]) -> Option<(String, &'static str)> {
    if !customer.contains('@') {
        return Some(("customer".into(), "customer must be an email address"));
    }
    if items.is_empty() {
        return Some(("items".into(), "an order needs at least one item"));
    }
    let zero = items.iter().position(|item| item.qty == 0)?;
    Some((format!("items[{zero}].qty"), "qty must be at least 1"))
}

/// The shop's checkout, without its store and queue.
async fn checkout(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    let new: NewOrder = req.json()?;
    if let Some((field, message)) = problem(&new.customer, &new.items) {
        return Err(Error::invalid(message).with_field(field));
    }
    let id = uuid::Uuid::new_v4().to_string();
    Ok(HttpResponse::json(
        202,
        &json!({ "id": id, "status": "accepted" }),
    ))
}

/// The shop's `charge`, reduced to reading the order: a bad one fails for
/// good (and would be dead-lettered).
async fn charge(message: Message<Order>, _: Context) -> Result<(), Error> {
    let order = &message.body;
    match problem(&order.customer, &order.items) {
        Some((field, why)) => Err(Error::invalid(why).with_field(field)),
        None => Ok(()),
    }
}

fn shop() -> App {
    App::new("shop")
        .function(Function::http("checkout", Method::Post, "/orders", checkout).public())
        .function(Function::queue("charge", "orders", charge))
}

/// What the contenders are sent.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    Checkout,
    Push,
}

impl Work {
    /// The function of [`shop`] that does it.
    fn target(self) -> &'static str {
        match self {
            Work::Checkout => "checkout",
            Work::Push => "charge",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Work::Checkout => "/orders",
            Work::Push => "/",
        }
    }

    fn status(self) -> u16 {
        match self {
            Work::Checkout => 202,
            Work::Push => 204,
        }
    }

    fn body(self) -> Bytes {
        let order = json!({
            "customer": "ada@example.com",
            "items": [{"sku": "BOOK-1", "qty": 2}, {"sku": "PEN-7", "qty": 1}]
        });
        let body = match self {
            Work::Checkout => order,
            // As Pub/Sub pushes it: ids and times in both cases.
            Work::Push => {
                let mut order = order;
                order["id"] = json!("7f9c6a2e-4b1d-4c55-9a57-0c6f4f3f1e2d");
                json!({
                    "message": {
                        "data": STANDARD.encode(order.to_string()),
                        "attributes": {"tenant": "t-1"},
                        "messageId": "2070443601311540",
                        "message_id": "2070443601311540",
                        "publishTime": "2026-11-27T10:00:00.123Z",
                        "publish_time": "2026-11-27T10:00:00.123Z"
                    },
                    "subscription": "projects/shop/subscriptions/orders-charge"
                })
            }
        };
        Bytes::from(body.to_string())
    }

    fn request(self, body: &Bytes) -> http::Request<Full<Bytes>> {
        http::Request::post(self.path())
            // Node's server refuses an HTTP/1.1 request without one.
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .unwrap()
    }
}

/// The push envelope as a hand-written function reads it.
#[derive(Deserialize)]
#[allow(dead_code)] // Read, as a function would; the bench needs `data` alone.
struct Envelope {
    message: PubsubMessage,
    subscription: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PubsubMessage {
    #[serde(default)]
    data: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(rename = "publishTime")]
    publish_time: DateTime<Utc>,
}

/// The peer: hyper and serde_json alone, doing what the function does.
async fn bare<B>(work: Work, request: http::Request<B>) -> http::Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes>,
{
    let answer = |status: u16, body: String| {
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        if status != 204 {
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
        }
        response
    };
    let invalid = |field: &str, message: &str| {
        answer(400, json!({ "error": message, "field": field }).to_string())
    };
    if work == Work::Checkout && request.uri().path() != "/orders" {
        return answer(404, json!({ "error": "no route" }).to_string());
    }
    if request.method() != http::Method::POST {
        return answer(405, json!({ "error": "POST only" }).to_string());
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match work {
        Work::Checkout => {
            let new: NewOrder = match serde_json::from_slice(&body) {
                Ok(new) => new,
                Err(e) => return invalid("", &e.to_string()),
            };
            if let Some((field, message)) = problem(&new.customer, &new.items) {
                return invalid(&field, message);
            }
            let id = uuid::Uuid::new_v4().to_string();
            answer(202, json!({ "id": id, "status": "accepted" }).to_string())
        }
        Work::Push => {
            let envelope: Envelope = match serde_json::from_slice(&body) {
                Ok(envelope) => envelope,
                Err(e) => return invalid("", &e.to_string()),
            };
            let Ok(data) = STANDARD.decode(&envelope.message.data) else {
                return invalid("message.data", "not base64");
            };
            let order: Order = match serde_json::from_slice(&data) {
                Ok(order) => order,
                Err(e) => return invalid("message.data", &e.to_string()),
            };
            match problem(&order.customer, &order.items) {
                Some((field, message)) => invalid(&field, message),
                None => answer(204, String::new()),
            }
        }
    }
}

async fn serve_bare(work: Work, listener: tokio::net::TcpListener, stop: CancellationToken) {
    serve_hyper(listener, stop, move |r| bare(work, r)).await;
}

async fn serve_cloudfn(work: Work, listener: tokio::net::TcpListener, stop: CancellationToken) {
    let services = Services::detached(cloudfn_gcp::PROVIDER);
    cloudfn_gcp::serve_on(shop(), Some(work.target()), services, listener, stop)
        .await
        .unwrap();
}

/// [`drive`] with `work`'s request, expecting its status.
async fn drive_work(address: SocketAddr, work: Work) -> Load {
    let body = work.body();
    drive(address, move || work.request(&body), work.status()).await
}

/// Where the Node peer's `node_modules` is, if installed.
fn node_modules() -> Option<PathBuf> {
    let modules = match std::env::var_os("FF_NODE_MODULES") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?
            .join("cloudfn-bench/ff-node/node_modules"),
    };
    modules
        .join(".bin/functions-framework")
        .exists()
        .then_some(modules)
}

/// The peer's source: `bench/peers/ff-node` of this repository.
fn node_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/ff-node")
}

/// The functions framework for Node.js serving the checkout, on `port`.
fn spawn_node(modules: &Path, port: u16) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg(modules.join(".bin/functions-framework"))
        .arg("--target=checkout")
        .arg("--signature-type=http")
        .arg(format!("--port={port}"))
        .arg(format!("--source={}", node_source().display()))
        .env("NODE_ENV", "production")
        // So that the function's `require` finds the framework that runs it
        // (one module, one registry of functions).
        .env("NODE_PATH", modules)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run node")
}

/// The Node peer, started once and kept for every round.
struct NodePeer {
    child: tokio::process::Child,
    address: std::net::SocketAddr,
}

impl NodePeer {
    async fn start() -> Option<Self> {
        let Some(modules) = node_modules() else {
            println!(
                "\nSKIPPED the Node peer: @google-cloud/functions-framework is not installed \
                 (scripts/bench-gcp installs it, or set FF_NODE_MODULES)"
            );
            return None;
        };
        if std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_err()
        {
            println!("\nSKIPPED the Node peer: no `node` on PATH");
            return None;
        }
        let port = free_port();
        let child = spawn_node(&modules, port);
        let body = Work::Checkout.body();
        tokio::time::timeout(
            Duration::from_secs(30),
            first_answer(port, || Work::Checkout.request(&body), Ready::Status(202)),
        )
        .await
        .expect("the Node peer did not answer within 30 s");
        Some(Self {
            child,
            address: ([127, 0, 0, 1], port).into(),
        })
    }

    async fn measure(&self) -> Round {
        let pid = self.child.id().unwrap();
        metered(
            || process_cpu_time(pid),
            drive_work(self.address, Work::Checkout),
        )
        .await
    }
}

async fn throughput(node: Option<&NodePeer>) {
    for work in [Work::Checkout, Work::Push] {
        let node = node.filter(|_| work == Work::Checkout);
        let load = move |address| drive_work(address, work);
        // One unmeasured round each: connections, caches and Node's JIT warm.
        measure("cloudfn-gcp", move |l, s| serve_cloudfn(work, l, s), load).await;
        measure("bare-hyper", move |l, s| serve_bare(work, l, s), load).await;
        if let Some(node) = node {
            node.measure().await;
        }
        let (mut ours, mut hyper, mut ff) =
            (Column::default(), Column::default(), Column::default());
        for _ in 0..ROUNDS {
            ours.push(&measure("cloudfn-gcp", move |l, s| serve_cloudfn(work, l, s), load).await);
            hyper.push(&measure("bare-hyper", move |l, s| serve_bare(work, l, s), load).await);
            if let Some(node) = node {
                ff.push(&node.measure().await);
            }
        }
        let name = match work {
            Work::Checkout => "checkout (POST /orders → 202)",
            Work::Push => "Pub/Sub push to a queue function (→ 204)",
        };
        println!("\n{name}, {ROUNDS} rounds of {ROUND:?} from {CONNECTIONS} connections:\n");
        println!(
            "| contender | req/s (median) | server CPU per request (median) | cloudfn-gcp's throughput ratio (median) | range | CPU ratio, theirs / cloudfn-gcp's (median) | range |\n|---|---|---|---|---|---|---|"
        );
        println!(
            "| cloudfn-gcp | {:.0} | {:.1} µs | | | | |",
            median(ours.rates.clone()),
            median(ours.cpu.clone()),
        );
        let peers = [("bare hyper", &hyper), ("Node functions framework", &ff)];
        for (peer, column) in peers.into_iter().filter(|(_, c)| !c.rates.is_empty()) {
            let (rates, cpu) = Column::against(&ours, column);
            println!(
                "| {peer} | {:.0} | {:.1} µs | **{:.2}×** | {} | **{:.2}×** | {} |",
                median(column.rates.clone()),
                median(column.cpu.clone()),
                median(rates.clone()),
                range(&rates),
                median(cpu.clone()),
                range(&cpu),
            );
        }
    }
}

async fn start_up(hello: Option<String>) {
    println!();
    match hello {
        Some(binary) => {
            let get = || {
                http::Request::get("/hello?name=ada")
                    .header("host", "127.0.0.1")
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            };
            // As deployed, with a project, and without: the clients are
            // made on first use, so the two should start alike.
            for project in [Some("bench-project"), None] {
                let (median, max) = start_ups(
                    |port| {
                        let mut command = tokio::process::Command::new(&binary);
                        command
                            .env("FUNCTION_TARGET", "hello")
                            .env("FUNCTION_SIGNATURE_TYPE", "http")
                            .env("K_SERVICE", "hello")
                            .env("PORT", port.to_string())
                            .env_remove("GOOGLE_CLOUD_PROJECT")
                            .env_remove("PUBSUB_EMULATOR_HOST")
                            .env_remove("FIRESTORE_EMULATOR_HOST");
                        if let Some(project) = project {
                            command.env("GOOGLE_CLOUD_PROJECT", project);
                        }
                        command
                            .stdout(std::process::Stdio::null())
                            .stderr(std::process::Stdio::null())
                            .kill_on_drop(true)
                            .spawn()
                            .unwrap()
                    },
                    get,
                    Ready::Status(200),
                )
                .await;
                println!(
                    "start-up of hello to the first answered GET /hello ({STARTS} starts, {}): median {median:.2} ms, max {max:.2} ms",
                    if project.is_some() {
                        "GOOGLE_CLOUD_PROJECT set"
                    } else {
                        "no project"
                    }
                );
            }
        }
        None => {
            println!("start-up: set CLOUDFN_HELLO to the hello example built with the gcp feature")
        }
    }
    if let Some(modules) = node_modules() {
        let body = Work::Checkout.body();
        let post = || Work::Checkout.request(&body);
        let (median, max) =
            start_ups(|port| spawn_node(&modules, port), post, Ready::Status(202)).await;
        println!(
            "start-up of the Node peer to the first answered POST /orders ({STARTS} starts): median {median:.2} ms, max {max:.2} ms"
        );
    }
}

/// One request without sockets: the adapter against the peer.
fn in_memory(runtime: &tokio::runtime::Runtime) {
    let mut criterion = criterion::Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for work in [Work::Checkout, Work::Push] {
        let body = work.body();
        let app = shop();
        let function = app.select(Some(work.target()), "target").unwrap().clone();
        let server =
            FunctionServer::new(function, Services::detached(cloudfn_gcp::PROVIDER)).unwrap();
        let name = match work {
            Work::Checkout => "checkout",
            Work::Push => "push",
        };
        let mut group = criterion.benchmark_group(format!("request/{name}"));
        group.bench_function("cloudfn-gcp", |b| {
            b.to_async(runtime)
                .iter(|| server.answer(work.request(&body)))
        });
        group.bench_function("bare hyper", |b| {
            b.to_async(runtime).iter(|| bare(work, work.request(&body)))
        });
        group.finish();
    }
}

fn main() {
    let runtime = client_runtime();
    in_memory(&runtime);
    // Profiling the in-memory work (`perf record … --profile-time 10`):
    // nothing else should run in the profile.
    if std::env::args().any(|arg| arg == "--profile-time") {
        return;
    }
    runtime.block_on(async {
        let node = NodePeer::start().await;
        throughput(node.as_ref()).await;
        drop(node);
        start_up(std::env::var("CLOUDFN_HELLO").ok()).await;
    });
}
