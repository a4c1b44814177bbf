//! Each workflow as an `AWS::Serverless::StateMachine` running its
//! [`state_machine`] definition, with a role that may invoke only its step
//! functions and reach only the queues and topics its steps name.

use cloudfn_core::{
    Error,
    workflow::{Action, Workflow},
};
use serde_json::{Value, json};

use super::{
    Renderer,
    cfn::{assumed_by, get_att, logical_id, queue_id, reference},
    state_machine::{state_machine, substitutions},
};

impl Renderer<'_> {
    pub(super) fn workflows(&mut self) -> Result<(), Error> {
        for workflow in &self.spec.workflows {
            let id = logical_id(workflow.name(), "StateMachine");
            let role_id = logical_id(workflow.name(), "StateMachineRole");
            self.resources.insert(
                role_id.clone(),
                json!({
                    "Type": "AWS::IAM::Role",
                    "Properties": {
                        "AssumeRolePolicyDocument": assumed_by("states.amazonaws.com"),
                        "Policies": [{
                            "PolicyName": format!("{}-least-privilege", workflow.name()),
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": statements(workflow),
                            }
                        }],
                    }
                }),
            );
            self.resources.insert(
                id,
                json!({
                    "Type": "AWS::Serverless::StateMachine",
                    "Properties": {
                        "Definition": state_machine(workflow)?,
                        "DefinitionSubstitutions": substitutions(workflow),
                        "Role": get_att(&role_id, "Arn"),
                    }
                }),
            );
        }
        Ok(())
    }
}

/// What the state machine's role may do: invoke the functions its steps
/// and compensations call, send to its queues, publish to its topics.
fn statements(workflow: &Workflow) -> Vec<Value> {
    let mut functions = std::collections::BTreeSet::new();
    let mut queues = std::collections::BTreeSet::new();
    let mut topics = std::collections::BTreeSet::new();
    for step in workflow.all_steps() {
        match &step.action {
            Action::Call { function } => {
                functions.insert(function.as_str());
            }
            Action::Send { queue } => {
                queues.insert(queue.as_str());
            }
            Action::Publish { topic } => {
                topics.insert(topic.as_str());
            }
            _ => {}
        }
        functions.extend(step.compensation.as_deref());
    }
    let mut statements = Vec::new();
    if !functions.is_empty() {
        let arns: Vec<Value> = functions
            .iter()
            .map(|f| get_att(&logical_id(f, "Function"), "Arn"))
            .collect();
        statements.push(
            json!({ "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arns }),
        );
    }
    if !queues.is_empty() {
        let arns: Vec<Value> = queues
            .iter()
            .map(|q| get_att(&queue_id(q), "Arn"))
            .collect();
        statements
            .push(json!({ "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arns }));
    }
    if !topics.is_empty() {
        let arns: Vec<Value> = topics
            .iter()
            .map(|t| reference(&logical_id(t, "Topic")))
            .collect();
        statements.push(json!({ "Effect": "Allow", "Action": "sns:Publish", "Resource": arns }));
    }
    statements
}
