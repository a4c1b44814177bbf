//! `AppSpec` → an Azure Resource Manager template for the function app and
//! everything it uses: `az deployment group create --template-file
//! azuredeploy.json` makes the resources, `az functionapp deployment
//! source config-zip` then puts the code in ([`super::package`]).

use std::{collections::BTreeMap, time::Duration};

use cloudfn_core::{AppSpec, Error, StorageEventKind, Trigger, conventions};
use serde_json::{Map, Value, json};

use super::{
    app_settings,
    arm::{Resource, call, expr, format, format_text, lit, literal_value, param, var},
    roles::{GrantTarget, role_grants},
};
use crate::names::{self, CLIENT_STORAGE_CONNECTION, SERVICE_BUS_CONNECTION, STORAGE_CONNECTION};

/// The schema of a resource-group deployment template.
pub const TEMPLATE_SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";

const STORAGE_API: &str = "2023-05-01";
const WEB_API: &str = "2023-12-01";
const SERVICE_BUS_API: &str = "2021-11-01";
const EVENT_GRID_API: &str = "2022-06-15";
const ROLE_ASSIGNMENT_API: &str = "2022-04-01";

/// Service Bus' longest message lock.
const MAX_LOCK: Duration = Duration::from_secs(300);
/// Service Bus' shortest message lock.
const MIN_LOCK: Duration = Duration::from_secs(5);

/// A prefix no neutral name holds, standing in for the `prefix` parameter
/// when [`app_settings`] names the resources; each value is then turned
/// back into an expression of the parameter ([`prefixed`]). It is letters
/// only, so it survives [`names::default_table_name`].
const PREFIX_STANDIN: &str = "cloudfnprefixstandin";

/// How to render the template: the defaults of its parameters.
#[derive(Debug, Clone, Default)]
pub struct ArmOptions {
    /// The default of `appName`, the function app's name, which is a host
    /// name under `azurewebsites.net` and so unique across Azure. Without
    /// one: the app's name and a suffix unique to the resource group
    /// (`shop-<uniqueString(resourceGroup().id)>`), the same on every
    /// deployment to that group.
    pub app_name: Option<String>,
    /// The default of `prefix`, in front of every queue, table and topic
    /// name ([`conventions::physical_name`]). Without one: the app's name.
    pub prefix: Option<String>,
}

