//! The harness the adapters' server benchmarks share (`cloudfn-azure`'s
//! `custom_handler`, `cloudfn-gcp`'s `functions_framework`), so that their
//! figures in BENCHMARKS.md come from one way of loading a server and of
//! counting what it cost, and a fix to it reaches both.
//!
//! A bench hands [`measure`] a server and a load (usually [`drive`] with
//! its request); each server runs alone on a named thread whose CPU time
//! the scheduler accounts for, so that what a request costs the server is
//! told apart from what it costs the client sharing the machine. Rounds
//! are gathered in a [`Column`] per contender and summed up by [`median`]
//! and [`range`]; [`start_ups`] times a binary from exec to its first
//! answer.
//!
//! Linux only: CPU time is read from `/proc`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections driving each server at once: enough to keep a server busy
/// between answers, as the same number for every contender.
pub const CONNECTIONS: usize = 32;
/// How long each contender is driven per round: short, so that contenders
/// taking turns meet the same state of the machine.
pub const ROUND: Duration = Duration::from_millis(500);
/// Rounds, the contenders in turn; each round's ratio compares runs close
/// in time, and the median of those is what a bench reports.
pub const ROUNDS: usize = 21;
/// Starts of each binary [`start_ups`] times.
pub const STARTS: usize = 20;

/// The runtime the load is driven from: one worker, so that the client
/// keeps to one core and leaves the other to the server's thread.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// What a server did under [`drive`]: the rate is for the tables, the
/// count for dividing the server's CPU time by.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Requests answered per second.
    pub rate: f64,
    /// Requests answered in all.
    pub requests: u64,
}

/// Drives `address` from [`CONNECTIONS`] keep-alive connections for
/// [`ROUND`], each sending `request()` again as soon as its last one is
/// answered, and checks every answer's status against `status`: a server
/// that answers fast by failing must not look fast.
pub async fn drive<R>(address: SocketAddr, request: R, status: u16) -> Load
where
    R: Fn() -> http::Request<Full<Bytes>> + Send + Sync + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + ROUND;
    let request = Arc::new(request);
    let clients = (0..CONNECTIONS).map(|_| {
        let done = done.clone();
        let request = request.clone();
        tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            while Instant::now() < until {
                let response = sender.send_request(request()).await.unwrap();
                assert_eq!(response.status(), status);
                let _ = response.into_body().collect().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let started = Instant::now();
    futures::future::join_all(clients).await;
    let requests = done.load(Ordering::Relaxed);
    Load {
        rate: requests as f64 / started.elapsed().as_secs_f64(),
        requests,
    }
}

/// CPU time the thread `tid` of process `pid` (`"self"` for this one) has
/// run, from the scheduler's own account (`schedstat`, in nanoseconds).
/// A thread gone by the time it is read counts nothing: a process's
/// threads come and go while it is being summed.
pub fn cpu_time(pid: &str, tid: &str) -> Duration {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// CPU time every thread of process `pid` has run: a server in another
/// process (a peer in another language) is charged for its helpers, such
/// as a garbage collector's threads, too.
pub fn process_cpu_time(pid: u32) -> Duration {
    let pid = pid.to_string();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|task| cpu_time(&pid, &task.file_name().to_string_lossy()))
        .sum()
}

/// One contender's round: requests answered per second, and the server's
/// CPU time per request.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    /// Requests answered per second.
    pub rate: f64,
    /// The server's CPU time over the round, per request answered.
    pub cpu_per_request: Duration,
}

/// Runs `load` between two readings of `cpu_time`: the round of a server
/// whose CPU time `cpu_time` reads, wherever that server runs.
pub async fn metered(cpu_time: impl Fn() -> Duration, load: impl Future<Output = Load>) -> Round {
    let before = cpu_time();
    let Load { rate, requests } = load.await;
    let used = cpu_time() - before;
    Round {
        rate,
        cpu_per_request: used / requests.max(1) as u32,
    }
}

/// Runs `serve` alone on a thread of its own named `name` (a
/// current-thread runtime) while `load` (usually [`drive`]) loads it on
/// the address it listens on, so that its CPU time is its own: what a
/// request costs the server, undisturbed by the client sharing the cores.
/// `serve` is to return once its token is cancelled.
pub async fn measure<S, L>(
    name: &str,
    serve: impl FnOnce(TcpListener, CancellationToken) -> S + Send + 'static,
    load: impl FnOnce(SocketAddr) -> L,
) -> Round
where
    S: Future<Output = ()> + 'static,
    L: Future<Output = Load>,
{
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let address = std_listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    // Named, so that a profile tells the contenders apart.
    let server = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let thread = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = thread.file_name().unwrap().to_string_lossy().into_owned();
            tid_tx.send(tid).unwrap();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let listener = TcpListener::from_std(std_listener).unwrap();
                    serve(listener, stopping).await;
                });
        })
        .unwrap();
    let tid = tid_rx.recv().unwrap();
    let round = metered(|| cpu_time("self", &tid), load(address)).await;
    stop.cancel();
    tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    round
}

