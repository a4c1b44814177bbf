//! The scenarios, each a promise a user relies on, on every provider.

use std::time::Duration;

use cloudfn::{Capabilities, OutgoingMessage, messaging::dead_letter};
use futures::FutureExt;
use reqwest::Method;
use serde_json::Value;

use super::{Harness, Scenario, anywhere};
use crate::contract_app::{Entry, JOB_ATTEMPTS, JOBS, JOBS_DLQ, Job, LEDGER, Observation};

/// How long a scenario waits for what it expects before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Every scenario, in the table's order.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "HTTP round trip: path parameter, query, headers",
        needs: anywhere,
        run: |h| http_round_trip(h).boxed(),
    },
    Scenario {
        name: "typed payload error → 400 naming the field",
        needs: anywhere,
        run: |h| bad_payload(h).boxed(),
    },
    Scenario {
        name: "invalid order → 422",
        needs: anywhere,
        run: |h| invalid_order(h).boxed(),
    },
    Scenario {
        name: "unknown path → 404, wrong method → 405 with Allow",
        needs: anywhere,
        run: |h| unrouted(h).boxed(),
    },
    Scenario {
        name: "retryable failure retried, then success",
        needs: anywhere,
        run: |h| retry_then_success(h).boxed(),
    },
    Scenario {
        name: "poison → dead-letter queue after max attempts, with attributes",
        needs: anywhere,
        run: |h| poison_is_dead_lettered(h).boxed(),
    },
    Scenario {
        name: "duplicate suppressed by idempotency",
        needs: anywhere,
        run: |h| duplicate_suppressed(h).boxed(),
    },
    Scenario {
        name: "partial batch failure redelivers only the failed message",
        needs: anywhere,
        run: |h| partial_batch_failure(h).boxed(),
    },
    Scenario {
        name: "FIFO order per key across a retry",
        needs: fifo,
        run: |h| fifo_order(h).boxed(),
    },
    Scenario {
        name: "deadline exceeded → 504",
        needs: anywhere,
        run: |h| deadline_exceeded(h).boxed(),
    },
    Scenario {
        name: "infrastructure failure → generic 500 with the invocation id",
        needs: anywhere,
        run: |h| infrastructure_failure_is_generic(h).boxed(),
    },
    Scenario {
        name: "panic fails one invocation, the function goes on",
        needs: anywhere,
        run: |h| panic_isolated(h).boxed(),
    },
    Scenario {
        name: "publish from a handler reaches the subscriber, trace and correlation id with it",
        needs: anywhere,
        run: |h| publish_reaches_subscriber(h).boxed(),
    },
    Scenario {
        name: "schedule fires",
        needs: anywhere,
        run: |h| schedule_fires(h).boxed(),
    },
    Scenario {
        name: "store: one function writes, another reads",
        needs: anywhere,
        run: |h| store_write_then_read(h).boxed(),
    },
    Scenario {
        name: "store: concurrent put-if-absent is won by exactly one",
        needs: anywhere,
        run: |h| store_race(h).boxed(),
    },
];

fn fifo(caps: &Capabilities) -> Result<(), &'static str> {
    if caps.fifo_queues {
        Ok(())
    } else {
        Err("no FIFO queues")
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

async fn http_round_trip(h: &Harness) {
    let response = h
        .http(Method::GET, "/echo/caf%C3%A9%20au%20lait?q=a%26b&other=1")
        .header("x-probe", "p-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-echo"], "yes");
    let body = json_of(response).await;
    assert_eq!(body["name"], "café au lait", "the path parameter, decoded");
    assert_eq!(body["q"], "a&b", "the query parameter, decoded");
    assert_eq!(body["probe"], "p-1", "the request header");
    assert_eq!(body["method"], "GET");
}

