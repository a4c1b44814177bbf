//! A cloudfn store on Firestore (Native mode), over its REST API: one
//! collection per store, one document per key.
//!
//! Google publishes no Firestore data client for Rust (its crate is not
//! released), so this speaks `v1` REST with reqwest and Google's own
//! credentials. Every conditional write goes through `documents:commit`
//! with a `currentDocument` precondition — `exists: false` to create,
//! `updateTime` to compare-and-set — which Firestore checks atomically
//! (the emulator mishandles the same precondition as a query parameter).
//! A value's time to live is an `expireAt` field: Firestore's TTL policy
//! deletes expired documents within a day or so and its emulator never
//! does, so an expired document reads as absent at once, here.

use async_trait::async_trait;
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudfn_core::{
    Error,
    store::{Condition, Record, StoreClient, Version, Write},
};
use google_cloud_auth::credentials::Credentials;
use serde_json::{Value, json};

use crate::names;

/// Field names of a stored document.
const VALUE: &str = "value";
const VERSION: &str = "version";
pub(crate) const EXPIRES: &str = "expireAt";
const KEY: &str = "key";

/// A project's Firestore `(default)` database as cloudfn stores.
#[derive(Clone)]
pub struct Firestore {
    /// `…/v1/projects/P/databases/(default)/documents`.
    documents: String,
    /// The same, as the resource name writes carry.
    database: String,
    http: reqwest::Client,
    /// `None` on the emulator, which takes requests without credentials.
    credentials: Option<Credentials>,
    as_given: bool,
}

impl std::fmt::Debug for Firestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firestore")
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

/// One document as read: its fields, and when it was last written.
struct Document {
    record: Record,
    expires: Option<DateTime<Utc>>,
    update_time: String,
}

impl Document {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|at| at > now)
    }

    /// The precondition that this document is still as read.
    fn unchanged(&self) -> Precondition<'_> {
        Precondition::UpdatedAt(&self.update_time)
    }
}

/// A precondition on the document a write or delete targets.
enum Precondition<'a> {
    None,
    Absent,
    UpdatedAt(&'a str),
}

/// How a conditional commit went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Refused,
}

impl Firestore {
    /// The database of `project`, at `emulator` (`HOST:PORT`, without
    /// credentials) or else at Firestore with the process's Application
    /// Default Credentials (on Cloud Run, the service's own account).
    pub fn connect(project: &str, emulator: Option<&str>) -> Result<Self, Error> {
        super::install_tls();
        let base = match emulator {
            Some(host) => format!("http://{host}/v1"),
            None => "https://firestore.googleapis.com/v1".to_owned(),
        };
        let credentials = match emulator {
            Some(_) => None,
            None => Some(super::rest::default_credentials("Firestore")?),
        };
        let database = format!("projects/{project}/databases/(default)/documents");
        Ok(Self {
            documents: format!("{base}/{database}"),
            database,
            http: reqwest::Client::new(),
            credentials,
            as_given: false,
        })
    }

    /// The database of the project in `GOOGLE_CLOUD_PROJECT`, on the
    /// emulator `FIRESTORE_EMULATOR_HOST` names if it is set.
    pub fn from_env() -> Result<Self, Error> {
        let emulator = std::env::var(names::FIRESTORE_EMULATOR_VARIABLE)
            .ok()
            .filter(|h| !h.trim().is_empty());
        Self::connect(&names::project()?, emulator.as_deref())
    }

    /// The same database, stores named by their collections' own names
    /// rather than through the settings: for tools and tests.
    pub fn as_given(mut self) -> Self {
        self.as_given = true;
        self
    }

    fn collection(&self, store: &str) -> String {
        if self.as_given {
            store.to_owned()
        } else {
            names::collection(store)
        }
    }

