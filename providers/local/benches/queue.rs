//! Local queue throughput through the whole runtime (send → lease → invoke →
//! acknowledge, retry bookkeeping included) and memory per queued message.
//!
//! `cargo bench -p cloudfn-local --bench queue`

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Arc,
        atomic::{AtomicIsize, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cloudfn_core::{
    App, Context, Error, Function, Message, OutgoingMessage, RetryPolicy, provider::QueueClient,
};
use cloudfn_local::{LocalBroker, LocalRuntime};
use criterion::{Criterion, Throughput, criterion_group};

/// Counts live heap bytes, to measure what a queued message costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const BATCH: usize = 20_000;
const BODY: &str = r#"{"id":"9c29490b-ecd9-48bb-8833-c6f31fa64d2e","qty":2}"#;

fn app(done: Arc<AtomicUsize>, failure_rate: f64) -> App {
    App::new("bench").function(
        Function::queue(
            "work",
            "jobs",
            move |_: Message<serde_json::Value>, _: Context| {
                let done = done.clone();
                async move {
                    if failure_rate > 0.0 && fastrand::f64() < failure_rate {
                        return Err(Error::unavailable("transient"));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            },
        )
        .retry(RetryPolicy::new(50).initial_delay(Duration::ZERO))
        .dead_letter("jobs-dlq"),
    )
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("local_queue");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for (name, rate) in [("no_failures", 0.0), ("20pct_transient_failures", 0.2)] {
        let done = Arc::new(AtomicUsize::new(0));
        let running = rt
            .block_on(
                LocalRuntime::new(app(done.clone(), rate))
                    .port(0)
                    .memory_stores()
                    .start(),
            )
            .unwrap();
        let queue = running.queue("jobs");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let messages: Vec<_> = (0..BATCH)
                            .map(|_| OutgoingMessage::new(BODY.to_owned()))
                            .collect();
                        let target = done.load(Ordering::Relaxed) + BATCH;
                        let start = Instant::now();
                        queue.send_batch(messages).await.unwrap();
                        while done.load(Ordering::Relaxed) < target {
                            tokio::task::yield_now().await;
                        }
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
        rt.block_on(running.shutdown());
    }
    group.finish();
}

/// Heap bytes a queued message costs, measured over 100,000 messages.
fn memory_per_message() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let broker = LocalBroker::for_app(&App::new("memory"));
    const N: usize = 100_000;
    rt.block_on(async {
        broker.send("jobs", OutgoingMessage::new(BODY.to_owned())).await.unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        for _ in 0..N {
            broker.send("jobs", OutgoingMessage::new(BODY.to_owned())).await.unwrap();
        }
        let after = LIVE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / N as f64;
        println!(
            "local_queue/memory: {per:.0} bytes per queued message ({} of them body), over {N} messages",
            BODY.len()
        );
    });
}

criterion_group!(benches, throughput);

fn main() {
    memory_per_message();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
