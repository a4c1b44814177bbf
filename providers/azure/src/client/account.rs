//! The Storage account a Functions app's connection string names.

use std::collections::HashMap;

use azure_core::http::Url;
use cloudfn_core::Error;

use crate::names::STORAGE_CONNECTION;

/// Azurite's and the old emulator's account: its name and well-known key
/// (public, documented by Microsoft for local development).
pub const DEVELOPMENT_ACCOUNT: (&str, &str) = (
    "devstoreaccount1",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
);

/// A Storage account: its name, its key, and where each service answers.
///
/// ```
/// use cloudfn_azure::client::StorageAccount;
///
/// let dev = StorageAccount::from_connection_string("UseDevelopmentStorage=true").unwrap();
/// assert_eq!(dev.name(), "devstoreaccount1");
/// assert_eq!(dev.queue_endpoint().as_str(), "http://127.0.0.1:10001/devstoreaccount1");
///
/// let prod = StorageAccount::from_connection_string(
///     "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=a2V5;EndpointSuffix=core.windows.net",
/// )
/// .unwrap();
/// assert_eq!(prod.queue_endpoint().as_str(), "https://shop.queue.core.windows.net/");
/// assert!(!format!("{prod:?}").contains("a2V5"), "the key never shows");
/// ```
#[derive(Clone)]
pub struct StorageAccount {
    name: String,
    key: String,
    queue: Url,
    blob: Url,
    table: Url,
}

impl std::fmt::Debug for StorageAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageAccount")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("queue", &self.queue.as_str())
            .field("blob", &self.blob.as_str())
            .field("table", &self.table.as_str())
            .finish()
    }
}

impl StorageAccount {
    /// The account a connection string names: `UseDevelopmentStorage=true`
    /// (Azurite on its default ports), or `AccountName` and `AccountKey`
    /// with `DefaultEndpointsProtocol` and `EndpointSuffix`, each service's
    /// endpoint overridable (`QueueEndpoint`, `BlobEndpoint`,
    /// `TableEndpoint`, as Azurite on other ports needs). Errors name what
    /// is missing or malformed, never the key.
    pub fn from_connection_string(connection: &str) -> Result<Self, Error> {
        let parts: HashMap<String, &str> = connection
            .split(';')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                let (key, value) = part.split_once('=').ok_or_else(|| {
                    Error::invalid(
                        "a Storage connection string is `Name=value` pairs separated by `;`",
                    )
                })?;
                Ok((key.trim().to_ascii_lowercase(), value.trim()))
            })
            .collect::<Result<_, Error>>()?;
        let get = |name: &str| parts.get(&name.to_ascii_lowercase()).copied();
        let development =
            get("UseDevelopmentStorage").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let (name, key) = if development {
            (
                DEVELOPMENT_ACCOUNT.0.to_owned(),
                DEVELOPMENT_ACCOUNT.1.to_owned(),
            )
        } else {
            let missing = |what: &str| {
                Error::invalid(format!("the Storage connection string has no `{what}`"))
            };
            (
                get("AccountName")
                    .ok_or_else(|| missing("AccountName"))?
                    .to_owned(),
                get("AccountKey")
                    .ok_or_else(|| missing("AccountKey"))?
                    .to_owned(),
            )
        };
        let endpoint = |service: &str, port: u16| -> Result<Url, Error> {
            let explicit = format!("{service}Endpoint");
            let text = match get(&explicit) {
                Some(url) => url.to_owned(),
                None if development => format!("http://127.0.0.1:{port}/{name}"),
                None => {
                    let protocol = get("DefaultEndpointsProtocol").unwrap_or("https");
                    let suffix = get("EndpointSuffix").unwrap_or("core.windows.net");
                    format!(
                        "{protocol}://{name}.{}.{suffix}",
                        service.to_ascii_lowercase()
                    )
                }
            };
            Url::parse(&text).map_err(|e| {
                Error::invalid(format!(
                    "the Storage connection string's {explicit} is not a URL: {e}"
                ))
            })
        };
        Ok(Self {
            queue: endpoint("Queue", 10001)?,
            blob: endpoint("Blob", 10000)?,
            table: endpoint("Table", 10002)?,
            name,
            key,
        })
    }

    /// The account of the function app: the connection string in the
    /// [`STORAGE_CONNECTION`] app setting (`AzureWebJobsStorage`), which the
    /// Functions host requires. The error names the setting when it is unset.
    pub fn from_env() -> Result<Self, Error> {
        let connection = std::env::var(STORAGE_CONNECTION)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "`{STORAGE_CONNECTION}` is not set: it holds the Storage account's connection string (`UseDevelopmentStorage=true` for Azurite)"
                ))
            })?;
        Self::from_connection_string(&connection)
            .map_err(|e| Error::invalid(format!("`{STORAGE_CONNECTION}`: {}", e.message())))
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Queue service's base URL.
    pub fn queue_endpoint(&self) -> &Url {
        &self.queue
    }

    /// The Blob service's base URL.
    pub fn blob_endpoint(&self) -> &Url {
        &self.blob
    }

    /// The Table service's base URL.
    pub fn table_endpoint(&self) -> &Url {
        &self.table
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azurite_on_its_own_ports() {
        let account = StorageAccount::from_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;",
            DEVELOPMENT_ACCOUNT.0, DEVELOPMENT_ACCOUNT.1
        ))
        .unwrap();
        assert_eq!(
            account.queue_endpoint().as_str(),
            "http://127.0.0.1:41001/devstoreaccount1"
        );
        assert_eq!(
            account.table_endpoint().as_str(),
            "http://devstoreaccount1.table.core.windows.net/"
        );
    }

    #[test]
    fn mistakes_are_named_without_the_key() {
        let err = StorageAccount::from_connection_string("AccountName=shop").unwrap_err();
        assert!(err.message().contains("`AccountKey`"), "{err}");
        let err = StorageAccount::from_connection_string(
            "AccountName=shop;AccountKey=c2VjcmV0;QueueEndpoint=not a url",
        )
        .unwrap_err();
        assert!(err.message().contains("QueueEndpoint"), "{err}");
        assert!(!err.message().contains("c2VjcmV0"), "{err}");
        let err = StorageAccount::from_connection_string("just-a-key").unwrap_err();
        assert!(err.message().contains("`Name=value`"), "{err}");
    }
}
