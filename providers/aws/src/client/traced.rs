//! The SDK's HTTP client, sending the invocation's X-Ray trace as
//! `X-Amzn-Trace-Id` on every call (see `crate::trace` for why not through
//! `_X_AMZN_TRACE_ID`).

use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    },
    orchestrator::HttpRequest,
    runtime_components::{RuntimeComponents, RuntimeComponentsBuilder},
};
use aws_smithy_types::config_bag::ConfigBag;

const TRACE_HEADER: &str = "x-amzn-trace-id";

/// An HTTP client that adds the trace to each request of its inner client.
#[derive(Debug)]
pub(super) struct Traced(SharedHttpClient);

impl Traced {
    pub(super) fn around(inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(Self(inner))
    }
}

impl HttpClient for Traced {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TracedConnector(self.0.http_connector(settings, components)))
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct TracedConnector(SharedHttpConnector);

impl HttpConnector for TracedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        if let Some(trace_id) = crate::trace::current() {
            // Replaces what the recursion-detection interceptor may have
            // copied from a stale `_X_AMZN_TRACE_ID`; a value that is no
            // valid header is left out rather than failing the call.
            let _ = request.headers_mut().try_insert(TRACE_HEADER, trace_id);
        }
        self.0.call(request)
    }
}
