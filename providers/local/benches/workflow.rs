//! The durable orchestrator in the local runtime: steps per second with every
//! step's attempt and result committed to the store (redb on disk, then in
//! memory to separate what persistence costs), and a 4-step order workflow
//! against the same four step functions called one after another without
//! orchestration.
//!
//! The file store lives in a temporary folder (`TMPDIR`): on a tmpfs its
//! fsyncs cost nothing, so point `TMPDIR` at a disk to measure durability.
//!
//! `cargo bench -p cloudfn-local --bench workflow`

use std::{path::Path, sync::Arc, time::Duration};

use cloudfn_core::{
    App, Context, Error, Function, Message,
    messaging::NoMessaging,
    provider::{ContextBuilder, Event, Invoke, Output, Services, StoreClient},
    store::MemoryStore,
    workflow::{EXECUTIONS_STORE, InProcessSteps, Orchestrator, Status, Step, StepCall, Workflow},
};
use cloudfn_local::FileStore;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use serde_json::{Value, json};

/// Steps of the long workflow.
const STEPS: usize = 20;

/// The four functions of the order workflow, in order.
const ORDER_FUNCTIONS: [&str; 4] = ["validate", "charge", "reserve", "notify"];

fn order() -> Value {
    json!({
        "id": "o-1042",
        "customer": "ada@example.com",
        "items": [{"sku": "tea-01", "qty": 2, "cents": 450}, {"sku": "mug-07", "qty": 1, "cents": 1200}],
        "shipping": "standard"
    })
}

/// Adds `field: value` to the order in `msg`.
fn with(msg: Message<Value>, field: &str, value: Value) -> Result<Value, Error> {
    let mut order = msg.body;
    let fields = order
        .as_object_mut()
        .ok_or_else(|| Error::bad_input("an order is a JSON object"))?;
    fields.insert(field.to_owned(), value);
    Ok(order)
}

async fn validate(msg: Message<Value>, _: Context) -> Result<Value, Error> {
    let total: u64 = msg.body["items"]
        .as_array()
        .ok_or_else(|| Error::bad_input("no items"))?
        .iter()
        .map(|i| i["qty"].as_u64().unwrap_or(0) * i["cents"].as_u64().unwrap_or(0))
        .sum();
    with(msg, "total_cents", json!(total))
}

async fn charge(msg: Message<Value>, _: Context) -> Result<Value, Error> {
    let charge = json!({"id": format!("ch-{}", msg.id), "cents": msg.body["total_cents"]});
    with(msg, "charge", charge)
}

async fn reserve(msg: Message<Value>, _: Context) -> Result<Value, Error> {
    let lines = msg.body["items"].as_array().map_or(0, Vec::len);
    with(msg, "reserved_lines", json!(lines))
}

async fn notify(msg: Message<Value>, _: Context) -> Result<Value, Error> {
    let to = msg.body["customer"].clone();
    with(msg, "notified", to)
}

/// The app: an echo step, the order steps, a workflow of [`STEPS`] echoes
/// and the order workflow.
fn app() -> App {
    let mut steps = Workflow::new("steps");
    for i in 0..STEPS {
        steps = steps.step(Step::call(format!("s{i:02}"), "echo"));
    }
    let mut flow = Workflow::new("order");
    for function in ORDER_FUNCTIONS {
        flow = flow.step(Step::call(function, function));
    }
    App::new("bench")
        .function(Function::step(
            "echo",
            |msg: Message<Value>, _: Context| async move { Ok::<_, Error>(msg.body) },
        ))
        .function(Function::step("validate", validate))
        .function(Function::step("charge", charge))
        .function(Function::step("reserve", reserve))
        .function(Function::step("notify", notify))
        .workflow(steps)
        .workflow(flow)
}

fn services(app: &App, stores: Arc<dyn StoreClient>) -> Services {
    app.services(
        "local",
        Arc::new(NoMessaging),
        Arc::new(NoMessaging),
        stores,
    )
}

