//! The local runtime's delivery guarantees, through its real queues and HTTP server.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use cloudfn::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Idempotency, Message, Method,
    OutgoingMessage, RetryPolicy, messaging::dead_letter as dl,
};
use serde_json::{Value, json};

use crate::support::{client, eventually, start};

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts)
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

#[tokio::test]
async fn transient_failure_is_retried_then_succeeds() {
    let attempts_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts_seen.clone();
    let app = App::new("t").function(
        Function::queue("work", "jobs", move |_: Message<Value>, ctx: Context| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() < 3 {
                    Err(Error::unavailable("dependency down"))
                } else {
                    Ok(())
                }
            }
        })
        .retry(quick_retry(5))
        .dead_letter("jobs-dlq"),
    );
    let running = start(app).await;
    running.queue("jobs").send(&json!({"n": 1})).await.unwrap();
    eventually("third attempt", || attempts_seen.lock().unwrap().len() == 3).await;
    let report = running.shutdown().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(*attempts_seen.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn message_failing_every_attempt_is_dead_lettered_with_its_last_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let app = App::new("t").function(
        Function::queue("work", "jobs", move |msg: Message<Value>, ctx: Context| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::unavailable(format!(
                    "attempt {} of {} failed",
                    ctx.attempt(),
                    msg.id
                )))
            }
        })
        .retry(quick_retry(3))
        .dead_letter("jobs-dlq"),
    );
    let running = start(app).await;
    let id = running.queue("jobs").send(&json!({"n": 1})).await.unwrap();
    eventually("dead-lettered", || {
        running.broker().depth("jobs-dlq").total() == 1
    })
    .await;
    let dead = &running.broker().peek("jobs-dlq")[0];
    assert_eq!(dead.id, id, "the message keeps its id");
    assert_eq!(dead.attribute(dl::ATTEMPTS), Some("3"));
    assert_eq!(dead.attribute(dl::SOURCE), Some("jobs"));
    assert_eq!(
        dead.attribute(dl::ERROR),
        Some(format!("unavailable: attempt 3 of {id} failed").as_str()),
        "the last error is recorded"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let report = running.shutdown().await;
    assert_eq!(
        report.left_in_queues.keys().collect::<Vec<_>>(),
        ["jobs-dlq"],
        "{report}"
    );
}

#[tokio::test]
async fn idempotency_suppresses_a_duplicate() {
    let effects = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let seen = effects.clone();
    let app = App::new("t").function(
        Function::queue(
            "apply",
            "payments",
            move |msg: Message<Value>, _: Context| {
                let seen = seen.clone();
                async move {
                    let key = msg.body["payment_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    *seen.lock().unwrap().entry(key).or_default() += 1;
                    Ok(())
                }
            },
        )
        .idempotent(Idempotency::by_body_field("/payment_id")),
    );
    let running = start(app).await;
    let payments = running.queue("payments");
    payments
        .send(&json!({"payment_id": "p-1", "cents": 100}))
        .await
        .unwrap();
    payments
        .send(&json!({"payment_id": "p-1", "cents": 100}))
        .await
        .unwrap();
    payments
        .send(&json!({"payment_id": "p-2", "cents": 5}))
        .await
        .unwrap();
    eventually("all acknowledged", || running.broker().is_idle()).await;
    running.shutdown().await;
    assert_eq!(
        *effects.lock().unwrap(),
        HashMap::from([("p-1".into(), 1), ("p-2".into(), 1)])
    );
}

async fn boom(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    if req.path_param("what")? == "panic" {
        panic!("secret-token-123 leaked into a panic");
    }
    Ok(HttpResponse::text(200, "fine"))
}

#[tokio::test]
async fn a_panicking_handler_fails_one_invocation_and_the_server_keeps_serving() {
    let app = App::new("t").function(Function::http("boom", Method::Get, "/boom/{what}", boom));
    let running = start(app).await;
    let url = running.url();
    let res = client()
        .get(format!("{url}/boom/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "internal");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("secret-token"),
        "panic details must not reach the caller: {message}"
    );
    for _ in 0..3 {
        let res = client().get(format!("{url}/boom/ok")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "fine");
    }
    assert!(running.shutdown().await.is_clean());
}

#[tokio::test]
async fn a_panicking_queue_handler_is_retried_like_any_failure() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let app = App::new("t").function(
        Function::queue("work", "jobs", move |_: Message<Value>, ctx: Context| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                assert!(ctx.attempt() > 1, "first attempt panics");
                Ok(())
            }
        })
        .retry(quick_retry(3)),
    );
    let running = start(app).await;
    running.queue("jobs").send(&json!({})).await.unwrap();
    eventually("second attempt", || calls.load(Ordering::SeqCst) == 2).await;
    let report = running.shutdown().await;
    assert!(report.is_clean(), "{report}");
}

