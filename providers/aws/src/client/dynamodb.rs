use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use aws_sdk_dynamodb::{error::SdkError, types::AttributeValue};
use aws_smithy_types::Blob;
use cloudfn_core::{
    Error,
    store::{Condition, Record, StoreClient, Version, Write},
};

use super::sdk_error;

/// The item's attributes. Each has a placeholder (`#k`…) in every
/// expression, so DynamoDB's reserved words never bite.
const KEY: &str = "k";
const VALUE: &str = "v";
const VERSION: &str = "ver";
/// When the value expires, in ms since the epoch: what reads and conditions
/// compare, since DynamoDB's own TTL deletes up to days late.
const EXPIRES_MS: &str = "exp_ms";
/// The same, in seconds: the table's TTL attribute, so DynamoDB sweeps.
pub const TTL_ATTRIBUTE: &str = "ttl";

/// Still live at `:now`: no expiry, or a later one.
const LIVE: &str = "(attribute_not_exists(#e) OR #e > :now)";

/// [`StoreClient`] on Amazon DynamoDB: one table per neutral store, keyed by
/// the string attribute `k`, with TTL on `ttl`.
///
/// A store name resolves to its table through `CLOUDFN_STORE_TABLE_<NAME>`
/// (the SAM template sets it for every store a function declares), else the
/// table is the store's own name. `AWS_ENDPOINT_URL_DYNAMODB`, when set,
/// sends DynamoDB's requests there, as the SDK's own configuration would.
#[derive(Debug)]
pub struct DynamoDbStoreClient {
    client: super::LazyClient<aws_sdk_dynamodb::Client>,
}

impl DynamoDbStoreClient {
    pub(super) fn with_config(config: std::sync::Arc<super::LazyConfig>) -> Self {
        Self {
            client: super::LazyClient::new(config),
        }
    }

    /// The SDK client underneath.
    pub async fn sdk(&self) -> &aws_sdk_dynamodb::Client {
        self.client.get(make).await
    }

    /// The table that holds store `name`.
    pub fn table_name(name: &str) -> String {
        std::env::var(crate::names::store_table_variable(name)).unwrap_or_else(|_| name.to_owned())
    }
}

fn make(config: &aws_types::SdkConfig) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn read_number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The record in `item`, unless it has expired.
fn record(item: &HashMap<String, AttributeValue>, now: u64) -> Result<Option<Record>, Error> {
    if read_number(item, EXPIRES_MS).is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let value = item
        .get(VALUE)
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| Error::internal("a store item has no binary `v` attribute"))?;
    let version = read_number(item, VERSION)
        .ok_or_else(|| Error::internal("a store item has no numeric `ver` attribute"))?;
    Ok(Some(Record {
        value: value.as_ref().to_vec().into(),
        version: Version(version),
    }))
}

/// A condition as DynamoDB takes it: the expression, and its placeholders.
struct Expression {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// The condition of a write (`deleting: false`) or a delete; `None` when
/// the write is unconditional.
fn expression(condition: Condition, deleting: bool, now: u64) -> Option<Expression> {
    let (text, uses_key) = match (condition, deleting) {
        (Condition::Always, false) => return None,
        // A delete reports whether something live was there.
        (Condition::Always, true) => (format!("attribute_exists(#k) AND {LIVE}"), true),
        // An expired item counts as absent until DynamoDB sweeps it.
        (Condition::Absent, _) => ("attribute_not_exists(#k) OR #e <= :now".to_owned(), true),
        (Condition::Version(_), _) => (format!("#ver = :ver AND {LIVE}"), false),
    };
    // DynamoDB refuses placeholders the expression does not use.
    let mut names = HashMap::from([("#e".to_owned(), EXPIRES_MS.to_owned())]);
    let mut values = HashMap::from([(":now".to_owned(), number(now))]);
    if uses_key {
        names.insert("#k".to_owned(), KEY.to_owned());
    }
    if let Condition::Version(expected) = condition {
        names.insert("#ver".to_owned(), VERSION.to_owned());
        values.insert(":ver".to_owned(), number(expected.0));
    }
    Some(Expression {
        text,
        names,
        values,
    })
}

/// A conditional write's outcome: done, refused by its condition, or failed.
fn settled<T, E, R>(store: &str, outcome: Result<T, SdkError<E, R>>) -> Result<bool, Error>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    match outcome {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_error(&format!("store `{store}`"), e)),
    }
}

#[async_trait]
impl StoreClient for DynamoDbStoreClient {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        let table = Self::table_name(store);
        let out = self
            .sdk()
            .await
            .get_item()
            .table_name(&table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("store `{store}`"), e))?;
        match out.item {
            Some(item) => record(&item, now_ms()),
            None => Ok(None),
        }
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        let now = now_ms();
        let mut request = self
            .sdk()
            .await
            .put_item()
            .table_name(Self::table_name(store))
            .item(KEY, AttributeValue::S(key.to_owned()))
            .item(VALUE, AttributeValue::B(Blob::new(write.value.to_vec())))
            .item(VERSION, number(write.version.0));
        if let Some(ttl) = write.ttl {
            let expires = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            request = request
                .item(EXPIRES_MS, number(expires))
                .item(TTL_ATTRIBUTE, number(expires.div_ceil(1000)));
        }
        if let Some(condition) = expression(write.condition, false, now) {
            request = request
                .condition_expression(condition.text)
                .set_expression_attribute_names(Some(condition.names))
                .set_expression_attribute_values(Some(condition.values));
        }
        settled(store, request.send().await)
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        // Deleting what must not exist deletes nothing.
        if condition == Condition::Absent {
            return Ok(false);
        }
        let Some(condition) = expression(condition, true, now_ms()) else {
            return Ok(false);
        };
        let request = self
            .sdk()
            .await
            .delete_item()
            .table_name(Self::table_name(store))
            .key(KEY, AttributeValue::S(key.to_owned()))
            .condition_expression(condition.text)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values));
        settled(store, request.send().await)
    }
}
