//! CloudFormation's vocabulary: logical ids, references and stack names.

use cloudfn_core::conventions;
use serde_json::{Value, json};

pub use crate::names::logical_id;

pub(super) fn queue_id(name: &str) -> String {
    logical_id(name, "Queue")
}

pub(super) fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}

pub(super) fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

/// A queue's or topic's name in a stack: `<stack>-<name>`.
pub(super) fn stack_name(name: &str) -> Value {
    json!({ "Fn::Sub": conventions::physical_name("${AWS::StackName}", name) })
}

/// A role's trust policy: `service` (`lambda.amazonaws.com`,
/// `states.amazonaws.com`) may assume it.
pub(super) fn assumed_by(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole"
        }]
    })
}
