//! `cargo cloudfn`: package a cloudfn app for a cloud, or run it locally the
//! way that cloud would.
//!
//! ```sh
//! cargo cloudfn package --cloud aws --example shop     # target/cloudfn/aws/{template.yaml,bootstrap.zip}
//! cargo cloudfn dev --cloud aws --example shop --endpoint-url http://127.0.0.1:4566
//! cargo cloudfn spec --example shop                    # the app's AppSpec as JSON
//! ```

#![forbid(unsafe_code)]

mod build;
mod dev;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use cloudfn_core::Error;

#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    /// cloudfn's tools.
    Cloudfn(Cli),
}

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the app in release mode and write the cloud's deployment files.
    Package {
        /// The cloud to package for.
        #[arg(long, value_enum)]
        cloud: Cloud,
        #[command(flatten)]
        target: build::Target,
        /// Where to write the files (default: `target/cloudfn/<cloud>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `x86_64` or `arm64` (the binary must be built for it).
        #[arg(long, default_value = "x86_64")]
        arch: String,
    },
    /// Run the app locally the way the cloud would: the real binary behind
    /// the cloud's invocation protocol, fed from real queues.
    Dev {
        /// The cloud to emulate.
        #[arg(long, value_enum)]
        cloud: Cloud,
        #[command(flatten)]
        target: build::Target,
        /// The AWS endpoint for SQS and SNS (LocalStack).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint_url: String,
        /// The port of the emulated HTTP API.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Print the app's AppSpec as JSON.
    Spec {
        #[command(flatten)]
        target: build::Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Cloud {
    Aws,
}

#[tokio::main]
async fn main() {
    let Cargo::Cloudfn(cli) = Cargo::parse();
    if let Err(e) = run(cli.command).await {
        eprintln!("error: {}", e.message());
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Package {
            cloud: Cloud::Aws,
            target,
            out,
            arch,
        } => {
            let (binary, spec) = aws_bootstrap(&target)?;
            let out = out.unwrap_or_else(|| build::target_dir().join("cloudfn/aws"));
            let options = cloudfn_aws::deploy::SamOptions {
                architecture: arch,
                ..Default::default()
            };
            let package = cloudfn_aws::deploy::package(&spec, &binary, &out, &options)?;
            println!(
                "wrote {} and {}",
                package.template.display(),
                package.zip.display()
            );
            println!(
                "deploy with: sam deploy --guided --template-file {}",
                package.template.display()
            );
            Ok(())
        }
        Command::Dev {
            cloud: Cloud::Aws,
            target,
            endpoint_url,
            port,
        } => {
            let (binary, spec) = aws_bootstrap(&target)?;
            dev::aws(spec, binary, endpoint_url, port).await
        }
        Command::Spec { target } => {
            let spec = build::spec(&build::build(&build::Build {
                features: Vec::new(),
                for_cloud: false,
                target: &target,
            })?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&spec).map_err(|e| Error::internal(e.to_string()))?
            );
            Ok(())
        }
    }
}

/// The app's spec (from a build for this machine), then its Lambda
/// bootstrap, built with exactly the SDK clients its functions declare.
fn aws_bootstrap(target: &build::Target) -> Result<(PathBuf, cloudfn_core::AppSpec), Error> {
    let spec = match &target.binary {
        Some(binary) => build::spec(binary)?,
        None => build::spec(&build::build(&build::Build {
            features: Vec::new(),
            for_cloud: false,
            target,
        })?)?,
    };
    spec.validate_for(&cloudfn_aws::CAPABILITIES)?;
    let mut features = std::collections::BTreeSet::from(["cloudfn/aws".to_owned()]);
    for function in &spec.functions {
        for feature in cloudfn_aws::needed_features(function) {
            features.insert(format!("cloudfn/aws-{feature}"));
        }
    }
    let binary = build::build(&build::Build {
        features: features.into_iter().collect(),
        for_cloud: true,
        target,
    })?;
    Ok((binary, spec))
}