/// The orchestrator as the local runtime wires it: the app's functions
/// called in the process, progress in `stores`.
fn orchestrator(app: &App, stores: Arc<dyn StoreClient>) -> Orchestrator {
    let services = services(app, stores);
    let store = services.store(EXECUTIONS_STORE);
    let steps = InProcessSteps::new(app, services);
    Orchestrator::new(store, Arc::new(steps), app.workflows().to_vec())
}

/// One execution of `workflow` on `input`, started and run to its end.
async fn execute(orchestrator: &Orchestrator, workflow: &str, input: Value) -> Value {
    let id = orchestrator.start(workflow, input, None).await.unwrap();
    let execution = orchestrator.run(workflow, &id).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded);
    execution.output.unwrap()
}

/// The four order functions called in sequence through `Invoke::invoke`,
/// each with a context and message made as `InProcessSteps` makes them.
struct Direct {
    functions: Vec<Arc<Function>>,
    services: Services,
}

impl Direct {
    fn new(app: &App, services: Services) -> Self {
        let functions = ORDER_FUNCTIONS
            .iter()
            .map(|name| {
                app.functions()
                    .iter()
                    .find(|f| f.name() == *name)
                    .unwrap()
                    .clone()
            })
            .collect();
        Self {
            functions,
            services,
        }
    }

    async fn run(&self, execution: &str, input: Value) -> Value {
        let mut value = input;
        for function in &self.functions {
            let call = StepCall {
                workflow: "order".to_owned(),
                execution: execution.to_owned(),
                step: function.name().to_owned(),
                attempt: 1,
                input: value,
            };
            let ctx = ContextBuilder::new(function, &self.services)
                .invocation_id(call.key())
                .attempt(call.attempt)
                .build();
            let message = call.into_message().unwrap();
            value = match function.invoke(Event::Message(message), ctx).await.unwrap() {
                Output::Value(output) => output,
                _ => unreachable!("step functions give values"),
            };
        }
        value
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The stores to compare: redb on disk in `dir`, and memory.
fn stores(dir: &Path) -> [(&'static str, Arc<dyn StoreClient>); 2] {
    [
        ("file_store", Arc::new(FileStore::open(dir).unwrap())),
        ("memory_store", Arc::new(MemoryStore::new())),
    ]
}

/// A workflow of [`STEPS`] `call` steps whose function returns its input.
fn durable_steps(c: &mut Criterion) {
    let rt = runtime();
    let app = app();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("workflow_steps");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(2));
    for (name, store) in stores(dir.path()) {
        let orchestrator = orchestrator(&app, store);
        group.bench_function(BenchmarkId::new(format!("{STEPS}_echo_steps"), name), |b| {
            b.to_async(&rt)
                .iter(|| execute(&orchestrator, "steps", json!({"id": "o-1", "n": 1})))
        });
    }
    group.finish();
}

/// The 4-step order workflow, orchestrated, against its functions called
/// directly.
fn order_executions(c: &mut Criterion) {
    let rt = runtime();
    let app = app();
    let dir = tempfile::tempdir().unwrap();
    // Both paths give the same output (`charge` names the execution).
    let direct = Direct::new(&app, services(&app, Arc::new(MemoryStore::new())));
    let orchestrated = rt.block_on(execute(
        &orchestrator(&app, Arc::new(MemoryStore::new())),
        "order",
        order(),
    ));
    let mut expected = rt.block_on(direct.run("e-1", order()));
    expected["charge"]["id"] = orchestrated["charge"]["id"].clone();
    assert_eq!(orchestrated, expected);

    let mut group = c.benchmark_group("workflow_order");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(2));
    for (name, store) in stores(dir.path()) {
        let orchestrator = orchestrator(&app, store);
        group.bench_function(BenchmarkId::new("orchestrated", name), |b| {
            b.to_async(&rt)
                .iter(|| execute(&orchestrator, "order", order()))
        });
    }
    group.sampling_mode(SamplingMode::Auto);
    let mut n = 0u64;
    group.bench_function("direct_calls", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let id = format!("e-{n}");
            let direct = &direct;
            async move { direct.run(&id, order()).await }
        })
    });
    group.finish();
}

criterion_group!(benches, durable_steps, order_executions);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
