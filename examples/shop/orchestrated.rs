//! The shop's order flow run by one orchestrator (`SHOP_FLOW=orchestrated`):
//! the workflow `order` calls validate → charge → reserve → notify in turn.
//! A step that fails for good (after its retries) marks the order failed and
//! fails the execution, which undoes what was done, latest first: a
//! reservation is released, a charge refunded. What a customer sees is the
//! choreographed flow's: the same HTTP contract, the order `accepted`, then
//! `paid` or `failed`.

use std::time::Duration;

use cloudfn::{
    Context, Error, Function, Message, RetryPolicy,
    workflow::{ErrorMatch, Step, Workflow},
};
use serde::{Deserialize, Serialize};

use super::{NOTIFICATIONS_STORE, ORDERS_STORE, Order, STOCK_STORE, Status, set_status, tally};

/// The workflow checkout starts, one execution per order (its id is the order's).
pub const ORDER_FLOW: &str = "order";
/// Charges and refunds, by order id.
pub const PAYMENTS_STORE: &str = "payments";
/// The units of each SKU there are to sell: a reservation that would take
/// more fails, and the order with it.
pub const STOCK_PER_SKU: i64 = 100;

/// What the payment provider holds for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    Charged,
    Refunded,
}

/// The order flow.
pub fn workflow() -> Workflow {
    Workflow::new(ORDER_FLOW)
        .step(Step::call("validate", "validate-order").catch(ErrorMatch::Any, failed("validate")))
        .step(
            Step::call("charge", "charge-order")
                .retry(
                    RetryPolicy::new(4)
                        .initial_delay(Duration::from_millis(200))
                        .max_delay(Duration::from_secs(2)),
                )
                .compensate("refund")
                .catch(ErrorMatch::Any, failed("charge")),
        )
        .step(
            Step::call("reserve", "reserve-stock")
                .retry(RetryPolicy::new(3))
                .compensate("release-stock")
                .catch(ErrorMatch::Any, failed("reserve")),
        )
        .step(
            Step::call("notify", "notify-customer")
                .retry(RetryPolicy::new(3))
                .catch(ErrorMatch::Any, failed("notify")),
        )
}

/// What follows a step's failure: the order marked failed, and the
/// execution failed, which runs the compensations.
fn failed(step: &str) -> [Step; 2] {
    [
        Step::call(format!("{step}-failed"), "order-failed"),
        Step::fail(
            format!("{step}-stop"),
            "OrderFailed",
            format!("the {step} step failed"),
        ),
    ]
}

/// The step functions.
pub fn functions() -> Vec<Function> {
    vec![
        Function::step("validate-order", validate),
        Function::step("charge-order", charge)
            .timeout(Duration::from_secs(10))
            .uses_store(PAYMENTS_STORE),
        Function::step("refund", refund).uses_store(PAYMENTS_STORE),
        Function::step("reserve-stock", reserve).uses_store(STOCK_STORE),
        Function::step("release-stock", release).uses_store(STOCK_STORE),
        Function::step("notify-customer", notify)
            .uses_store(ORDERS_STORE)
            .uses_store(NOTIFICATIONS_STORE),
        Function::step("order-failed", order_failed).uses_store(ORDERS_STORE),
    ]
}

/// Checks what checkout could not: each SKU is one the shop could stock.
async fn validate(msg: Message<Order>, _ctx: Context) -> Result<Order, Error> {
    let order = msg.body;
    if let Some(i) = order
        .items
        .iter()
        .position(|item| item.sku.is_empty() || item.sku.len() > 64)
    {
        return Err(
            Error::bad_input("a SKU is 1 to 64 characters").with_field(format!("items[{i}].sku"))
        );
    }
    Ok(order)
}

/// Charges the order; the payment provider fails now and then
/// (transiently: the step retries with backoff).
async fn charge(msg: Message<Order>, ctx: Context) -> Result<Order, Error> {
    let shop = ctx.state::<std::sync::Arc<super::Shop>>()?;
    let order = msg.body;
    if fastrand::f64() < shop.charge_failure_rate {
        return Err(Error::unavailable(format!(
            "payment provider timed out charging order {}",
            order.id
        )));
    }
    ctx.store(PAYMENTS_STORE)
        .put(&order.id, &Payment::Charged)
        .await?;
    tracing::info!(order_id = %order.id, attempt = ctx.attempt(), "order charged");
    Ok(order)
}

/// Gives a charge back (the compensation of `charge`).
async fn refund(msg: Message<Order>, ctx: Context) -> Result<Order, Error> {
    let order = msg.body;
    ctx.store(PAYMENTS_STORE)
        .put(&order.id, &Payment::Refunded)
        .await?;
    tracing::info!(order_id = %order.id, "charge refunded");
    Ok(order)
}

/// Takes the order's items out of stock, all or none: a line there is not
/// enough of puts back the lines taken before it and fails the step for good.
async fn reserve(msg: Message<Order>, ctx: Context) -> Result<Order, Error> {
    let stock = ctx.store(STOCK_STORE);
    let order = msg.body;
    for (i, item) in order.items.iter().enumerate() {
        let qty = i64::from(item.qty);
        let key = format!("sku:{}", item.sku);
        if let Err(short) = tally(&stock, &key, &order.id, -qty, Some(-STOCK_PER_SKU)).await {
            put_back(&stock, &order, &order.items[..i]).await?;
            return Err(short);
        }
        tally(
            &stock,
            "shipped",
            &format!("{}/{}", order.id, item.sku),
            qty,
            None,
        )
        .await?;
    }
    Ok(order)
}

/// Puts a reserved order's items back (the compensation of `reserve`).
async fn release(msg: Message<Order>, ctx: Context) -> Result<Order, Error> {
    let order = msg.body;
    put_back(&ctx.store(STOCK_STORE), &order, &order.items).await?;
    tracing::info!(order_id = %order.id, "stock released");
    Ok(order)
}

async fn put_back(
    stock: &cloudfn::Store,
    order: &Order,
    items: &[super::LineItem],
) -> Result<(), Error> {
    let undo = format!("{}/release", order.id);
    for item in items {
        let qty = i64::from(item.qty);
        tally(stock, &format!("sku:{}", item.sku), &undo, qty, None).await?;
        let line = format!("{}/{}/release", order.id, item.sku);
        tally(stock, "shipped", &line, -qty, None).await?;
    }
    Ok(())
}

/// Marks the order paid and tells the customer, once however often it runs.
async fn notify(msg: Message<Order>, ctx: Context) -> Result<Order, Error> {
    let order = msg.body;
    set_status(&ctx, &order.id, Status::Paid).await?;
    super::record_notification(&ctx, &order.id, &order.customer).await?;
    Ok(order)
}

/// Marks the order failed; the input carries the failure as `error`.
async fn order_failed(msg: Message<serde_json::Value>, ctx: Context) -> Result<(), Error> {
    let id = msg.body["id"]
        .as_str()
        .ok_or_else(|| Error::bad_input("the order has no id").with_field("id"))?;
    set_status(&ctx, id, Status::Failed).await?;
    tracing::warn!(order_id = %id, error = %msg.body["error"], "order failed");
    Ok(())
}
