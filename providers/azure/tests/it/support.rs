//! What the integration tests share: Azurite's account, and fresh names.

use cloudfn_azure::client::{DEVELOPMENT_ACCOUNT, StorageAccount};

/// Azurite's account, when the test command started it. Without its
/// endpoints the test skips loudly, unless `TEST_INTEGRATION=1` says it
/// must run.
pub fn azurite() -> Option<StorageAccount> {
    let (Ok(queue), Ok(table)) = (
        std::env::var("CLOUDFN_TEST_AZURITE_QUEUE_URL"),
        std::env::var("CLOUDFN_TEST_AZURITE_TABLE_URL"),
    ) else {
        assert_ne!(
            std::env::var("TEST_INTEGRATION").as_deref(),
            Ok("1"),
            "TEST_INTEGRATION=1 but CLOUDFN_TEST_AZURITE_*_URL are unset: run scripts/test"
        );
        eprintln!("SKIPPED: Azurite is not running (scripts/test starts it)");
        return None;
    };
    let (name, key) = DEVELOPMENT_ACCOUNT;
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={name};AccountKey={key};QueueEndpoint={queue};TableEndpoint={table}"
    );
    Some(StorageAccount::from_connection_string(&connection).unwrap())
}

/// A name no other test (or run) uses: `prefix` and 12 random hex digits,
/// a legal queue and table name.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
