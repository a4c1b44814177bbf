//! The one azure_core pipeline the Storage clients send through, and how
//! Storage's answers become cloudfn errors.

use std::sync::Arc;

use azure_core::http::{
    ClientOptions, Context, Pipeline, PipelineSendOptions, Request, StatusCode, Url,
    headers::{self, Headers},
    policies::Policy,
};
use bytes::Bytes;
use cloudfn_core::Error;

use super::{Service, StorageAccount, auth::authorization};

/// The pipeline to `service` of `account`, each try authorized afresh
/// ([`authorization`](super::authorization)).
///
/// The retry policy is `ClientOptions`' default, which is what Storage
/// needs: exponential backoff from 200 ms (at most 30 s apart, 8 retries,
/// a minute in all) on 408, 429, 500, 502, 503 and 504 and on connection
/// failures, waiting as long as a 429 or 503 asks (`Retry-After`,
/// `x-ms-retry-after-ms`). What still fails after that reaches the caller
/// as a retryable [`cloudfn_core::ErrorKind::Unavailable`].
pub fn pipeline(account: &StorageAccount, service: Service) -> Pipeline {
    build(authorization(account, service))
}

/// A pipeline with `per_try` policies (a signer), over HTTPS with rustls.
pub(crate) fn build(per_try: Vec<Arc<dyn Policy>>) -> Pipeline {
    install_tls();
    Pipeline::new(
        Some(env!("CARGO_PKG_NAME")),
        Some(env!("CARGO_PKG_VERSION")),
        ClientOptions::default(),
        Vec::new(),
        per_try,
        None,
    )
}

/// Makes ring the process's TLS crypto provider, once (shared with the
/// other adapters): azure_core's reqwest has rustls and no provider of its
/// own. Call it before building a reqwest client of your own outside
/// `cloudfn::run`.
pub use cloudfn_server::install_tls;

/// `base` with `segments` appended, each percent-encoded as one path
/// segment.
pub(crate) fn url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .expect("Storage endpoints are http(s) URLs");
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Storage's answer to one request, its body read.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: Headers,
    pub body: Bytes,
}

/// Sends `request` through `pipeline` (Storage's or Service Bus'). Only a
/// request that never got an answer (after the retries) is an error here;
/// what the service answered,
/// whatever its status, is the caller's to read. `what` names the
/// operation in the error.
pub(crate) async fn send(
    pipeline: &Pipeline,
    mut request: Request,
    what: &str,
) -> Result<Answer, Error> {
    let options = PipelineSendOptions {
        skip_checks: true,
        ..Default::default()
    };
    let response = pipeline
        .send(&Context::new(), &mut request, Some(options))
        .await
        .map_err(|e| Error::unavailable(format!("{what}: Azure did not answer: {e}")).private())?;
    let (status, headers, body) = response.deconstruct();
    Ok(Answer {
        status,
        headers,
        body: body.into(),
    })
}

impl Answer {
    /// Storage's error code: the `x-ms-error-code` header, else the body's
    /// (`<Code>` in XML, `odata.error.code` in JSON).
    pub fn code(&self) -> Option<String> {
        self.headers
            .get_optional_string(&headers::ERROR_CODE)
            .or_else(|| self.details().0)
    }

    /// The code and the first line of the message in an error body.
    fn details(&self) -> (Option<String>, Option<String>) {
        let first_line = |m: String| m.lines().next().unwrap_or_default().trim().to_owned();
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim_start_matches('\u{feff}').trim_start();
        if text.starts_with('{') {
            let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let error = &json["odata.error"];
            let message = error["message"]["value"]
                .as_str()
                .or_else(|| error["message"].as_str());
            (
                error["code"].as_str().map(str::to_owned),
                message.map(|m| first_line(m.to_owned())),
            )
        } else if text.starts_with('<') {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Body {
                code: Option<String>,
                message: Option<String>,
            }
            match azure_core::xml::from_xml::<_, Body>(text.as_bytes()) {
                Ok(body) => (body.code, body.message.map(first_line)),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        }
    }

    /// Whether Storage answered `status` with error code `code`.
    pub fn is(&self, status: StatusCode, code: &str) -> bool {
        self.status == status && self.code().as_deref() == Some(code)
    }

    /// The error of an unexpected answer to `what`: its kind from the
    /// status, its message Storage's code and message (never a header or
    /// the signature). Private: it names accounts and resources, and is
    /// never the HTTP caller's doing.
    pub fn error(&self, what: &str) -> Error {
        let status = u16::from(self.status);
        let (body_code, message) = self.details();
        let code = self
            .headers
            .get_optional_string(&headers::ERROR_CODE)
            .or(body_code)
            .unwrap_or_default();
        let text = format!(
            "{what}: Azure Storage answered {status} {code}{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        );
        Error::from_service_status(status, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudfn_core::ErrorKind;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from(status),
            headers: Headers::new(),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn xml_and_json_errors_are_read_by_code_and_first_line() {
        let xml = answer(
            404,
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>QueueNotFound</Code><Message>The specified queue does not exist.\nRequestId:1\nTime:2026</Message></Error>",
        );
        assert!(xml.is(StatusCode::NotFound, "QueueNotFound"));
        let error = xml.error("sending to queue `orders`");
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(
            error.message(),
            "sending to queue `orders`: Azure Storage answered 404 QueueNotFound: The specified queue does not exist."
        );
        assert!(!error.is_for_caller());

        let json = answer(
            409,
            r#"{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US","value":"The specified entity already exists.\nRequestId:2"}}}"#,
        );
        assert!(json.is(StatusCode::Conflict, "EntityAlreadyExists"));
        assert_eq!(json.error("x").kind(), ErrorKind::Conflict);
    }

    #[test]
    fn statuses_map_to_kinds_that_decide_retries() {
        for (status, kind) in [
            (400, ErrorKind::BadInput),
            (403, ErrorKind::Forbidden),
            (413, ErrorKind::TooLarge),
            (429, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
        ] {
            assert_eq!(answer(status, "").error("x").kind(), kind, "{status}");
        }
        assert!(answer(503, "").error("x").is_retryable());
        assert!(!answer(403, "").error("x").is_retryable());
    }

    #[test]
    fn segments_are_encoded_under_the_endpoint() {
        let base = Url::parse("http://127.0.0.1:10001/devstoreaccount1").unwrap();
        assert_eq!(
            url(&base, &["orders", "messages"]).as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/orders/messages"
        );
        let base = Url::parse("https://shop.queue.core.windows.net/").unwrap();
        assert_eq!(
            url(&base, &["a b"]).as_str(),
            "https://shop.queue.core.windows.net/a%20b"
        );
    }
}