/// Serves `listener` with hyper alone, `answer` answering each request,
/// until `stop` is cancelled: the bare peer every adapter is held against,
/// with nothing between hyper and the function.
pub async fn serve_hyper<A, F>(listener: TcpListener, stop: CancellationToken, answer: A)
where
    A: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = http::Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted.unwrap(),
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |r| {
                let answered = answer(r);
                async move { Ok::<_, Infallible>(answered.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One contender's results over the rounds, kept whole so that ratios can
/// be taken round by round.
#[derive(Default)]
pub struct Column {
    /// Requests answered per second, a round each.
    pub rates: Vec<f64>,
    /// The server's CPU time per request in µs, a round each.
    pub cpu: Vec<f64>,
}

impl Column {
    /// Adds `round`.
    pub fn push(&mut self, round: &Round) {
        self.rates.push(round.rate);
        self.cpu.push(round.cpu_per_request.as_secs_f64() * 1e6);
    }

    /// Per round: our rate over theirs, and their CPU per request over
    /// ours, so that above 1 is ours doing better in both.
    pub fn against(ours: &Column, theirs: &Column) -> (Vec<f64>, Vec<f64>) {
        let rates = ours.rates.iter().zip(&theirs.rates).map(|(o, t)| o / t);
        let cpu = ours.cpu.iter().zip(&theirs.cpu).map(|(o, t)| t / o);
        (rates.collect(), cpu.collect())
    }
}

/// The middle value (the upper one of an even count): what the tables
/// report, as a round disturbed by the machine moves it least.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The lowest and highest of `values`, as a table prints them beside a
/// median: how far the rounds spread.
pub fn range(values: &[f64]) -> String {
    let low = values.iter().cloned().fold(f64::MAX, f64::min);
    let high = values.iter().cloned().fold(0.0, f64::max);
    format!("{low:.2}–{high:.2}")
}

/// A port free on loopback a moment ago, for a server in another process
/// to be told to listen on.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// What a start-up probe takes as a server being up.
#[derive(Clone, Copy, Debug)]
pub enum Ready {
    /// Any answer at all, as the Azure Functions host's readiness poll.
    AnyAnswer,
    /// An answer with this status, anything else failing the bench: the
    /// first caller must be served, not merely answered.
    Status(u16),
}

/// Sends `request` to `port` until one is answered, and checks the answer
/// against `ready`: a server's readiness, as its first caller meets it.
pub async fn first_answer(
    port: u16,
    request: impl Fn() -> http::Request<Full<Bytes>>,
    ready: Ready,
) {
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            if let Ok(response) = sender.send_request(request()).await {
                if let Ready::Status(status) = ready {
                    assert_eq!(response.status(), status, "the server's first answer");
                }
                return;
            }
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Exec to the [`first_answer`], [`STARTS`] times, `start` spawning the
/// binary told to listen on the port it is given: the median and the
/// slowest, in milliseconds.
pub async fn start_ups(
    mut start: impl FnMut(u16) -> tokio::process::Child,
    request: impl Fn() -> http::Request<Full<Bytes>> + Copy,
    ready: Ready,
) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let port = free_port();
        let started = Instant::now();
        let mut child = start(port);
        tokio::time::timeout(Duration::from_secs(30), first_answer(port, request, ready))
            .await
            .expect("no answer within 30 s");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    (
        median(times.clone()),
        times.iter().cloned().fold(0.0, f64::max),
    )
}
