//! The shop: checkout over HTTP, then the order paid, taken out of stock
//! and the customer told, in one of two ways ([`Flow`]):
//!
//! - choreographed (the default): payment off a queue with retries and a
//!   dead-letter queue, and inventory and notification reacting to
//!   `order-paid`;
//! - orchestrated (`SHOP_FLOW=orchestrated`): one workflow calling each
//!   step in turn, undoing the done ones when a later one fails
//!   ([`orchestrated`]).
//!
//! Its contract (tests and adapters rely on it): functions `checkout`
//! (POST /orders) and `order-status` (GET /orders/{id}); stores `orders`,
//! `stock` and `notifications`; an order `accepted`, then `paid` or
//! `failed`. Choreographed, also `charge` (queue `orders`, dead letter
//! `orders-dlq`), `inventory` and `notify` (topic `order-paid`).

use std::{sync::Arc, time::Duration};

use cloudfn::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Idempotency, Message, Method,
    RetryPolicy, ScheduledTick, Store,
};
use serde::{Deserialize, Serialize};

#[path = "orchestrated.rs"]
pub mod orchestrated;

/// The queue between checkout and payment.
pub const ORDERS: &str = "orders";
/// Where orders that cannot be charged end up.
pub const ORDERS_DLQ: &str = "orders-dlq";
/// Announced once an order is paid.
pub const ORDER_PAID: &str = "order-paid";
/// Orders and their status, by order id.
pub const ORDERS_STORE: &str = "orders";
/// Stock levels by `sku:<SKU>`, and `shipped`, the units shipped in all.
pub const STOCK_STORE: &str = "stock";
/// Notifications sent, by order id.
pub const NOTIFICATIONS_STORE: &str = "notifications";

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub qty: u32,
}

/// What a customer posts to `/orders`.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    pub customer: String,
    pub items: Vec<LineItem>,
}

/// An accepted order, as it travels on the `orders` queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer: String,
    pub items: Vec<LineItem>,
}

/// The `order-paid` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: String,
    pub customer: String,
    pub items: Vec<LineItem>,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Paid,
    Failed,
}

/// How an order goes on after checkout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flow {
    /// Functions reacting to each other's messages: `orders` → `charge` →
    /// `order-paid` → `inventory` and `notify`.
    #[default]
    Choreographed,
    /// One workflow calling the steps in turn ([`orchestrated`]).
    Orchestrated,
}

/// The shop's configuration. Its data (orders, stock, notifications) is in
/// stores, so every function sees it in whatever instance it runs.
#[derive(Debug, Default)]
pub struct Shop {
    /// Chance (0 to 1) that a charge fails transiently.
    pub charge_failure_rate: f64,
    /// How orders go on after checkout.
    pub flow: Flow,
}

impl Shop {
    /// A choreographed shop whose charges fail transiently with probability `rate`.
    pub fn new(charge_failure_rate: f64) -> Arc<Self> {
        Self::with_flow(charge_failure_rate, Flow::Choreographed)
    }

    /// A shop whose orders go on by `flow`.
    pub fn with_flow(charge_failure_rate: f64, flow: Flow) -> Arc<Self> {
        Arc::new(Self {
            charge_failure_rate,
            flow,
        })
    }

    /// A shop configured by `SHOP_CHARGE_FAILURE_RATE` (0 to 1, default
    /// 0.2) and `SHOP_FLOW` (`choreographed`, the default, or `orchestrated`).
    pub fn from_env() -> Result<Arc<Self>, Error> {
        let flow = match std::env::var("SHOP_FLOW").as_deref() {
            Err(_) | Ok("choreographed") => Flow::Choreographed,
            Ok("orchestrated") => Flow::Orchestrated,
            Ok(other) => {
                return Err(Error::invalid(format!(
                    "SHOP_FLOW must be `choreographed` or `orchestrated`, not `{other}`"
                )));
            }
        };
        let rate = match std::env::var("SHOP_CHARGE_FAILURE_RATE") {
            Err(_) => 0.2,
            Ok(text) => text
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "SHOP_CHARGE_FAILURE_RATE must be a number from 0 to 1, not `{text}`"
                    ))
                })?,
        };
        Ok(Self::with_flow(rate, flow))
    }
}

/// An order and where it stands, as the `orders` store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    #[serde(flatten)]
    pub order: Order,
    pub status: Status,
}

/// The status of order `id` in `orders` (the `orders` store).
pub async fn status(orders: &Store, id: &str) -> Result<Option<Status>, Error> {
    Ok(orders
        .get::<OrderRecord>(id)
        .await?
        .map(|record| record.value.status))
}

