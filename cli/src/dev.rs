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

/// Runs the app under the simulated Functions host until Ctrl-C: its
/// queues and tables in the Storage account of `storage` (Azurite), its
/// topics through the simulator's Service Bus stand-in.
pub async fn azure(
    spec: AppSpec,
    binary: PathBuf,
    storage: String,
    port: u16,
) -> Result<(), Error> {
    let mut options = cloudfn_azure::emulate::DevOptions::new(spec, binary, storage);
    options.http_port = port;
    let host = cloudfn_azure::emulate::HostSimulator::start(options).await?;
    println!("HTTP functions on {}; Ctrl-C stops them", host.http_url());
    let _ = tokio::signal::ctrl_c().await;
    host.stop().await;
    Ok(())
}

/// Runs the app as Cloud Run functions would until Ctrl-C: one process
/// per function, fed from the Pub/Sub emulator at `pubsub`, its stores on
/// the Firestore emulator at `firestore`.
pub async fn gcp(
    spec: AppSpec,
    binary: PathBuf,
    pubsub: String,
    firestore: Option<String>,
    port: u16,
) -> Result<(), Error> {
    let mut options = cloudfn_gcp::emulate::DevOptions::new(spec, binary, pubsub);
    options.firestore = firestore;
    options.http_port = port;
    let project = cloudfn_gcp::emulate::DevProject::start(options).await?;
    println!(
        "HTTP functions on {}; Ctrl-C stops them",
        project.http_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    project.stop().await;
    Ok(())
}