/// The ARM template (JSON) of `spec`'s function app.
///
/// Parameters: `appName`, `location` (the resource group's), `prefix`
/// (lower-case letters, digits and hyphens, as queue names need),
/// `packageUri`, and for apps with storage triggers
/// `subscribeStorageEvents`.
///
/// Resources:
/// - a Storage account (StorageV2, Standard_LRS, no public blob access,
///   TLS 1.2, HTTPS only) with one queue per [`names::queues`], one table
///   per store and one blob container per watched bucket; every queue and
///   table named as [`app_settings`] names it under the `prefix` parameter;
/// - for apps with topics, a Service Bus namespace (Standard) with one topic
///   per topic and one subscription per subscriber, named after the
///   function, which Service Bus dead-letters after
///   [`conventions::redrive_receive_count`] deliveries (cloudfn
///   dead-letters in code first) and whose lock is the function's timeout
///   within Service Bus' five minutes;
/// - for apps with storage triggers, an Event Grid system topic on the
///   account and one subscription per storage function, for its bucket's
///   `BlobCreated`/`BlobDeleted` events, delivered to the function. Event
///   Grid refuses a subscription to a function that does not run yet, so
///   these are made only with `subscribeStorageEvents=true`, on a
///   deployment after the code's;
/// - a Linux Consumption plan (Y1) and the function app: a custom handler
///   (`linuxFxVersion` empty, `FUNCTIONS_WORKER_RUNTIME=Custom`, Functions
///   4), HTTPS only, with a system-assigned identity and the app settings
///   of [`app_settings`], `AzureWebJobsStorage` (a connection string with
///   the account key: the host keeps its own state in the account, and
///   `config-zip` uploads the package with it),
///   `CLOUDFN_STORAGE__accountName` (cloudfn's queue and table clients sign
///   in with the identity) and, for topics,
///   `CLOUDFN_SERVICE_BUS__fullyQualifiedNamespace` (the host's Service Bus
///   trigger and cloudfn's publisher sign in with the identity);
/// - role assignments for the identity, from [`super::role_grants`], each
///   scoped to its one queue, table, topic or subscription. On Azure the
///   identity belongs to the function app, not to a function, so these are
///   the union of what its functions declare; isolating one function from
///   another would take one function app per function. cloudfn's clients
///   use the identity; code that reads the host's `AzureWebJobsStorage`
///   setting itself holds the account key, which no role bounds.
///
/// On Linux Consumption a package runs only from a URL
/// (`WEBSITE_RUN_FROM_PACKAGE=<URL>`; `1` is not supported there):
/// `config-zip` uploads it to the account and sets that URL. A template
/// deployment replaces every app setting, so deploying it again must be
/// given the URL as `packageUri`, or the app loses its code.
///
/// Outputs: `functionAppName` and `defaultHostName`.
pub fn arm_template(spec: &AppSpec, options: &ArmOptions) -> Result<Value, Error> {
    crate::validate(spec)?;
    if let Some(bucket) = spec.buckets.iter().find(|b| !names::is_queue_name(b)) {
        return Err(Error::invalid(format!(
            "bucket `{bucket}` cannot be a blob container on Azure: use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
        )));
    }
    let renderer = Renderer::new(spec);
    let mut resources = renderer.storage()?;
    resources.extend(renderer.service_bus()?);
    resources.extend(renderer.function_app());
    resources.extend(renderer.storage_events());
    resources.extend(renderer.role_assignments()?);

    let app_name = match &options.app_name {
        Some(name) => json!(literal_value(name)),
        None => json!(expr(&format(
            &format!("{}-{{0}}", format_text(&spec.name)),
            &[&call("uniqueString", &["resourceGroup().id"])]
        ))),
    };
    let prefix = options.prefix.as_deref().unwrap_or(&spec.name);
    let mut parameters = json!({
        "appName": {
            "type": "string",
            "defaultValue": app_name,
            "metadata": { "description": "The function app's name: its host name under azurewebsites.net, unique across Azure." }
        },
        "location": {
            "type": "string",
            "defaultValue": "[resourceGroup().location]",
            "metadata": { "description": "Where every resource goes." }
        },
        "prefix": {
            "type": "string",
            "defaultValue": literal_value(prefix),
            "minLength": 1,
            "metadata": { "description": "In front of every queue, table and topic name (`<prefix>-orders`); lower-case letters, digits and hyphens." }
        },
        "packageUri": {
            "type": "string",
            "defaultValue": "",
            "metadata": { "description": "The URL of the code's zip (WEBSITE_RUN_FROM_PACKAGE). Empty on the first deployment, which `az functionapp deployment source config-zip` follows; on later ones, the URL config-zip set, or the app loses its code." }
        }
    });
    if renderer.has_storage_functions() {
        parameters["subscribeStorageEvents"] = json!({
            "type": "bool",
            "defaultValue": false,
            "metadata": { "description": "Subscribe the storage functions to their buckets' events: Event Grid checks that each function runs, so set it on a deployment after the code's." }
        });
    }

    Ok(json!({
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": { "description": format!("cloudfn app `{}` on Azure Functions, rendered by cloudfn-azure", spec.name) },
        "parameters": parameters,
        "variables": renderer.variables(),
        "resources": resources,
        "outputs": {
            "functionAppName": { "type": "string", "value": expr(&param("appName")) },
            "defaultHostName": {
                "type": "string",
                "value": expr(&format!("{}.defaultHostName", call("reference", &[&site().id(), &lit(WEB_API)])))
            }
        }
    }))
}

struct Renderer<'a> {
    spec: &'a AppSpec,
    /// The app settings, with [`PREFIX_STANDIN`] for the prefix.
    settings: BTreeMap<String, String>,
}

fn storage_account() -> Resource {
    Resource::new(
        "Microsoft.Storage/storageAccounts",
        vec![var("storageAccountName")],
    )
}

fn storage_child(kind: &'static str, name: Option<String>) -> Resource {
    let mut names = vec![var("storageAccountName"), lit("default")];
    names.extend(name);
    Resource::new(kind, names)
}

fn namespace() -> Resource {
    Resource::new(
        "Microsoft.ServiceBus/namespaces",
        vec![var("serviceBusNamespace")],
    )
}

fn site() -> Resource {
    Resource::new("Microsoft.Web/sites", vec![param("appName")])
}

fn events_topic() -> Resource {
    Resource::new(
        "Microsoft.EventGrid/systemTopics",
        vec![var("storageEventsTopic")],
    )
}

/// The expression of an app setting's value: a name behind
/// [`PREFIX_STANDIN`] becomes the same name behind the `prefix` parameter
/// (without its hyphens where the name lost them: tables), anything else
/// stays as it is.
fn prefixed(value: &str) -> String {
    match value.strip_prefix(PREFIX_STANDIN) {
        Some(rest) if rest.is_empty() || rest.starts_with('-') => {
            format(&format!("{{0}}{}", format_text(rest)), &[&param("prefix")])
        }
        Some(rest) => format(
            &format!("{{0}}{}", format_text(rest)),
            &[&call("replace", &[&param("prefix"), &lit("-"), &lit("")])],
        ),
        None => lit(value),
    }
}

fn depends_on(resources: &[&Resource]) -> Value {
    resources.iter().map(|r| json!(expr(&r.id()))).collect()
}

impl<'a> Renderer<'a> {
    fn new(spec: &'a AppSpec) -> Self {
        Self {
            spec,
            settings: app_settings(spec, PREFIX_STANDIN),
        }
    }

