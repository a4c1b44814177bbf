//! One `function.json` per function: its trigger binding, and the HTTP
//! output for HTTP functions.

use cloudfn_core::{Access, Error, FunctionSpec, Method, Trigger};
use serde_json::{Value, json};

use crate::{
    events::binding,
    names::{self, SERVICE_BUS_CONNECTION, STORAGE_CONNECTION},
};

/// `function.json` for `function`.
///
/// - http: `httpTrigger` (`authLevel` `anonymous` for public functions,
///   `function` — a function key — for private ones; its method; the
///   neutral route without its leading `/`) and the `res` output.
/// - queue: `queueTrigger` on the queue's Storage queue, binary, so the
///   handler gets the message's exact bytes.
/// - topic: `serviceBusTrigger` on the topic's subscription named after
///   the function, binary.
/// - schedule: `timerTrigger` with the NCRONTAB of the function's cron.
/// - storage: `eventGridTrigger`: Blob Storage events, which say what
///   changed without the host reading the blob (a blob trigger would read
///   it whole into the invocation).
pub fn function_json(function: &FunctionSpec) -> Result<Value, Error> {
    let bindings = match &function.trigger {
        Trigger::Http { method, route } => {
            let auth_level = match &function.policy.access {
                Access::Public => "anonymous",
                Access::Private => "function",
                Access::Jwt { .. } => return Err(crate::jwt_unsupported(&function.name)),
            };
            let mut trigger = json!({
                "type": "httpTrigger",
                "direction": "in",
                "name": binding::REQUEST,
                "authLevel": auth_level,
                "route": route.trim_start_matches('/'),
            });
            if *method != Method::Any {
                trigger["methods"] = json!([method.as_str().to_ascii_lowercase()]);
            }
            vec![
                trigger,
                json!({"type": "http", "direction": "out", "name": binding::RESPONSE}),
            ]
        }
        Trigger::Queue { queue, .. } => vec![json!({
            "type": "queueTrigger",
            "direction": "in",
            "name": binding::MESSAGE,
            "queueName": format!("%{}%", names::queue_variable(queue)),
            "connection": STORAGE_CONNECTION,
            "dataType": "binary",
        })],
        Trigger::Topic { topic } => vec![json!({
            "type": "serviceBusTrigger",
            "direction": "in",
            "name": binding::MESSAGE,
            "topicName": format!("%{}%", names::topic_variable(topic)),
            "subscriptionName": function.name,
            "connection": SERVICE_BUS_CONNECTION,
            "dataType": "binary",
        })],
        Trigger::Schedule { cron } => vec![json!({
            "type": "timerTrigger",
            "direction": "in",
            "name": binding::TIMER,
            "schedule": super::ncrontab(cron)?,
            "runOnStartup": false,
            "useMonitor": true,
        })],
        Trigger::Storage { .. } => vec![json!({
            "type": "eventGridTrigger",
            "direction": "in",
            "name": binding::EVENT,
        })],
        Trigger::Step => {
            return Err(Error::invalid(format!(
                "function `{}`: a step function has no binding of its own on Azure; \
                 the app's workflow orchestrator calls it in the process",
                function.name
            )));
        }
    };
    Ok(json!({ "bindings": bindings }))
}
