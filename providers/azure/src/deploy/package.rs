//! Writing the function app: the folder `func azure functionapp publish`
//! takes, the same as a zip for zip deploy, and the ARM template of the
//! resources it runs on.

use std::path::{Path, PathBuf};

use cloudfn_core::{AppSpec, Error, Trigger};

use super::{ArmOptions, EXECUTABLE, arm_template, function_json, host_json, local_settings};

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct FunctionApp {
    /// The folder: `host.json`, `<function>/function.json`, `handler`,
    /// `local.settings.json.example`.
    pub dir: PathBuf,
    /// The same files (but the example settings) zipped for zip deploy.
    pub zip: PathBuf,
    /// The ARM template of the function app and its resources
    /// ([`arm_template`] with the default [`ArmOptions`]).
    pub template: PathBuf,
}

/// The function app's configuration files: `host.json` and
/// `<function>/function.json`, by path, as JSON text.
pub fn app_files(spec: &AppSpec) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut files: Vec<(String, Vec<u8>)> = vec![("host.json".into(), pretty(&host_json(spec)?))];
    // Step functions have no binding: the orchestrator calls them in the process.
    for function in spec.functions.iter().filter(|f| f.trigger != Trigger::Step) {
        files.push((
            format!("{}/function.json", function.name),
            pretty(&function_json(function)?),
        ));
    }
    Ok(files)
}

/// Writes [`app_files`] under `dir`.
pub fn write_app_files(spec: &AppSpec, dir: &Path) -> Result<(), Error> {
    write_files(dir, &app_files(spec)?)
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Error> {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(|e| io(&path, e))?;
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::unavailable(format!("writing {}: {e}", path.display()))
}

/// Writes the function app of `spec`, with `binary` as its handler, into
/// `out/app` and `out/app.zip`, and its ARM template into
/// `out/azuredeploy.json`; with the orchestrator of its workflows, if it
/// has any ([`crate::workflows::hosted_spec`]).
pub fn package(spec: &AppSpec, binary: &Path, out: &Path) -> Result<FunctionApp, Error> {
    let spec = &crate::workflows::hosted_spec(spec)?;
    let dir = out.join("app");
    let mut files = app_files(spec)?;
    let arm = pretty(&arm_template(spec, &ArmOptions::default())?);
    let handler = std::fs::read(binary).map_err(|e| {
        Error::unavailable(format!("reading the handler {}: {e}", binary.display()))
    })?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    write_files(&dir, &files)?;
    let path = dir.join(EXECUTABLE);
    std::fs::write(&path, &handler).map_err(|e| io(&path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io(&path, e))?;
    }
    let path = dir.join("local.settings.json.example");
    std::fs::write(&path, pretty(&local_settings(spec))).map_err(|e| io(&path, e))?;

    files.push((EXECUTABLE.into(), handler));
    let zip = out.join("app.zip");
    write_zip(&zip, &files)?;
    let template = out.join("azuredeploy.json");
    std::fs::write(&template, arm).map_err(|e| io(&template, e))?;
    Ok(FunctionApp { dir, zip, template })
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn write_zip(path: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Error> {
    use std::io::Write;
    let fail =
        |e: &dyn std::fmt::Display| Error::unavailable(format!("writing {}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(|e| fail(&e))?;
    let mut zip = zip::ZipWriter::new(file);
    for (name, bytes) in files {
        let mode = if name == EXECUTABLE { 0o755 } else { 0o644 };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .unix_permissions(mode);
        zip.start_file(name.as_str(), options)
            .map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    zip.finish().map_err(|e| fail(&e))?;
    Ok(())
}