    fn has_topics(&self) -> bool {
        !self.spec.topics.is_empty()
    }

    fn has_storage_functions(&self) -> bool {
        self.spec
            .functions
            .iter()
            .any(|f| matches!(f.trigger, Trigger::Storage { .. }))
    }

    /// The physical name an app setting gives, as an expression.
    fn named(&self, variable: &str) -> Result<String, Error> {
        self.settings
            .get(variable)
            .map(|value| prefixed(value))
            .ok_or_else(|| Error::internal(format!("no app setting {variable}")))
    }

    fn queue(&self, queue: &str) -> Result<Resource, Error> {
        Ok(storage_child(
            "Microsoft.Storage/storageAccounts/queueServices/queues",
            Some(self.named(&names::queue_variable(queue))?),
        ))
    }

    fn table(&self, store: &str) -> Result<Resource, Error> {
        Ok(storage_child(
            "Microsoft.Storage/storageAccounts/tableServices/tables",
            Some(self.named(&names::table_variable(store))?),
        ))
    }

    fn topic(&self, topic: &str) -> Result<Resource, Error> {
        Ok(Resource::new(
            "Microsoft.ServiceBus/namespaces/topics",
            vec![
                var("serviceBusNamespace"),
                self.named(&names::topic_variable(topic))?,
            ],
        ))
    }

    fn subscription(&self, topic: &str, function: &str) -> Result<Resource, Error> {
        let mut resource = self.topic(topic)?;
        resource.kind = "Microsoft.ServiceBus/namespaces/topics/subscriptions";
        resource.names.push(lit(function));
        Ok(resource)
    }

    fn container(bucket: &str) -> Resource {
        storage_child(
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            Some(lit(bucket)),
        )
    }

    fn variables(&self) -> Value {
        let unique = call("uniqueString", &["resourceGroup().id", &param("prefix")]);
        let mut settings: Vec<Value> = self
            .settings
            .iter()
            .map(|(name, value)| {
                let value = if value.starts_with(PREFIX_STANDIN) {
                    expr(&prefixed(value))
                } else {
                    literal_value(value)
                };
                json!({ "name": name, "value": value })
            })
            .collect();
        settings.push(json!({ "name": "FUNCTIONS_EXTENSION_VERSION", "value": "~4" }));
        // cloudfn's clients reach Storage with the identity, so the role
        // assignments bound what the function code can do.
        settings.push(json!({
            "name": format!("{CLIENT_STORAGE_CONNECTION}__accountName"),
            "value": expr(&var("storageAccountName")),
        }));
        let mut variables = json!({
            // Storage account names are global: 3 to 24 lower-case letters
            // and digits.
            "storageAccountName": expr(&format("{0}{1}", &[
                &call("take", &[&call("toLower", &[&call("replace", &[&param("prefix"), &lit("-"), &lit("")])]), "11"]),
                &unique,
            ])),
            "planName": expr(&format("{0}-plan", &[&param("appName")])),
        });
        if self.has_topics() {
            // Namespace names are global too: 6 to 50 characters.
            variables["serviceBusNamespace"] = json!(expr(&format(
                "{0}-{1}",
                &[&call("take", &[&param("prefix"), "30"]), &unique]
            )));
            settings.push(json!({
                "name": format!("{SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace"),
                "value": expr(&format("{0}.servicebus.windows.net", &[&var("serviceBusNamespace")])),
            }));
        }
        if self.has_storage_functions() {
            variables["storageEventsTopic"] =
                json!(expr(&format("{0}-storage-events", &[&param("prefix")])));
        }
        variables["appSettings"] = Value::Array(settings);
        variables
    }

    /// The account, its queues, tables and containers.
    fn storage(&self) -> Result<Vec<Value>, Error> {
        let account = storage_account();
        let mut resources = vec![json!({
            "type": account.kind,
            "apiVersion": STORAGE_API,
            "name": expr(&account.name()),
            "location": expr(&param("location")),
            "sku": { "name": "Standard_LRS" },
            "kind": "StorageV2",
            "properties": {
                "allowBlobPublicAccess": false,
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": true
            }
        })];
        let services = [
            ("Microsoft.Storage/storageAccounts/queueServices", true),
            (
                "Microsoft.Storage/storageAccounts/tableServices",
                !self.spec.stores.is_empty(),
            ),
            (
                "Microsoft.Storage/storageAccounts/blobServices",
                !self.spec.buckets.is_empty(),
            ),
        ];
        for (kind, wanted) in services {
            if wanted {
                let service = storage_child(kind, None);
                resources.push(json!({
                    "type": kind,
                    "apiVersion": STORAGE_API,
                    "name": expr(&service.name()),
                    "dependsOn": depends_on(&[&account]),
                }));
            }
        }
        let service = |kind| storage_child(kind, None);
        for queue in names::queues(self.spec) {
            let resource = self.queue(&queue)?;
            resources.push(json!({
                "type": resource.kind,
                "apiVersion": STORAGE_API,
                "name": expr(&resource.name()),
                "dependsOn": depends_on(&[&service("Microsoft.Storage/storageAccounts/queueServices")]),
            }));
        }
        for store in &self.spec.stores {
            let resource = self.table(&store.name)?;
            resources.push(json!({
                "type": resource.kind,
                "apiVersion": STORAGE_API,
                "name": expr(&resource.name()),
                "dependsOn": depends_on(&[&service("Microsoft.Storage/storageAccounts/tableServices")]),
            }));
        }
        for bucket in &self.spec.buckets {
            let resource = Self::container(bucket);
            resources.push(json!({
                "type": resource.kind,
                "apiVersion": STORAGE_API,
                "name": expr(&resource.name()),
                "properties": { "publicAccess": "None" },
                "dependsOn": depends_on(&[&service("Microsoft.Storage/storageAccounts/blobServices")]),
            }));
        }
        Ok(resources)
    }

