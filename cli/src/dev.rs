//! `cargo cloudfn dev`: the app behind a cloud's protocol, on this machine.

use std::path::PathBuf;

use cloudfn_aws::emulate::{DevOptions, DevStack};
use cloudfn_core::{AppSpec, Error};

/// Runs the AWS emulation until Ctrl-C.
pub async fn aws(
    spec: AppSpec,
    binary: PathBuf,
    endpoint_url: String,
    port: u16,
) -> Result<(), Error> {
    let stack = DevStack::start(DevOptions {
        http_port: port,
        ..DevOptions::new(spec, binary, endpoint_url)
    })
    .await?;
    println!("HTTP API on {}; Ctrl-C stops it", stack.http_url());
    let _ = tokio::signal::ctrl_c().await;
    stack.stop().await;
    Ok(())
}
