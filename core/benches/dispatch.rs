//! Dispatch overhead: a neutral event through `Invoke::invoke` (context,
//! span, deadline, panic guard, payload decoding) against calling the same
//! handler directly.
//!
//! `cargo bench -p cloudfn-core --bench dispatch`

use std::hint::black_box;

use bytes::Bytes;
use cloudfn_core::{
    Context, Error, Function, HttpRequest, HttpResponse, Message, Method,
    provider::{ContextBuilder, Event, Invoke, Services},
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;

async fn hello(req: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::new(200).with_body(req.body))
}

#[derive(Deserialize)]
struct Order {
    id: String,
    qty: u32,
}

async fn take(msg: Message<Order>, _: Context) -> Result<(), Error> {
    black_box((&msg.body.id, msg.body.qty));
    Ok(())
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let services = Services::detached("bench");
    let http = Function::http("hello", Method::Post, "/hello", hello);
    let queue = Function::queue("take", "orders", take);
    let request = HttpRequest::new(http::Method::POST, "/hello").with_body(&b"{\"x\":1}"[..]);
    let body = Bytes::from_static(br#"{"id":"o-1","qty":2}"#);

    let mut group = c.benchmark_group("dispatch");
    group.bench_function("http/direct_call", |b| {
        let ctx = ContextBuilder::new(&http, &services).build();
        b.to_async(&rt).iter(|| hello(request.clone(), ctx.clone()))
    });
    group.bench_function("http/invoke", |b| {
        b.to_async(&rt).iter(|| {
            let ctx = ContextBuilder::new(&http, &services).build();
            http.invoke(Event::Http(request.clone()), ctx)
        })
    });
    group.bench_function("message/direct_call", |b| {
        let ctx = ContextBuilder::new(&queue, &services).build();
        b.to_async(&rt).iter(|| {
            let msg = Message::new("m-1", "orders", body.clone());
            let msg = msg.map(|raw| serde_json::from_slice::<Order>(&raw).unwrap());
            take(msg, ctx.clone())
        })
    });
    group.bench_function("message/invoke", |b| {
        b.to_async(&rt).iter(|| {
            let ctx = ContextBuilder::new(&queue, &services).build();
            queue.invoke(
                Event::Message(Message::new("m-1", "orders", body.clone())),
                ctx,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
