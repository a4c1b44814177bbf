//! Table Storage as cloudfn's key-value store.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use azure_core::http::{Method, Pipeline, Request, StatusCode, Url, headers::HeaderName};
use base64::{Engine, engine::general_purpose::STANDARD};
use cloudfn_core::{
    Error,
    store::{Condition, MAX_VALUE_BYTES, Record, StoreClient, Version, Write},
};
use serde_json::{Map, Value};

use super::{
    Service, StorageAccount,
    pipeline::{self, Answer},
};
use crate::names;

/// The version's property (Edm.Int64, the version's bits as a signed
/// number).
const VERSION: &str = "ver";
/// When the value expires, in ms since the epoch (Edm.Int64); absent when
/// it never does. Table Storage has no TTL of its own: every read compares.
const EXPIRES_MS: &str = "exp_ms";
/// The most an Edm.Binary property holds; the value is cut into `v0`,
/// `v1`, … of this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// How many times a conditional write re-reads after losing a race to
/// another writer before it gives up (retryably).
const ROUNDS: usize = 8;
/// The Table REST version cloudfn speaks (that of Azure's Table SDKs).
const TABLE_VERSION: &str = "2019-02-02";

const ACCEPT: HeaderName = HeaderName::from_static("accept");
const CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const DATA_SERVICE_VERSION: HeaderName = HeaderName::from_static("dataserviceversion");
const MAX_DATA_SERVICE_VERSION: HeaderName = HeaderName::from_static("maxdataserviceversion");
const ETAG: HeaderName = HeaderName::from_static("etag");
const IF_MATCH: HeaderName = HeaderName::from_static("if-match");
const MS_VERSION: HeaderName = HeaderName::from_static("x-ms-version");
const PREFER: HeaderName = HeaderName::from_static("prefer");

/// [`StoreClient`] on Azure Table Storage: one table per store (named by
/// [`names::table_name`]), one entity per key.
///
/// The entity's PartitionKey is the key with the four characters Table
/// keys forbid written as their full-width forms (`/` as `／`, `\` as `＼`,
/// `#` as `＃`, `?` as `？`), and a full-width one of those or `％` in the
/// key escaped by a `％` before it: readable, one-to-one, and never longer
/// in UTF-16 units than the key is in UTF-8 bytes, so every key of up to
/// [`MAX_KEY_BYTES`](cloudfn_core::store::MAX_KEY_BYTES) fits the 1 KiB (512 UTF-16 units) a PartitionKey
/// holds. Keys with control characters are refused, as Table Storage
/// refuses them. The RowKey is empty.
///
/// The value is in Edm.Binary properties `v0`, `v1`, … of up to 64 KiB
/// each, the version in `ver` and the expiry in `exp_ms` (both Edm.Int64).
/// Conditions are kept with the entity's ETag (`If-Match`). Tables are
/// not created on first use: the deployment creates them
/// ([`Self::create_table`]). Expired entities stay in the table until they
/// are overwritten or deleted; they read as absent at once.
#[derive(Clone)]
pub struct TableStore {
    pipeline: Pipeline,
    endpoint: Url,
    /// Names are the tables' own, not store names.
    as_given: bool,
}

impl std::fmt::Debug for TableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStore")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// One key of one store, as Table Storage addresses it.
struct At {
    store: String,
    table: String,
    partition: String,
}

impl At {
    fn new(store: &str, table: String, key: &str) -> Result<Self, Error> {
        Ok(Self {
            store: store.to_owned(),
            table,
            partition: partition_key(key)?,
        })
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} store `{}` (table `{}`)", self.store, self.table)
    }
}

/// An entity as read: its record, expiry and ETag.
struct Stored {
    record: Record,
    expires_ms: Option<u64>,
    etag: String,
}

impl Stored {
    fn live(&self, now: u64) -> bool {
        self.expires_ms.is_none_or(|at| at > now)
    }
}

/// How a conditional request went: done, or refused by its condition.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Refused,
}

