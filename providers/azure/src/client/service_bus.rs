//! Publishing to Service Bus topics over the REST API, signed with a
//! shared access signature from the namespace's connection string, or
//! with a bearer token of the app's managed identity.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use azure_core::{
    credentials::{Secret, TokenCredential},
    http::{
        Method, Pipeline, Request, Url, headers::HeaderName,
        policies::auth::BearerTokenAuthorizationPolicy,
    },
};
use base64::{Engine, engine::general_purpose::STANDARD};
use cloudfn_core::{Error, OutgoingMessage, messaging::PUBLISHED_ID, provider::TopicClient};
use serde_json::json;

use crate::names;

/// How long a signature lasts: an hour, made afresh for each send.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The audience of Service Bus' tokens.
const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

/// A Service Bus namespace, reached with a shared access key or the app's
/// managed identity: what publishes a function's messages to its topics.
/// The key never shows in `Debug` or errors.
///
/// ```
/// use cloudfn_azure::client::ServiceBus;
///
/// let bus = ServiceBus::from_connection_string(
///     "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
/// )
/// .unwrap();
/// assert_eq!(bus.endpoint().as_str(), "https://shop.servicebus.windows.net/");
/// assert!(!format!("{bus:?}").contains("c2VjcmV0"));
/// ```
#[derive(Clone)]
pub struct ServiceBus {
    endpoint: Url,
    /// The shared access key, when not a token of the pipeline's.
    key: Option<SharedAccessKey>,
    pipeline: Pipeline,
}

#[derive(Clone)]
struct SharedAccessKey {
    name: String,
    /// The key as the HMAC takes it: Service Bus signs with the key's text
    /// itself, azure_core's HMAC with the bytes a base64 text decodes to.
    key: Secret,
}

impl std::fmt::Debug for ServiceBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBus")
            .field("endpoint", &self.endpoint.as_str())
            .field("key_name", &self.key.as_ref().map(|k| &k.name))
            .finish_non_exhaustive()
    }
}

