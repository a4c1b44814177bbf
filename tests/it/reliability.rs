//! Many messages, transient failures, poison and duplicates: nothing lost,
//! nothing applied twice.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn::{App, Context, Error, Function, Idempotency, Message, OutgoingMessage, RetryPolicy};
use serde::Deserialize;

use crate::support::{eventually, start};

#[derive(Deserialize)]
struct Job {
    n: u32,
}

const TOTAL: u32 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_none_lost_none_applied_twice() {
    let applied = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    let effects = applied.clone();
    let app = App::new("reliability").function(
        Function::queue("apply", "jobs", move |msg: Message<Job>, _: Context| {
            let effects = effects.clone();
            async move {
                // One delivery in five fails transiently.
                if fastrand::u8(0..5) == 0 {
                    return Err(Error::unavailable("flaky dependency"));
                }
                *effects.lock().unwrap().entry(msg.body.n).or_default() += 1;
                Ok(())
            }
        })
        // 0.2^12 per message: the chance that a good message exhausts its
        // attempts in this run is about 4e-5.
        .retry(
            RetryPolicy::new(12)
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(10)),
        )
        .idempotent(Idempotency::by_body_field("/n"))
        .dead_letter("jobs-dlq"),
    );
    let running = start(app).await;

    // 1% poison; 5% of the good ones are sent twice, as an at-least-once producer may.
    let mut batch = Vec::new();
    let (mut poison, mut good) = (0, 0);
    for n in 0..TOTAL {
        if n % 100 == 0 {
            batch.push(OutgoingMessage::new(format!(r#"{{"n":"poison-{n}"}}"#)));
            poison += 1;
            continue;
        }
        good += 1;
        let body = format!(r#"{{"n":{n}}}"#);
        if n % 20 == 1 {
            batch.push(OutgoingMessage::new(body.clone()));
        }
        batch.push(OutgoingMessage::new(body));
    }
    running.queue("jobs").send_batch(batch).await.unwrap();

    eventually("every message settled", || {
        let depths = running.broker().depths();
        depths["jobs"].total() == 0 && depths.get("jobs-dlq").is_some_and(|d| d.total() == poison)
    })
    .await;
    let report = running.shutdown().await;
    assert_eq!(report.abandoned, 0);

    let applied = applied.lock().unwrap();
    assert_eq!(applied.len(), good, "every good message applied");
    let twice: Vec<_> = applied.iter().filter(|(_, count)| **count != 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let dead = report
        .left_in_queues
        .get("jobs-dlq")
        .map_or(0, |d| d.total());
    assert_eq!(dead, poison, "exactly the poison is dead-lettered");
}
