//! `cargo cloudfn`: package a cloudfn app for a cloud, or run it locally the
//! way that cloud would.
//!
//! ```sh
//! cargo cloudfn package --cloud aws --example shop     # target/cloudfn/aws/{template.yaml,bootstrap.zip}
//! cargo cloudfn package --cloud azure --example shop   # target/cloudfn/azure/{app/,app.zip,azuredeploy.json}
//! cargo cloudfn package --cloud gcp --example shop     # target/cloudfn/gcp/{Dockerfile,handler,services/,deploy.sh}
//! cargo cloudfn dev --cloud aws --example shop --endpoint-url http://127.0.0.1:4566
//! cargo cloudfn dev --cloud azure --example shop         # Azurite on its default ports
//! cargo cloudfn dev --cloud gcp --example shop           # PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST
//! cargo cloudfn spec --example shop                    # the app's AppSpec as JSON
//! cargo cloudfn executions order <id>                  # a workflow execution on the local runtime, step by step
//! ```

#![forbid(unsafe_code)]

mod build;
mod dev;
mod executions;

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
        /// `x86_64` or `arm64` (the binary must be built for it); Azure's
        /// Linux Consumption plan and Cloud Run run `x86_64` only.
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
        /// AWS: the endpoint for SQS and SNS (LocalStack).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint_url: Option<String>,
        /// Azure: the Storage account's connection string (Azurite's by default).
        #[arg(
            long,
            env = "AzureWebJobsStorage",
            default_value = "UseDevelopmentStorage=true"
        )]
        storage: String,
        /// GCP: the Pub/Sub emulator's `HOST:PORT`.
        #[arg(long, env = "PUBSUB_EMULATOR_HOST")]
        pubsub_emulator_host: Option<String>,
        /// GCP: the Firestore emulator's `HOST:PORT`, for apps with stores.
        #[arg(long, env = "FIRESTORE_EMULATOR_HOST")]
        firestore_emulator_host: Option<String>,
        /// The port of the emulated HTTP API.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Show the workflow executions of an app on the local runtime:
    /// every workflow's, one workflow's, or one execution step by step.
    Executions {
        /// The workflow.
        workflow: Option<String>,
        /// The execution's id.
        id: Option<String>,
        /// Where the app runs.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        /// Print the runtime's JSON as it is.
        #[arg(long)]
        json: bool,
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
    Azure,
    Gcp,
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
        Command::Package {
            cloud: Cloud::Azure,
            target,
            out,
            arch,
        } => {
            if arch != "x86_64" {
                return Err(Error::invalid(format!(
                    "Azure's Linux Consumption plan runs x86_64 only, not `{arch}`"
                )));
            }
            let (binary, spec) = azure_handler(&target)?;
            let out = out.unwrap_or_else(|| build::target_dir().join("cloudfn/azure"));
            let app = cloudfn_azure::deploy::package(&spec, &binary, &out)?;
            println!(
                "wrote {} (the function app), {} and {}",
                app.dir.display(),
                app.zip.display(),
                app.template.display()
            );
            print!("{}", azure_next_steps(&spec, &app));
            Ok(())
        }
        Command::Package {
            cloud: Cloud::Gcp,
            target,
            out,
            arch,
        } => {
            if arch != "x86_64" {
                return Err(Error::invalid(format!(
                    "Cloud Run runs x86_64 containers only, not `{arch}`"
                )));
            }
            let (binary, spec) = gcp_handler(&target)?;
            let out = out.unwrap_or_else(|| build::target_dir().join("cloudfn/gcp"));
            let project = cloudfn_gcp::deploy::package(&spec, &binary, &out)?;
            let workflows = match project.workflows.len() {
                0 => String::new(),
                n => format!(", workflows/ ({n} Workflows definitions)"),
            };
            println!(
                "wrote {}: Dockerfile, handler, services/ ({} Cloud Run services){workflows} and deploy.sh",
                project.dir.display(),
                project.services.len()
            );
            println!(
                "deploy with gcloud signed in to the project (PROJECT its id, REGION a Cloud Run region such as us-central1):\n  \
                 PROJECT=<project> REGION=<region> {}",
                project.script.display()
            );
            Ok(())
        }
        Command::Dev {
            cloud: Cloud::Gcp,
            target,
            pubsub_emulator_host,
            firestore_emulator_host,
            port,
            ..
        } => {
            let pubsub = pubsub_emulator_host.ok_or_else(|| {
                Error::invalid(
                    "`--pubsub-emulator-host` (or PUBSUB_EMULATOR_HOST) names the Pub/Sub emulator \
                     for `--cloud gcp` (`gcloud beta emulators pubsub start` prints it)",
                )
            })?;
            let (binary, spec) = gcp_handler(&target)?;
            dev::gcp(spec, binary, pubsub, firestore_emulator_host, port).await
        }
        Command::Dev {
            cloud: Cloud::Azure,
            target,
            storage,
            port,
            ..
        } => {
            let (binary, spec) = azure_handler(&target)?;
            dev::azure(spec, binary, storage, port).await
        }
        Command::Dev {
            cloud: Cloud::Aws,
            target,
            endpoint_url,
            port,
            ..
        } => {
            let endpoint_url = endpoint_url.ok_or_else(|| {
                Error::invalid(
                    "`--endpoint-url` (or AWS_ENDPOINT_URL) names LocalStack for `--cloud aws`",
                )
            })?;
            let (binary, spec) = aws_bootstrap(&target)?;
            dev::aws(spec, binary, endpoint_url, port).await
        }
        Command::Executions {
            workflow,
            id,
            url,
            json,
        } => executions::show(&url, workflow.as_deref(), id.as_deref(), json).await,
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

/// The app's spec, from the `--binary` given or from a build for this
/// machine with the user's features.
fn app_spec(target: &build::Target) -> Result<cloudfn_core::AppSpec, Error> {
    match &target.binary {
        Some(binary) => build::spec(binary),
        None => build::spec(&build::build(&build::Build {
            features: Vec::new(),
            for_cloud: false,
            target,
        })?),
    }
}

/// The app's spec (from a build for this machine), then its Lambda
/// bootstrap, built with exactly the SDK clients its functions declare.
fn aws_bootstrap(target: &build::Target) -> Result<(PathBuf, cloudfn_core::AppSpec), Error> {
    let spec = app_spec(target)?;
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

/// Refuses to build for `platform` (which runs only Linux x86_64) on any
/// other machine, there being no cross-compilation yet; a binary passed
/// with `--binary` is taken as it is.
fn builds_linux_x86_64(target: &build::Target, platform: &str) -> Result<(), Error> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if target.binary.is_some() || (os, arch) == ("linux", "x86_64") {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{platform}, and this machine builds for {os} {arch}: build on Linux x86_64, or pass one with --binary"
    )))
}

