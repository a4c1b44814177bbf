//! `AppSpec` → an Azure function app: `host.json`, one
//! `<function>/function.json` per function, the app settings naming each
//! resource, the package zip-deploy takes ([`package`]), and the ARM
//! template of the app and everything it uses ([`arm_template`]), with the
//! roles its identity needs ([`role_grants`]).
//!
//! The bindings use the names the handler reads ([`crate::events::binding`]);
//! resource names go through app settings (`%CLOUDFN_QUEUE_ORDERS%`), so
//! one package deploys under any prefix.

mod arm;
mod cron;
mod function;
mod host;
mod package;
mod roles;
mod settings;
mod template;

pub use cron::ncrontab;
pub use function::function_json;
pub use host::{EXECUTABLE, host_json};
pub use package::{FunctionApp, app_files, package, write_app_files};
pub use roles::{
    AZURE_SERVICE_BUS_DATA_RECEIVER, AZURE_SERVICE_BUS_DATA_SENDER, BuiltInRole, GrantTarget,
    RoleGrant, STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR, STORAGE_QUEUE_DATA_MESSAGE_SENDER,
    STORAGE_TABLE_DATA_CONTRIBUTOR, STORAGE_TABLE_DATA_READER, role_grants,
};
pub use settings::{app_settings, local_settings};
pub use template::{ArmOptions, TEMPLATE_SCHEMA, arm_template};

#[cfg(test)]
mod tests {
    use cloudfn_core::{
        App, Context, Error, Function, HttpRequest, HttpResponse, Message, Method, RetryPolicy,
        ScheduledTick, StorageEvent, StorageEventKind,
    };
    use serde_json::json;

    use super::*;

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

    pub(super) fn every_trigger() -> App {
        App::new("all")
            .function(Function::http("checkout", Method::Post, "/orders", page).public())
            .function(Function::http("status", Method::Get, "/orders/{id}", page))
            .function(Function::http("files", Method::Any, "/files/{*path}", page))
            .function(
                Function::queue("charge", "orders", consume)
                    .retry(RetryPolicy::new(4))
                    .batch_size(10)
                    .dead_letter("orders-dlq")
                    .publishes_to("order-paid"),
            )
            .function(Function::topic("notify", "order-paid", consume))
            .function(Function::schedule("report", "*/5 * * * 1-5", tick))
            .function(Function::storage(
                "thumbs",
                "uploads",
                [StorageEventKind::Created],
                changed,
            ))
    }

    fn function(app: &App, name: &str) -> serde_json::Value {
        let spec = app.spec();
        function_json(spec.function(name).unwrap()).unwrap()
    }

    #[test]
    fn every_trigger_has_its_binding() {
        let app = every_trigger();
        assert_eq!(
            function(&app, "checkout")["bindings"],
            json!([
                {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous",
                 "route": "orders", "methods": ["post"]},
                {"type": "http", "direction": "out", "name": "res"}
            ])
        );
        let status = function(&app, "status");
        assert_eq!(status["bindings"][0]["authLevel"], "function");
        assert_eq!(status["bindings"][0]["route"], "orders/{id}");
        assert!(
            function(&app, "files")["bindings"][0]
                .get("methods")
                .is_none()
        );
        assert_eq!(
            function(&app, "charge")["bindings"],
            json!([{"type": "queueTrigger", "direction": "in", "name": "message",
                    "queueName": "%CLOUDFN_QUEUE_ORDERS%", "connection": "AzureWebJobsStorage",
                    "dataType": "binary"}])
        );
        assert_eq!(
            function(&app, "notify")["bindings"],
            json!([{"type": "serviceBusTrigger", "direction": "in", "name": "message",
                    "topicName": "%CLOUDFN_TOPIC_ORDER_PAID%", "subscriptionName": "notify",
                    "connection": "CLOUDFN_SERVICE_BUS", "dataType": "binary"}])
        );
        assert_eq!(
            function(&app, "report")["bindings"][0]["schedule"],
            "0 */5 * * * 1-5"
        );
        assert_eq!(
            function(&app, "thumbs")["bindings"][0]["type"],
            "eventGridTrigger"
        );
    }

    #[test]
    fn host_json_runs_the_handler_with_the_queue_settings_the_policies_need() {
        let host = host_json(&every_trigger().spec()).unwrap();
        assert_eq!(
            host["customHandler"]["description"]["defaultExecutablePath"],
            "handler"
        );
        assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], false);
        assert_eq!(host["extensions"]["http"]["routePrefix"], "");
        assert_eq!(host["extensions"]["queues"]["batchSize"], 10);
        assert_eq!(host["extensions"]["queues"]["maxDequeueCount"], 20);
        assert_eq!(host["extensions"]["queues"]["messageEncoding"], "base64");
        assert!(host["extensions"].get("serviceBus").is_some());
        assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");

        let api = App::new("api").function(Function::http("status", Method::Get, "/s", page));
        let host = host_json(&api.spec()).unwrap();
        assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
        assert!(host["extensions"].get("serviceBus").is_none());
    }

    #[test]
    fn settings_name_every_resource_behind_the_prefix() {
        let settings = app_settings(&every_trigger().spec(), "shop-prod");
        assert_eq!(settings["FUNCTIONS_WORKER_RUNTIME"], "Custom");
        assert_eq!(settings["CLOUDFN_QUEUE_ORDERS"], "shop-prod-orders");
        assert_eq!(settings["CLOUDFN_QUEUE_ORDERS_DLQ"], "shop-prod-orders-dlq");
        assert_eq!(
            settings["CLOUDFN_QUEUE_ORDER_PAID_NOTIFY_DEAD_LETTER"],
            "shop-prod-order-paid-notify-dead-letter"
        );
        assert_eq!(
            settings["CLOUDFN_QUEUE_REPORT_DEAD_LETTER"],
            "shop-prod-report-dead-letter"
        );
        assert_eq!(settings["CLOUDFN_TOPIC_ORDER_PAID"], "shop-prod-order-paid");
        let local = local_settings(&every_trigger().spec());
        assert_eq!(
            local["Values"]["AzureWebJobsStorage"],
            "UseDevelopmentStorage=true"
        );
        assert_eq!(local["Values"]["CLOUDFN_QUEUE_ORDERS"], "orders");
    }

    #[test]
    fn what_azure_cannot_do_is_refused_by_name() {
        let jwt = App::new("a").function(
            Function::http("f", Method::Get, "/", page).jwt("https://login.example.com/", ["api"]),
        );
        assert!(
            host_json(&jwt.spec())
                .unwrap_err()
                .message()
                .contains("`f`")
        );
        let fifo = App::new("a").function(Function::fifo_queue("f", "jobs", consume));
        assert!(host_json(&fifo.spec()).is_err());
        assert!(
            ncrontab("0 0 * * 5#3")
                .unwrap_err()
                .message()
                .contains("`#`")
        );
    }
}