impl ServiceBus {
    /// The namespace of a connection string:
    /// `Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…`
    /// (`sb://` is reached over HTTPS; an `http://` endpoint, a local
    /// stand-in, over HTTP). Errors name what is missing, never the key.
    pub fn from_connection_string(connection: &str) -> Result<Self, Error> {
        let part = |name: &str| {
            connection.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
            })
        };
        let missing = |name: &str| {
            Error::invalid(format!("the Service Bus connection string has no `{name}`"))
        };
        let endpoint = part("Endpoint").ok_or_else(|| missing("Endpoint"))?;
        let endpoint = match endpoint.strip_prefix("sb://") {
            Some(rest) => format!("https://{rest}"),
            None => endpoint.to_owned(),
        };
        let mut endpoint = Url::parse(&endpoint).map_err(|e| {
            Error::invalid(format!(
                "the Service Bus endpoint `{endpoint}` is no URL: {e}"
            ))
        })?;
        if !endpoint.path().ends_with('/') {
            let path = format!("{}/", endpoint.path());
            endpoint.set_path(&path);
        }
        let key_name = part("SharedAccessKeyName").ok_or_else(|| missing("SharedAccessKeyName"))?;
        let key = part("SharedAccessKey").ok_or_else(|| missing("SharedAccessKey"))?;
        Ok(Self {
            endpoint,
            key: Some(SharedAccessKey {
                name: key_name.to_owned(),
                key: Secret::new(STANDARD.encode(key.as_bytes())),
            }),
            pipeline: super::pipeline::build(Vec::new()),
        })
    }

    /// Namespace `namespace` (`shop.servicebus.windows.net`) reached with
    /// `credential`'s tokens.
    pub fn with_token(
        namespace: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, Error> {
        let endpoint = Url::parse(&format!("https://{namespace}/")).map_err(|e| {
            Error::invalid(format!(
                "the Service Bus namespace `{namespace}` makes no URL: {e}"
            ))
        })?;
        let bearer = BearerTokenAuthorizationPolicy::new(credential, [SERVICE_BUS_SCOPE]);
        Ok(Self {
            endpoint,
            key: None,
            pipeline: super::pipeline::build(vec![Arc::new(bearer)]),
        })
    }

    /// The namespace of connection `CLOUDFN_SERVICE_BUS`, if set, read as
    /// the Functions host reads its Service Bus trigger's: a connection
    /// string, or `CLOUDFN_SERVICE_BUS__fullyQualifiedNamespace` for the
    /// app's managed identity (a user-assigned one's client id in
    /// `CLOUDFN_SERVICE_BUS__clientId`).
    pub fn from_env() -> Result<Option<Self>, Error> {
        let variable = names::SERVICE_BUS_CONNECTION;
        let setting = |suffix: &str| {
            std::env::var(format!("{variable}{suffix}"))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(connection) = setting("") {
            return Self::from_connection_string(&connection)
                .map(Some)
                .map_err(|e| Error::invalid(format!("`{variable}`: {}", e.message())));
        }
        match setting("__fullyQualifiedNamespace") {
            Some(namespace) => {
                let credential =
                    super::account::managed_identity(setting("__clientId").as_deref())?;
                Self::with_token(namespace.trim(), credential).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Where the namespace answers.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// `SharedAccessSignature sr=…&sig=…&se=…&skn=…` for `resource`,
    /// valid for [`TOKEN_LIFETIME`].
    fn signature(&self, resource: &str) -> Result<String, Error> {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(TOKEN_LIFETIME)
            .as_secs();
        self.signature_until(resource, expiry)
    }

    fn signature_until(&self, resource: &str, expiry: u64) -> Result<String, Error> {
        let Some(SharedAccessKey { name, key }) = &self.key else {
            return Err(Error::internal("no shared access key to sign with"));
        };
        let encoded: String = url::form_urlencoded::byte_serialize(resource.as_bytes()).collect();
        let signed = format!("{encoded}\n{expiry}");
        let sig = azure_core::hmac::hmac_sha256(&signed, key)
            .map_err(|e| Error::internal(format!("cannot sign for Service Bus: {e}")))?;
        let sig: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        Ok(format!(
            "SharedAccessSignature sr={encoded}&sig={sig}&se={expiry}&skn={name}"
        ))
    }
}

#[async_trait]
impl TopicClient for ServiceBus {
    /// Sends `message` to the topic (`POST /<topic>/messages`): the body as
    /// it is, the attributes as application properties, the publisher's id
    /// as `MessageId` and the ordering key as `SessionId`.
    async fn publish(&self, topic: &str, message: OutgoingMessage) -> Result<String, Error> {
        let physical = names::topic_name(topic);
        let url = self
            .endpoint
            .join(&format!("{physical}/messages"))
            .map_err(|e| Error::invalid(format!("topic `{physical}` makes no URL: {e}")))?;
        let id = message
            .attributes
            .get(PUBLISHED_ID)
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut broker = json!({ "MessageId": id });
        if let Some(key) = &message.ordering_key {
            broker["SessionId"] = json!(key);
        }
        if let Some(delay) = message.delay {
            let at = chrono::Utc::now() + delay;
            broker["ScheduledEnqueueTimeUtc"] =
                json!(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
        }
        let resource = format!("{}{physical}", self.endpoint);
        let mut request = Request::new(url, Method::Post);
        if self.key.is_some() {
            request.insert_header(
                HeaderName::from_static("authorization"),
                self.signature(&resource)?,
            );
        }
        request.insert_header(
            HeaderName::from_static("brokerproperties"),
            broker.to_string(),
        );
        request.insert_header(
            HeaderName::from_static("content-type"),
            "application/octet-stream",
        );
        for (name, value) in &message.attributes {
            let name = HeaderName::from(name.to_ascii_lowercase());
            // Application properties are JSON values in their headers.
            request.insert_header(name, json!(value).to_string());
        }
        request.set_body(message.body.to_vec());
        let what = format!("sending to Service Bus topic `{physical}`");
        let answer = super::pipeline::send(&self.pipeline, request, &what).await?;
        let status = u16::from(answer.status);
        if status == 201 {
            return Ok(id);
        }
        let body = String::from_utf8_lossy(&answer.body);
        Err(Error::from_service_status(
            status,
            format!("{what}: Service Bus answered {status}: {body}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_name_what_is_missing() {
        let error = ServiceBus::from_connection_string("Endpoint=sb://x.servicebus.windows.net/")
            .unwrap_err();
        assert!(error.message().contains("SharedAccessKeyName"), "{error}");
        let local = ServiceBus::from_connection_string(
            "Endpoint=http://127.0.0.1:9000;SharedAccessKeyName=k;SharedAccessKey=s",
        )
        .unwrap();
        assert_eq!(local.endpoint().as_str(), "http://127.0.0.1:9000/");
    }

    /// The signature Microsoft's documentation computes: HMAC-SHA256 over
    /// the URL-encoded resource, a newline and the expiry, keyed with the
    /// key's text (the expected value from Python's `hmac`).
    #[test]
    fn signatures_are_keyed_with_the_keys_text() {
        let bus = ServiceBus::from_connection_string(
            "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=not-base64!",
        )
        .unwrap();
        let token = bus
            .signature_until(
                "https://shop.servicebus.windows.net/order-paid",
                1_700_000_000,
            )
            .unwrap();
        let sig: String =
            url::form_urlencoded::byte_serialize(b"0HAyKFYAyhydecjMc+P6UY9hK9qu0f8NwmnfGBQl+DE=")
                .collect();
        assert_eq!(
            token,
            format!(
                "SharedAccessSignature sr=https%3A%2F%2Fshop.servicebus.windows.net%2Forder-paid&sig={sig}&se=1700000000&skn=send"
            )
        );
    }
}
