//! Stores as DynamoDB tables, and what each function may do with them.

use cloudfn_core::{FunctionSpec, StoreAccess, conventions};
use serde_json::{Value, json};

use super::{
    Renderer,
    cfn::{get_att, logical_id, reference},
};
use crate::{client::TTL_ATTRIBUTE, names::store_table_variable};

impl Renderer<'_> {
    /// A table per store, keyed by `k`, with DynamoDB's TTL on `ttl`. Tables
    /// of the app's own data outlive the stack (deleting a stack must not
    /// delete orders); the idempotency claims go with it.
    pub(super) fn tables(&mut self) {
        for store in &self.spec.stores {
            let keep = if store.name == conventions::IDEMPOTENCY_STORE {
                "Delete"
            } else {
                "Retain"
            };
            self.resources.insert(
                table_id(&store.name),
                json!({
                    "Type": "AWS::DynamoDB::Table",
                    "DeletionPolicy": keep,
                    "UpdateReplacePolicy": keep,
                    "Properties": {
                        "BillingMode": "PAY_PER_REQUEST",
                        "AttributeDefinitions": [{ "AttributeName": "k", "AttributeType": "S" }],
                        "KeySchema": [{ "AttributeName": "k", "KeyType": "HASH" }],
                        "TimeToLiveSpecification": { "AttributeName": TTL_ATTRIBUTE, "Enabled": true },
                    }
                }),
            );
        }
    }
}

fn table_id(store: &str) -> String {
    logical_id(store, "Table")
}

/// What `function` may do with each store it declared (reading is
/// `GetItem` alone), and the variables naming their tables.
pub(super) fn store_grants(function: &FunctionSpec) -> (Vec<Value>, Vec<(String, Value)>) {
    let mut statements = Vec::new();
    let mut variables = Vec::new();
    for (store, access) in &function.stores {
        let id = table_id(store);
        let actions = match access {
            StoreAccess::Read => json!(["dynamodb:GetItem"]),
            StoreAccess::ReadWrite => {
                json!([
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem"
                ])
            }
        };
        statements.push(json!({
            "Effect": "Allow",
            "Action": actions,
            "Resource": get_att(&id, "Arn"),
        }));
        variables.push((store_table_variable(store), reference(&id)));
    }
    (statements, variables)
}