    /// The namespace, topics and subscriptions, for apps with topics.
    fn service_bus(&self) -> Result<Vec<Value>, Error> {
        if !self.has_topics() {
            return Ok(Vec::new());
        }
        let namespace = namespace();
        let mut resources = vec![json!({
            "type": namespace.kind,
            "apiVersion": SERVICE_BUS_API,
            "name": expr(&namespace.name()),
            "location": expr(&param("location")),
            "sku": { "name": "Standard", "tier": "Standard" },
            "properties": { "minimumTlsVersion": "1.2" }
        })];
        for topic in &self.spec.topics {
            let resource = self.topic(&topic.name)?;
            resources.push(json!({
                "type": resource.kind,
                "apiVersion": SERVICE_BUS_API,
                "name": expr(&resource.name()),
                "dependsOn": depends_on(&[&namespace]),
            }));
        }
        for function in &self.spec.functions {
            let Trigger::Topic { topic } = &function.trigger else {
                continue;
            };
            let resource = self.subscription(topic, &function.name)?;
            let lock = function.policy.timeout.clamp(MIN_LOCK, MAX_LOCK);
            resources.push(json!({
                "type": resource.kind,
                "apiVersion": SERVICE_BUS_API,
                "name": expr(&resource.name()),
                "properties": {
                    "maxDeliveryCount": conventions::redrive_receive_count(function.policy.retry.max_attempts),
                    "lockDuration": format!("PT{}S", lock.as_secs_f64().ceil() as u64),
                    "deadLetteringOnMessageExpiration": true
                },
                "dependsOn": depends_on(&[&self.topic(topic)?]),
            }));
        }
        Ok(resources)
    }

    /// The plan and the function app.
    fn function_app(&self) -> Vec<Value> {
        let plan = Resource::new("Microsoft.Web/serverfarms", vec![var("planName")]);
        let account = storage_account();
        let connection = call(
            "concat",
            &[
                &lit("DefaultEndpointsProtocol=https;AccountName="),
                &var("storageAccountName"),
                &lit(";EndpointSuffix="),
                "environment().suffixes.storage",
                &lit(";AccountKey="),
                &format!(
                    "{}.keys[0].value",
                    call("listKeys", &[&account.id(), &lit(STORAGE_API)])
                ),
            ],
        );
        let setting = |name: &str, value: &str| {
            call(
                "createObject",
                &[&lit("name"), &lit(name), &lit("value"), value],
            )
        };
        let package = call(
            "if",
            &[
                &call("empty", &[&param("packageUri")]),
                "createArray()",
                &call(
                    "createArray",
                    &[&setting("WEBSITE_RUN_FROM_PACKAGE", &param("packageUri"))],
                ),
            ],
        );
        let app_settings = call(
            "concat",
            &[
                &var("appSettings"),
                &call("createArray", &[&setting(STORAGE_CONNECTION, &connection)]),
                &package,
            ],
        );
        vec![
            json!({
                "type": plan.kind,
                "apiVersion": WEB_API,
                "name": expr(&plan.name()),
                "location": expr(&param("location")),
                "sku": { "name": "Y1", "tier": "Dynamic" },
                "properties": { "reserved": true }
            }),
            json!({
                "type": site().kind,
                "apiVersion": WEB_API,
                "name": expr(&site().name()),
                "location": expr(&param("location")),
                "kind": "functionapp,linux",
                "identity": { "type": "SystemAssigned" },
                "properties": {
                    "serverFarmId": expr(&plan.id()),
                    "reserved": true,
                    "httpsOnly": true,
                    "siteConfig": {
                        // A custom handler brings its own executable: no
                        // language stack.
                        "linuxFxVersion": "",
                        "ftpsState": "Disabled",
                        "minTlsVersion": "1.2",
                        "appSettings": expr(&app_settings)
                    }
                },
                "dependsOn": depends_on(&[&plan, &account]),
            }),
        ]
    }

