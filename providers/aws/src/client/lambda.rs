use aws_sdk_lambda::{primitives::Blob, types::InvocationType};
use cloudfn_core::Error;
use serde::{Serialize, de::DeserializeOwned};

use super::sdk_error;

/// Lambda's longest run, and a little more for the call itself.
const LONGEST_INVOCATION: std::time::Duration = std::time::Duration::from_secs(905);

/// Invokes Lambda functions, synchronously or as events.
#[derive(Debug)]
pub struct LambdaInvoker {
    client: super::LazyClient<aws_sdk_lambda::Client>,
}

impl LambdaInvoker {
    pub(super) fn with_config(config: std::sync::Arc<super::LazyConfig>) -> Self {
        Self {
            client: super::LazyClient::new(config),
        }
    }

    /// The SDK client underneath.
    pub async fn sdk(&self) -> &aws_sdk_lambda::Client {
        self.client
            .get(|config| {
                // A synchronous invocation waits for the whole function:
                // up to Lambda's 15 minutes.
                let config = aws_sdk_lambda::config::Builder::from(config)
                    .timeout_config(super::timeouts(LONGEST_INVOCATION))
                    .build();
                aws_sdk_lambda::Client::from_conf(config)
            })
            .await
    }

    /// Invokes `function` with `payload` and waits for its answer. A function
    /// error comes back as an error carrying the function's message.
    pub async fn invoke<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        function: &str,
        payload: &T,
    ) -> Result<R, Error> {
        let out = self
            .sdk()
            .await
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(blob(payload)?)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("invoking `{function}`"), e))?;
        let body = out.payload.map(Blob::into_inner).unwrap_or_default();
        if let Some(kind) = out.function_error {
            let detail: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let message = detail["errorMessage"].as_str().unwrap_or("no message");
            return Err(Error::internal(format!(
                "function `{function}` failed ({kind}): {message}"
            )));
        }
        Error::decode_json(&body)
    }

    /// Queues an invocation of `function` with `payload` (invocation type
    /// `Event`) without waiting for it to run.
    pub async fn invoke_async<T: Serialize + ?Sized>(
        &self,
        function: &str,
        payload: &T,
    ) -> Result<(), Error> {
        self.sdk()
            .await
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(blob(payload)?)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("queueing an invocation of `{function}`"), e))?;
        Ok(())
    }
}

fn blob<T: Serialize + ?Sized>(payload: &T) -> Result<Blob, Error> {
    serde_json::to_vec(payload)
        .map(Blob::new)
        .map_err(|e| Error::bad_input(format!("payload is not JSON: {e}")))
}
