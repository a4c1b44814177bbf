//! How an orchestrator calls a step function, whatever carries the call:
//! a Lambda invocation's payload from Step Functions, the body of an HTTP
//! POST from Google Workflows, or the in-process orchestrator's own call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Message};

/// The attribute of a step's [`Message`] naming the execution.
pub const EXECUTION_ATTRIBUTE: &str = "cloudfn-execution";
/// The attribute of a step's [`Message`] naming the step.
pub const STEP_ATTRIBUTE: &str = "cloudfn-step";

/// One call of a step function, as JSON on every wire.
///
/// ```
/// use cloudfn_core::workflow::StepCall;
///
/// let call: StepCall = serde_json::from_value(serde_json::json!({
///     "workflow": "order", "execution": "e-1", "step": "charge", "attempt": 2,
///     "input": {"id": "o-1"}
/// })).unwrap();
/// let message = call.into_message().unwrap();
/// assert_eq!(message.id, "e-1/charge");
/// assert_eq!(message.attempt, 2);
/// assert_eq!(&message.body[..], br#"{"id":"o-1"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCall {
    /// The workflow's name.
    pub workflow: String,
    /// The execution's id (on Step Functions, its name).
    pub execution: String,
    /// The step's name.
    pub step: String,
    /// Which attempt at the step this is, from 1.
    pub attempt: u32,
    /// The step's input: the previous step's output.
    pub input: Value,
}

impl StepCall {
    /// The step's idempotency key, the same on every attempt:
    /// `{execution}/{step}`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.execution, self.step)
    }

    /// The message a step function's handler receives: the input as its
    /// body, the key as its id, the workflow as its source, and the
    /// execution and step as attributes.
    pub fn into_message(self) -> Result<Message, Error> {
        let mut message = Message::json(self.key(), self.workflow, &self.input)?;
        message.attempt = self.attempt.max(1);
        message
            .attributes
            .insert(EXECUTION_ATTRIBUTE.into(), self.execution);
        message.attributes.insert(STEP_ATTRIBUTE.into(), self.step);
        Ok(message)
    }
}
