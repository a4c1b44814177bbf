//! `host.json`: the custom handler, the extension bundle, and the queue
//! and Service Bus settings the functions' policies ask for.

use std::time::Duration;

use cloudfn_core::{AppSpec, Error, Trigger, conventions};
use serde_json::{Value, json};

/// The handler's file name in the package.
pub const EXECUTABLE: &str = "handler";

/// The Consumption plan's longest `functionTimeout`.
const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(600);

/// `host.json` for `spec`.
///
/// - `customHandler`: the handler, and `enableForwardingHttpRequest` for
///   all-HTTP apps ([`crate::forwards_http`]).
/// - `extensions.http.routePrefix` is empty, so a function's URL path is
///   its neutral route.
/// - `extensions.queues`: `batchSize` from the largest batch a queue
///   function asks for; `maxDequeueCount` high enough that cloudfn, which
///   counts attempts and dead-letters in code, decides, with the host's
///   `<queue>-poison` the last resort
///   ([`conventions::redrive_receive_count`]); `visibilityTimeout` is how
///   long the host waits to retry a delivery cloudfn could not settle.
/// - `functionTimeout`: the longest any function may take, its retries
///   included for timers and blob changes (which retry in the invocation),
///   within the Consumption plan's ten minutes.
pub fn host_json(spec: &AppSpec) -> Result<Value, Error> {
    crate::validate(spec)?;
    let consumers = || {
        spec.functions
            .iter()
            .filter(|f| conventions::consumed_queue(&f.name, &f.trigger).is_some())
    };
    let batch_size = consumers().map(|f| f.policy.batch_size).max().unwrap_or(16);
    let max_attempts = consumers()
        .map(|f| f.policy.retry.max_attempts)
        .max()
        .unwrap_or(1);
    let timeout = spec
        .functions
        .iter()
        .map(|f| match f.trigger {
            Trigger::Schedule { .. } | Trigger::Storage { .. } => {
                let retry = &f.policy.retry;
                let waits: Duration = (1..retry.max_attempts)
                    .map(|a| retry.backoff_ceiling(a))
                    .sum();
                f.policy.timeout * retry.max_attempts + waits
            }
            _ => f.policy.timeout,
        })
        .max()
        .unwrap_or_default()
        .min(MAX_FUNCTION_TIMEOUT);
    let mut host = json!({
        "version": "2.0",
        "customHandler": {
            "description": {
                "defaultExecutablePath": EXECUTABLE,
                "workingDirectory": "",
                "arguments": []
            },
            "enableForwardingHttpRequest": crate::forwards_http(spec)
        },
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)"
        },
        "functionTimeout": timespan(timeout.max(Duration::from_secs(1))),
        "extensions": {
            "http": { "routePrefix": "" },
            "queues": {
                "batchSize": batch_size.clamp(1, 32),
                "maxDequeueCount": conventions::redrive_receive_count(max_attempts),
                "visibilityTimeout": "00:00:30",
                "messageEncoding": "base64"
            }
        },
        "logging": {
            "logLevel": { "default": "Information" }
        }
    });
    if spec
        .functions
        .iter()
        .any(|f| matches!(f.trigger, Trigger::Topic { .. }))
    {
        host["extensions"]["serviceBus"] = json!({
            // cloudfn settles every message itself: completed by the host
            // after a 2xx answer, abandoned (redelivered) after a 500.
            "autoCompleteMessages": true,
            "maxConcurrentCalls": 16
        });
    }
    Ok(host)
}

/// A duration as .NET's `hh:mm:ss`.
fn timespan(duration: Duration) -> String {
    let secs = duration.as_secs_f64().ceil() as u64;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_are_hh_mm_ss() {
        assert_eq!(timespan(Duration::from_secs(600)), "00:10:00");
        assert_eq!(timespan(Duration::from_millis(30_500)), "00:00:31");
    }
}