async fn bad_payload(h: &Harness) {
    let response = h
        .http(Method::POST, "/orders")
        .header("content-type", "application/json")
        .body(r#"{"id":"o-1","items":[{"sku":"BOOK","qty":"two"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["error"]["kind"], "bad_input", "{body}");
    assert_eq!(body["error"]["field"], "items[0].qty", "{body}");
}

async fn invalid_order(h: &Harness) {
    let response = h
        .http(Method::POST, "/orders")
        .header("content-type", "application/json")
        .body(r#"{"id":"o-2","items":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(json_of(response).await["error"]["kind"], "invalid");
    let accepted = h
        .http(Method::POST, "/orders")
        .header("content-type", "application/json")
        .body(r#"{"id":"o-3","items":[{"sku":"BOOK","qty":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    assert_eq!(json_of(accepted).await["id"], "o-3");
}

async fn unrouted(h: &Harness) {
    let missing = h.http(Method::GET, "/nowhere").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let wrong = h.http(Method::DELETE, "/orders").send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "POST");
}

async fn retry_then_success(h: &Harness) {
    let key = h.key("retry");
    h.send_json(
        JOBS,
        &[Job {
            id: key.clone(),
            fail_until: 1,
        }],
    )
    .await;
    let seen = h
        .observe_until(&key, PATIENCE, |o| o.iter().any(|o| o.outcome == "ok"))
        .await;
    assert_eq!(
        outcomes(&seen),
        [("failed", 1), ("ok", 2)],
        "one failure, then success on the second delivery"
    );
}

async fn poison_is_dead_lettered(h: &Harness) {
    let key = h.key("poison");
    h.send_json(
        JOBS,
        &[Job {
            id: key.clone(),
            fail_until: 99,
        }],
    )
    .await;
    let dead = h
        .wait_for(
            JOBS_DLQ,
            "the poison message in the dead-letter queue",
            PATIENCE,
            |all| {
                all.iter()
                    .find(|m| serde_json::from_slice::<Job>(&m.body).is_ok_and(|j| j.id == key))
                    .cloned()
            },
        )
        .await;
    assert_eq!(
        dead.attribute(dead_letter::ATTEMPTS),
        Some(JOB_ATTEMPTS.to_string().as_str())
    );
    assert_eq!(dead.attribute(dead_letter::FUNCTION), Some("work"));
    assert_eq!(dead.attribute(dead_letter::SOURCE), Some(JOBS));
    let error = dead.attribute(dead_letter::ERROR).unwrap_or_default();
    assert!(
        error.contains("unavailable") && error.contains(&key),
        "{error}"
    );
    // The dead letter can come before the last attempt's report, which
    // travels on a queue of its own.
    let seen = h
        .observe_until(&key, PATIENCE, |seen| seen.len() >= JOB_ATTEMPTS as usize)
        .await;
    assert_eq!(
        outcomes(&seen),
        (1..=JOB_ATTEMPTS)
            .map(|a| ("failed", a))
            .collect::<Vec<_>>(),
        "every attempt ran, and no more"
    );
}

async fn duplicate_suppressed(h: &Harness) {
    let key = h.key("duplicate");
    let job = Job {
        id: key.clone(),
        fail_until: 0,
    };
    h.send_json(JOBS, &[job.clone(), job]).await;
    h.observe_until(&key, PATIENCE, |o| !o.is_empty()).await;
    // Give the second delivery time to (wrongly) run too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        outcomes(&h.observations(&key).await),
        [("ok", 1)],
        "two deliveries of one business key ran once"
    );
}

async fn partial_batch_failure(h: &Harness) {
    let keys = [h.key("batch-a"), h.key("batch-b"), h.key("batch-c")];
    let jobs: Vec<Job> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Job {
            id: key.clone(),
            fail_until: u32::from(i == 1),
        })
        .collect();
    h.send_json(JOBS, &jobs).await;
    for key in &keys {
        h.observe_until(key, PATIENCE, |o| o.iter().any(|o| o.outcome == "ok"))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcomes(&h.observations(&keys[0]).await), [("ok", 1)]);
    assert_eq!(
        outcomes(&h.observations(&keys[1]).await),
        [("failed", 1), ("ok", 2)]
    );
    assert_eq!(
        outcomes(&h.observations(&keys[2]).await),
        [("ok", 1)],
        "a message that succeeded is not delivered again"
    );
}

async fn fifo_order(h: &Harness) {
    let key = h.key("fifo");
    let entries: Vec<OutgoingMessage> = (1..=4)
        .map(|seq| {
            OutgoingMessage::json(&Entry {
                key: key.clone(),
                seq,
                fail_first: seq == 2,
            })
            .unwrap()
            .with_ordering_key(key.clone())
        })
        .collect();
    h.send(LEDGER, entries).await;
    let seen = h.observe_until(&key, PATIENCE, |o| o.len() >= 4).await;
    let order: Vec<&str> = seen.iter().map(|o| o.outcome.as_str()).collect();
    assert_eq!(
        order,
        ["1", "2", "3", "4"],
        "in order, though 2 failed once"
    );
}