/// The app's spec, then its custom handler: a cloud build with the
/// `azure` feature, for Linux on x86_64, which is what this machine builds
/// (no cross-compilation yet).
fn azure_handler(target: &build::Target) -> Result<(PathBuf, cloudfn_core::AppSpec), Error> {
    builds_linux_x86_64(
        target,
        "Azure's Linux Consumption plan runs Linux x86_64 executables",
    )?;
    let spec = app_spec(target)?;
    cloudfn_azure::validate(&spec)?;
    let binary = build::build(&build::Build {
        features: vec!["cloudfn/azure".to_owned()],
        for_cloud: true,
        target,
    })?;
    Ok((binary, spec))
}

/// The app's spec, then the binary of its image: a cloud build with the
/// `gcp` feature, for Linux on x86_64, the only machine Cloud Run runs and
/// the one this machine builds for (no cross-compilation yet).
fn gcp_handler(target: &build::Target) -> Result<(PathBuf, cloudfn_core::AppSpec), Error> {
    builds_linux_x86_64(target, "Cloud Run runs Linux x86_64 containers")?;
    let spec = app_spec(target)?;
    // Everything the deployment refuses, before the release build.
    cloudfn_gcp::deploy::plan(&spec, &spec.name)?;
    let binary = build::build(&build::Build {
        features: vec!["cloudfn/gcp".to_owned()],
        for_cloud: true,
        target,
    })?;
    Ok((binary, spec))
}

/// The `az` commands that deploy what [`cloudfn_azure::deploy::package`]
/// wrote: the template, then the code; for storage functions, the template
/// again with the code's URL and the Event Grid subscriptions, which Event
/// Grid accepts only once the functions run.
fn azure_next_steps(
    spec: &cloudfn_core::AppSpec,
    app: &cloudfn_azure::deploy::FunctionApp,
) -> String {
    let template = app.template.display();
    let storage = spec
        .functions
        .iter()
        .any(|f| matches!(f.trigger, cloudfn_core::Trigger::Storage { .. }));
    let again = format!(
        "az deployment group create -g $RG --template-file {template} \\\n    \
         --parameters \"packageUri=$(az functionapp config appsettings list -g $RG -n $APP \\\n    \
         --query \"[?name=='WEBSITE_RUN_FROM_PACKAGE'].value\" -o tsv)\"{}",
        if storage {
            " subscribeStorageEvents=true"
        } else {
            ""
        }
    );
    let mut steps = format!(
        "deploy with ($RG a resource group: az group create -n $RG -l <region>):\n  \
         az deployment group create -g $RG --template-file {template}\n  \
         APP=$(az deployment group show -g $RG -n azuredeploy --query properties.outputs.functionAppName.value -o tsv)\n  \
         az functionapp deployment source config-zip -g $RG -n $APP --src {}\n",
        app.zip.display()
    );
    if storage {
        steps.push_str(&format!(
            "then subscribe the storage functions to their buckets:\n  {again}\n"
        ));
    }
    steps.push_str(&format!(
        "deploying the template again replaces every app setting: give it the code's URL{}\n",
        if storage {
            ", as above".to_owned()
        } else {
            format!(":\n  {again}")
        }
    ));
    steps
}
