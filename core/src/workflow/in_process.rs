//! Steps run in the process that runs the orchestrator: step functions
//! invoked directly, sends and publishes through the app's own clients.
//! What the local runtime uses, and any function app hosting the
//! orchestrator itself.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use serde_json::Value;

use super::{StepCall, StepRunner};
use crate::{
    App, Error, Function, OutgoingMessage,
    messaging::PUBLISHED_ID,
    provider::{ContextBuilder, Event, Invoke, Output, Services},
};

/// A [`StepRunner`] over the app's own functions and services.
pub struct InProcessSteps {
    functions: HashMap<String, Arc<Function>>,
    services: Services,
}

impl InProcessSteps {
    /// Runs the steps of `app`'s workflows with `services`.
    pub fn new(app: &App, services: Services) -> Self {
        Self {
            functions: app
                .functions()
                .iter()
                .map(|f| (f.name().to_owned(), f.clone()))
                .collect(),
            services,
        }
    }

    /// The message a send or publish step sends: the input as JSON, with
    /// the step's key as its cloudfn message id, so a consumer's
    /// idempotency sees a re-sent step as the same message.
    fn message(input: &Value, key: &str) -> Result<OutgoingMessage, Error> {
        Ok(OutgoingMessage::json(input)?.with_attribute(PUBLISHED_ID, key))
    }
}

#[async_trait]
impl StepRunner for InProcessSteps {
    async fn call(&self, function: &str, call: StepCall) -> Result<Value, Error> {
        let function = self
            .functions
            .get(function)
            .ok_or_else(|| Error::not_found(format!("no function `{function}`")))?;
        let ctx = ContextBuilder::new(function, &self.services)
            .invocation_id(call.key())
            .attempt(call.attempt)
            .build();
        match function
            .invoke(Event::Message(call.into_message()?), ctx)
            .await?
        {
            Output::Value(output) => Ok(output),
            Output::Done | Output::Http(_) => Ok(Value::Null),
        }
    }

    async fn send(&self, queue: &str, input: &Value, key: &str) -> Result<(), Error> {
        let message = Self::message(input, key)?;
        self.services.queue(queue).send_message(message).await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, input: &Value, key: &str) -> Result<(), Error> {
        let message = Self::message(input, key)?;
        self.services.topic(topic).publish_message(message).await?;
        Ok(())
    }
}
