//! What cloudfn's REST clients of Google APIs share: credentials on each
//! request, and Google's JSON errors read as cloudfn errors.

use cloudfn_core::Error;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use serde_json::Value;

/// The process's Application Default Credentials, for `api`.
pub(crate) fn default_credentials(api: &str) -> Result<Credentials, Error> {
    google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| Error::unavailable(format!("no Google credentials for {api}: {e}")).private())
}

/// Sends `request`, with `credentials`' headers if there are any (an
/// emulator takes none), for `what` on `api`: the answer's status and JSON
/// body (`null` if it has none).
pub(crate) async fn send(
    credentials: Option<&Credentials>,
    request: reqwest::RequestBuilder,
    api: &str,
    what: &str,
) -> Result<(u16, Value), Error> {
    let request = match credentials {
        Some(credentials) => {
            let headers = match credentials.headers(http::Extensions::new()).await {
                Ok(CacheableResource::New { data, .. }) => data,
                Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
                Err(e) => {
                    return Err(
                        Error::unavailable(format!("{what}: no Google credentials: {e}")).private(),
                    );
                }
            };
            request.headers(headers)
        }
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| Error::unavailable(format!("{what}: {api} did not answer: {e}")).private())?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Google's error answer (`{"error": {"status", "message"}}`) to `what`
/// on `api`, as the error of its kind.
pub(crate) fn answer_error(status: u16, body: &Value, api: &str, what: &str) -> Error {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let code = body["error"]["status"].as_str().unwrap_or_default();
    Error::from_service_status(
        status,
        format!("{what}: {api} answered {status} {code}: {message}"),
    )
}
