//! The app's stores as DynamoDB tables at an endpoint (moto, in tests),
//! made the way the SAM template declares them.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use cloudfn_core::{AppSpec, Error, conventions};

use crate::client::{TTL_ATTRIBUTE, sdk_error};

/// Creates a table per store of `spec` (`<prefix>-<store>`), keyed by `k`
/// with TTL on `ttl`; returns the table names by store.
pub async fn create_tables(
    dynamodb: &aws_sdk_dynamodb::Client,
    spec: &AppSpec,
    prefix: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut tables = BTreeMap::new();
    for store in &spec.stores {
        let table = conventions::physical_name(prefix, &store.name);
        dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("k")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("k")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| sdk_error(&format!("creating table `{table}`"), e))?;
        dynamodb
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| sdk_error(&format!("turning on TTL of `{table}`"), e))?;
        tables.insert(store.name.clone(), table);
    }
    Ok(tables)
}