#[tokio::test]
async fn a_handler_past_its_deadline_gets_a_timeout_error() {
    let app = App::new("t").function(
        Function::http(
            "slow",
            Method::Get,
            "/slow",
            |_: HttpRequest, ctx: Context| async move {
                tokio::time::sleep(ctx.remaining() + Duration::from_secs(30)).await;
                Ok(HttpResponse::text(200, "too late"))
            },
        )
        .timeout(Duration::from_millis(200)),
    );
    let running = start(app).await;
    let res = client()
        .get(format!("{}/slow", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "timeout");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
    assert!(running.shutdown().await.is_clean());
}

#[tokio::test]
async fn shutdown_finishes_in_flight_work_and_reports_what_is_left() {
    let started = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (s, f, r) = (started.clone(), finished.clone(), release.clone());
    let app = App::new("t").function(
        Function::queue("slow", "jobs", move |_: Message<Value>, _: Context| {
            let (s, f, r) = (s.clone(), f.clone(), r.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                r.notified().await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .max_concurrency(1)
        .batch_size(1),
    );
    let running = start(app).await;
    for n in 0..3 {
        running.queue("jobs").send(&json!({"n": n})).await.unwrap();
    }
    eventually("first job started", || started.load(Ordering::SeqCst) == 1).await;
    let report = running.shutdown(); // stops taking work now
    release.notify_one();
    let report = report.await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the in-flight job finished"
    );
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "no new job started after shutdown"
    );
    assert_eq!(report.abandoned, 0);
    assert_eq!(report.left_in_queues["jobs"].ready, 2, "{report}");
}

#[tokio::test]
async fn a_function_may_only_send_where_it_declared() {
    let app = App::new("t")
        .function(Function::http(
            "leaky",
            Method::Post,
            "/leak",
            |_: HttpRequest, ctx: Context| async move {
                ctx.queue("audit").send(&json!({"x": 1})).await?;
                Ok(HttpResponse::new(204))
            },
        ))
        .function(
            Function::http(
                "allowed",
                Method::Post,
                "/audit",
                |_: HttpRequest, ctx: Context| async move {
                    ctx.queue("audit").send(&json!({"x": 1})).await?;
                    Ok(HttpResponse::new(204))
                },
            )
            .sends_to("audit"),
        );
    let running = start(app).await;
    let res = client()
        .post(format!("{}/leak", running.url()))
        .send()
        .await
        .unwrap();
    // The function's mistake, not the caller's: the remedy
    // (`sends_to("audit")`) is in the logs, the caller sees a generic 500.
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "internal", "{body}");
    assert!(!body.to_string().contains("audit"), "{body}");
    assert_eq!(running.broker().depth("audit").total(), 0);
    let res = client()
        .post(format!("{}/audit", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(running.broker().depth("audit").total(), 1);
    running.shutdown().await;
}

#[tokio::test]
async fn a_topic_reaches_every_subscriber_and_a_fifo_queue_keeps_order() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    let seen = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
    let app = App::new("t")
        .function(Function::topic(
            "a",
            "news",
            move |m: Message<Value>, _: Context| {
                let a = a.clone();
                async move {
                    a.lock().unwrap().push(format!("a:{}", m.body["n"]));
                    Ok(())
                }
            },
        ))
        .function(Function::topic(
            "b",
            "news",
            move |m: Message<Value>, _: Context| {
                let b = b.clone();
                async move {
                    b.lock().unwrap().push(format!("b:{}", m.body["n"]));
                    Ok(())
                }
            },
        ))
        .function(
            Function::fifo_queue(
                "ledger",
                "ledger.fifo",
                move |m: Message<Value>, ctx: Context| {
                    let (c, seen) = (c.clone(), seen.clone());
                    async move {
                        // Every entry fails the first time it really runs;
                        // order must hold across the retries, and waiting
                        // behind a failure must not cost an attempt.
                        if seen.lock().unwrap().insert(m.id.clone()) {
                            c.lock()
                                .unwrap()
                                .push(format!("first-run-attempt:{}", ctx.attempt()));
                            return Err(Error::unavailable("first try fails"));
                        }
                        c.lock().unwrap().push(format!("fifo:{}", m.body["n"]));
                        Ok(())
                    }
                },
            )
            .retry(quick_retry(3)),
        );
    let running = start(app).await;
    running
        .topic("news")
        .publish(&json!({"n": 1}))
        .await
        .unwrap();
    let entries = (0..5)
        .map(|n| {
            OutgoingMessage::json(&json!({"n": n}))
                .unwrap()
                .with_ordering_key("acct-1")
        })
        .collect();
    running
        .queue("ledger.fifo")
        .send_batch(entries)
        .await
        .unwrap();
    eventually("all delivered", || log.lock().unwrap().len() == 12).await;
    running.shutdown().await;
    let log = log.lock().unwrap();
    assert!(
        log.contains(&"a:1".to_owned()) && log.contains(&"b:1".to_owned()),
        "{log:?}"
    );
    let fifo: Vec<_> = log
        .iter()
        .filter(|e| e.starts_with("fifo"))
        .cloned()
        .collect();
    assert_eq!(fifo, ["fifo:0", "fifo:1", "fifo:2", "fifo:3", "fifo:4"]);
    let first_runs: Vec<_> = log.iter().filter(|e| e.starts_with("first-run")).collect();
    assert_eq!(
        first_runs, ["first-run-attempt:1"; 5],
        "waiting behind a failure cost an attempt"
    );
}

#[tokio::test]
async fn an_axum_router_serves_a_subtree_as_one_function() {
    use axum::{Json, extract::Path, routing::get};
    let api =
        axum::Router::new().route(
            "/api/items/{id}",
            get(|Path(id): Path<u32>| async move {
                Json(json!({"id": id, "name": format!("item {id}")}))
            }),
        );
    let app = App::new("t").function(Function::http_service(
        "api",
        Method::Any,
        "/api/{*rest}",
        api,
    ));
    let running = start(app).await;
    let res = client()
        .get(format!("{}/api/items/7", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"id": 7, "name": "item 7"})
    );
    let res = client()
        .get(format!("{}/api/items/seven", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "axum's own rejection passes through");
    let res = client()
        .get(format!("{}/elsewhere", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    running.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_function_limit_is_refused_with_413() {
    let app = App::new("t").function(
        Function::http(
            "small",
            Method::Post,
            "/small",
            |req: HttpRequest, _: Context| async move {
                Ok(HttpResponse::text(200, format!("{} bytes", req.body.len())))
            },
        )
        .max_body_bytes(16),
    );
    let running = start(app).await;
    let url = format!("{}/small", running.url());
    let res = client()
        .post(&url)
        .body("x".repeat(16))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "16 bytes");
    let res = client()
        .post(&url)
        .body("x".repeat(17))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 bytes"),
        "{body}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_fifo_head_that_fails_for_good_does_not_take_its_group_with_it() {
    let done = Arc::new(Mutex::new(Vec::<u64>::new()));
    let d = done.clone();
    let app = App::new("t").function(
        Function::fifo_queue("ledger", "ledger", move |m: Message<Value>, _: Context| {
            let d = d.clone();
            async move {
                let n = m.body["n"].as_u64().unwrap();
                if n == 0 {
                    return Err(Error::unavailable("the head always fails"));
                }
                d.lock().unwrap().push(n);
                Ok(())
            }
        })
        .retry(quick_retry(3))
        .dead_letter("ledger-dlq"),
    );
    let running = start(app).await;
    let entries = (0..5)
        .map(|n| {
            OutgoingMessage::json(&json!({"n": n}))
                .unwrap()
                .with_ordering_key("acct")
        })
        .collect();
    running.queue("ledger").send_batch(entries).await.unwrap();
    eventually("the rest of the group ran", || {
        done.lock().unwrap().len() == 4
    })
    .await;
    let dead = running.broker().peek("ledger-dlq");
    assert_eq!(dead.len(), 1, "only the head is dead-lettered");
    assert_eq!(dead[0].attribute(dl::ATTEMPTS), Some("3"));
    assert_eq!(
        *done.lock().unwrap(),
        [1, 2, 3, 4],
        "the group kept its order"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_waits_for_the_original_instead_of_failing() {
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let app = App::new("t").function(
        Function::queue("apply", "payments", move |_: Message<Value>, _: Context| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            }
        })
        .retry(RetryPolicy::none())
        .idempotent(Idempotency::by_body_field("/payment_id"))
        .dead_letter("payments-dlq"),
    );
    let running = start(app).await;
    let payment = OutgoingMessage::json(&json!({"payment_id": "p-9"})).unwrap();
    running
        .queue("payments")
        .send_batch(vec![payment.clone(), payment])
        .await
        .unwrap();
    eventually("both settled", || {
        running.broker().depth("payments").total() == 0
    })
    .await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the duplicate ran no handler"
    );
    assert_eq!(
        running.broker().depth("payments-dlq").total(),
        0,
        "and was not dead-lettered"
    );
    running.shutdown().await;
}

/// A topic message delivered twice (as SNS or Pub/Sub may) reaches an
/// idempotent subscriber once: the copies share the publisher's id, though
/// the subscription queue gives each its own.
#[tokio::test]
async fn a_topic_message_delivered_twice_runs_its_subscriber_once() {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let app = App::new("t").function(
        Function::topic("react", "events", move |_: Message<Value>, _: Context| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .idempotent(Idempotency::by_message_id()),
    );
    let running = start(app).await;
    let message = OutgoingMessage::json(&json!({"n": 1}))
        .unwrap()
        .with_attribute(cloudfn::messaging::PUBLISHED_ID, "m-1");
    let events = running.topic("events");
    events.publish_message(message.clone()).await.unwrap();
    events.publish_message(message).await.unwrap();
    events.publish(&json!({"n": 2})).await.unwrap();
    eventually("all acknowledged", || running.broker().is_idle()).await;
    running.shutdown().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "m-1 once, the other once");
}

/// The local runtime keeps stores in a file: what a function wrote is there
/// after a restart.
#[tokio::test]
async fn stores_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let serve = || {
        cloudfn::local::LocalRuntime::new(crate::contract_app::app())
            .port(0)
            .data_dir(data.path())
            .start()
    };
    let running = serve().await.unwrap();
    let put = client()
        .put(format!("{}/notes/kept", running.url()))
        .header("content-type", "application/json")
        .body(r#"{"text":"still here"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    running.shutdown().await;

    let running = serve().await.unwrap();
    let read = client()
        .get(format!("{}/notes/kept", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.json::<Value>().await.unwrap(),
        json!({"text": "still here"})
    );
    running.shutdown().await;
}