impl TableStore {
    /// The tables of `account`.
    pub fn new(account: &StorageAccount) -> Self {
        Self {
            pipeline: pipeline::pipeline(account, Service::Table),
            endpoint: account.table_endpoint().clone(),
            as_given: false,
        }
    }

    /// The same tables, named by their own names rather than through the
    /// app settings: for tools and the host simulator.
    pub fn as_given(mut self) -> Self {
        self.as_given = true;
        self
    }

    fn table(&self, store: &str) -> String {
        if self.as_given {
            store.to_owned()
        } else {
            names::table_name(store)
        }
    }

    /// The tables of the function app's account
    /// ([`StorageAccount::from_env`]).
    pub fn from_env() -> Result<Self, Error> {
        StorageAccount::from_env().map(|account| Self::new(&account))
    }

    /// Creates the table of store `store`; nothing happens if it exists.
    pub async fn create_table(&self, store: &str) -> Result<(), Error> {
        let table = self.table(store);
        let mut request = self.request(pipeline::url(&self.endpoint, &["Tables"]), Method::Post);
        request.insert_header(CONTENT_TYPE, "application/json");
        request.insert_header(PREFER, "return-no-content");
        request.set_body(serde_json::json!({ "TableName": table }).to_string());
        let what = format!("creating table `{table}` of store `{store}`");
        let answer = pipeline::send(&self.pipeline, request, &what).await?;
        match answer.status {
            StatusCode::Created | StatusCode::NoContent => Ok(()),
            _ if answer.is(StatusCode::Conflict, "TableAlreadyExists") => Ok(()),
            _ => Err(answer.error(&what)),
        }
    }

    /// Deletes the table of store `store` and everything in it; nothing
    /// happens if it does not exist.
    pub async fn delete_table(&self, store: &str) -> Result<(), Error> {
        let table = self.table(store);
        let segment = format!("Tables('{table}')");
        let request = self.request(pipeline::url(&self.endpoint, &[&segment]), Method::Delete);
        let what = format!("deleting table `{table}` of store `{store}`");
        let answer = pipeline::send(&self.pipeline, request, &what).await?;
        match answer.status {
            StatusCode::NoContent | StatusCode::NotFound => Ok(()),
            _ => Err(answer.error(&what)),
        }
    }

    /// A request with the headers every Table request carries.
    fn request(&self, url: Url, method: Method) -> Request {
        let mut request = Request::new(url, method);
        request.insert_header(MS_VERSION, TABLE_VERSION);
        request.insert_header(ACCEPT, "application/json;odata=nometadata");
        request.insert_header(DATA_SERVICE_VERSION, "3.0");
        request.insert_header(MAX_DATA_SERVICE_VERSION, "3.0;NetFx");
        request
    }

    /// A request for the entity `at`, with the JSON `body` if any and
    /// `If-Match: if_match` if any.
    fn entity_request(
        &self,
        at: &At,
        method: Method,
        body: Option<&str>,
        if_match: Option<&str>,
    ) -> Request {
        let segment = format!(
            "{}(PartitionKey='{}',RowKey='')",
            at.table,
            at.partition.replace('\'', "''")
        );
        let mut request = self.request(pipeline::url(&self.endpoint, &[&segment]), method);
        if let Some(body) = body {
            request.insert_header(CONTENT_TYPE, "application/json");
            request.set_body(body.to_owned());
        }
        if let Some(etag) = if_match {
            request.insert_header(IF_MATCH, etag.to_owned());
        }
        request
    }

    async fn call(&self, at: &At, request: Request, doing: &str) -> Result<Answer, Error> {
        pipeline::send(&self.pipeline, request, &at.what(doing)).await
    }

