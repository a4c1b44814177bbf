//! The Storage account a Functions app's connection names, and how its
//! requests are authorized: the account key, or the app's managed identity.

use std::{collections::HashMap, sync::Arc};

use azure_core::{credentials::TokenCredential, http::Url};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use cloudfn_core::Error;

use crate::names::{CLIENT_STORAGE_CONNECTION, STORAGE_CONNECTION};

/// Azurite's and the old emulator's account: its name and well-known key
/// (public, documented by Microsoft for local development).
pub const DEVELOPMENT_ACCOUNT: (&str, &str) = (
    "devstoreaccount1",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
);

/// A Storage account: its name, how requests to it are authorized, and
/// where each service answers.
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
    credential: Credential,
    queue: Url,
    blob: Url,
    table: Url,
}

/// What authorizes requests to an account.
#[derive(Clone)]
pub(crate) enum Credential {
    /// SharedKey signatures with the account key.
    Key(String),
    /// Bearer tokens for Storage (`https://storage.azure.com/.default`).
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for StorageAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credential = match self.credential {
            Credential::Key(_) => "key <redacted>",
            Credential::Token(_) => "token",
        };
        f.debug_struct("StorageAccount")
            .field("name", &self.name)
            .field("credential", &credential)
            .field("queue", &self.queue.as_str())
            .field("blob", &self.blob.as_str())
            .field("table", &self.table.as_str())
            .finish()
    }
}