    /// The system topic on the account and one subscription per storage
    /// function.
    fn storage_events(&self) -> Vec<Value> {
        if !self.has_storage_functions() {
            return Vec::new();
        }
        let topic = events_topic();
        let mut resources = vec![json!({
            "type": topic.kind,
            "apiVersion": EVENT_GRID_API,
            "name": expr(&topic.name()),
            "location": expr(&param("location")),
            "properties": {
                "source": expr(&storage_account().id()),
                "topicType": "Microsoft.Storage.StorageAccounts"
            },
            "dependsOn": depends_on(&[&storage_account()]),
        })];
        for function in &self.spec.functions {
            let Trigger::Storage { bucket, events } = &function.trigger else {
                continue;
            };
            let subscription = Resource::new(
                "Microsoft.EventGrid/systemTopics/eventSubscriptions",
                vec![var("storageEventsTopic"), lit(&function.name)],
            );
            let target = Resource::new(
                "Microsoft.Web/sites/functions",
                vec![param("appName"), lit(&function.name)],
            );
            let types: Vec<&str> = events
                .iter()
                .map(|kind| match kind {
                    StorageEventKind::Created => "Microsoft.Storage.BlobCreated",
                    StorageEventKind::Deleted => "Microsoft.Storage.BlobDeleted",
                })
                .collect();
            resources.push(json!({
                "type": subscription.kind,
                "apiVersion": EVENT_GRID_API,
                "name": expr(&subscription.name()),
                "condition": expr(&param("subscribeStorageEvents")),
                "properties": {
                    "destination": {
                        "endpointType": "AzureFunction",
                        "properties": {
                            "resourceId": expr(&target.id()),
                            "maxEventsPerBatch": 1
                        }
                    },
                    "filter": {
                        "includedEventTypes": types,
                        "subjectBeginsWith": format!("/blobServices/default/containers/{bucket}/")
                    },
                    "eventDeliverySchema": "EventGridSchema"
                },
                "dependsOn": depends_on(&[&topic, &site(), &Self::container(bucket)]),
            }));
        }
        resources
    }

    /// One role assignment per [`super::role_grants`], on its resource.
    fn role_assignments(&self) -> Result<Vec<Value>, Error> {
        let principal = format!(
            "{}.identity.principalId",
            call("reference", &[&site().id(), &lit(WEB_API), &lit("full")])
        );
        let mut resources = Vec::new();
        for grant in role_grants(self.spec) {
            let (target, what) = match &grant.target {
                GrantTarget::Queue(queue) => (self.queue(queue)?, format!("queue `{queue}`")),
                GrantTarget::Table(store) => (self.table(store)?, format!("store `{store}`")),
                GrantTarget::Topic(topic) => (self.topic(topic)?, format!("topic `{topic}`")),
                GrantTarget::Subscription { topic, function } => (
                    self.subscription(topic, function)?,
                    format!("subscription `{function}` of topic `{topic}`"),
                ),
            };
            let functions: Vec<&str> = grant.functions.iter().map(String::as_str).collect();
            let mut assignment = Map::new();
            assignment.insert(
                "type".into(),
                json!("Microsoft.Authorization/roleAssignments"),
            );
            assignment.insert("apiVersion".into(), json!(ROLE_ASSIGNMENT_API));
            assignment.insert("scope".into(), json!(expr(&target.scope())));
            assignment.insert(
                "name".into(),
                json!(expr(&call(
                    "guid",
                    &[&target.id(), &site().id(), &lit(grant.role.id)]
                ))),
            );
            assignment.insert(
                "properties".into(),
                json!({
                    "roleDefinitionId": expr(&call(
                        "subscriptionResourceId",
                        &[&lit("Microsoft.Authorization/roleDefinitions"), &lit(grant.role.id)]
                    )),
                    "principalId": expr(&principal),
                    "principalType": "ServicePrincipal",
                    "description": literal_value(&format!(
                        "{} on {what}, for {}",
                        grant.role.name,
                        functions.join(", ")
                    )),
                }),
            );
            assignment.insert("dependsOn".into(), depends_on(&[&site(), &target]));
            resources.push(Value::Object(assignment));
        }
        Ok(resources)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use cloudfn_core::{App, Context, Function, HttpRequest, HttpResponse, Method, ScheduledTick};

    use super::*;
    use crate::deploy::{
        arm::well_formed,
        roles::{self, BuiltInRole, RoleGrant},
        tests::every_trigger,
    };

    async fn ok(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }
    async fn tick(_: ScheduledTick, _: Context) -> Result<(), Error> {
        Ok(())
    }

    /// The shop-like app of the deploy tests, with a store one function
    /// writes and another only reads, and a store only read.
    fn shop() -> App {
        every_trigger()
            .function(
                Function::http("place", Method::Put, "/place", ok)
                    .sends_to("orders")
                    .uses_store("orders"),
            )
            .function(
                Function::schedule("audit", "0 * * * *", tick)
                    .reads_store("orders")
                    .reads_store("stock"),
            )
    }

    fn template() -> Value {
        arm_template(&shop().spec(), &ArmOptions::default()).unwrap()
    }

    fn resources<'t>(t: &'t Value, kind: &str) -> Vec<&'t Value> {
        t["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == kind)
            .collect()
    }