    /// The entity at `at`, whether live or expired.
    async fn read(&self, at: &At) -> Result<Option<Stored>, Error> {
        let request = self.entity_request(at, Method::Get, None, None);
        let answer = self.call(at, request, "reading").await?;
        match answer.status {
            StatusCode::Ok => {
                let etag = answer.headers.get_optional_string(&ETAG).ok_or_else(|| {
                    Error::internal(format!("{}: no ETag in the answer", at.what("reading")))
                        .private()
                })?;
                stored(&answer.body, etag)
                    .map(Some)
                    .map_err(|e| Error::internal(format!("{}: {e}", at.what("reading"))).private())
            }
            _ => refusal(at, &answer, "reading").map(|()| None),
        }
    }

    /// Inserts `body`: refused when the entity exists (live or not).
    async fn insert(&self, at: &At, body: &str) -> Result<Outcome, Error> {
        let mut request = self.request(pipeline::url(&self.endpoint, &[&at.table]), Method::Post);
        request.insert_header(CONTENT_TYPE, "application/json");
        request.insert_header(PREFER, "return-no-content");
        request.set_body(body.to_owned());
        let answer = self.call(at, request, "writing to").await?;
        match answer.status {
            StatusCode::Created | StatusCode::NoContent => Ok(Outcome::Done),
            _ if answer.is(StatusCode::Conflict, "EntityAlreadyExists") => Ok(Outcome::Refused),
            _ => refusal(at, &answer, "writing to").map(|()| Outcome::Refused),
        }
    }

    /// Replaces the entity with `body`: whatever is there (inserting if
    /// nothing is) when `etag` is `None`, else only the entity of that
    /// ETag.
    async fn replace(&self, at: &At, body: &str, etag: Option<&str>) -> Result<Outcome, Error> {
        let request = self.entity_request(at, Method::Put, Some(body), etag);
        let answer = self.call(at, request, "writing to").await?;
        match answer.status {
            StatusCode::NoContent | StatusCode::Created | StatusCode::Ok => Ok(Outcome::Done),
            _ => refusal(at, &answer, "writing to").map(|()| Outcome::Refused),
        }
    }

    /// Deletes the entity of ETag `etag` (`*`: whatever is there).
    async fn remove(&self, at: &At, etag: &str) -> Result<Outcome, Error> {
        let request = self.entity_request(at, Method::Delete, None, Some(etag));
        let answer = self.call(at, request, "deleting from").await?;
        match answer.status {
            StatusCode::NoContent | StatusCode::Ok => Ok(Outcome::Done),
            _ => refusal(at, &answer, "deleting from").map(|()| Outcome::Refused),
        }
    }

    /// Writes only if nothing live is there: an insert, or, over an expired
    /// entity, a replace of exactly that entity.
    async fn put_absent(&self, at: &At, body: &str, ours: Version) -> Result<bool, Error> {
        for _ in 0..ROUNDS {
            if self.insert(at, body).await? == Outcome::Done {
                return Ok(true);
            }
            // Deleted since: try inserting again.
            let Some(stored) = self.read(at).await? else {
                continue;
            };
            if stored.live(now_ms()) {
                // Our own write, when a retried insert found it.
                return Ok(stored.record.version == ours);
            }
            if self.replace(at, body, Some(&stored.etag)).await? == Outcome::Done {
                return Ok(true);
            }
        }
        Err(contended(at))
    }

    /// Writes only over the live entity of version `expected`.
    async fn put_version(
        &self,
        at: &At,
        body: &str,
        expected: Version,
        ours: Version,
    ) -> Result<bool, Error> {
        let Some(stored) = self.read(at).await? else {
            return Ok(false);
        };
        if !stored.live(now_ms()) || stored.record.version != expected {
            return Ok(false);
        }
        if self.replace(at, body, Some(&stored.etag)).await? == Outcome::Done {
            return Ok(true);
        }
        // Refused: someone else's write, or ours when a retry found it done.
        let now = self.read(at).await?;
        Ok(now.is_some_and(|s| s.live(now_ms()) && s.record.version == ours))
    }
}

