//! One function's Cloud Run service as Knative YAML, what `gcloud run
//! services replace` takes.

use cloudfn_core::{AppSpec, Error, Trigger};
use serde_json::{Map, Value, json};

use super::{IMAGE, PROJECT, Plan, REGION, Service, account_email, settings};
use crate::{DEFAULT_PORT, SIGNATURE_VARIABLE, TARGET_VARIABLE};

/// The Knative `Service` of `service`: the app's image, which serves the
/// one function `FUNCTION_TARGET` names (`FUNCTION_SIGNATURE_TYPE` `http`
/// for an HTTP function, else `cloudevent`), with the settings naming every
/// topic and collection ([`settings`]); the function's own service
/// account; the request timeout, concurrency and instances of the plan;
/// ingress `all` for HTTP functions, `internal` for event functions (Pub/Sub,
/// Cloud Scheduler and Eventarc of the same project count as internal).
/// `PORT` is Cloud Run's to set. Project and image are [`PROJECT`] and
/// [`IMAGE`].
pub fn knative_service(spec: &AppSpec, plan: &Plan, service: &Service) -> Value {
    // The server reads every request by its shape; the signature type is
    // what the functions framework declares, and the server checks it
    // against the trigger at start.
    let http = spec
        .function(&service.function)
        .is_some_and(|f| matches!(f.trigger, Trigger::Http { .. }));
    let mut env = vec![
        json!({ "name": TARGET_VARIABLE, "value": service.function }),
        json!({ "name": SIGNATURE_VARIABLE, "value": if http { "http" } else { "cloudevent" } }),
    ];
    env.extend(
        settings(spec, &plan.prefix, PROJECT)
            .into_iter()
            .map(|(name, value)| json!({ "name": name, "value": value })),
    );
    // The workflows it starts, by their full names.
    let starts = spec
        .function(&service.function)
        .map(|f| f.starts.clone())
        .unwrap_or_default();
    for flow in plan
        .workflows
        .iter()
        .filter(|f| starts.contains(&f.workflow))
    {
        env.push(json!({
            "name": crate::names::workflow_variable(&flow.workflow),
            "value": format!("projects/{PROJECT}/locations/{REGION}/workflows/{}", flow.name),
        }));
    }
    let mut revision = json!({
        "serviceAccountName": account_email(&service.account, PROJECT),
        "timeoutSeconds": service.timeout.as_secs(),
        "containers": [{
            "image": IMAGE,
            "ports": [{ "name": "http1", "containerPort": DEFAULT_PORT }],
            "env": env,
        }],
    });
    if let Some(concurrency) = service.container_concurrency {
        revision["containerConcurrency"] = json!(concurrency);
    }
    let mut template = json!({ "spec": revision });
    if let Some(max_scale) = service.max_scale {
        // Cloud Run may exceed it briefly in a sudden surge, its docs say.
        let annotations = Map::from_iter([(
            "autoscaling.knative.dev/maxScale".to_owned(),
            json!(max_scale.to_string()),
        )]);
        template["metadata"] = json!({ "annotations": annotations });
    }
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "annotations": { "run.googleapis.com/ingress": service.ingress.as_str() },
        },
        "spec": { "template": template },
    })
}

/// The file of `function`'s service in the package's `services/`.
pub fn service_file(function: &str) -> String {
    format!("{function}.yaml")
}

/// [`knative_service`] of `function` as YAML.
pub fn service_yaml(spec: &AppSpec, plan: &Plan, function: &str) -> Result<String, Error> {
    let service = plan
        .service(function)
        .ok_or_else(|| Error::invalid(format!("the app has no function `{function}`")))?;
    serde_norway::to_string(&knative_service(spec, plan, service))
        .map_err(|e| Error::internal(format!("the service of `{function}` as YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use cloudfn_core::{App, Function, Method};

    use super::*;
    use crate::deploy::{plan, tests::every_trigger};

    fn yaml_of(spec: &AppSpec, function: &str) -> Value {
        let plan = plan(spec, "all").unwrap();
        let yaml = service_yaml(spec, &plan, function).unwrap();
        serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}\ndoes not parse: {e}"))
    }

    fn env(service: &Value) -> Vec<(String, String)> {
        service["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn every_function_runs_the_image_as_itself_with_the_apps_settings() {
        let spec = every_trigger().spec();
        let settings: BTreeSet<String> = settings(&spec, "all", PROJECT).into_keys().collect();
        for (function, ingress, signature) in [
            ("checkout", "all", "http"),
            ("status", "all", "http"),
            ("charge", "internal", "cloudevent"),
            ("ledger", "internal", "cloudevent"),
            ("notify", "internal", "cloudevent"),
            ("report", "internal", "cloudevent"),
            ("thumbs", "internal", "cloudevent"),
        ] {
            let service = yaml_of(&spec, function);
            assert_eq!(service["apiVersion"], "serving.knative.dev/v1");
            assert_eq!(service["kind"], "Service");
            assert_eq!(service["metadata"]["name"], format!("all-{function}"));
            assert_eq!(
                service["metadata"]["annotations"]["run.googleapis.com/ingress"], ingress,
                "{function}"
            );
            let revision = &service["spec"]["template"]["spec"];
            assert_eq!(
                revision["serviceAccountName"],
                format!("all-{function}@${{PROJECT}}.iam.gserviceaccount.com")
            );
            assert_eq!(revision["containers"][0]["image"], "${IMAGE}");
            assert_eq!(revision["containers"][0]["ports"][0]["containerPort"], 8080);
            let env = env(&service);
            assert_eq!(env[0], ("FUNCTION_TARGET".into(), function.into()));
            assert_eq!(env[1], ("FUNCTION_SIGNATURE_TYPE".into(), signature.into()));
            let names: BTreeSet<String> = env[2..].iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(names, settings, "{function}");
            assert!(!names.contains("PORT"), "Cloud Run sets PORT");
            assert!(env.contains(&("GOOGLE_CLOUD_PROJECT".into(), "${PROJECT}".into())));
            assert!(env.contains(&("CLOUDFN_QUEUE_ORDERS".into(), "all-orders".into())));
        }
        let report = yaml_of(&spec, "report");
        assert_eq!(report["spec"]["template"]["spec"]["timeoutSeconds"], 103);
        assert!(
            report["spec"]["template"]["spec"]
                .get("containerConcurrency")
                .is_none()
        );
        assert!(report["spec"]["template"].get("metadata").is_none());
    }

    #[test]
    fn a_concurrency_limit_is_rendered_per_instance_and_in_instances() {
        async fn page(
            _: cloudfn_core::HttpRequest,
            _: cloudfn_core::Context,
        ) -> Result<cloudfn_core::HttpResponse, Error> {
            Ok(cloudfn_core::HttpResponse::new(200))
        }
        let spec = App::new("all")
            .function(Function::http("api", Method::Get, "/", page).max_concurrency(5))
            .spec();
        let service = yaml_of(&spec, "api");
        let template = &service["spec"]["template"];
        assert_eq!(template["spec"]["containerConcurrency"], 5);
        assert_eq!(
            template["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"],
            "1"
        );
    }
}
