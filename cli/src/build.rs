//! Building the user's binary with cargo and asking it for its AppSpec.

use std::{
    io::BufRead,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use clap::Args;
use cloudfn_core::{AppSpec, Error};

/// Which binary of the current package holds the app.
#[derive(Args, Clone)]
pub struct Target {
    /// An example of the package.
    #[arg(long, conflicts_with = "bin")]
    pub example: Option<String>,
    /// A binary of the package (default: the package's only binary).
    #[arg(long)]
    pub bin: Option<String>,
    /// The package, in a workspace.
    #[arg(long, short = 'p')]
    pub package: Option<String>,
    /// Cargo features to turn on besides the cloud's (comma-separated).
    #[arg(long)]
    pub features: Option<String>,
    /// The cargo profile to build a cloud package with (default: `release`
    /// with LTO, one codegen unit and symbols stripped; panics still unwind,
    /// so a panicking handler fails only its own invocation).
    #[arg(long)]
    pub profile: Option<String>,
    /// The optimisation level of a cloud package built with the default
    /// profile: `s` (the default: a quarter smaller than `3`, and as fast on
    /// Lambda's loop, with a quicker cold start; see BENCHMARKS.md), `3` or `z`.
    #[arg(long, default_value = "s", value_parser = ["s", "3", "z"])]
    pub opt_level: String,
    /// Use this already-built binary instead of building one.
    #[arg(long, conflicts_with_all = ["example", "bin", "package", "features"])]
    pub binary: Option<PathBuf>,
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    out.and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// How to build: the features on top of the user's, and for whom.
pub struct Build<'a> {
    /// Features to turn on (`cloudfn/aws-sqs`), besides `--features`.
    pub features: Vec<String>,
    /// A cloud package: no default features (the local runtime stays out),
    /// and the size-and-speed release profile unless `--profile` names one.
    pub for_cloud: bool,
    /// The target.
    pub target: &'a Target,
}

/// The release profile a cloud package deserves: Lambda pulls and unpacks
/// the package on every cold start, so size is start-up time (the
/// optimisation level is `--opt-level`'s). Panics keep unwinding: a
/// panicking handler fails only its own invocation.
const CLOUD_PROFILE: [&str; 3] = [
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.strip=true",
];

/// Builds the target and returns the executable.
pub fn build(build: &Build<'_>) -> Result<PathBuf, Error> {
    let target = build.target;
    if let Some(binary) = &target.binary {
        return Ok(binary.clone());
    }
    let mut command = cargo();
    command.args(["build", "--message-format=json-render-diagnostics"]);
    match (&target.profile, build.for_cloud) {
        (Some(profile), _) => {
            command.args(["--profile", profile]);
        }
        (None, true) => {
            command.arg("--release");
            for setting in CLOUD_PROFILE {
                command.args(["--config", setting]);
            }
            let level = match target.opt_level.as_str() {
                "3" => "3".to_owned(),
                text => format!("\"{text}\""),
            };
            command.args(["--config", &format!("profile.release.opt-level={level}")]);
        }
        (None, false) => {}
    }
    if build.for_cloud {
        command.arg("--no-default-features");
    }
    let features: Vec<&str> = build
        .features
        .iter()
        .map(String::as_str)
        .chain(
            target
                .features
                .as_deref()
                .into_iter()
                .flat_map(|f| f.split(',')),
        )
        .filter(|f| !f.is_empty())
        .collect();
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    if let Some(package) = &target.package {
        command.args(["--package", package]);
    }
    if let Some(example) = &target.example {
        command.args(["--example", example]);
    }
    if let Some(bin) = &target.bin {
        command.args(["--bin", bin]);
    }
    eprintln!("building: {command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::unavailable(format!("cannot run cargo: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executables = Vec::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && let Some(exe) = message["executable"].as_str()
        {
            executables.push(PathBuf::from(exe));
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::unavailable(format!("cargo: {e}")))?;
    if !status.success() {
        return Err(Error::invalid(
            "the build failed (see cargo's output above)",
        ));
    }
    match executables.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::invalid(
            "the build produced no executable; name one with --example or --bin",
        )),
        many => Err(Error::invalid(format!(
            "the build produced {} executables; name one with --example or --bin",
            many.len()
        ))),
    }
}

/// Runs `binary` with `CLOUDFN_PRINT_SPEC` naming a file, and reads the
/// AppSpec it writes there. The file is a fresh private temporary file
/// (created exclusively, readable by this user only), not a name another
/// user could guess and plant.
pub fn spec(binary: &Path) -> Result<AppSpec, Error> {
    let temporary = tempfile::Builder::new()
        .prefix("cloudfn-spec-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Error::unavailable(format!("cannot create a temporary file: {e}")))?;
    let file = temporary.path().to_owned();
    let out = Command::new(binary)
        .env("CLOUDFN_PRINT_SPEC", &file)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdout(Stdio::null())
        .output()
        .map_err(|e| Error::unavailable(format!("cannot run {}: {e}", binary.display())))?;
    let written = std::fs::read(&file).ok().filter(|w| !w.is_empty());
    drop(temporary);
    if !out.status.success() {
        return Err(Error::invalid(format!(
            "{} could not describe its app: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let written = written.ok_or_else(|| {
        Error::invalid(format!(
            "{} wrote no AppSpec (does its main call cloudfn::run?)",
            binary.display()
        ))
    })?;
    serde_json::from_slice(&written).map_err(|e| {
        Error::invalid(format!(
            "{} wrote an unreadable AppSpec: {e}",
            binary.display()
        ))
    })
}
