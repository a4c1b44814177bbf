//! `deploy.sh`: the `gcloud` commands that make the app's project, in the
//! order they depend on each other.

use cloudfn_core::{AppSpec, Error, Trigger};

use super::{
    Grant, Invokers, Member, Plan, Resource, Subscription, grants, service::service_file,
    url_variable, workflow_file,
};
use crate::client::EXPIRES;

/// What the script defines before it makes anything: its settings, and one
/// shell function per kind of resource, each of which makes what is
/// missing and leaves (or updates) what exists, so that running the script
/// again after a change updates the app. `@APP@`, `@IMAGE_PATH@`,
/// `@INVOKER@` are filled in.
const PRELUDE: &str = r#"set -euo pipefail

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
: "${REGION:?set REGION to a Cloud Run region, such as us-central1}"
REPOSITORY="${REPOSITORY:-cloudfn}"
# The tag is the handler's hash: a new handler makes new revisions, the
# same one none.
IMAGE="${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/@IMAGE_PATH@}"
# `cloud` builds the image with Cloud Build, `docker` here (after
# `gcloud auth configure-docker ${REGION}-docker.pkg.dev`).
BUILD="${BUILD:-cloud}"
INVOKER="@INVOKER@@${PROJECT}.iam.gserviceaccount.com"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT

# Whether a describe command finds its resource.
exists() { "$@" >/dev/null 2>&1; }

# IAM takes a while to know a new account, and Eventarc a new grant: try
# again before giving up.
retry() {
  local wait
  for wait in 5 10 20 40; do
    "$@" && return 0
    echo "deploy.sh: retrying in ${wait}s: $*" >&2
    sleep "$wait"
  done
  "$@"
}

member() { echo "serviceAccount:$1@${PROJECT}.iam.gserviceaccount.com"; }

account() {
  exists gcloud iam service-accounts describe "$1@${PROJECT}.iam.gserviceaccount.com" --project="$PROJECT" ||
    gcloud iam service-accounts create "$1" --display-name="$2" --project="$PROJECT"
}

topic() {
  exists gcloud pubsub topics describe "$1" --project="$PROJECT" ||
    gcloud pubsub topics create "$1" --project="$PROJECT"
}

# Without a condition of their own, or gcloud asks which one is meant
# when the project's policy has conditional bindings.
on_project() {
  retry gcloud projects add-iam-policy-binding "$PROJECT" --member="$1" --role="$2" \
    --condition=None --format=none
}

on_topic() {
  retry gcloud pubsub topics add-iam-policy-binding "$1" --member="$2" --role="$3" \
    --project="$PROJECT" --format=none
}

on_subscription() {
  retry gcloud pubsub subscriptions add-iam-policy-binding "$1" --member="$2" --role="$3" \
    --project="$PROJECT" --format=none
}

on_service() {
  retry gcloud run services add-iam-policy-binding "$1" --member="$2" --role="$3" \
    --region="$REGION" --project="$PROJECT" --format=none
}

# deploy_service FILE: services/FILE with this project, region and image.
deploy_service() {
  sed -e 's|[$]{PROJECT}|'"$PROJECT"'|g' -e 's|[$]{REGION}|'"$REGION"'|g' \
    -e 's|[$]{IMAGE}|'"$IMAGE"'|g' \
    "$here/services/$1" >"$rendered/$1"
  retry gcloud run services replace "$rendered/$1" --region="$REGION" --project="$PROJECT"
}

service_url() {
  gcloud run services describe "$1" --region="$REGION" --project="$PROJECT" \
    --format='value(status.url)'
}

# subscription NAME TOPIC ordered|unordered FLAGS...: made with FLAGS, or
# brought to them. Ordering is fixed when a subscription is made: to
# change it, delete the subscription first.
subscription() {
  local name="$1" topic="$2" ordering="$3"
  shift 3
  if exists gcloud pubsub subscriptions describe "$name" --project="$PROJECT"; then
    gcloud pubsub subscriptions update "$name" "$@" --project="$PROJECT"
  elif [[ "$ordering" == ordered ]]; then
    gcloud pubsub subscriptions create "$name" --topic="$topic" --enable-message-ordering "$@" \
      --project="$PROJECT"
  else
    gcloud pubsub subscriptions create "$name" --topic="$topic" "$@" --project="$PROJECT"
  fi
}

