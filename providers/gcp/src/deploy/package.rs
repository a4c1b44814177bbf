//! Writing the package: the image's `Dockerfile` and handler, one service
//! YAML per function, one Workflows definition per workflow, and the
//! `deploy.sh` that deploys them.

use std::path::{Path, PathBuf};

use cloudfn_core::{AppSpec, Error};

use super::{
    accounts::fnv1a, deploy_script, plan, service_file, service_yaml, workflow_file, workflow_yaml,
};

/// The handler's name in the package and in the image.
pub const HANDLER: &str = "handler";

/// The image: the handler alone on Google's distroless base for Rust and C
/// programs (Debian 12: glibc 2.36, libgcc, CA certificates, time zones;
/// no shell, no package manager), run as its unprivileged `nonroot` user.
pub const DOCKERFILE: &str = r#"# The cloudfn handler alone: glibc, CA certificates and time zones from
# distroless; no shell. Runs as uid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY handler /handler
ENTRYPOINT ["/handler"]
"#;

/// What Cloud Build uploads: the Dockerfile and the handler, not the rest.
const GCLOUDIGNORE: &str = "services/\nworkflows/\ndeploy.sh\n.gcloudignore\n";

/// The newest glibc the image's base has (Debian 12's).
const BASE_GLIBC: (u32, u32) = (2, 36);

/// ELF's machine number for x86_64, the only one Cloud Run runs.
const X86_64: u16 = 0x3e;

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder: what `deploy.sh` reads and Cloud Build uploads.
    pub dir: PathBuf,
    /// `Dockerfile`: the image.
    pub dockerfile: PathBuf,
    /// `handler`: the app's binary, executable.
    pub handler: PathBuf,
    /// `services/<function>.yaml`: one Knative service per function.
    pub services: Vec<PathBuf>,
    /// `workflows/<workflow>.yaml`: one Workflows definition per workflow.
    pub workflows: Vec<PathBuf>,
    /// `deploy.sh`: the `gcloud` commands, executable.
    pub script: PathBuf,
    /// The image's tag: the handler's hash.
    pub image_tag: String,
}

/// Writes the deployment of `spec`, named behind the app's name, with
/// `binary` as its handler, into `out`: `Dockerfile`, `handler`,
/// `services/<function>.yaml`, `workflows/<workflow>.yaml` and
/// `deploy.sh`, which builds the image and makes everything else
/// ([`deploy_script`]).
///
/// `binary` must be a Linux x86_64 executable that Debian 12's glibc can
/// run; anything else is refused with what is wrong, as Cloud Run would
/// only fail to start it.
pub fn package(spec: &AppSpec, binary: &Path, out: &Path) -> Result<Project, Error> {
    // A start under an id is claimed in the executions collection first
    // (see [`crate::client::workflows`]).
    let spec = &spec.with_recorded_starts();
    let plan = plan(spec, &spec.name)?;
    let handler = std::fs::read(binary).map_err(|e| {
        Error::unavailable(format!("reading the handler {}: {e}", binary.display()))
    })?;
    check_executable(binary, &handler)?;
    let image_tag = format!("{:016x}", fnv1a(&handler));
    let mut services = Vec::new();
    for service in &plan.services {
        services.push((
            service_file(&service.function),
            service_yaml(spec, &plan, &service.function)?,
        ));
    }
    let mut workflows = Vec::new();
    for workflow in &spec.workflows {
        workflows.push((
            workflow_file(workflow.name()),
            workflow_yaml(workflow, &plan)?,
        ));
    }
    let script = deploy_script(spec, &plan, &image_tag)?;

    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let service_paths = write_dir(&out.join("services"), services)?;
    let workflow_paths = write_dir(&out.join("workflows"), workflows)?;
    let dockerfile = write(&out.join("Dockerfile"), DOCKERFILE.as_bytes(), false)?;
    write(&out.join(".gcloudignore"), GCLOUDIGNORE.as_bytes(), false)?;
    let handler = write(&out.join(HANDLER), &handler, true)?;
    let script = write(&out.join("deploy.sh"), script.as_bytes(), true)?;
    Ok(Project {
        dir: out.to_owned(),
        dockerfile,
        handler,
        services: service_paths,
        workflows: workflow_paths,
        script,
        image_tag,
    })
}

/// Writes `files` (name, YAML) into `dir`, emptied first: a function or
/// workflow dropped since the last package must not leave its YAML. No
/// files, no folder.
fn write_dir(dir: &Path, files: Vec<(String, String)>) -> Result<Vec<PathBuf>, Error> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    files
        .into_iter()
        .map(|(file, yaml)| write(&dir.join(file), yaml.as_bytes(), false))
        .collect()
}

fn write(path: &Path, bytes: &[u8], executable: bool) -> Result<PathBuf, Error> {
    std::fs::write(path, bytes).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(path.to_owned())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::unavailable(format!("writing {}: {e}", path.display()))
}

