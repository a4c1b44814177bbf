//! cloudfn: portable serverless functions for Rust.
//!
//! Write each handler once against one neutral model of events and triggers;
//! [`run`] serves the same binary on the embedded local runtime, and (with
//! the `aws`, `azure` or `gcp` feature) on that cloud's functions platform.
//!
//! ```no_run
//! use cloudfn::{App, Context, Error, Function, HttpRequest, HttpResponse, Method};
//!
//! async fn hello(req: HttpRequest, _ctx: Context) -> Result<HttpResponse, Error> {
//!     let name = req.query_param("name").unwrap_or_else(|| "world".into());
//!     Ok(HttpResponse::text(200, format!("hello, {name}\n")))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     cloudfn::run(App::new("hello").function(Function::http("hello", Method::Get, "/hello", hello))).await
//! }
//! ```

#![forbid(unsafe_code)]

/// The AWS adapter (feature `aws`).
#[cfg(feature = "aws")]
pub use cloudfn_aws as aws;
/// The Azure adapter (feature `azure`).
#[cfg(feature = "azure")]
pub use cloudfn_azure as azure;
pub use cloudfn_core::*;
/// The Google Cloud adapter (feature `gcp`).
#[cfg(feature = "gcp")]
pub use cloudfn_gcp as gcp;
/// The embedded local runtime (feature `local`, on by default).
#[cfg(feature = "local")]
pub use cloudfn_local as local;

/// Set to a file path to make [`run`] write the app's [`AppSpec`] there as
/// JSON and return instead of serving (`-` writes it to standard output):
/// how `cargo cloudfn package` learns what to deploy from the binary itself.
///
/// ```sh
/// CLOUDFN_PRINT_SPEC=- cargo run --example shop | jq '.functions[].name'
/// ```
pub const PRINT_SPEC_VARIABLE: &str = "CLOUDFN_PRINT_SPEC";

/// Where the process is running, as told by the environment each platform sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// No cloud: the embedded local runtime.
    Local,
    /// AWS Lambda (`AWS_LAMBDA_RUNTIME_API`).
    Aws,
    /// Azure Functions custom handler (`FUNCTIONS_CUSTOMHANDLER_PORT`).
    Azure,
    /// Google Cloud Functions / Cloud Run functions (`K_SERVICE` or `FUNCTION_TARGET`).
    Gcp,
}

impl Provider {
    /// Reads the environment.
    pub fn detect() -> Self {
        Self::from_env(|name| std::env::var_os(name).is_some())
    }

    fn from_env(is_set: impl Fn(&str) -> bool) -> Self {
        if is_set("AWS_LAMBDA_RUNTIME_API") {
            Self::Aws
        } else if is_set("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Self::Azure
        } else if is_set("K_SERVICE") || is_set("FUNCTION_TARGET") {
            Self::Gcp
        } else {
            Self::Local
        }
    }

    /// The lower-case name, as in [`Context::provider`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Aws => "aws",
            Self::Azure => "azure",
            Self::Gcp => "gcp",
        }
    }
}

/// Serves `app` on the provider the environment names, until the platform
/// or a signal stops it.
///
/// With no cloud environment this is the local runtime on `127.0.0.1:$PORT`
/// (3000 by default).
pub async fn run(app: App) -> Result<(), Error> {
    #[cfg(feature = "azure")]
    azure::client::install_tls();
    #[cfg(feature = "gcp")]
    gcp::client::install_tls();
    if let Some(path) = std::env::var_os(PRINT_SPEC_VARIABLE) {
        return print_spec(&app, &path);
    }
    init_tracing();
    match Provider::detect() {
        #[cfg(feature = "local")]
        Provider::Local => local::serve(app).await.map(|_| ()),
        #[cfg(feature = "aws")]
        Provider::Aws => aws::serve(app).await,
        #[cfg(feature = "azure")]
        Provider::Azure => azure::serve(app).await,
        #[cfg(feature = "gcp")]
        Provider::Gcp => gcp::serve(app).await,
        // Reached in builds without some adapter.
        #[allow(unreachable_patterns)]
        cloud => Err(Error::unavailable(format!(
            "this process runs on {} but this build has no adapter for it: \
             build with cloudfn's `{}` feature",
            cloud.name(),
            cloud.name()
        ))),
    }
}

/// Installs a `tracing` subscriber writing to stderr, unless one is
/// installed. `RUST_LOG` filters it with `target=level` directives
/// (`warn,cloudfn_aws=debug`); the default is `info`. With the `azure`
/// feature, an invocation's events also go back to the Functions host in
/// its `Logs`; with the `gcp` feature on Cloud Run, events are JSON lines on
/// stdout as Cloud Logging reads them, with their trace in
/// `GOOGLE_CLOUD_PROJECT`.
pub fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    #[cfg(feature = "gcp")]
    if Provider::detect() == Provider::Gcp {
        use tracing_subscriber::layer::SubscriberExt;
        let project = std::env::var("GOOGLE_CLOUD_PROJECT").ok();
        let subscriber = tracing_subscriber::registry()
            .with(gcp::logs::layer(project))
            .with(filter);
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        return;
    }
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish();
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(subscriber, filter);
    #[cfg(feature = "azure")]
    let subscriber =
        tracing_subscriber::layer::SubscriberExt::with(subscriber, azure::logs::layer());
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
}

/// Writes `app`'s spec to `path`, or to standard output for `-`.
fn print_spec(app: &App, path: &std::ffi::OsStr) -> Result<(), Error> {
    app.validate()?;
    let mut spec = serde_json::to_vec_pretty(&app.spec())
        .map_err(|e| Error::internal(format!("spec is not JSON: {e}")))?;
    spec.push(b'\n');
    let written = if path == "-" {
        std::io::Write::write_all(&mut std::io::stdout().lock(), &spec)
    } else if path.is_empty() {
        return Err(Error::invalid(format!(
            "{PRINT_SPEC_VARIABLE} is empty: set it to a file path, or `-` for standard output"
        )));
    } else {
        std::fs::write(path, spec)
    };
    written.map_err(|e| {
        Error::unavailable(format!(
            "cannot write the spec to {}: {e}",
            path.to_string_lossy()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_follows_platform_variables() {
        let only = |vars: &'static [&'static str]| Provider::from_env(move |n| vars.contains(&n));
        assert_eq!(only(&[]), Provider::Local);
        assert_eq!(only(&["AWS_LAMBDA_RUNTIME_API"]), Provider::Aws);
        assert_eq!(only(&["FUNCTIONS_CUSTOMHANDLER_PORT"]), Provider::Azure);
        assert_eq!(only(&["K_SERVICE"]), Provider::Gcp);
        assert_eq!(only(&["FUNCTION_TARGET"]), Provider::Gcp);
    }
}

/// Keeps the README's code compiling.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