async fn deadline_exceeded(h: &Harness) {
    let response = h.http(Method::GET, "/slow").send().await.unwrap();
    assert_eq!(response.status(), 504);
    let body = json_of(response).await;
    assert_generic(&body, "timeout");
    assert!(
        !body.to_string().contains("slow"),
        "what timed out stays in the logs: {body}"
    );
}

/// A generic 5xx answer: its kind and the invocation for the caller to
/// quote, and no field.
fn assert_generic(body: &Value, kind: &str) {
    assert_eq!(body["error"]["kind"], kind, "{body}");
    let invocation = body["error"]["invocation_id"].as_str().unwrap_or("");
    assert!(!invocation.is_empty(), "no invocation to quote: {body}");
    assert!(body["error"].get("field").is_none(), "{body}");
}

/// A send the function was never granted fails with a message naming the
/// function and the queue (on a cloud, an SDK error naming the account and
/// the ARN): the caller sees only that something failed, and which
/// invocation to quote.
async fn infrastructure_failure_is_generic(h: &Harness) {
    let response = h.http(Method::POST, "/undeclared").send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body = json_of(response).await;
    assert_generic(&body, "internal");
    let text = body.to_string();
    for private in ["undeclared", JOBS, "declare", "forbidden"] {
        assert!(!text.contains(private), "`{private}` leaked: {body}");
    }
}

async fn panic_isolated(h: &Harness) {
    let boom = h.http(Method::GET, "/panic?boom=1").send().await.unwrap();
    assert_eq!(boom.status(), 500);
    let body = boom.text().await.unwrap();
    assert!(
        !body.contains("boom"),
        "the panic's message stays in the logs: {body}"
    );
    let after = h.http(Method::GET, "/panic").send().await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(after.text().await.unwrap(), "still here");
}

async fn publish_reaches_subscriber(h: &Harness) {
    let key = h.key("publish");
    let response = h
        .http(Method::POST, &format!("/publish/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let sent: serde_json::Value = response.json().await.unwrap();
    let seen = h.observe_until(&key, PATIENCE, |o| !o.is_empty()).await;
    assert_eq!(seen[0].function, "listen");
    assert_eq!(seen[0].outcome, "heard");
    // Choreography can be followed: the subscriber ran in the publisher's
    // trace, with its correlation id, across the platform's broker.
    assert_eq!(
        seen[0].trace_id, sent["trace_id"],
        "the trace crossed the hop"
    );
    assert_eq!(
        seen[0].correlation_id, sent["correlation_id"],
        "the correlation id crossed the hop"
    );
}

async fn schedule_fires(h: &Harness) {
    // Every minute: at most one minute, and a margin for a slow start.
    let seen = h
        .observe_until("tick", Duration::from_secs(80), |o| !o.is_empty())
        .await;
    let at: chrono::DateTime<chrono::Utc> = seen[0].outcome.parse().expect("an RFC 3339 time");
    assert_eq!(at.timestamp() % 60, 0, "fired on the minute: {at}");
    assert_eq!(seen[0].function, "tick");
}

fn outcomes(seen: &[Observation]) -> Vec<(&str, u32)> {
    seen.iter()
        .map(|o| (o.outcome.as_str(), o.attempt))
        .collect()
}

async fn store_write_then_read(h: &Harness) {
    let key = h.key("note");
    let missing = h
        .http(Method::GET, &format!("/notes/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let note = serde_json::json!({"text": "hello", "n": 7});
    let put = h
        .http(Method::PUT, &format!("/notes/{key}"))
        .header("content-type", "application/json")
        .body(note.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let read = h
        .http(Method::GET, &format!("/notes/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(json_of(read).await, note);
}

async fn store_race(h: &Harness) {
    let key = h.key("race");
    let attempts = (0..8).map(|i| {
        let side = if i % 2 == 0 { "a" } else { "b" };
        h.http(Method::POST, &format!("/claims/{side}/{key}"))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let won = statuses.iter().filter(|s| **s == 201).count();
    let lost = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((won, lost), (1, 7), "{statuses:?}");
}