    /// The document id of `key`: base64url, since a key may hold `/` and
    /// names Firestore reserves (`.`, `__x__`), and ids are not escaped.
    fn path(&self, store: &str, key: &str) -> String {
        format!(
            "{}/{}",
            self.collection(store),
            URL_SAFE_NO_PAD.encode(key.as_bytes())
        )
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(u16, Value), Error> {
        super::rest::send(self.credentials.as_ref(), request, "Firestore", what).await
    }

    /// The document under `key`, live or not; `None` if there is none.
    async fn read(&self, store: &str, key: &str) -> Result<Option<Document>, Error> {
        let what = format!("reading key of store `{store}`");
        let url = format!("{}/{}", self.documents, self.path(store, key));
        let (status, body) = self.send(self.http.get(url), &what).await?;
        match status {
            200 => decode(&body)
                .map(Some)
                .map_err(|e| Error::internal(format!("{what}: {}", e.message())).private()),
            404 => Ok(None),
            _ => Err(answer_error(status, &body, &what)),
        }
    }

    /// Commits one write (`fields`) or, without fields, one delete of
    /// `key`, under `precondition`.
    async fn commit(
        &self,
        store: &str,
        key: &str,
        fields: Option<Value>,
        precondition: Precondition<'_>,
    ) -> Result<Outcome, Error> {
        let name = format!("{}/{}", self.database, self.path(store, key));
        let mut write = match fields {
            Some(fields) => json!({ "update": { "name": name, "fields": fields } }),
            None => json!({ "delete": name }),
        };
        match precondition {
            Precondition::None => {}
            Precondition::Absent => write["currentDocument"] = json!({ "exists": false }),
            Precondition::UpdatedAt(time) => {
                write["currentDocument"] = json!({ "updateTime": time });
            }
        }
        let what = format!("writing key of store `{store}`");
        let url = format!("{}:commit", self.documents);
        let (status, body) = self
            .send(
                self.http.post(url).json(&json!({ "writes": [write] })),
                &what,
            )
            .await?;
        let code = body["error"]["status"].as_str().unwrap_or_default();
        match (status, code) {
            (200, _) => Ok(Outcome::Done),
            // Created meanwhile; written or deleted meanwhile.
            (409, "ALREADY_EXISTS") | (400, "FAILED_PRECONDITION") | (404, "NOT_FOUND") => {
                Ok(Outcome::Refused)
            }
            _ => Err(answer_error(status, &body, &what)),
        }
    }
}

/// The fields of `write` of `key`.
fn fields(key: &str, write: &Write) -> Value {
    let mut fields = json!({
        KEY: { "stringValue": key },
        VALUE: { "bytesValue": STANDARD.encode(&write.value) },
        // A u64 may not fit Firestore's int64.
        VERSION: { "stringValue": write.version.0.to_string() },
    });
    if let Some(ttl) = write.ttl {
        let at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        fields[EXPIRES] = json!({
            "timestampValue": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        });
    }
    fields
}

/// A document as Firestore sends it.
fn decode(document: &Value) -> Result<Document, Error> {
    let field = &document["fields"];
    let value = field[VALUE]["bytesValue"].as_str().unwrap_or_default();
    let value = STANDARD
        .decode(value)
        .map_err(|e| Error::internal(format!("the stored value is not base64: {e}")))?;
    let version = field[VERSION]["stringValue"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::internal("the stored document has no version"))?;
    let expires = field[EXPIRES]["timestampValue"]
        .as_str()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::internal(format!("the stored expiry is no time: {e}")))
        })
        .transpose()?;
    let update_time = document["updateTime"]
        .as_str()
        .ok_or_else(|| Error::internal("the stored document has no updateTime"))?
        .to_owned();
    Ok(Document {
        record: Record {
            value: Bytes::from(value),
            version: Version(version),
        },
        expires,
        update_time,
    })
}

/// An unexpected answer to `what`: its kind from the status, its message
/// Firestore's (never a header).
fn answer_error(status: u16, body: &Value, what: &str) -> Error {
    super::rest::answer_error(status, body, "Firestore", what)
}

#[async_trait]
impl StoreClient for Firestore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Record>, Error> {
        Ok(self
            .read(store, key)
            .await?
            .filter(|document| document.live(Utc::now()))
            .map(|document| document.record))
    }

    async fn put(&self, store: &str, key: &str, write: Write) -> Result<bool, Error> {
        let body = fields(key, &write);
        let outcome = match write.condition {
            Condition::Always => {
                self.commit(store, key, Some(body), Precondition::None)
                    .await?
            }
            Condition::Absent => {
                match self
                    .commit(store, key, Some(body.clone()), Precondition::Absent)
                    .await?
                {
                    Outcome::Done => Outcome::Done,
                    // There is a document: only an expired one may be replaced.
                    Outcome::Refused => match self.read(store, key).await? {
                        Some(document) if !document.live(Utc::now()) => {
                            self.commit(store, key, Some(body), document.unchanged())
                                .await?
                        }
                        Some(_) => Outcome::Refused,
                        // Deleted meanwhile: try once more to create it.
                        None => {
                            self.commit(store, key, Some(body), Precondition::Absent)
                                .await?
                        }
                    },
                }
            }
            Condition::Version(version) => match self.read(store, key).await? {
                Some(document)
                    if document.live(Utc::now()) && document.record.version == version =>
                {
                    self.commit(store, key, Some(body), document.unchanged())
                        .await?
                }
                _ => Outcome::Refused,
            },
        };
        Ok(outcome == Outcome::Done)
    }

    async fn delete(&self, store: &str, key: &str, condition: Condition) -> Result<bool, Error> {
        let Some(document) = self.read(store, key).await? else {
            return Ok(false);
        };
        let live = document.live(Utc::now());
        let holds = live
            && match condition {
                Condition::Always => true,
                Condition::Absent => false,
                Condition::Version(version) => document.record.version == version,
            };
        if !live {
            // Gone already as far as readers know: swept now, reported absent.
            self.commit(store, key, None, document.unchanged()).await?;
            return Ok(false);
        }
        if !holds {
            return Ok(false);
        }
        let outcome = self.commit(store, key, None, document.unchanged()).await?;
        Ok(outcome == Outcome::Done)
    }
}
