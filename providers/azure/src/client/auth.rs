//! Authorizing Storage requests, as policies in azure_core's pipeline:
//! signed with the account key (SharedKey), or carrying a bearer token of
//! the app's managed identity.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use azure_core::{
    credentials::Secret,
    http::{
        Context, Request,
        headers::HeaderName,
        policies::{Policy, PolicyResult, auth::BearerTokenAuthorizationPolicy},
    },
};

use super::{StorageAccount, account::Credential};

/// The audience of Storage's tokens.
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The Storage REST version cloudfn speaks.
pub(crate) const VERSION: &str = "2021-12-02";

const DATE: HeaderName = HeaderName::from_static("x-ms-date");
const MS_VERSION: HeaderName = HeaderName::from_static("x-ms-version");
const AUTHORIZATION: HeaderName = HeaderName::from_static("authorization");

/// A Storage service cloudfn reaches. Each signs its own string: the
/// Table service's is shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Queues (signed as Blob is).
    Queue,
    /// Tables.
    Table,
}

/// The per-try policies that authorize `account`'s requests to `service`:
/// a [`SharedKey`] signature, or the [`Stamp`] Storage needs and a bearer
/// token for Storage from the account's credential, fetched once and
/// renewed before it expires.
pub fn authorization(account: &StorageAccount, service: Service) -> Vec<Arc<dyn Policy>> {
    match account.credential() {
        Credential::Key(key) => vec![
            Arc::new(Stamp),
            Arc::new(SharedKey::new(account.name(), key, service)),
        ],
        Credential::Token(credential) => vec![
            Arc::new(Stamp),
            Arc::new(BearerTokenAuthorizationPolicy::new(
                credential.clone(),
                [STORAGE_SCOPE],
            )),
        ],
    }
}

/// Stamps a request with the `x-ms-date` and `x-ms-version` every Storage
/// request carries (a token is accepted from version 2017-11-09).
#[derive(Debug)]
pub struct Stamp;

impl Stamp {
    fn stamp(request: &mut Request) {
        let now = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        request.insert_header(DATE, now);
        if request.headers().get_optional_str(&MS_VERSION).is_none() {
            request.insert_header(MS_VERSION, VERSION);
        }
    }
}

#[async_trait]
impl Policy for Stamp {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        Self::stamp(request);
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The pipeline policy that signs each try of a request with the account's
/// key (`Authorization: SharedKey <account>:<signature>`). It signs the
/// `x-ms-date` a [`Stamp`] before it set: put both among the per-try
/// policies, in that order ([`authorization`] does), so a retry is stamped
/// and signed afresh.
#[derive(Clone)]
pub struct SharedKey {
    account: String,
    key: Secret,
    service: Service,
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SharedKey {
    /// Signs requests to `service` of `account` with its base64 `key`.
    pub fn new(account: &str, key: &str, service: Service) -> Self {
        Self {
            account: account.to_owned(),
            key: Secret::new(key.to_owned()),
            service,
        }
    }

    /// What is signed: the fields the service names, in its order, then the
    /// `x-ms-` headers and the resource, as Storage canonicalises them.
    fn string_to_sign(&self, request: &Request) -> String {
        let header = |name: &'static str| {
            request
                .headers()
                .get_optional_str(&HeaderName::from_static(name))
                .unwrap_or_default()
                .to_owned()
        };
        let method = request.method().to_string();
        let resource = self.canonical_resource(request);
        match self.service {
            Service::Table => [
                method,
                header("content-md5"),
                header("content-type"),
                header("x-ms-date"),
                resource,
            ]
            .join("\n"),
            Service::Queue => {
                // Since version 2015-02-21 a zero length is signed as empty.
                let length = match request.body().len() {
                    Some(0) | None => String::new(),
                    Some(n) => n.to_string(),
                };
                let mut ms_headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_ascii_lowercase(),
                            value.as_str().trim().to_owned(),
                        )
                    })
                    .filter(|(name, _)| name.starts_with("x-ms-"))
                    .collect();
                ms_headers.sort();
                let canonical_headers: String = ms_headers
                    .iter()
                    .map(|(name, value)| format!("{name}:{value}\n"))
                    .collect();
                let fields = [
                    method,
                    header("content-encoding"),
                    header("content-language"),
                    length,
                    header("content-md5"),
                    header("content-type"),
                    // Signed empty: x-ms-date stands in for Date.
                    String::new(),
                    header("if-modified-since"),
                    header("if-match"),
                    header("if-none-match"),
                    header("if-unmodified-since"),
                    header("range"),
                ];
                format!("{}\n{canonical_headers}{resource}", fields.join("\n"))
            }
        }
    }

    /// `/<account><path>`, then (Blob and Queue) every query parameter in
    /// name order, or (Table) only `comp`. Path-style endpoints (Azurite's)
    /// carry the account in the path too, so it appears twice.
    fn canonical_resource(&self, request: &Request) -> String {
        let url = request.url();
        let mut resource = format!("/{}{}", self.account, url.path());
        let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in url.query_pairs() {
            parameters
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(value.into_owned());
        }
        match self.service {
            Service::Table => {
                if let Some(comp) = parameters.get("comp") {
                    resource.push_str(&format!("?comp={}", comp.join(",")));
                }
            }
            Service::Queue => {
                for (name, mut values) in parameters {
                    values.sort();
                    resource.push_str(&format!("\n{name}:{}", values.join(",")));
                }
            }
        }
        resource
    }
}

