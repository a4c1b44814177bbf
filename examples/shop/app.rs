//! The shop: checkout over HTTP, payment off a queue with retries and a
//! dead-letter queue, and inventory and notification reacting to `order-paid`.
//!
//! Its contract (tests and adapters rely on it): functions `checkout`
//! (POST /orders), `order-status` (GET /orders/{id}), `charge` (queue
//! `orders`, dead letter `orders-dlq`), `inventory` and `notify` (topic
//! `order-paid`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudfn::{
    App, Context, Error, Function, HttpRequest, HttpResponse, Idempotency, Message, Method,
    RetryPolicy, ScheduledTick,
};
use serde::{Deserialize, Serialize};

/// The queue between checkout and payment.
pub const ORDERS: &str = "orders";
/// Where orders that cannot be charged end up.
pub const ORDERS_DLQ: &str = "orders-dlq";
/// Announced once an order is paid.
pub const ORDER_PAID: &str = "order-paid";

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

/// The shop's state. In one process it is shared memory; on a cloud each
/// function would keep it in the cloud's database instead.
#[derive(Debug, Default)]
pub struct Shop {
    /// Chance (0 to 1) that a charge fails transiently.
    pub charge_failure_rate: f64,
    orders: Mutex<HashMap<String, (Order, Status)>>,
    stock: Mutex<HashMap<String, i64>>,
    notifications: Mutex<Vec<String>>,
}

impl Shop {
    /// A shop whose charges fail transiently with probability `rate`.
    pub fn new(charge_failure_rate: f64) -> Arc<Self> {
        Arc::new(Self {
            charge_failure_rate,
            ..Self::default()
        })
    }

    /// A shop configured by `SHOP_CHARGE_FAILURE_RATE` (0 to 1, default 0.2).
    pub fn from_env() -> Result<Arc<Self>, Error> {
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
        Ok(Self::new(rate))
    }

    /// The status of order `id`.
    pub fn status(&self, id: &str) -> Option<Status> {
        lock(&self.orders).get(id).map(|(_, status)| *status)
    }

    /// Units of `sku` shipped out of stock so far (negative: stock starts at 0).
    pub fn stock(&self, sku: &str) -> i64 {
        lock(&self.stock).get(sku).copied().unwrap_or(0)
    }

    /// The notifications sent, in order.
    pub fn notifications(&self) -> Vec<String> {
        lock(&self.notifications).clone()
    }

    fn set_status(&self, id: &str, status: Status) {
        if let Some(entry) = lock(&self.orders).get_mut(id) {
            entry.1 = status;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `POST /orders`: validates, records and enqueues an order; answers 202 with its id.
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
    let shop = ctx.state::<Arc<Shop>>()?;
    lock(&shop.orders).insert(order.id.clone(), (order.clone(), Status::Accepted));
    ctx.queue(ORDERS).send(&order).await?;
    tracing::info!(order_id = %order.id, "order accepted");
    Ok(HttpResponse::json(
        202,
        &serde_json::json!({ "id": order.id, "status": Status::Accepted }),
    ))
}

/// `GET /orders/{id}`: the order and its status, or 404.
async fn order_status(req: HttpRequest, ctx: Context) -> Result<HttpResponse, Error> {
    let id = req.path_param("id")?;
    let shop = ctx.state::<Arc<Shop>>()?;
    let orders = lock(&shop.orders);
    let (order, status) = orders
        .get(id)
        .ok_or_else(|| Error::not_found(format!("no order `{id}`")))?;
    Ok(HttpResponse::json(
        200,
        &serde_json::json!({
            "id": order.id,
            "customer": order.customer,
            "items": order.items,
            "status": status,
        }),
    ))
}

/// Charges an order. The payment provider fails now and then (transiently:
/// retried with backoff); on the last attempt the order is marked failed.
async fn charge(msg: Message<Order>, ctx: Context) -> Result<(), Error> {
    let shop = ctx.state::<Arc<Shop>>()?;
    let order = msg.body;
    if fastrand::f64() < shop.charge_failure_rate {
        if ctx.is_final_attempt() {
            shop.set_status(&order.id, Status::Failed);
        }
        return Err(Error::unavailable(format!(
            "payment provider timed out charging order {}",
            order.id
        )));
    }
    shop.set_status(&order.id, Status::Paid);
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
async fn inventory(msg: Message<OrderPaid>, ctx: Context) -> Result<(), Error> {
    let shop = ctx.state::<Arc<Shop>>()?;
    let mut stock = lock(&shop.stock);
    for item in &msg.body.items {
        *stock.entry(item.sku.clone()).or_default() -= i64::from(item.qty);
    }
    Ok(())
}

/// Tells the customer their order is paid.
async fn notify(msg: Message<OrderPaid>, ctx: Context) -> Result<(), Error> {
    let shop = ctx.state::<Arc<Shop>>()?;
    let note = format!(
        "to {}: order {} is paid",
        msg.body.customer, msg.body.order_id
    );
    tracing::info!(order_id = %msg.body.order_id, "notification sent");
    lock(&shop.notifications).push(note);
    Ok(())
}

/// Logs what left the stock, once a minute.
async fn stock_report(_tick: ScheduledTick, ctx: Context) -> Result<(), Error> {
    let shop = ctx.state::<Arc<Shop>>()?;
    let shipped: i64 = lock(&shop.stock).values().map(|v| -v).sum();
    tracing::info!(units_shipped = shipped, "stock report");
    Ok(())
}

/// The shop app over `shop`'s state.
pub fn app(shop: Arc<Shop>) -> App {
    App::new("shop")
        .with_state(shop)
        .function(Function::http("checkout", Method::Post, "/orders", checkout).sends_to(ORDERS))
        .function(Function::http(
            "order-status",
            Method::Get,
            "/orders/{id}",
            order_status,
        ))
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
                .publishes_to(ORDER_PAID),
        )
        .function(
            Function::topic("inventory", ORDER_PAID, inventory)
                .idempotent(Idempotency::by_message_id()),
        )
        .function(
            Function::topic("notify", ORDER_PAID, notify).idempotent(Idempotency::by_message_id()),
        )
        .function(Function::schedule(
            "stock-report",
            "* * * * *",
            stock_report,
        ))
}