#[async_trait]
impl StoreClient for TableStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        let at = At::new(store, self.table(store), key)?;
        let Some(stored) = self.read(&at).await? else {
            return Ok(None);
        };
        if stored.live(now_ms()) {
            return Ok(Some(stored.record));
        }
        // Table Storage has no TTL: an expired entity read is swept, if
        // unchanged since (its ETag). The answer stands either way.
        if let Err(e) = self.remove(&at, &stored.etag).await {
            tracing::debug!(error = %e, "{}", at.what("sweeping an expired key of"));
        }
        Ok(None)
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        let at = At::new(store, self.table(store), key)?;
        let body = entity(&at.partition, &write, now_ms())?;
        match write.condition {
            Condition::Always => {
                self.replace(&at, &body, None).await?;
                Ok(true)
            }
            Condition::Absent => self.put_absent(&at, &body, write.version).await,
            Condition::Version(expected) => {
                self.put_version(&at, &body, expected, write.version).await
            }
        }
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        let at = At::new(store, self.table(store), key)?;
        let expected = match condition {
            Condition::Absent => return Ok(false),
            Condition::Always => None,
            Condition::Version(version) => Some(version),
        };
        let Some(stored) = self.read(&at).await? else {
            return Ok(false);
        };
        if !stored.live(now_ms()) {
            // Nothing live was there; the expired entity goes, if unchanged.
            self.remove(&at, &stored.etag).await?;
            return Ok(false);
        }
        let etag = match expected {
            None => "*",
            Some(version) if version == stored.record.version => stored.etag.as_str(),
            Some(_) => return Ok(false),
        };
        Ok(self.remove(&at, etag).await? == Outcome::Done)
    }
}

/// Whether an answer that is no success is a refusal (`Ok`): a missing
/// entity or a failed `If-Match`. A missing table is an error that says
/// what to do; anything else is Storage's error.
fn refusal(at: &At, answer: &Answer, doing: &str) -> Result<(), Error> {
    if answer.is(StatusCode::NotFound, "TableNotFound") {
        return Err(Error::not_found(format!(
            "{}: table `{}` does not exist; it must be created first (deploying the app creates the table of every store it declares)",
            at.what(doing),
            at.table
        ))
        .private());
    }
    match answer.status {
        StatusCode::NotFound | StatusCode::PreconditionFailed => Ok(()),
        _ => Err(answer.error(&at.what(doing))),
    }
}

fn contended(at: &At) -> Error {
    Error::unavailable(format!(
        "{}: the key changed under {ROUNDS} conditional writes in a row",
        at.what("writing to")
    ))
    .private()
}

/// The PartitionKey of store key `key` (see [`TableStore`]).
fn partition_key(key: &str) -> Result<String, Error> {
    cloudfn_core::store::check_key(key)?;
    let mut partition = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '/' => partition.push('／'),
            '\\' => partition.push('＼'),
            '#' => partition.push('＃'),
            '?' => partition.push('？'),
            '％' | '／' | '＼' | '＃' | '？' => {
                partition.push('％');
                partition.push(c);
            }
            c => partition.push(c),
        }
    }
    Ok(partition)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The entity `write` makes under PartitionKey `partition`, as JSON.
fn entity(partition: &str, write: &Write, now: u64) -> Result<String, Error> {
    if write.value.len() > MAX_VALUE_BYTES {
        return Err(Error::too_large(format!(
            "a store value holds at most {MAX_VALUE_BYTES} bytes; this one is {}",
            write.value.len()
        )));
    }
    fn int64(entity: &mut Map<String, Value>, name: &str, n: i64) {
        entity.insert(name.to_owned(), n.to_string().into());
        entity.insert(format!("{name}@odata.type"), "Edm.Int64".into());
    }
    let mut entity = Map::new();
    entity.insert("PartitionKey".into(), partition.into());
    entity.insert("RowKey".into(), "".into());
    // The version's bits: Edm.Int64 is signed.
    int64(&mut entity, VERSION, write.version.0 as i64);
    if let Some(ttl) = write.ttl {
        let expires = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        int64(
            &mut entity,
            EXPIRES_MS,
            i64::try_from(expires).unwrap_or(i64::MAX),
        );
    }
    let chunks: Vec<&[u8]> = if write.value.is_empty() {
        vec![&[]]
    } else {
        write.value.chunks(CHUNK_BYTES).collect()
    };
    for (i, chunk) in chunks.into_iter().enumerate() {
        entity.insert(format!("v{i}"), STANDARD.encode(chunk).into());
        entity.insert(format!("v{i}@odata.type"), "Edm.Binary".into());
    }
    Ok(Value::Object(entity).to_string())
}