#[async_trait]
impl Policy for SharedKey {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let signature = azure_core::hmac::hmac_sha256(&self.string_to_sign(request), &self.key)?;
        request.insert_header(
            AUTHORIZATION,
            format!("SharedKey {}:{signature}", self.account),
        );
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
mod tests {
    use azure_core::http::{Method, Url};

    use super::*;

    fn signer(service: Service) -> SharedKey {
        let (name, key) = super::super::DEVELOPMENT_ACCOUNT;
        SharedKey::new(name, key, service)
    }

    /// The canonical form Storage documents, for a path-style (Azurite) URL
    /// with repeated and unordered query parameters.
    #[test]
    fn queue_requests_sign_headers_and_resource_in_storage_order() {
        let url = Url::parse("http://127.0.0.1:10001/devstoreaccount1/orders/messages?visibilitytimeout=5&Comp=x&comp=a").unwrap();
        let mut request = Request::new(url, Method::Post);
        request.insert_header(HeaderName::from_static("x-ms-version"), VERSION);
        request.insert_header(
            HeaderName::from_static("x-ms-date"),
            "Fri, 27 Nov 2026 15:00:00 GMT",
        );
        request.insert_header(HeaderName::from_static("content-type"), "application/xml");
        request.set_body("<QueueMessage/>");
        assert_eq!(
            signer(Service::Queue).string_to_sign(&request),
            "POST\n\n\n15\n\napplication/xml\n\n\n\n\n\n\n\
             x-ms-date:Fri, 27 Nov 2026 15:00:00 GMT\nx-ms-version:2021-12-02\n\
             /devstoreaccount1/devstoreaccount1/orders/messages\ncomp:a,x\nvisibilitytimeout:5"
        );
    }

    #[test]
    fn table_requests_sign_the_short_form_with_only_comp() {
        let url = Url::parse("http://127.0.0.1:10002/devstoreaccount1/Tables?comp=acl&timeout=3")
            .unwrap();
        let mut request = Request::new(url, Method::Get);
        request.insert_header(
            HeaderName::from_static("x-ms-date"),
            "Fri, 27 Nov 2026 15:00:00 GMT",
        );
        assert_eq!(
            signer(Service::Table).string_to_sign(&request),
            "GET\n\n\nFri, 27 Nov 2026 15:00:00 GMT\n/devstoreaccount1/devstoreaccount1/Tables?comp=acl"
        );
    }
}
