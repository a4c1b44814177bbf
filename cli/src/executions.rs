//! `cargo cloudfn executions`: a running local runtime's workflow
//! executions, from its `/_cloudfn/executions`.

use cloudfn_core::{
    Error,
    workflow::{Execution, Index},
};

/// Prints the executions of every workflow, of `workflow`, or the
/// execution `id` of `workflow` step by step; as JSON with `json`.
pub async fn show(
    url: &str,
    workflow: Option<&str>,
    id: Option<&str>,
    json: bool,
) -> Result<(), Error> {
    let path = match (workflow, id) {
        (Some(workflow), Some(id)) => format!("/{workflow}/{id}"),
        (Some(workflow), None) => format!("/{workflow}"),
        _ => String::new(),
    };
    let address = format!(
        "{}{}{path}",
        url.trim_end_matches('/'),
        cloudfn_local::EXECUTIONS_PATH
    );
    // reqwest here has rustls without a provider of its own (the adapters'
    // build of it).
    cloudfn_server::install_tls();
    let response = reqwest::get(&address)
        .await
        .map_err(|e| Error::unavailable(format!("{address}: {e} (is the app running?)")))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| Error::unavailable(format!("{address}: the answer is not JSON: {e}")))?;
    if !status.is_success() {
        return Err(Error::invalid(format!(
            "{address}: {status}: {}",
            body["error"]["message"].as_str().unwrap_or_default()
        )));
    }
    if json {
        println!("{body:#}");
        return Ok(());
    }
    let read = |e: serde_json::Error| Error::internal(format!("{address}: unexpected answer: {e}"));
    match (workflow, id) {
        (Some(_), Some(_)) => print_execution(&serde_json::from_value(body).map_err(read)?),
        (Some(workflow), None) => {
            print_index(workflow, &serde_json::from_value(body).map_err(read)?)
        }
        _ => {
            let all: std::collections::BTreeMap<String, Index> =
                serde_json::from_value(body).map_err(read)?;
            for (workflow, index) in &all {
                print_index(workflow, index);
            }
        }
    }
    Ok(())
}

fn print_index(workflow: &str, index: &Index) {
    println!("{workflow}:");
    for id in &index.running {
        println!("  running   {id}");
    }
    for id in index.finished.iter().rev() {
        println!("  finished  {id}");
    }
}

fn print_execution(execution: &Execution) {
    println!(
        "{} {}: {:?}, started {}",
        execution.workflow, execution.id, execution.status, execution.started
    );
    let mut steps: Vec<_> = execution.steps.iter().collect();
    steps.sort_by_key(|(_, record)| record.started);
    for (name, record) in steps {
        let took = record
            .ended
            .map(|ended| format!("{} ms", (ended - record.started).num_milliseconds()))
            .unwrap_or_else(|| "unfinished".into());
        let outcome = match (&record.output, &record.error) {
            (Some(_), _) => "done".to_owned(),
            (None, Some(error)) => format!("failed: {}: {}", error.kind, error.message),
            (None, None) => "running".to_owned(),
        };
        println!(
            "  {name:<24} {} attempt(s), {took:<12} {outcome}",
            record.attempts
        );
    }
    if let Some(error) = &execution.error {
        println!(
            "  failed at `{}`: {}: {}",
            error.step, error.kind, error.message
        );
    }
}