/// Refuses what Cloud Run could not start: no ELF, another machine, or a
/// glibc newer than the image's (a binary built on a newer distribution).
fn check_executable(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let refused = |why: String| {
        Error::invalid(format!(
            "{}: {why}; Cloud Run runs Linux x86_64 executables",
            path.display()
        ))
    };
    if bytes.len() < 20 || !bytes.starts_with(b"\x7fELF") {
        return Err(refused("not a Linux executable".into()));
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if machine != X86_64 {
        return Err(refused(format!(
            "built for another machine (ELF machine {machine:#x})"
        )));
    }
    if let Some(needed) = glibc_needed(bytes)
        && needed > BASE_GLIBC
    {
        return Err(Error::invalid(format!(
            "{} needs glibc {}.{}, and the image's base (distroless cc-debian12) has {}.{}: build it on Debian 12 or older (a rust:bookworm container), or for x86_64-unknown-linux-musl, and pass it with --binary",
            path.display(),
            needed.0,
            needed.1,
            BASE_GLIBC.0,
            BASE_GLIBC.1
        )));
    }
    Ok(())
}

/// The newest `GLIBC_2.N` symbol version the binary names: what it needs
/// of the C library (none for a static binary).
fn glibc_needed(bytes: &[u8]) -> Option<(u32, u32)> {
    const TAG: &[u8] = b"GLIBC_2.";
    let mut newest = None;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(TAG.len()).position(|w| w == TAG) {
        let start = at + found + TAG.len();
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if let Some(minor) = std::str::from_utf8(&bytes[start..start + digits])
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
        {
            newest = newest.max(Some((2, minor)));
        }
        at = start;
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::tests::{every_trigger, shop};

    /// The start of an x86_64 ELF executable, and `extra`.
    fn elf(extra: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(18, 0);
        bytes.extend_from_slice(&X86_64.to_le_bytes());
        bytes.resize(64, 0);
        bytes.extend_from_slice(extra);
        bytes
    }

    #[test]
    fn the_package_holds_the_image_the_services_and_a_script_bash_reads() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("shop");
        std::fs::write(&binary, elf(b"GLIBC_2.2.5\0GLIBC_2.34\0")).unwrap();
        let out = dir.path().join("gcp");
        std::fs::create_dir_all(out.join("services")).unwrap();
        std::fs::write(out.join("services/gone.yaml"), "stale").unwrap();

        let spec = every_trigger().spec();
        let project = package(&spec, &binary, &out).unwrap();
        assert_eq!(
            std::fs::read(&project.handler).unwrap(),
            std::fs::read(&binary).unwrap()
        );
        let dockerfile = std::fs::read_to_string(&project.dockerfile).unwrap();
        assert!(dockerfile.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
        assert!(dockerfile.contains("COPY handler /handler\nENTRYPOINT [\"/handler\"]"));
        assert_eq!(project.services.len(), spec.functions.len());
        assert!(!out.join("services/gone.yaml").exists());
        for (path, function) in project.services.iter().zip(&spec.functions) {
            assert_eq!(path, &out.join(format!("services/{}.yaml", function.name)));
            let text = std::fs::read_to_string(path).unwrap();
            let service: serde_json::Value = serde_norway::from_str(&text).unwrap();
            assert_eq!(
                service["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
                function.name.as_str()
            );
        }
        let script = std::fs::read_to_string(&project.script).unwrap();
        assert!(script.starts_with("#!/usr/bin/env bash\n"));
        assert!(script.contains(&format!("/all:{}}}\"", project.image_tag)));
        assert_eq!(project.image_tag.len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [&project.script, &project.handler] {
                let mode = std::fs::metadata(path).unwrap().permissions().mode();
                assert_eq!(mode & 0o111, 0o111, "{} is executable", path.display());
            }
        }
        let checked = std::process::Command::new("bash")
            .arg("-n")
            .arg(&project.script)
            .output()
            .expect("bash runs");
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        // Packaging again gives the same files: the tag is the handler's.
        let again = package(&spec, &binary, &out).unwrap();
        assert_eq!(again.image_tag, project.image_tag);
    }

    #[test]
    fn each_workflow_is_a_definition_beside_the_services() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("shop");
        std::fs::write(&binary, elf(b"")).unwrap();
        let out = dir.path().join("gcp");
        std::fs::create_dir_all(out.join("workflows")).unwrap();
        std::fs::write(out.join("workflows/gone.yaml"), "stale").unwrap();
        let spec = shop(cloudfn_core::workflow::fixture::every_kind_of_step());
        let project = package(&spec, &binary, &out).unwrap();
        assert_eq!(project.workflows, [out.join("workflows/order.yaml")]);
        assert!(!out.join("workflows/gone.yaml").exists());
        let definition: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(&project.workflows[0]).unwrap())
                .unwrap();
        assert_eq!(definition["main"]["params"][0], "input");
        let ignored = std::fs::read_to_string(out.join(".gcloudignore")).unwrap();
        assert!(
            ignored.contains("workflows/"),
            "Cloud Build uploads no workflow"
        );

        let without = package(&every_trigger().spec(), &binary, &out).unwrap();
        assert!(without.workflows.is_empty());
        assert!(!out.join("workflows").exists(), "none left from before");
    }

    #[test]
    fn what_cloud_run_could_not_start_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = every_trigger().spec();
        let refused = |bytes: Vec<u8>| {
            let binary = dir.path().join("handler-in");
            std::fs::write(&binary, bytes).unwrap();
            package(&spec, &binary, &dir.path().join("out"))
                .unwrap_err()
                .message()
                .to_owned()
        };
        assert!(refused(b"#!/bin/sh\n".to_vec()).contains("not a Linux executable"));
        let mut arm = elf(b"");
        arm[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
        assert!(refused(arm).contains("another machine"));
        let said = refused(elf(b"GLIBC_2.17\0GLIBC_2.39\0"));
        assert!(
            said.contains("glibc 2.39") && said.contains("2.36"),
            "{said}"
        );
        assert!(!dir.path().join("out").exists(), "nothing is written");
        assert_eq!(glibc_needed(b"no C library"), None);
        assert_eq!(
            glibc_needed(b"GLIBC_2.3.4\0GLIBC_2.28\0GLIBC_2."),
            Some((2, 28))
        );
    }
}
