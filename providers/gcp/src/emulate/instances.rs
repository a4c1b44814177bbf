//! One process of the app's binary per function, as Cloud Run runs one
//! service per function: `FUNCTION_TARGET` names it, `PORT` its port.

use std::{path::Path, time::Duration};

use cloudfn_core::Error;

/// How long a process may take to answer its first request; Cloud Run's
/// default start-up probe gives about as long.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One function's process.
pub(crate) struct Instance {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    child: tokio::process::Child,
}

impl Instance {
    /// Starts `binary` serving `function` with `env`, and waits until it
    /// answers.
    pub(crate) async fn start(
        binary: &Path,
        function: &str,
        service: &str,
        env: &[(String, String)],
        http: &reqwest::Client,
    ) -> Result<Self, Error> {
        let port = cloudfn_server::dev::free_port().await?;
        let child = tokio::process::Command::new(binary)
            .env(crate::PORT_VARIABLE, port.to_string())
            .env(crate::TARGET_VARIABLE, function)
            .env("K_SERVICE", service)
            .env("K_REVISION", format!("{service}-00001"))
            .env("K_CONFIGURATION", service)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::unavailable(format!("cannot start {}: {e}", binary.display())))?;
        let url = format!("http://127.0.0.1:{port}");
        // Any answer will do: an event function answers GET with 405.
        cloudfn_server::dev::wait_answering(
            http,
            &url,
            &format!("function `{function}`"),
            START_TIMEOUT,
        )
        .await?;
        Ok(Self { url, child })
    }

    /// Kills the process (its graceful stop on SIGTERM is tested apart, on
    /// the `hello` binary).
    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
