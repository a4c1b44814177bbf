//! Whole-process comparison on one Runtime API server on loopback: the
//! cloudfn AWS loop against a plain `lambda_runtime` handler doing the same
//! work (an HTTP API v2 event in, a JSON answer out). Measures cold start
//! (exec → first `next`), invocations/s and per-invocation latency, and
//! prints ratios. `scripts/bench-aws` builds both bootstraps and runs this.
//!
//! CLOUDFN_BOOTSTRAP=… PEER_BOOTSTRAP=… cargo bench -p cloudfn-aws --bench lambda_loop

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use cloudfn_aws::{
    emulate::{Outcome, RuntimeApiServer},
    events::http::v2_event,
};
use cloudfn_core::HttpRequest;

const COLD_STARTS: usize = 20;
const ROUNDS: usize = 5;
const PER_ROUND: usize = 2_000;

struct Contender {
    name: &'static str,
    binary: PathBuf,
}

async fn spawn(binary: &PathBuf) -> (RuntimeApiServer, tokio::process::Child, Duration) {
    let server = RuntimeApiServer::start("hello").await.unwrap();
    let started = Instant::now();
    let child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", server.address())
        .env("_HANDLER", "hello")
        .env("AWS_LAMBDA_FUNCTION_NAME", "hello")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    server.ready().await;
    (server, child, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let (Ok(ours), Ok(peer)) = (
        std::env::var("CLOUDFN_BOOTSTRAP"),
        std::env::var("PEER_BOOTSTRAP"),
    ) else {
        eprintln!(
            "lambda_loop: set CLOUDFN_BOOTSTRAP and PEER_BOOTSTRAP (scripts/bench-aws does); skipping"
        );
        return;
    };
    let contenders = [
        Contender {
            name: "cloudfn",
            binary: ours.into(),
        },
        Contender {
            name: "lambda_runtime",
            binary: peer.into(),
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let request =
        HttpRequest::new(http::Method::GET, "/hello?name=ada").with_header("host", "bench");
    let event =
        bytes::Bytes::from(serde_json::to_vec(&v2_event(&request, "GET /hello", "bench")).unwrap());

    rt.block_on(async {
        let mut cold: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
        for _ in 0..COLD_STARTS {
            for (i, c) in contenders.iter().enumerate() {
                let (_server, mut child, took) = spawn(&c.binary).await;
                cold[i].push(took);
                let _ = child.kill().await;
            }
        }

        let mut running = Vec::new();
        for c in &contenders {
            let (server, child, _) = spawn(&c.binary).await;
            for _ in 0..500 {
                server.invoke(event.clone(), Duration::from_secs(5)).await.unwrap();
            }
            running.push((server, child));
        }
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
        let mut elapsed = vec![Duration::ZERO; contenders.len()];
        for _ in 0..ROUNDS {
            for (i, (server, _)) in running.iter().enumerate() {
                let round = Instant::now();
                for _ in 0..PER_ROUND {
                    let started = Instant::now();
                    let out = server.invoke(event.clone(), Duration::from_secs(5)).await.unwrap();
                    latencies[i].push(started.elapsed());
                    assert!(matches!(&out, Outcome::Response(body) if body.windows(5).any(|w| w == b"hello")), "{out:?}");
                }
                elapsed[i] += round.elapsed();
            }
        }

        println!("lambda_loop: {COLD_STARTS} cold starts each; {ROUNDS} rounds x {PER_ROUND} sequential invocations each, interleaved");
        println!("{:<16} {:>14} {:>12} {:>12} {:>12} {:>12}", "", "cold start p50", "inv/s", "p50", "p99", "max");
        let mut rates = Vec::new();
        let mut colds = Vec::new();
        for (i, c) in contenders.iter().enumerate() {
            cold[i].sort();
            latencies[i].sort();
            let rate = (ROUNDS * PER_ROUND) as f64 / elapsed[i].as_secs_f64();
            rates.push(rate);
            colds.push(percentile(&cold[i], 0.5));
            println!(
                "{:<16} {:>14.2?} {:>12.0} {:>12.2?} {:>12.2?} {:>12.2?}",
                c.name,
                percentile(&cold[i], 0.5),
                rate,
                percentile(&latencies[i], 0.5),
                percentile(&latencies[i], 0.99),
                latencies[i].last().unwrap()
            );
        }
        println!(
            "ratio cloudfn / lambda_runtime: throughput {:.2}x, cold start {:.2}x (below 1 is faster)",
            rates[0] / rates[1],
            colds[0].as_secs_f64() / colds[1].as_secs_f64()
        );
    });
}