/// Reads an entity's JSON (without metadata: Int64 as strings, Binary as
/// base64).
fn stored(body: &[u8], etag: String) -> Result<Stored, String> {
    let entity: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("the entity is not JSON: {e}"))?;
    let int64 = |name: &str| match entity.get(name) {
        Some(Value::String(text)) => text.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let version = int64(VERSION).ok_or("the entity has no Int64 `ver`: not a cloudfn store's")?;
    let mut value = Vec::new();
    for i in 0.. {
        let Some(chunk) = entity.get(&format!("v{i}")) else {
            if i == 0 {
                return Err("the entity has no `v0`: not a cloudfn store's".into());
            }
            break;
        };
        let chunk = chunk
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| format!("the entity's `v{i}` is not Binary"))?;
        value.extend_from_slice(&chunk);
    }
    Ok(Stored {
        record: Record {
            value: value.into(),
            version: Version(version as u64),
        },
        expires_ms: int64(EXPIRES_MS).map(|at| at.max(0) as u64),
        etag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfn_core::store::MAX_KEY_BYTES;

    #[test]
    fn every_key_fits_a_partition_key_one_to_one() {
        let cases = [
            ("orders/42", "orders／42"),
            ("a\\b#c?d%e", "a＼b＃c？d%e"),
            ("／", "％／"),
            ("％", "％％"),
            ("it's", "it's"),
        ];
        for (key, partition) in cases {
            assert_eq!(partition_key(key).unwrap(), partition, "{key}");
        }
        let worst = [
            "/".repeat(MAX_KEY_BYTES),
            "／".repeat(MAX_KEY_BYTES / 3),
            "€".repeat(MAX_KEY_BYTES / 3),
            "𝄞".repeat(MAX_KEY_BYTES / 4),
        ];
        for key in &worst {
            let units = partition_key(key).unwrap().encode_utf16().count();
            assert!(units <= 512, "{units} UTF-16 units");
        }
        let distinct = ["/", "／", "％／", "%", "％"];
        let partitions: std::collections::BTreeSet<_> =
            distinct.iter().map(|k| partition_key(k).unwrap()).collect();
        assert_eq!(partitions.len(), distinct.len());
        assert!(partition_key("a\nb").is_err());
        assert!(partition_key("").is_err());
        assert!(partition_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn entities_round_trip_values_versions_and_expiry() {
        let value: Vec<u8> = (0..CHUNK_BYTES * 2 + 5).map(|i| i as u8).collect();
        let write = Write {
            value: value.clone().into(),
            version: Version(u64::MAX - 1),
            condition: Condition::Always,
            ttl: Some(std::time::Duration::from_secs(1)),
        };
        let json = entity("k", &write, 1_000).unwrap();
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["ver@odata.type"], "Edm.Int64");
        assert_eq!(parsed["v2@odata.type"], "Edm.Binary");
        assert!(parsed.get("v3").is_none());
        let read = stored(json.as_bytes(), "W/\"1\"".into()).unwrap();
        assert_eq!(read.record.value, value);
        assert_eq!(read.record.version, write.version);
        assert_eq!(read.expires_ms, Some(2_000));
        assert!(read.live(1_999) && !read.live(2_000));

        let empty = Write {
            value: Default::default(),
            ttl: None,
            ..write
        };
        let json = entity("k", &empty, 0).unwrap();
        let read = stored(json.as_bytes(), String::new()).unwrap();
        assert!(read.record.value.is_empty() && read.expires_ms.is_none());
    }
}
