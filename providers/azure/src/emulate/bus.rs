//! A stand-in for Service Bus' REST send, for the topics of the simulated
//! app: `POST /<topic>/messages`, its shared access signature checked as
//! Service Bus checks it, each message fanned out to one Storage queue
//! per subscription (`<topic>-<subscription>`), from which the simulator
//! delivers `serviceBusTrigger` invocations.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use cloudfn_core::{Error, HttpResponse, OutgoingMessage};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use cloudfn_core::conventions::subscription_queue;

use super::Declared;
use crate::{client::StorageQueues, events::queue::Envelope};

/// The topics and their subscriptions' queues, by physical name.
pub(crate) struct Bus {
    queues: StorageQueues,
    subscriptions: Mutex<HashMap<String, Vec<String>>>,
    key: String,
}

impl Bus {
    pub(crate) fn new(queues: StorageQueues, functions: &[Declared]) -> Arc<Self> {
        let mut subscriptions: HashMap<String, Vec<String>> = HashMap::new();
        for f in functions.iter().filter(|f| f.kind() == "serviceBusTrigger") {
            let topic = f.field("topicName");
            subscriptions
                .entry(topic.to_owned())
                .or_default()
                .push(subscription_queue(topic, f.field("subscriptionName")));
        }
        Arc::new(Self {
            queues,
            subscriptions: Mutex::new(subscriptions),
            key: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// Adds `queue` as a subscription of `topic`.
    pub(crate) fn subscribe(&self, topic: &str, queue: &str) {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(topic.to_owned())
            .or_default()
            .push(queue.to_owned());
    }

    /// The connection string that reaches this stand-in at `url`.
    pub(crate) fn connection_string(&self, url: &str) -> String {
        format!(
            "Endpoint={url}/;SharedAccessKeyName=dev;SharedAccessKey={}",
            self.key
        )
    }

    /// Serves on a free loopback port until `stop`.
    pub(crate) async fn serve(
        self: Arc<Self>,
        stop: CancellationToken,
    ) -> Result<(String, JoinHandle<()>), Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| {
                Error::unavailable(format!("the Service Bus stand-in cannot listen: {e}"))
            })?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::unavailable(format!("no address: {e}")))?
        );
        let base = url.clone();
        let task = tokio::spawn(cloudfn_server::serve(
            listener,
            Duration::from_secs(30),
            stop,
            move |request| {
                let bus = self.clone();
                let base = base.clone();
                async move {
                    let answer = match cloudfn_server::read_request(request, 1024 * 1024).await {
                        Ok(request) => bus.send(&base, request).await,
                        Err(error) => Err(error),
                    };
                    match answer {
                        Ok(()) => HttpResponse::new(201).into_http(),
                        Err(error) => {
                            let status = match error.kind() {
                                cloudfn_core::ErrorKind::Unauthorized => 401,
                                cloudfn_core::ErrorKind::NotFound => 404,
                                cloudfn_core::ErrorKind::BadInput => 400,
                                _ => 500,
                            };
                            HttpResponse::text(status, error.to_string()).into_http()
                        }
                    }
                }
            },
        ));
        Ok((url, task))
    }

    /// One send: the signature checked, the message put on every
    /// subscription's queue.
    async fn send(&self, base: &str, request: cloudfn_core::HttpRequest) -> Result<(), Error> {
        let topic = request
            .path
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix("/messages"))
            .ok_or_else(|| Error::not_found(format!("no entity at {}", request.path)))?
            .to_owned();
        self.check_signature(&format!("{base}/{topic}"), request.header("authorization"))?;
        let broker: serde_json::Value = request
            .header("brokerproperties")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| Error::bad_input(format!("BrokerProperties is not JSON: {e}")))?
            .unwrap_or_default();
        let id = broker["MessageId"]
            .as_str()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let mut message = OutgoingMessage::new(request.body.clone());
        // Application properties are the headers holding JSON strings.
        for (name, value) in &request.headers {
            if let Ok(serde_json::Value::String(value)) =
                serde_json::from_str::<serde_json::Value>(value.to_str().unwrap_or_default())
            {
                message.attributes.insert(name.as_str().to_owned(), value);
            }
        }
        message.ordering_key = broker["SessionId"].as_str().map(str::to_owned);
        let delay = broker["ScheduledEnqueueTimeUtc"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
            .and_then(|t| (t.with_timezone(&Utc) - Utc::now()).to_std().ok())
            .unwrap_or_default();
        let queues = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&topic)
            .cloned()
            .unwrap_or_default();
        let envelope = Envelope::new(id, &message);
        for queue in queues {
            self.queues.put(&queue, &envelope, delay).await?;
        }
        Ok(())
    }

    /// Checks `SharedAccessSignature sr=…&sig=…&se=…&skn=…` as Service Bus
    /// does: the resource is the topic's, not expired, and signed with the key.
    fn check_signature(&self, resource: &str, authorization: Option<&str>) -> Result<(), Error> {
        let unauthorized =
            |why: &str| Error::unauthorized(format!("the shared access signature {why}"));
        let token = authorization
            .and_then(|a| a.strip_prefix("SharedAccessSignature "))
            .ok_or_else(|| unauthorized("is missing"))?;
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(token.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        if !field("sr").eq_ignore_ascii_case(resource) {
            return Err(unauthorized(&format!(
                "is for `{}`, not `{resource}`",
                field("sr")
            )));
        }
        let expiry: i64 = field("se")
            .parse()
            .map_err(|_| unauthorized("has no expiry"))?;
        if expiry < Utc::now().timestamp() {
            return Err(unauthorized("has expired"));
        }
        let encoded: String =
            url::form_urlencoded::byte_serialize(field("sr").as_bytes()).collect();
        let key = azure_core::credentials::Secret::new(STANDARD.encode(self.key.as_bytes()));
        let expected = azure_core::hmac::hmac_sha256(&format!("{encoded}\n{}", field("se")), &key)
            .map_err(|e| Error::internal(format!("cannot sign: {e}")))?;
        if field("sig") != expected || field("skn") != "dev" {
            return Err(unauthorized("does not match the key"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cloudfn_core::provider::TopicClient;

    use super::*;
    use crate::client::{DEVELOPMENT_ACCOUNT, ServiceBus, StorageAccount};

    /// A send signed with another key is refused as Service Bus refuses it
    /// (401), before anything is put on a queue.
    #[tokio::test]
    async fn a_send_signed_with_another_key_is_refused() {
        let (name, key) = DEVELOPMENT_ACCOUNT;
        let account = StorageAccount::from_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};QueueEndpoint=http://127.0.0.1:9/{name}"
        ))
        .unwrap();
        let bus = Bus::new(StorageQueues::new(&account).as_given(), &[]);
        let stop = CancellationToken::new();
        let (url, _task) = bus.clone().serve(stop.clone()).await.unwrap();
        let wrong = ServiceBus::from_connection_string(&format!(
            "Endpoint={url}/;SharedAccessKeyName=dev;SharedAccessKey=not-the-key"
        ))
        .unwrap();
        let error = wrong
            .publish("order-paid", OutgoingMessage::new("{}"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), cloudfn_core::ErrorKind::Forbidden, "{error}");
        assert!(error.message().contains("401"), "{error}");
        // Signed with the key, the same send is taken (the topic has no
        // subscription, so nothing is put on a queue).
        let right = ServiceBus::from_connection_string(&bus.connection_string(&url)).unwrap();
        let sent = right
            .publish("order-paid", OutgoingMessage::new("{}"))
            .await;
        assert!(sent.is_ok(), "{sent:?}");
        stop.cancel();
    }
}