/// The stock level of `sku` in `stock` (the `stock` store): it starts at 0
/// and goes down as orders are paid.
pub async fn stock_level(stock: &Store, sku: &str) -> Result<i64, Error> {
    Ok(stock
        .get::<Tally>(&format!("sku:{sku}"))
        .await?
        .map_or(0, |level| level.value.count))
}

/// The notifications sent about order `id` (the `notifications` store).
pub async fn notifications(notes: &Store, id: &str) -> Result<Vec<String>, Error> {
    Ok(notes
        .get::<Vec<String>>(id)
        .await?
        .map(|sent| sent.value)
        .unwrap_or_default())
}

/// Records that the customer was told order `id` is paid, once however
/// often it is called.
async fn record_notification(ctx: &Context, id: &str, customer: &str) -> Result<(), Error> {
    let note = format!("to {customer}: order {id} is paid");
    ctx.store(NOTIFICATIONS_STORE)
        .update(id, |sent: Option<Vec<String>>| {
            let mut sent = sent.unwrap_or_default();
            if !sent.contains(&note) {
                sent.push(note.clone());
            }
            Ok(sent)
        })
        .await?;
    tracing::info!(order_id = %id, "notification sent");
    Ok(())
}

async fn set_status(ctx: &Context, id: &str, status: Status) -> Result<(), Error> {
    ctx.store(ORDERS_STORE)
        .update(id, |record: Option<OrderRecord>| {
            let mut record =
                record.ok_or_else(|| Error::not_found(format!("no order `{id}` in the store")))?;
            record.status = status;
            Ok(record)
        })
        .await?;
    Ok(())
}

/// `POST /orders`: validates and records an order, and sends it on its way
/// (to the `orders` queue, or as an execution of the `order` workflow);
/// answers 202 with its id.
async fn checkout(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let new: NewOrder = req.json()?;
    if !new.customer.contains('@') {
        return Err(Error::invalid("customer must be an email address").with_field("customer"));
    }
    if new.items.is_empty() {
        return Err(Error::invalid("an order needs at least one item").with_field("items"));
    }
    if let Some(i) = new.items.iter().position(|item| item.qty == 0) {
        return Err(Error::invalid("qty must be at least 1").with_field(format!("items[{i}].qty")));
    }
    let order = Order {
        id: uuid::Uuid::new_v4().to_string(),
        customer: new.customer,
        items: new.items,
    };
    let record = OrderRecord {
        order: order.clone(),
        status: Status::Accepted,
    };
    ctx.store(ORDERS_STORE).put(&order.id, &record).await?;
    match ctx.state::<Arc<Shop>>()?.flow {
        Flow::Choreographed => {
            ctx.queue(ORDERS).send(&order).await?;
        }
        Flow::Orchestrated => {
            ctx.workflow(orchestrated::ORDER_FLOW)
                .start_with_id(&order.id, &order)
                .await?;
        }
    }
    tracing::info!(order_id = %order.id, "order accepted");
    Ok(HttpResponse::json(
        202,
        &serde_json::json!({ "id": order.id, "status": Status::Accepted }),
    ))
}

/// `GET /orders/{id}`: the order and its status, or 404.
async fn order_status(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let id = req.path_param("id")?;
    let record = ctx
        .store(ORDERS_STORE)
        .get::<OrderRecord>(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no order `{id}`")))?;
    Ok(HttpResponse::json(200, &record.value))
}

/// Charges an order. The payment provider fails now and then (transiently:
/// retried with backoff); on the last attempt the order is marked failed.
async fn charge(msg: Message<Order>, ctx: Context) -> Result<(), Error> {
    let shop = ctx.state::<Arc<Shop>>()?;
    let order = msg.body;
    if fastrand::f64() < shop.charge_failure_rate {
        if ctx.is_final_attempt() {
            set_status(&ctx, &order.id, Status::Failed).await?;
        }
        return Err(Error::unavailable(format!(
            "payment provider timed out charging order {}",
            order.id
        )));
    }
    set_status(&ctx, &order.id, Status::Paid).await?;
    let paid = OrderPaid {
        order_id: order.id,
        customer: order.customer,
        items: order.items,
    };
    ctx.topic(ORDER_PAID).publish(&paid).await?;
    tracing::info!(order_id = %paid.order_id, attempt = ctx.attempt(), "order paid");
    Ok(())
}

/// Takes a paid order's items out of stock.
/// A count that each order changes at most once: the store has no
/// transactions across keys, so an order that fails half-way through its
/// items and is retried must not take the first items twice.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    pub count: i64,
    /// What changed it most recently, newest last.
    recent: Vec<String>,
}

