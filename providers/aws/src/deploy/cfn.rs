//! CloudFormation's vocabulary: logical ids, references and stack names.

use cloudfn_core::conventions;
use serde_json::{Value, json};

/// A CloudFormation logical id for a name: letters and digits in
/// PascalCase, with a suffix saying what it is (`order-paid` → `OrderPaidTopic`).
pub fn logical_id(name: &str, suffix: &str) -> String {
    let mut id = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    id.push_str(suffix);
    id
}

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