    fn names(t: &Value, kind: &str) -> Vec<String> {
        resources(t, kind)
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `format('{0}-orders', parameters('prefix'))` for `orders`.
    fn queue_name(queue: &str) -> String {
        format!("format('{{0}}-{queue}', parameters('prefix'))")
    }

    #[test]
    fn the_template_is_a_deployment_template() {
        let t = template();
        assert_eq!(t["$schema"], TEMPLATE_SCHEMA);
        assert_eq!(t["contentVersion"], "1.0.0.0");
        assert!(t["resources"].as_array().is_some_and(|r| !r.is_empty()));
        let text = serde_json::to_string_pretty(&t).unwrap();
        let again: Value = serde_json::from_str(&text).expect("the template is JSON");
        assert_eq!(again, t);
        assert_eq!(t["parameters"]["prefix"]["defaultValue"], "all");
        assert_eq!(
            t["parameters"]["appName"]["defaultValue"],
            "[format('all-{0}', uniqueString(resourceGroup().id))]"
        );
        assert_eq!(
            t["parameters"]["location"]["defaultValue"],
            "[resourceGroup().location]"
        );
        assert_eq!(
            t["parameters"]["subscribeStorageEvents"]["defaultValue"],
            false
        );
        assert_eq!(
            t["outputs"]["functionAppName"]["value"],
            "[parameters('appName')]"
        );
        assert!(
            t["outputs"]["defaultHostName"]["value"]
                .as_str()
                .unwrap()
                .ends_with(".defaultHostName]")
        );
        let options = ArmOptions {
            app_name: Some("shop-prod-fn".into()),
            prefix: Some("shop-prod".into()),
        };
        let t = arm_template(&shop().spec(), &options).unwrap();
        assert_eq!(t["parameters"]["appName"]["defaultValue"], "shop-prod-fn");
        assert_eq!(t["parameters"]["prefix"]["defaultValue"], "shop-prod");
    }

    #[test]
    fn every_expression_is_well_formed() {
        fn walk(value: &Value, bad: &mut Vec<String>) {
            match value {
                Value::String(s) if !well_formed(s) => bad.push(s.clone()),
                Value::Array(items) => items.iter().for_each(|v| walk(v, bad)),
                Value::Object(fields) => {
                    for (key, v) in fields {
                        if !well_formed(key) {
                            bad.push(key.clone());
                        }
                        walk(v, bad);
                    }
                }
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk(&template(), &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn every_queue_table_topic_and_subscription_is_a_resource() {
        let spec = shop().spec();
        let t = template();
        let queues = names(&t, "Microsoft.Storage/storageAccounts/queueServices/queues");
        let expected: Vec<String> = crate::names::queues(&spec)
            .iter()
            .map(|q| {
                format!(
                    "[format('{{0}}/{{1}}/{{2}}', variables('storageAccountName'), 'default', {})]",
                    queue_name(q)
                )
            })
            .collect();
        assert_eq!(queues, expected);
        assert!(queues.iter().any(|q| q.contains("'{0}-orders-dlq'")));
        assert_eq!(
            names(&t, "Microsoft.Storage/storageAccounts/tableServices/tables"),
            [
                "[format('{0}/{1}/{2}', variables('storageAccountName'), 'default', format('{0}orders', replace(parameters('prefix'), '-', '')))]",
                "[format('{0}/{1}/{2}', variables('storageAccountName'), 'default', format('{0}stock', replace(parameters('prefix'), '-', '')))]",
            ]
        );
        assert_eq!(
            names(
                &t,
                "Microsoft.Storage/storageAccounts/blobServices/containers"
            ),
            ["[format('{0}/{1}/{2}', variables('storageAccountName'), 'default', 'uploads')]"]
        );
        assert_eq!(
            names(&t, "Microsoft.ServiceBus/namespaces/topics"),
            [format!(
                "[format('{{0}}/{{1}}', variables('serviceBusNamespace'), {})]",
                queue_name("order-paid")
            )]
        );
        let subscriptions = resources(&t, "Microsoft.ServiceBus/namespaces/topics/subscriptions");
        assert_eq!(subscriptions.len(), 1);
        assert!(
            subscriptions[0]["name"]
                .as_str()
                .unwrap()
                .ends_with(", 'notify')]")
        );
        assert_eq!(
            subscriptions[0]["properties"],
            json!({"maxDeliveryCount": 15, "lockDuration": "PT30S",
                   "deadLetteringOnMessageExpiration": true})
        );
        let account = &resources(&t, "Microsoft.Storage/storageAccounts")[0];
        assert_eq!(account["kind"], "StorageV2");
        assert_eq!(account["sku"]["name"], "Standard_LRS");
        assert_eq!(account["properties"]["allowBlobPublicAccess"], false);
        assert_eq!(account["properties"]["minimumTlsVersion"], "TLS1_2");
    }

    /// The template's app settings are `app_settings` under the `prefix`
    /// parameter: substituting a prefix gives what `app_settings` gives.
    #[test]
    fn app_settings_are_those_of_the_package_under_the_prefix_parameter() {
        let spec = shop().spec();
        let t = template();
        let settings: BTreeMap<&str, &str> = t["variables"]["appSettings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["value"].as_str().unwrap()))
            .collect();
        let prefix = "shop-prod";
        for (name, concrete) in app_settings(&spec, prefix) {
            let value = settings
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{name} missing"));
            let resolved = if let Some(rest) = value
                .strip_prefix("[format('{0}")
                .and_then(|r| r.strip_suffix("', parameters('prefix'))]"))
            {
                format!("{prefix}{rest}")
            } else if let Some(rest) = value
                .strip_prefix("[format('{0}")
                .and_then(|r| r.strip_suffix("', replace(parameters('prefix'), '-', ''))]"))
            {
                format!("{}{rest}", prefix.replace('-', ""))
            } else {
                (*value).to_owned()
            };
            assert_eq!(resolved, concrete, "{name}");
        }
        assert_eq!(settings["FUNCTIONS_WORKER_RUNTIME"], "Custom");
        assert_eq!(settings["FUNCTIONS_EXTENSION_VERSION"], "~4");
        assert_eq!(
            settings["CLOUDFN_SERVICE_BUS__fullyQualifiedNamespace"],
            "[format('{0}.servicebus.windows.net', variables('serviceBusNamespace'))]"
        );
        assert_eq!(
            settings["CLOUDFN_STORAGE__accountName"],
            "[variables('storageAccountName')]"
        );
        let site = &resources(&t, "Microsoft.Web/sites")[0];
        assert_eq!(site["kind"], "functionapp,linux");
        assert_eq!(site["identity"]["type"], "SystemAssigned");
        assert_eq!(site["properties"]["siteConfig"]["linuxFxVersion"], "");
        let all = site["properties"]["siteConfig"]["appSettings"]
            .as_str()
            .unwrap();
        assert!(all.starts_with("[concat(variables('appSettings'), createArray(createObject('name', 'AzureWebJobsStorage', 'value', concat('DefaultEndpointsProtocol=https;AccountName='"), "{all}");
        assert!(all.contains("listKeys(resourceId('Microsoft.Storage/storageAccounts', variables('storageAccountName')), '2023-05-01').keys[0].value"));
        assert!(all.contains("'WEBSITE_RUN_FROM_PACKAGE', 'value', parameters('packageUri')"));
        let plan = &resources(&t, "Microsoft.Web/serverfarms")[0];
        assert_eq!(plan["sku"]["name"], "Y1");
        assert_eq!(plan["properties"]["reserved"], true);

        let api = App::new("api").function(Function::http("page", Method::Get, "/", ok));
        let t = arm_template(&api.spec(), &ArmOptions::default()).unwrap();
        assert!(resources(&t, "Microsoft.ServiceBus/namespaces").is_empty());
        assert!(resources(&t, "Microsoft.EventGrid/systemTopics").is_empty());
        assert!(t["parameters"].get("subscribeStorageEvents").is_none());
        assert!(
            t["variables"]["appSettings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["name"] != "CLOUDFN_SERVICE_BUS__fullyQualifiedNamespace")
        );
    }

    #[test]
    fn storage_functions_subscribe_to_their_bucket_once_the_code_runs() {
        let t = template();
        let topic = &resources(&t, "Microsoft.EventGrid/systemTopics")[0];
        assert_eq!(
            topic["properties"]["topicType"],
            "Microsoft.Storage.StorageAccounts"
        );
        let subscriptions = resources(&t, "Microsoft.EventGrid/systemTopics/eventSubscriptions");
        assert_eq!(subscriptions.len(), 1);
        let thumbs = subscriptions[0];
        assert_eq!(
            thumbs["condition"],
            "[parameters('subscribeStorageEvents')]"
        );
        assert_eq!(
            thumbs["properties"]["destination"]["endpointType"],
            "AzureFunction"
        );
        assert_eq!(
            thumbs["properties"]["destination"]["properties"]["resourceId"],
            "[resourceId('Microsoft.Web/sites/functions', parameters('appName'), 'thumbs')]"
        );
        assert_eq!(
            thumbs["properties"]["filter"],
            json!({"includedEventTypes": ["Microsoft.Storage.BlobCreated"],
                   "subjectBeginsWith": "/blobServices/default/containers/uploads/"})
        );
    }

    fn grant(role: BuiltInRole, target: GrantTarget, functions: &[&str]) -> RoleGrant {
        RoleGrant {
            role,
            target,
            functions: functions.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn roles_are_exactly_what_the_functions_declare() {
        use GrantTarget::*;
        use roles::*;
        let queue = |q: &str| Queue(q.to_owned());
        let grants: BTreeSet<_> = role_grants(&shop().spec())
            .into_iter()
            .map(|g| (g.target, g.role.name, g.functions))
            .collect();
        let expected: BTreeSet<_> = [
            // Consumed by charge, which re-enqueues its retries; place sends.
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR,
                queue("orders"),
                &["charge"],
            ),
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("orders"),
                &["charge", "place"],
            ),
            // Dead-letter queues: only ever sent to.
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("orders-dlq"),
                &["charge"],
            ),
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("order-paid-notify-dead-letter"),
                &["notify"],
            ),
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("report-dead-letter"),
                &["report"],
            ),
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("thumbs-dead-letter"),
                &["thumbs"],
            ),
            grant(
                STORAGE_QUEUE_DATA_MESSAGE_SENDER,
                queue("audit-dead-letter"),
                &["audit"],
            ),
            grant(
                STORAGE_TABLE_DATA_CONTRIBUTOR,
                Table("orders".into()),
                &["audit", "place"],
            ),
            grant(STORAGE_TABLE_DATA_READER, Table("stock".into()), &["audit"]),
            grant(
                AZURE_SERVICE_BUS_DATA_SENDER,
                Topic("order-paid".into()),
                &["charge"],
            ),
            grant(
                AZURE_SERVICE_BUS_DATA_RECEIVER,
                Subscription {
                    topic: "order-paid".into(),
                    function: "notify".into(),
                },
                &["notify"],
            ),
        ]
        .into_iter()
        .map(|g| (g.target, g.role.name, g.functions))
        .collect();
        assert_eq!(grants, expected);

        // A queue only consumed gets the processor role and the sender
        // role its retries need, nothing more.
        let consumer = App::new("c").function(Function::queue(
            "work",
            "jobs",
            |_: cloudfn_core::Message<Value>, _: Context| async { Ok(()) },
        ));
        let jobs: Vec<&str> = role_grants(&consumer.spec())
            .into_iter()
            .filter(|g| g.target == queue("jobs"))
            .map(|g| g.role.name)
            .collect();
        assert_eq!(
            jobs,
            [
                STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR.name,
                STORAGE_QUEUE_DATA_MESSAGE_SENDER.name
            ]
        );
    }

    #[test]
    fn role_assignments_sit_on_single_resources_for_the_app_identity() {
        let t = template();
        let assignments = resources(&t, "Microsoft.Authorization/roleAssignments");
        assert_eq!(assignments.len(), role_grants(&shop().spec()).len());
        let known = [
            roles::STORAGE_QUEUE_DATA_MESSAGE_SENDER,
            roles::STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR,
            roles::STORAGE_TABLE_DATA_CONTRIBUTOR,
            roles::STORAGE_TABLE_DATA_READER,
            roles::AZURE_SERVICE_BUS_DATA_SENDER,
            roles::AZURE_SERVICE_BUS_DATA_RECEIVER,
        ];
        let mut names = BTreeSet::new();
        for a in &assignments {
            let scope = a["scope"].as_str().unwrap();
            assert!(
                [
                    "/queues/{2}'",
                    "/tables/{2}'",
                    "/topics/{1}'",
                    "/subscriptions/{2}'"
                ]
                .iter()
                .any(|entity| scope.contains(entity)),
                "nothing account- or namespace-wide: {scope}"
            );
            let role = a["properties"]["roleDefinitionId"].as_str().unwrap();
            assert!(known.iter().any(|k| role.contains(k.id)), "{role}");
            assert_eq!(
                a["properties"]["principalId"],
                "[reference(resourceId('Microsoft.Web/sites', parameters('appName')), '2023-12-01', 'full').identity.principalId]"
            );
            assert_eq!(a["properties"]["principalType"], "ServicePrincipal");
            assert!(
                names.insert(a["name"].as_str().unwrap()),
                "names are unique"
            );
        }
        let stock = assignments
            .iter()
            .find(|a| a["scope"].as_str().unwrap().contains("'{0}stock'"))
            .unwrap();
        assert!(
            stock["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap()
                .contains(roles::STORAGE_TABLE_DATA_READER.id),
            "a store only read gets the reader role"
        );
        assert_eq!(
            stock["properties"]["description"],
            "Storage Table Data Reader on store `stock`, for audit"
        );
    }

    #[test]
    fn buckets_azure_cannot_take_are_refused_by_name() {
        let app = App::new("a").function(Function::storage(
            "thumbs",
            "Uploads",
            [StorageEventKind::Created],
            |_: cloudfn_core::StorageEvent, _: Context| async { Ok(()) },
        ));
        let error = arm_template(&app.spec(), &ArmOptions::default()).unwrap_err();
        assert!(error.message().contains("`Uploads`"), "{error}");
    }
}