# push NAME TOPIC ordered|unordered SERVICE FLAGS...: a subscription pushed
# to the service with the invoker's OIDC token, which Cloud Run checks.
push() {
  local name="$1" topic="$2" ordering="$3" url
  url="$(service_url "$4")"
  shift 4
  subscription "$name" "$topic" "$ordering" --push-endpoint="$url/" \
    --push-auth-service-account="$INVOKER" --push-auth-token-audience="$url" "$@"
}

# job NAME SERVICE CRON ATTEMPT_DEADLINE: Cloud Scheduler calls the service
# with the invoker's OIDC token; the function retries in the call, so
# Scheduler does not.
job() {
  local url verb=create
  url="$(service_url "$2")"
  if exists gcloud scheduler jobs describe "$1" --location="$REGION" --project="$PROJECT"; then
    verb=update
  fi
  gcloud scheduler jobs "$verb" http "$1" --location="$REGION" --schedule="$3" \
    --time-zone=Etc/UTC --uri="$url/" --http-method=post \
    --oidc-service-account-email="$INVOKER" --oidc-token-audience="$url" \
    --attempt-deadline="$4" --max-retry-attempts=0 --project="$PROJECT"
}

# workflow NAME FILE ACCOUNT [VARIABLE=SERVICE]...: workflows/FILE deployed
# as NAME in REGION, run as ACCOUNT, each VARIABLE set to SERVICE's URL (what
# the definition reads with sys.get_env).
workflow() {
  local name="$1" file="$2" account="$3" pair urls=() env=(--clear-env-vars)
  shift 3
  for pair in "$@"; do
    urls+=("${pair%%=*}=$(service_url "${pair#*=}")")
  done
  if ((${#urls[@]})); then
    env=("--set-env-vars=$(IFS=,; echo "${urls[*]}")")
  fi
  retry gcloud workflows deploy "$name" --source="$here/workflows/$file" --location="$REGION" \
    --service-account="$account@${PROJECT}.iam.gserviceaccount.com" "${env[@]}" --project="$PROJECT"
}

# bucket NAME: private, uniform access, in REGION, unless it exists.
bucket() {
  if ((${#1} > 63)); then
    echo "deploy.sh: bucket $1 is over 63 characters: shorten the app's name" >&2
    exit 1
  fi
  exists gcloud storage buckets describe "gs://$1" --project="$PROJECT" ||
    gcloud storage buckets create "gs://$1" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention --project="$PROJECT"
}

# trigger NAME SERVICE EVENT_TYPE BUCKET: an Eventarc trigger, which must be
# where the bucket is.
trigger() {
  local location
  location="$(gcloud storage buckets describe "gs://$4" --project="$PROJECT" \
    --format='value(location)' | tr '[:upper:]' '[:lower:]')"
  exists gcloud eventarc triggers describe "$1" --location="$location" --project="$PROJECT" ||
    retry gcloud eventarc triggers create "$1" --location="$location" \
      --event-filters="type=$3" --event-filters="bucket=$4" \
      --destination-run-service="$2" --destination-run-region="$REGION" \
      --service-account="$INVOKER" --project="$PROJECT"
}
"#;

/// The deploy script of `plan`, whose services read their YAML from
/// `services/` beside it ([`super::package`]) and whose image is
/// `<REGION>-docker.pkg.dev/<PROJECT>/cloudfn/<app>:<tag>` unless `IMAGE`
/// says otherwise.
///
/// It enables the APIs; builds the image from the `Dockerfile` beside it
/// (Cloud Build, or `BUILD=docker`) unless the tag exists; makes the
/// service accounts, the topics and the functions' grants ([`grants`]);
/// Firestore and its TTL policy on the stores' collections; the services;
/// who may invoke them; then what needs their URLs: the subscriptions, the
/// Cloud Scheduler jobs, the buckets' Eventarc triggers, and the
/// workflows, each from `workflows/` beside it, run as its own account,
/// with its step functions' URLs as environment variables
/// ([`url_variable`]). It ends by printing the HTTP functions' URLs and
/// how to run each workflow.
pub fn deploy_script(spec: &AppSpec, plan: &Plan, tag: &str) -> Result<String, Error> {
    let grants = grants(spec, plan)?;
    let mut script = Script::default();
    script.line("#!/usr/bin/env bash");
    script.comment(&format!(
        "Deploys the cloudfn app `{}` to a Google Cloud project; written by `cargo cloudfn package --cloud gcp`. Run it from anywhere:",
        spec.name
    ));
    script.line("#");
    script.line("#   PROJECT=my-project REGION=us-central1 ./deploy.sh");
    script.line("#");
    script.comment(
        "Whoever runs it makes everything below and acts as the accounts it makes (the services and workflows run as their own, subscriptions, jobs and triggers call as the invoker): roles/owner, or each product's admin role and roles/iam.serviceAccountUser.",
    );
    script.push(
        &PRELUDE
            .replace(
                "@IMAGE_PATH@",
                &format!("{}:{tag}", image_name(&plan.prefix)),
            )
            .replace("@INVOKER@", &plan.invoker),
    );
    if !plan.collections.is_empty() {
        script.line("FIRESTORE_LOCATION=\"${FIRESTORE_LOCATION:-${REGION}}\"");
    }

    script.section("APIs");
    let mut apis = vec![
        "run.googleapis.com",
        "artifactregistry.googleapis.com",
        "cloudbuild.googleapis.com",
        "iam.googleapis.com",
    ];
    if !plan.messaging.topics.is_empty() {
        apis.push("pubsub.googleapis.com");
    }
    if !plan.jobs.is_empty() {
        apis.push("cloudscheduler.googleapis.com");
    }
    if !plan.triggers.is_empty() {
        apis.extend(["eventarc.googleapis.com", "storage.googleapis.com"]);
    }
    if !plan.collections.is_empty() {
        apis.push("firestore.googleapis.com");
    }
    if !plan.workflows.is_empty() {
        apis.push("workflows.googleapis.com");
    }
    if spec.functions.iter().any(|f| !f.starts.is_empty()) {
        apis.push("workflowexecutions.googleapis.com");
    }
    script.line(&format!(
        "gcloud services enable {} --project=\"$PROJECT\"",
        apis.join(" ")
    ));
    let agent = |member: &Member| grants.iter().any(|g| &g.member == member);
    if agent(&Member::PubSubAgent) {
        script.comment(
            "Pub/Sub's service agent moves dead letters; projects whose Pub/Sub agent dates from before 2021-04-08 must also grant it roles/iam.serviceAccountTokenCreator to sign push tokens.",
        );
        script.line("PROJECT_NUMBER=\"$(gcloud projects describe \"$PROJECT\" --format='value(projectNumber)')\"");
        script.line(
            "PUBSUB_AGENT=\"serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com\"",
        );
    }
    if agent(&Member::StorageAgent) {
        script.comment("Cloud Storage's service agent publishes its events for Eventarc.");
        script.line(
            "STORAGE_AGENT=\"serviceAccount:$(gcloud storage service-agent --project=\"$PROJECT\")\"",
        );
    }

    script.section("the image");
    script.push(
        r#"if [[ "$IMAGE" == "${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/"* ]] &&
  ! exists gcloud artifacts repositories describe "$REPOSITORY" --location="$REGION" --project="$PROJECT"; then
  gcloud artifacts repositories create "$REPOSITORY" --repository-format=docker \
    --location="$REGION" --project="$PROJECT"
fi
if ! exists gcloud artifacts docker images describe "$IMAGE" --project="$PROJECT"; then
  if [[ "$BUILD" == docker ]]; then
    docker build --platform=linux/amd64 -t "$IMAGE" "$here"
    docker push "$IMAGE"
  else
    gcloud builds submit "$here" --tag="$IMAGE" --project="$PROJECT"
  fi
fi
"#,
    );

    script.section("service accounts");
    for service in &plan.services {
        script.line(&format!(
            "account {} {}",
            word(&service.account),
            quoted(&format!(
                "cloudfn {}: function {}",
                spec.name, service.function
            ))
        ));
    }
    script.line(&format!(
        "account {} {}",
        word(&plan.invoker),
        quoted(&format!("cloudfn {}: calls the event functions", spec.name))
    ));
    for flow in &plan.workflows {
        script.line(&format!(
            "account {} {}",
            word(&flow.account),
            quoted(&format!(
                "cloudfn {}: workflow {}",
                spec.name, flow.workflow
            ))
        ));
    }

    if !plan.messaging.topics.is_empty() {
        script.section("topics");
        for topic in &plan.messaging.topics {
            script.line(&format!("topic {}", word(topic)));
        }
    }

    let before_services: Vec<&Grant> = grants
        .iter()
        .filter(|g| matches!(g.resource, Resource::Project | Resource::Topic(_)))
        .collect();
    if !before_services.is_empty() {
        script.section("what the functions, workflows and Google's agents may reach");
        for grant in before_services {
            script.grant(plan, grant);
        }
    }

    if !plan.collections.is_empty() {
        script.section("Firestore");
        script.push(
            r#"exists gcloud firestore databases describe --database='(default)' --project="$PROJECT" ||
  gcloud firestore databases create --location="$FIRESTORE_LOCATION" --project="$PROJECT"
"#,
        );
        script.comment(
            "Expired values read as absent at once; the TTL policy deletes them within a day or so.",
        );
        for collection in &plan.collections {
            script.line(&format!(
                "gcloud firestore fields ttls update {EXPIRES} --collection-group={} --enable-ttl \\\n  --async --project=\"$PROJECT\" || echo 'deploy.sh: TTL policy unchanged:' {} >&2",
                word(collection),
                quoted(collection)
            ));
        }
    }

    script.section("services");
    for service in &plan.services {
        script.line(&format!(
            "deploy_service {}",
            word(&service_file(&service.function))
        ));
    }
    let on_services: Vec<&Grant> = grants
        .iter()
        .filter(|g| matches!(g.resource, Resource::Service(_)))
        .collect();
    if !on_services.is_empty() {
        script.section("who may call them");
        if on_services.iter().any(|g| g.member == Member::AllUsers) {
            script.comment(
                "allUsers needs an organization that allows public services (domain-restricted sharing refuses it).",
            );
        }
        for grant in on_services {
            script.grant(plan, grant);
        }
    }

    if !plan.messaging.subscriptions.is_empty() {
        script.section("subscriptions");
        for subscription in &plan.messaging.subscriptions {
            script.subscription(plan, subscription);
        }
        for grant in grants
            .iter()
            .filter(|g| matches!(g.resource, Resource::Subscription(_)))
        {
            script.grant(plan, grant);
        }
    }

    if !plan.jobs.is_empty() {
        script.section("schedules");
        for job in &plan.jobs {
            script.comment(&format!("`{}`, in UTC", job.function));
            script.line(&format!(
                "job {} {} {} {}s",
                word(&job.name),
                word(&job.service),
                quoted(&job.cron),
                job.attempt_deadline.as_secs()
            ));
        }
    }

    if !plan.triggers.is_empty() {
        script.section("storage events");
        for bucket in &plan.buckets {
            script.line(&format!("bucket {}", bucket_word(&bucket.stem)));
        }
        for trigger in &plan.triggers {
            let bucket = plan
                .buckets
                .iter()
                .find(|b| b.name == trigger.bucket)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "function `{}` watches bucket `{}`, which the app's spec does not list",
                        trigger.function, trigger.bucket
                    ))
                })?;
            script.line(&format!(
                "trigger {} {} {} {}",
                word(&trigger.name),
                word(&trigger.service),
                word(trigger.event_type),
                bucket_word(&bucket.stem)
            ));
        }
    }

    if !plan.workflows.is_empty() {
        script.section("workflows");
        for flow in &plan.workflows {
            let mut line = format!(
                "workflow {} {} {}",
                word(&flow.name),
                word(&workflow_file(&flow.workflow)),
                word(&flow.account)
            );
            for function in &flow.functions {
                let service = plan.service(function).ok_or_else(|| {
                    Error::invalid(format!(
                        "workflow `{}` calls `{function}`, which the app does not have",
                        flow.workflow
                    ))
                })?;
                line.push_str(&format!(
                    " \\\n  {}",
                    word(&format!("{}={}", url_variable(function), service.name))
                ));
            }
            script.comment(&format!(
                "`{}`, calling its step functions at their URLs",
                flow.workflow
            ));
            script.line(&line);
        }
    }

    script.section("done");
    for (function, service) in spec.functions.iter().zip(&plan.services) {
        let Trigger::Http { method, route } = &function.trigger else {
            continue;
        };
        let who = match service.invokers {
            Invokers::Public => "public".to_owned(),
            _ => format!("callers need roles/run.invoker on {}", service.name),
        };
        script.line(&format!(
            "echo {}\"$(service_url {})\"{}",
            quoted(&format!("{}: {} ", function.name, method.as_str())),
            word(&service.name),
            quoted(&format!("{route} ({who})"))
        ));
    }
    for flow in &plan.workflows {
        script.line(&format!(
            "echo {}\"$REGION\"{}",
            quoted(&format!(
                "workflow {}: gcloud workflows run {} --location=",
                flow.workflow, flow.name
            )),
            quoted(" --data=INPUT_JSON")
        ));
    }
    Ok(script.0)
}

/// The image's name in the repository: the prefix in the characters an
/// image path takes.
pub(crate) fn image_name(prefix: &str) -> String {
    let name: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "app".to_owned()
    } else {
        name.to_owned()
    }
}

#[derive(Default)]
struct Script(String);

impl Script {
    fn push(&mut self, text: &str) {
        self.0.push_str(text);
    }

    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }

    /// `text` as `#` lines of at most 80 characters.
    fn comment(&mut self, text: &str) {
        let mut line = String::from("#");
        for word in text.split_whitespace() {
            if line.len() > 1 && line.len() + 1 + word.len() > 80 {
                self.line(&line);
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        self.line(&line);
    }

    fn section(&mut self, title: &str) {
        self.line("");
        self.line(&format!("echo {}", quoted(&format!("== {title}"))));
    }

    fn grant(&mut self, plan: &Plan, grant: &Grant) {
        self.comment(&grant.reasons.join("; "));
        let member = match &grant.member {
            Member::Function(function) => {
                let account = plan
                    .service(function)
                    .map(|s| s.account.as_str())
                    .unwrap_or(function);
                format!("\"$(member {})\"", word(account))
            }
            Member::Workflow(workflow) => {
                let account = plan
                    .flow(workflow)
                    .map(|f| f.account.as_str())
                    .unwrap_or(workflow);
                format!("\"$(member {})\"", word(account))
            }
            Member::Invoker => format!("\"$(member {})\"", word(&plan.invoker)),
            Member::AllUsers => "allUsers".to_owned(),
            Member::PubSubAgent => "\"$PUBSUB_AGENT\"".to_owned(),
            Member::StorageAgent => "\"$STORAGE_AGENT\"".to_owned(),
        };
        let line = match &grant.resource {
            Resource::Project => format!("on_project {member} {}", grant.role),
            Resource::Topic(topic) => format!("on_topic {} {member} {}", word(topic), grant.role),
            Resource::Subscription(name) => {
                format!("on_subscription {} {member} {}", word(name), grant.role)
            }
            Resource::Service(name) => {
                format!("on_service {} {member} {}", word(name), grant.role)
            }
        };
        self.line(&line);
    }

    /// A push subscription with every setting of `subscription`, or a pull
    /// subscription for a queue nothing consumes.
    fn subscription(&mut self, plan: &Plan, subscription: &Subscription) {
        let ordering = if subscription.ordering {
            "ordered"
        } else {
            "unordered"
        };
        let ack = format!("--ack-deadline={}", subscription.ack_deadline.as_secs());
        let Some(consumer) = &subscription.consumer else {
            self.comment(&format!(
                "queue `{}` holds what is sent to it until someone pulls it",
                subscription.queue
            ));
            self.line(&format!(
                "subscription {} {} {ordering} {ack}",
                word(&subscription.name),
                word(&subscription.topic)
            ));
            return;
        };
        let service = plan
            .service(consumer)
            .map(|s| s.name.as_str())
            .unwrap_or(consumer);
        let mut flags = vec![format!(
            "{ack} --min-retry-delay={}s --max-retry-delay={}s",
            subscription.min_backoff.as_secs(),
            subscription.max_backoff.as_secs()
        )];
        if let Some(dead_letter) = &subscription.dead_letter_topic {
            flags.push(format!(
                "--dead-letter-topic=\"projects/${{PROJECT}}/topics/\"{} --max-delivery-attempts={}",
                word(dead_letter),
                subscription.max_delivery_attempts
            ));
        }
        self.comment(&format!("queue `{}` → `{consumer}`", subscription.queue));
        self.line(&format!(
            "push {} {} {ordering} {} \\\n  {}",
            word(&subscription.name),
            word(&subscription.topic),
            word(service),
            flags.join(" \\\n  ")
        ));
    }
}

/// `text` as one shell word: as it is when the shell reads none of its
/// characters specially, else in single quotes.
fn word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// `text` in single quotes, the shell's literal string.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A bucket's id: its stem, `-` and the project.
fn bucket_word(stem: &str) -> String {
    format!("{}\"-${{PROJECT}}\"", word(stem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{plan, tests::every_trigger};

    fn script() -> String {
        let spec = every_trigger().spec();
        deploy_script(&spec, &plan(&spec, "all").unwrap(), "0123456789abcdef").unwrap()
    }

    /// The script's command lines (continuations joined) that start with `start`.
    fn commands(script: &str, start: &str) -> Vec<String> {
        script
            .replace("\\\n", "")
            .lines()
            .filter(|l| l.starts_with(start))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn push_subscriptions_carry_the_settings_of_deploy_messaging() {
        let spec = every_trigger().spec();
        let plan = plan(&spec, "all").unwrap();
        let script = script();
        let pushes = commands(&script, "push ");
        assert_eq!(pushes.len(), 3, "{pushes:#?}");
        for subscription in plan.messaging.subscriptions.iter() {
            let Some(consumer) = &subscription.consumer else {
                let pull = format!(
                    "subscription {} {} {} --ack-deadline=60",
                    subscription.name,
                    subscription.topic,
                    if subscription.ordering {
                        "ordered"
                    } else {
                        "unordered"
                    },
                );
                assert!(commands(&script, "subscription ").contains(&pull), "{pull}");
                continue;
            };
            let expected = format!(
                "push {} {} {} all-{consumer} --ack-deadline={} --min-retry-delay={}s --max-retry-delay={}s --dead-letter-topic=\"projects/${{PROJECT}}/topics/\"{} --max-delivery-attempts={}",
                subscription.name,
                subscription.topic,
                if subscription.ordering {
                    "ordered"
                } else {
                    "unordered"
                },
                subscription.ack_deadline.as_secs(),
                subscription.min_backoff.as_secs(),
                subscription.max_backoff.as_secs(),
                subscription.dead_letter_topic.as_deref().unwrap(),
                subscription.max_delivery_attempts,
            );
            assert!(pushes.contains(&expected), "{expected}\nnot in {pushes:#?}");
        }
        assert!(pushes.contains(
            &"push all-orders all-orders unordered all-charge --ack-deadline=40 --min-retry-delay=1s --max-retry-delay=60s --dead-letter-topic=\"projects/${PROJECT}/topics/\"all-orders-dlq --max-delivery-attempts=20".to_owned()
        ));
        assert!(
            pushes
                .iter()
                .any(|p| p.starts_with("push all-entries all-entries ordered all-ledger "))
        );
        assert!(pushes.iter().any(|p| {
            p.starts_with("push all-order-paid-notify all-order-paid unordered all-notify ")
        }));
        // The push itself: the endpoint, and the invoker's token for it.
        assert!(script.contains(
            "--push-endpoint=\"$url/\" \\\n    --push-auth-service-account=\"$INVOKER\" --push-auth-token-audience=\"$url\""
        ));
        assert!(script.contains("INVOKER=\"all-invoker@${PROJECT}.iam.gserviceaccount.com\""));
    }

    #[test]
    fn schedules_are_jobs_and_storage_changes_eventarc_triggers() {
        let script = script();
        assert_eq!(
            commands(&script, "job "),
            ["job all-report all-report '*/5 * * * 1-5' 103s"]
        );
        assert!(script.contains("--time-zone=Etc/UTC --uri=\"$url/\" --http-method=post"));
        assert!(
            script.contains(
                "--oidc-service-account-email=\"$INVOKER\" --oidc-token-audience=\"$url\""
            )
        );
        assert_eq!(
            commands(&script, "bucket "),
            ["bucket all-uploads\"-${PROJECT}\""]
        );
        assert_eq!(
            commands(&script, "trigger "),
            [
                "trigger all-thumbs-finalized all-thumbs google.cloud.storage.object.v1.finalized all-uploads\"-${PROJECT}\""
            ]
        );
        assert!(script.contains("--event-filters=\"type=$3\" --event-filters=\"bucket=$4\""));
        assert!(script.contains("on_project \"$STORAGE_AGENT\" roles/pubsub.publisher"));
        assert!(
            script.contains("on_project \"$(member all-invoker)\" roles/eventarc.eventReceiver")
        );
    }

    #[test]
    fn grants_are_rendered_in_order_only_public_functions_to_all_users() {
        let script = script();
        let services = commands(&script, "on_service ");
        assert_eq!(
            services,
            [
                "on_service all-charge \"$(member all-invoker)\" roles/run.invoker",
                "on_service all-checkout allUsers roles/run.invoker",
                "on_service all-ledger \"$(member all-invoker)\" roles/run.invoker",
                "on_service all-notify \"$(member all-invoker)\" roles/run.invoker",
                "on_service all-report \"$(member all-invoker)\" roles/run.invoker",
                "on_service all-thumbs \"$(member all-invoker)\" roles/run.invoker",
            ]
        );
        assert!(script.contains(
            "# `charge` publishes to topic `order-paid`\non_topic all-order-paid \"$(member all-charge)\" roles/pubsub.publisher"
        ));
        assert!(
            script.contains("on_topic all-orders-dlq \"$PUBSUB_AGENT\" roles/pubsub.publisher")
        );
        assert!(
            script.contains("on_subscription all-orders \"$PUBSUB_AGENT\" roles/pubsub.subscriber")
        );
        // Accounts, topics and grants before the services; the services
        // before what needs their URLs.
        let at = |text: &str| script.find(text).unwrap_or_else(|| panic!("no {text}"));
        assert!(at("\naccount all-charge ") < at("\ntopic all-orders\n"));
        assert!(at("\ntopic all-orders\n") < at("\non_topic "));
        assert!(at("\non_topic ") < at("\ndeploy_service "));
        assert!(at("deploy_service charge.yaml") < at("on_service all-charge"));
        assert!(at("on_service all-charge") < at("push all-orders "));
        assert!(at("push all-orders ") < at("on_subscription all-orders "));
        assert!(at("deploy_service report.yaml") < at("job all-report"));
        assert!(at("bucket all-uploads") < at("trigger all-thumbs-finalized"));
        assert!(
            script.contains(
                "echo 'checkout: POST '\"$(service_url all-checkout)\"'/orders (public)'"
            )
        );
        assert!(script.contains(
            "echo 'status: GET '\"$(service_url all-status)\"'/orders/{id} (callers need roles/run.invoker on all-status)'"
        ));
    }

    #[test]
    #[ignore = "prints the script of every_trigger()"]
    fn print_the_script() {
        print!("{}", script());
    }

    #[test]
    fn the_script_is_bash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy.sh");
        std::fs::write(&path, script()).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        match std::process::Command::new("shellcheck").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "shellcheck:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ),
            Err(_) => eprintln!("shellcheck is not installed: deploy.sh only passed bash -n"),
        }
    }

    #[test]
    fn names_are_one_shell_word_whatever_they_hold() {
        assert_eq!(word("all-orders"), "all-orders");
        assert_eq!(word("*/5 * * * 1-5"), "'*/5 * * * 1-5'");
        assert_eq!(word("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(word(""), "''");
        assert_eq!(image_name("Shop_App"), "shop-app");
        assert_eq!(image_name("--"), "app");
    }
}