/// How many orders a tally remembers: far more than are retried at once.
const REMEMBERED: usize = 256;

/// Changes tally `key` by `change` unless `applied` (an order, or one line
/// of it) changed it already; a change that would take it below `floor`
/// is a conflict, and nothing changes.
async fn tally(
    stock: &Store,
    key: &str,
    applied: &str,
    change: i64,
    floor: Option<i64>,
) -> Result<(), Error> {
    stock
        .update(key, |tally: Option<Tally>| {
            let mut tally = tally.unwrap_or_default();
            if !tally.recent.iter().any(|id| id == applied) {
                if let Some(floor) = floor
                    && tally.count + change < floor
                {
                    return Err(Error::new(
                        cloudfn::ErrorKind::Conflict,
                        format!("out of stock: `{key}` cannot go down by {}", -change),
                    ));
                }
                tally.count += change;
                tally.recent.push(applied.to_owned());
                let excess = tally.recent.len().saturating_sub(REMEMBERED);
                tally.recent.drain(..excess);
            }
            Ok(tally)
        })
        .await?;
    Ok(())
}

/// Takes a paid order's items out of stock. Idempotency makes a redelivery
/// of the event a no-op; the tallies make a retry after a partial failure
/// one too.
async fn inventory(msg: Message<OrderPaid>, ctx: Context) -> Result<(), Error> {
    let stock = ctx.store(STOCK_STORE);
    let order = &msg.body.order_id;
    for item in &msg.body.items {
        let qty = i64::from(item.qty);
        tally(&stock, &format!("sku:{}", item.sku), order, -qty, None).await?;
        let line = format!("{order}/{}", item.sku);
        tally(&stock, "shipped", &line, qty, None).await?;
    }
    Ok(())
}

/// Tells the customer their order is paid.
async fn notify(msg: Message<OrderPaid>, ctx: Context) -> Result<(), Error> {
    record_notification(&ctx, &msg.body.order_id, &msg.body.customer).await
}

/// Logs what left the stock, once a minute.
async fn stock_report(_tick: ScheduledTick, ctx: Context) -> Result<(), Error> {
    let shipped = ctx.store(STOCK_STORE).get::<Tally>("shipped").await?;
    let shipped = shipped.map_or(0, |s| s.value.count);
    tracing::info!(units_shipped = shipped, "stock report");
    Ok(())
}

/// The shop app over `shop`'s state, its orders going on by `shop.flow`.
pub fn app(shop: Arc<Shop>) -> App {
    let flow = shop.flow;
    // Anyone may place an order; only the shop's own staff and services
    // (signed requests) may read one back.
    let checkout = Function::http("checkout", Method::Post, "/orders", checkout)
        .public()
        .uses_store(ORDERS_STORE);
    let checkout = match flow {
        Flow::Choreographed => checkout.sends_to(ORDERS),
        Flow::Orchestrated => checkout.starts_workflow(orchestrated::ORDER_FLOW),
    };
    let app = App::new("shop")
        .with_state(shop)
        .function(checkout)
        .function(
            Function::http("order-status", Method::Get, "/orders/{id}", order_status)
                .reads_store(ORDERS_STORE),
        );
    let app = match flow {
        Flow::Choreographed => app
            .function(
                Function::queue("charge", ORDERS, charge)
                    .retry(
                        RetryPolicy::new(4)
                            .initial_delay(Duration::from_millis(200))
                            .max_delay(Duration::from_secs(2)),
                    )
                    .dead_letter(ORDERS_DLQ)
                    .timeout(Duration::from_secs(10))
                    // Redelivery of an order must never charge it twice.
                    .idempotent(Idempotency::by_body_field("/id"))
                    .publishes_to(ORDER_PAID)
                    .uses_store(ORDERS_STORE),
            )
            .function(
                Function::topic("inventory", ORDER_PAID, inventory)
                    .idempotent(Idempotency::by_message_id())
                    .uses_store(STOCK_STORE),
            )
            .function(
                Function::topic("notify", ORDER_PAID, notify)
                    .idempotent(Idempotency::by_message_id())
                    .uses_store(NOTIFICATIONS_STORE),
            ),
        Flow::Orchestrated => orchestrated::functions()
            .into_iter()
            .fold(app, App::function)
            .workflow(orchestrated::workflow()),
    };
    app.function(
        Function::schedule("stock-report", "* * * * *", stock_report).reads_store(STOCK_STORE),
    )
}
