//! `AppSpec` → what a Google Cloud project needs to run the app: the
//! Pub/Sub topics and subscriptions its queues and topics become
//! ([`messaging`]), and the settings that tell each function their names
//! ([`settings`]). The emulator ([`crate::emulate`]) creates exactly these
//! on this machine.

mod messaging;
mod settings;

pub use messaging::{Messaging, Subscription, messaging};
pub use settings::settings;

#[cfg(test)]
pub(crate) mod tests {
    use cloudfn_core::{
        App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method, RetryPolicy,
        ScheduledTick, StorageEvent, StorageEventKind,
    };

    async fn page(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }
    async fn consume(_: Message<serde_json::Value>, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }
    async fn changed(_: StorageEvent, _: Context) -> Result<(), Error> {
        Ok(())
    }

    /// An app with every trigger, what the deployment tests render.
    pub(crate) fn every_trigger() -> App {
        App::new("all")
            .function(Function::http("checkout", Method::Post, "/orders", page).public())
            .function(Function::http("status", Method::Get, "/orders/{id}", page))
            .function(
                Function::queue("charge", "orders", consume)
                    .retry(RetryPolicy::new(4))
                    .dead_letter("orders-dlq")
                    .publishes_to("order-paid"),
            )
            .function(Function::fifo_queue("ledger", "entries", consume))
            .function(Function::topic("notify", "order-paid", consume))
            .function(Function::schedule("report", "*/5 * * * 1-5", tick))
            .function(Function::storage(
                "thumbs",
                "uploads",
                [StorageEventKind::Created],
                changed,
            ))
    }
}
