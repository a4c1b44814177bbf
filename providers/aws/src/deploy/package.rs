//! Writing the package: the template and the zipped bootstrap.

use cloudfn_core::{AppSpec, Error};

use super::{SamOptions, render_sam};

/// What [`package`] wrote.
#[derive(Debug, Clone)]
pub struct Package {
    /// The SAM template.
    pub template: std::path::PathBuf,
    /// The zip holding `bootstrap`.
    pub zip: std::path::PathBuf,
}

/// Writes `out/template.yaml` for `spec` and `out/bootstrap.zip` holding
/// `binary` as `bootstrap`: what `sam deploy --template-file
/// out/template.yaml` takes.
pub fn package(
    spec: &AppSpec,
    binary: &std::path::Path,
    out: &std::path::Path,
    options: &SamOptions,
) -> Result<Package, Error> {
    let io = |what: &str, e: std::io::Error| Error::unavailable(format!("{what}: {e}"));
    std::fs::create_dir_all(out).map_err(|e| io(&format!("creating {}", out.display()), e))?;
    let zip = out.join(&options.code_uri);
    zip_bootstrap(binary, &zip)?;
    let template = out.join("template.yaml");
    std::fs::write(&template, render_sam(spec, options)?)
        .map_err(|e| io(&format!("writing {}", template.display()), e))?;
    Ok(Package { template, zip })
}

/// Zips `binary` as an executable named `bootstrap`, the entry point of the
/// `provided.al2023` runtime.
pub fn zip_bootstrap(binary: &std::path::Path, zip_path: &std::path::Path) -> Result<(), Error> {
    use std::io::Write;
    let io = |what: String, e: &dyn std::fmt::Display| Error::unavailable(format!("{what}: {e}"));
    let bytes =
        std::fs::read(binary).map_err(|e| io(format!("reading {}", binary.display()), &e))?;
    let file = std::fs::File::create(zip_path)
        .map_err(|e| io(format!("creating {}", zip_path.display()), &e))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        // Lambda fetches the package at every cold start: every byte saved counts.
        .compression_level(Some(9))
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    zip.write_all(&bytes)
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    zip.finish()
        .map_err(|e| io(format!("writing {}", zip_path.display()), &e))?;
    Ok(())
}