/// The managed identity of the app: system-assigned, or the user-assigned
/// one whose client id is given. It reads the App Service identity endpoint
/// (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) that Functions sets, else the
/// VM's (IMDS).
pub(crate) fn managed_identity(client_id: Option<&str>) -> Result<Arc<dyn TokenCredential>, Error> {
    super::install_tls();
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
        ..Default::default()
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|e| Error::invalid(format!("no managed identity: {e}")))?;
    Ok(credential)
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
            credential: Credential::Key(key),
        })
    }

    /// Account `name` reached with `credential`'s tokens, at its public
    /// endpoints (`https://<name>.<service>.core.windows.net/`); change them
    /// with [`with_endpoints`](Self::with_endpoints).
    ///
    /// ```
    /// # fn main() -> Result<(), cloudfn_core::Error> {
    /// use cloudfn_azure::client::{StorageAccount, install_tls};
    ///
    /// install_tls(); // before the credential builds its HTTP client
    /// let credential = azure_identity::ManagedIdentityCredential::new(None).unwrap();
    ///
    /// let shop = StorageAccount::with_token("shop", credential)?;
    /// assert_eq!(shop.table_endpoint().as_str(), "https://shop.table.core.windows.net/");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_token(name: &str, credential: Arc<dyn TokenCredential>) -> Result<Self, Error> {
        let endpoint = |service: &str| {
            Url::parse(&format!("https://{name}.{service}.core.windows.net/"))
                .map_err(|e| Error::invalid(format!("Storage account `{name}` makes no URL: {e}")))
        };
        Ok(Self {
            queue: endpoint("queue")?,
            blob: endpoint("blob")?,
            table: endpoint("table")?,
            name: name.to_owned(),
            credential: Credential::Token(credential),
        })
    }

    /// The same account, its Queue, Blob or Table service at the URLs
    /// given instead.
    pub fn with_endpoints(
        mut self,
        queue: Option<Url>,
        blob: Option<Url>,
        table: Option<Url>,
    ) -> Self {
        self.queue = queue.unwrap_or(self.queue);
        self.blob = blob.unwrap_or(self.blob);
        self.table = table.unwrap_or(self.table);
        self
    }

    /// The account cloudfn's clients use: connection [`CLIENT_STORAGE_CONNECTION`]
    /// (`CLOUDFN_STORAGE`) when set, else the host's own,
    /// [`STORAGE_CONNECTION`] (`AzureWebJobsStorage`), which every function
    /// app has. Each is read as the Functions host reads a connection (see
    /// [`from_connection`](Self::from_connection)). Errors name the
    /// setting, never a key.
    pub fn from_env() -> Result<Self, Error> {
        let settings: HashMap<String, String> = std::env::vars().collect();
        match Self::from_connection(CLIENT_STORAGE_CONNECTION, &settings) {
            Ok(Some(account)) => Ok(account),
            Ok(None) => Self::from_connection(STORAGE_CONNECTION, &settings)?.ok_or_else(|| {
                Error::invalid(format!(
                    "neither `{CLIENT_STORAGE_CONNECTION}` nor `{STORAGE_CONNECTION}` is set: set one to the Storage account's connection string (`UseDevelopmentStorage=true` for Azurite), or `{CLIENT_STORAGE_CONNECTION}__accountName` to reach it with the app's managed identity"
                ))
            }),
            Err(error) => Err(error),
        }
    }

    /// The account of connection `name` among app `settings`, as the
    /// Functions host reads one: a connection string in `name`, or, for
    /// the app's managed identity, `name__accountName` (or the services'
    /// own URLs, `name__queueServiceUri`, `name__tableServiceUri`,
    /// `name__blobServiceUri`) and, for a user-assigned identity,
    /// `name__clientId`. `None` when none is set.
    pub fn from_connection(
        name: &str,
        settings: &HashMap<String, String>,
    ) -> Result<Option<Self>, Error> {
        let get = |suffix: &str| {
            settings
                .get(&format!("{name}{suffix}"))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        if let Some(connection) = get("") {
            return Self::from_connection_string(connection)
                .map(Some)
                .map_err(|e| Error::invalid(format!("`{name}`: {}", e.message())));
        }
        let service = |service: &str| -> Result<Option<Url>, Error> {
            let setting = format!("__{service}ServiceUri");
            get(&setting)
                .map(|uri| {
                    Url::parse(uri)
                        .map_err(|e| Error::invalid(format!("`{name}{setting}` is not a URL: {e}")))
                })
                .transpose()
        };
        let (queue, blob, table) = (service("queue")?, service("blob")?, service("table")?);
        // Without a name, the account is the first label of a service's
        // host, or (path-style, as Azurite's) its first path segment.
        let named = get("__accountName").map(str::to_owned).or_else(|| {
            let url = queue.as_ref().or(table.as_ref()).or(blob.as_ref())?;
            match url.host() {
                Some(url::Host::Domain(host)) => host.split('.').next().map(str::to_owned),
                _ => url.path_segments()?.next().map(str::to_owned),
            }
        });
        let Some(account) = named else {
            return Ok(None);
        };
        let credential = managed_identity(get("__clientId"))?;
        Ok(Some(
            Self::with_token(&account, credential)?.with_endpoints(queue, blob, table),
        ))
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

    pub(crate) fn credential(&self) -> &Credential {
        &self.credential
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

    #[test]
    fn connections_for_the_managed_identity_are_read_as_the_host_reads_them() {
        let settings = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let named = StorageAccount::from_connection(
            "CLOUDFN_STORAGE",
            &settings(&[("CLOUDFN_STORAGE__accountName", "shop")]),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(named.credential(), Credential::Token(_)));
        assert_eq!(
            named.queue_endpoint().as_str(),
            "https://shop.queue.core.windows.net/"
        );
        assert_eq!(
            named.table_endpoint().as_str(),
            "https://shop.table.core.windows.net/"
        );

        let by_url = StorageAccount::from_connection(
            "CLOUDFN_STORAGE",
            &settings(&[(
                "CLOUDFN_STORAGE__queueServiceUri",
                "https://127.0.0.1:4430/devstoreaccount1",
            )]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(by_url.name(), "devstoreaccount1");
        assert_eq!(
            by_url.queue_endpoint().as_str(),
            "https://127.0.0.1:4430/devstoreaccount1"
        );

        let none = StorageAccount::from_connection("CLOUDFN_STORAGE", &settings(&[])).unwrap();
        assert!(none.is_none());

        let error = StorageAccount::from_connection(
            "CLOUDFN_STORAGE",
            &settings(&[("CLOUDFN_STORAGE__tableServiceUri", "tables")]),
        )
        .unwrap_err();
        assert!(
            error
                .message()
                .contains("`CLOUDFN_STORAGE__tableServiceUri`"),
            "{error}"
        );
    }
}
