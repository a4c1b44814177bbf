//! `cargo cloudfn package --cloud aws|azure|gcp` on the shop: the files a
//! user would deploy.
//!
//! The shop binary is the one `cargo test --workspace --all-features` built
//! beside this test (with the `aws` feature), passed with `--binary` so the
//! test does not start a second build with other features.

use std::{io::Read, path::PathBuf, process::Command};

use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn shop_binary() -> PathBuf {
    let shop = PathBuf::from(env!("CARGO_BIN_EXE_cargo-cloudfn"))
        .parent()
        .unwrap()
        .join("examples/shop");
    assert!(
        shop.exists(),
        "{} is missing: run cargo test --workspace --all-features",
        shop.display()
    );
    shop
}

/// `CLOUDFN_PRINT_SPEC=-` writes the spec to standard output, and any app
/// binary answers it without serving.
#[test]
fn an_app_prints_its_spec_to_stdout_for_a_dash() {
    let out = Command::new(shop_binary())
        .env("CLOUDFN_PRINT_SPEC", "-")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("the shop runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec: Value = serde_json::from_slice(&out.stdout).expect("the spec, as JSON");
    assert_eq!(spec["name"], "shop");
    let queues: Vec<&str> = spec["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(
        queues.contains(&"order-paid-notify") && queues.contains(&"order-paid-notify-dead-letter"),
        "subscription and default dead-letter queues are in the spec: {queues:?}"
    );
}

fn package_shop() -> (Value, PathBuf) {
    package_shop_flow("choreographed")
}

/// The shop packaged for AWS with its orders going on by `flow` (`SHOP_FLOW`).
fn package_shop_flow(flow: &str) -> (Value, PathBuf) {
    let (out, _) = package_shop_on("aws", flow);
    let template = std::fs::read_to_string(out.join("template.yaml")).expect("template written");
    (
        serde_norway::from_str(&template).expect("the template is YAML"),
        out,
    )
}

/// Checks `rendered` against the golden file `name` under
/// `cli/tests/fixtures`; `UPDATE_GOLDEN=1` writes it anew.
fn golden(name: &str, rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == rendered,
        "{} differs from the rendering (UPDATE_GOLDEN=1 writes it):\n{rendered}",
        path.display()
    );
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    template["Resources"]
        .get(id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

fn statements(template: &Value, role: &str) -> Vec<(Vec<String>, String)> {
    let policies = &resource(template, role)["Properties"]["Policies"];
    policies[0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let actions = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
                other => panic!("action {other}"),
            };
            let target = s["Resource"]["Fn::GetAtt"][0]
                .as_str()
                .or(s["Resource"]["Ref"].as_str())
                .unwrap_or_default()
                .to_owned();
            (actions, target)
        })
        .collect()
}

#[test]
fn the_shop_packages_into_a_deployable_sam_template_and_zip() {
    let (t, out) = package_shop();
    assert_eq!(t["Transform"], "AWS::Serverless-2016-10-31");

    for (function, handler) in [
        ("CheckoutFunction", "checkout"),
        ("OrderStatusFunction", "order-status"),
        ("ChargeFunction", "charge"),
        ("InventoryFunction", "inventory"),
        ("NotifyFunction", "notify"),
        ("StockReportFunction", "stock-report"),
    ] {
        let f = &resource(&t, function)["Properties"];
        assert_eq!(f["Handler"], handler);
        assert_eq!(f["Runtime"], "provided.al2023");
        assert_eq!(f["CodeUri"], "bootstrap.zip");
    }

    let checkout = &resource(&t, "CheckoutFunction")["Properties"]["Events"]["Http"];
    assert_eq!(
        (
            checkout["Type"].as_str(),
            checkout["Properties"]["Path"].as_str()
        ),
        (Some("HttpApi"), Some("/orders"))
    );
    assert_eq!(
        checkout["Properties"]["Auth"]["Authorizer"], "NONE",
        "anyone may order"
    );
    let status = &resource(&t, "OrderStatusFunction")["Properties"]["Events"]["Http"]["Properties"];
    assert_eq!(
        (status["Path"].as_str(), status["Method"].as_str()),
        (Some("/orders/{id}"), Some("get"))
    );
    assert_eq!(
        status["Auth"]["Authorizer"], "AWS_IAM",
        "an order's details are private by default"
    );

    let charge = &resource(&t, "ChargeFunction")["Properties"];
    let sqs = &charge["Events"]["Queue"];
    assert_eq!(sqs["Type"], "SQS");
    assert_eq!(sqs["Properties"]["Queue"]["Fn::GetAtt"][0], "OrdersQueue");
    assert_eq!(
        sqs["Properties"]["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    assert_eq!(sqs["Properties"]["BatchSize"], 10);
    assert_eq!(
        charge["Timeout"], 12,
        "two seconds past the handler's own timeout, to report it"
    );

    let orders = &resource(&t, "OrdersQueue")["Properties"];
    assert_eq!(
        orders["RedrivePolicy"]["maxReceiveCount"], 20,
        "five times the charge policy's four attempts: the runtime dead-letters first"
    );
    assert_eq!(
        orders["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "OrdersDlqQueue"
    );
    assert_eq!(
        orders["VisibilityTimeout"], 60,
        "six times charge's timeout"
    );
    resource(&t, "OrdersDlqQueue");
    assert_eq!(resource(&t, "OrderPaidTopic")["Type"], "AWS::SNS::Topic");
    for subscriber in ["Inventory", "Notify"] {
        let queue = format!("OrderPaid{subscriber}Queue");
        resource(&t, &queue);
        let subscription =
            &resource(&t, &format!("OrderPaid{subscriber}Subscription"))["Properties"];
        assert_eq!(subscription["TopicArn"]["Ref"], "OrderPaidTopic");
        assert_eq!(subscription["RawMessageDelivery"], true);
        let function =
            &resource(&t, &format!("{subscriber}Function"))["Properties"]["Events"]["Queue"];
        assert_eq!(function["Properties"]["Queue"]["Fn::GetAtt"][0], queue);
    }
    let schedule = &resource(&t, "StockReportFunction")["Properties"]["Events"]["Schedule"];
    assert_eq!(schedule["Properties"]["Schedule"], "cron(* * * * ? *)");

    // Least privilege: each role reaches only what its function declares.
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let read_write = strings(&[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    ]);
    assert_eq!(
        statements(&t, "CheckoutRole"),
        [
            (
                strings(&["sqs:SendMessage", "sqs:GetQueueUrl"]),
                "OrdersQueue".to_owned()
            ),
            (read_write.clone(), "OrdersTable".to_owned())
        ]
    );
    let charge = statements(&t, "ChargeRole");
    let targets: Vec<&str> = charge.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "OrdersQueue",
            "OrdersDlqQueue",
            "OrderPaidTopic",
            "CloudfnIdempotencyTable",
            "OrdersTable"
        ]
    );
    assert_eq!(charge[2].0, ["sns:Publish"]);
    assert_eq!(
        statements(&t, "OrderStatusRole"),
        [(strings(&["dynamodb:GetItem"]), "OrdersTable".to_owned())],
        "order-status only reads orders"
    );

    lint(&out.join("template.yaml"));

    let zip = std::fs::File::open(out.join("bootstrap.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(zip).unwrap();
    let mut bootstrap = zip.by_name("bootstrap").expect("the zip holds bootstrap");
    assert_eq!(bootstrap.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut head = [0u8; 4];
    bootstrap.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"\x7fELF");
    let _ = std::fs::remove_dir_all(out);
}

/// `SHOP_FLOW=orchestrated`: the workflow becomes a state machine whose
/// role may invoke only the step functions; checkout may only start it; the
/// step functions have no event source (only the state machine calls them).
#[test]
fn the_orchestrated_shop_packages_its_workflow_as_a_state_machine() {
    let (t, out) = package_shop_flow("orchestrated");
    let machine = &resource(&t, "OrderStateMachine")["Properties"];
    let mut definition = serde_json::to_string_pretty(&machine["Definition"]).unwrap();
    definition.push('\n');
    golden("shop-order.asl.json", &definition);
    assert_eq!(
        resource(&t, "OrderStateMachine")["Type"],
        "AWS::Serverless::StateMachine"
    );
    assert_eq!(machine["Definition"]["StartAt"], "validate");
    let states = machine["Definition"]["States"].as_object().unwrap();
    for state in [
        "validate",
        "charge",
        "reserve",
        "notify",
        "compensate:charge",
        "compensate:reserve",
    ] {
        assert!(states.contains_key(state), "state {state}: {states:?}");
    }
    assert_eq!(
        machine["DefinitionSubstitutions"]["RefundFunctionArn"]["Fn::GetAtt"][0],
        "RefundFunction"
    );

    let invoked: std::collections::BTreeSet<String> = statements(&t, "OrderStateMachineRole")
        .into_iter()
        .map(|(actions, target)| {
            assert_eq!(actions, ["lambda:InvokeFunction"]);
            target
        })
        .collect();
    let step_functions = [
        "ValidateOrderFunction",
        "ChargeOrderFunction",
        "RefundFunction",
        "ReserveStockFunction",
        "ReleaseStockFunction",
        "NotifyCustomerFunction",
        "OrderFailedFunction",
    ];
    let policy = &resource(&t, "OrderStateMachineRole")["Properties"]["Policies"][0];
    let resources = policy["PolicyDocument"]["Statement"][0]["Resource"]
        .as_array()
        .unwrap();
    let named: std::collections::BTreeSet<&str> = resources
        .iter()
        .map(|r| r["Fn::GetAtt"][0].as_str().unwrap())
        .collect();
    assert_eq!(named, step_functions.into_iter().collect(), "{invoked:?}");
    for function in step_functions {
        let properties = &resource(&t, function)["Properties"];
        assert_eq!(properties["Events"], serde_json::json!({}), "{function}");
    }
    assert!(
        statements(&t, "CheckoutRole").contains(&(
            vec!["states:StartExecution".into()],
            "OrderStateMachine".into()
        )),
        "checkout starts the workflow"
    );
    assert!(
        t["Resources"].get("ChargeFunction").is_none(),
        "no choreographed functions"
    );

    lint(&out.join("template.yaml"));
    let _ = std::fs::remove_dir_all(out);
}

/// Runs cfn-lint (which applies the SAM transform and checks every resource
/// against CloudFormation's schemas) on the template, when the test command
/// installed it.
fn lint(template: &std::path::Path) {
    let linter = match std::env::var("CLOUDFN_TEST_CFN_LINT") {
        Ok(path) if !path.is_empty() => path,
        _ if std::env::var("TEST_INTEGRATION").as_deref() == Ok("1") => {
            panic!("TEST_INTEGRATION=1 but CLOUDFN_TEST_CFN_LINT is unset: run scripts/test")
        }
        _ => {
            eprintln!("SKIPPED cfn-lint: scripts/test installs it and sets CLOUDFN_TEST_CFN_LINT");
            return;
        }
    };
    let out = Command::new(linter)
        .arg(template)
        .output()
        .expect("cfn-lint runs");
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cargo cloudfn package --cloud <cloud>` of the shop run with
/// `SHOP_FLOW=<flow>`, which must succeed: where it wrote, and what it said.
fn package_shop_on(cloud: &str, flow: &str) -> (PathBuf, String) {
    let out = std::env::temp_dir().join(format!(
        "cloudfn-package-{cloud}-{flow}-{}",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-cloudfn"))
        .current_dir(workspace())
        .env("SHOP_FLOW", flow)
        .args(["cloudfn", "package", "--cloud", cloud, "--binary"])
        .arg(shop_binary())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("cargo-cloudfn runs");
    assert!(
        output.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (out, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn package_shop_for_azure(flow: &str) -> PathBuf {
    let (out, said) = package_shop_on("azure", flow);
    assert!(
        said.contains("azuredeploy.json") && said.contains("config-zip"),
        "it says what it wrote and what to run next: {said}"
    );
    out
}

fn read_json(path: &std::path::Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The neutral names behind `format('{0}-<name>', parameters('prefix'))`
/// in the `name`s of `kind`'s resources.
fn prefixed_names(template: &Value, kind: &str) -> std::collections::BTreeSet<String> {
    template["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == kind)
        .map(|r| {
            let name = r["name"].as_str().unwrap();
            let start = name.rfind("format('{0}").expect("a prefixed name") + "format('{0}".len();
            let rest = &name[start..];
            rest[..rest.find('\'').unwrap()]
                .trim_start_matches('-')
                .to_owned()
        })
        .collect()
}

/// `SHOP_FLOW=orchestrated` on Azure: the function app gets the function
/// that runs workflows, fed by its own queue, and the executions' table;
/// the step functions get no binding (the orchestrator calls them).
#[test]
fn the_orchestrated_shop_packages_its_orchestrator_into_the_azure_function_app() {
    let out = package_shop_for_azure("orchestrated");
    let orchestrator = read_json(&out.join("app/cloudfn-workflows/function.json"));
    assert_eq!(orchestrator["bindings"][0]["type"], "queueTrigger");
    assert_eq!(
        orchestrator["bindings"][0]["queueName"],
        "%CLOUDFN_QUEUE_CLOUDFN_WORKFLOWS%"
    );
    for step in ["validate-order", "charge-order", "refund", "order-failed"] {
        assert!(
            !out.join(format!("app/{step}/function.json")).exists(),
            "step function {step} has no binding"
        );
    }
    let t = read_json(&out.join("azuredeploy.json"));
    let queues = prefixed_names(&t, "Microsoft.Storage/storageAccounts/queueServices/queues");
    assert!(
        queues.contains("cloudfn-workflows") && queues.contains("cloudfn-workflows-dead-letter"),
        "{queues:?}"
    );
    let tables = prefixed_names(&t, "Microsoft.Storage/storageAccounts/tableServices/tables");
    assert!(tables.contains("cloudfnexecutions"), "{tables:?}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn the_shop_packages_into_an_azure_function_app_and_arm_template() {
    let out = package_shop_for_azure("choreographed");
    let functions = [
        "checkout",
        "order-status",
        "charge",
        "inventory",
        "notify",
        "stock-report",
    ];

    let host = read_json(&out.join("app/host.json"));
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "handler"
    );
    let auth = |function: &str| {
        read_json(&out.join(format!("app/{function}/function.json")))["bindings"][0]["authLevel"]
            .clone()
    };
    assert_eq!(auth("checkout"), "anonymous", "anyone may order");
    assert_eq!(auth("order-status"), "function", "private: a function key");
    for function in functions {
        assert!(out.join(format!("app/{function}/function.json")).exists());
    }

    let zip = std::fs::File::open(out.join("app.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(zip).unwrap();
    let names: std::collections::BTreeSet<String> = zip
        .file_names()
        .map(|name| name.expect("a readable name").into_owned())
        .collect();
    let mut expected: std::collections::BTreeSet<String> = functions
        .iter()
        .map(|f| format!("{f}/function.json"))
        .collect();
    expected.extend(["host.json".to_owned(), "handler".to_owned()]);
    assert_eq!(
        names, expected,
        "the host's files and the handler, not the example settings"
    );
    let mut handler = zip.by_name("handler").unwrap();
    assert_eq!(handler.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut head = [0u8; 4];
    handler.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"\x7fELF");
    drop(handler);

    let t = read_json(&out.join("azuredeploy.json"));
    assert_eq!(
        t["$schema"],
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    );
    let set = |names: &[&str]| -> std::collections::BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    };
    assert_eq!(
        prefixed_names(&t, "Microsoft.Storage/storageAccounts/queueServices/queues"),
        set(&[
            "orders",
            "orders-dlq",
            "order-paid-inventory",
            "order-paid-inventory-dead-letter",
            "order-paid-notify",
            "order-paid-notify-dead-letter",
            "stock-report-dead-letter",
        ])
    );
    assert_eq!(
        prefixed_names(&t, "Microsoft.Storage/storageAccounts/tableServices/tables"),
        set(&["cloudfnidempotency", "notifications", "orders", "stock"])
    );
    assert_eq!(
        prefixed_names(&t, "Microsoft.ServiceBus/namespaces/topics"),
        set(&["order-paid"])
    );
    let roles: Vec<&str> = t["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
        .map(|r| r["properties"]["description"].as_str().unwrap())
        .collect();
    for role in [
        "Storage Queue Data Message Sender on queue `orders`, for charge, checkout",
        "Storage Queue Data Message Processor on queue `orders`, for charge",
        "Storage Table Data Contributor on store `orders`, for charge, checkout, order-status",
        "Storage Table Data Contributor on store `stock`, for inventory, stock-report",
        "Azure Service Bus Data Sender on topic `order-paid`, for charge",
        "Azure Service Bus Data Receiver on subscription `notify` of topic `order-paid`, for notify",
    ] {
        assert!(roles.contains(&role), "{role} missing from {roles:#?}");
    }
    let _ = std::fs::remove_dir_all(out);
}

/// `SHOP_FLOW=orchestrated` on GCP: the shop's workflow as Google Cloud
/// Workflows YAML, beside the services.
#[test]
fn the_orchestrated_shop_packages_its_workflow_for_google_workflows() {
    let (out, said) = package_shop_on("gcp", "orchestrated");
    assert!(
        said.contains("workflows/ (1 Workflows definitions)"),
        "{said}"
    );
    let yaml = std::fs::read_to_string(out.join("workflows/order.yaml")).unwrap();
    golden("shop-order.workflows.yaml", &yaml);
    // checkout starts executions: it is told the workflow's full name and
    // may start it.
    let checkout = std::fs::read_to_string(out.join("services/checkout.yaml")).unwrap();
    assert!(
        checkout.contains("CLOUDFN_WORKFLOW_ORDER")
            && checkout.contains("projects/${PROJECT}/locations/${REGION}/workflows/shop-order"),
        "{checkout}"
    );
    let script = std::fs::read_to_string(out.join("deploy.sh")).unwrap();
    assert!(script.contains("roles/workflows.invoker"), "{script}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn the_shop_packages_into_cloud_run_services_and_a_deploy_script() {
    let (out, said) = package_shop_on("gcp", "choreographed");
    assert!(
        said.contains("deploy.sh") && said.contains("PROJECT=") && said.contains("REGION="),
        "it says what it wrote and what to run next: {said}"
    );

    let service = |function: &str| -> Value {
        let path = out.join(format!("services/{function}.yaml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    for function in [
        "checkout",
        "order-status",
        "charge",
        "inventory",
        "notify",
        "stock-report",
    ] {
        let yaml = service(function);
        assert_eq!(yaml["metadata"]["name"], format!("shop-{function}"));
        let revision = &yaml["spec"]["template"]["spec"];
        assert_eq!(
            revision["containers"][0]["env"][0]["name"],
            "FUNCTION_TARGET"
        );
        assert_eq!(revision["containers"][0]["env"][0]["value"], function);
        assert_eq!(
            revision["serviceAccountName"],
            format!("shop-{function}@${{PROJECT}}.iam.gserviceaccount.com")
        );
    }
    let ingress = |function: &str| {
        service(function)["metadata"]["annotations"]["run.googleapis.com/ingress"].clone()
    };
    assert_eq!(ingress("checkout"), "all");
    assert_eq!(ingress("charge"), "internal");

    let handler = std::fs::read(out.join("handler")).unwrap();
    assert_eq!(handler, std::fs::read(shop_binary()).unwrap());
    let dockerfile = std::fs::read_to_string(out.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY handler /handler"));

    let script = out.join("deploy.sh");
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let script = std::fs::read_to_string(script).unwrap();
    for line in [
        "on_service shop-checkout allUsers roles/run.invoker",
        "on_service shop-charge \"$(member shop-invoker)\" roles/run.invoker",
        "on_topic shop-orders \"$(member shop-checkout)\" roles/pubsub.publisher",
        "on_topic shop-order-paid \"$(member shop-charge)\" roles/pubsub.publisher",
        "push shop-orders shop-orders unordered shop-charge \\",
        "job shop-stock-report shop-stock-report '* * * * *' 103s",
    ] {
        assert!(script.contains(line), "{line} missing from deploy.sh");
    }
    assert!(
        !script.contains("on_service shop-order-status"),
        "a private function gets no invoker from the deployment"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// `cargo cloudfn executions` reads a running app's workflow executions:
/// the list, then one execution step by step; an unknown one is an error
/// naming it.
#[tokio::test]
async fn executions_shows_an_orchestrated_order_step_by_step() {
    cloudfn_gcp::client::install_tls();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut shop = Command::new(shop_binary())
        .env("PORT", port.to_string())
        .env("SHOP_FLOW", "orchestrated")
        .env("SHOP_CHARGE_FAILURE_RATE", "0")
        .env("CLOUDFN_DATA_DIR", data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        let placed = client
            .post(format!("{url}/orders"))
            .header("content-type", "application/json")
            .body(r#"{"customer":"ada@example.com","items":[{"sku":"BOOK-1","qty":1}]}"#)
            .send()
            .await;
        if let Ok(placed) = placed {
            let body: Value = placed.json().await.unwrap();
            break body["id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the shop never answered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let executions = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cargo-cloudfn"))
            .args(["cloudfn", "executions", "--url", &url])
            .args(args)
            .output()
            .expect("cargo-cloudfn runs")
    };
    let listed = loop {
        let out = executions(&[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!("finished  {id}")) {
            break text;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "never finished: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(listed.starts_with("order:"), "{listed}");
    let shown = executions(&["order", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("Succeeded"), "{shown}");
    for step in ["validate", "charge", "reserve", "notify"] {
        assert!(
            shown
                .lines()
                .any(|l| l.trim_start().starts_with(step) && l.ends_with("done")),
            "{step}: {shown}"
        );
    }
    let unknown = executions(&["order", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no execution `nope`"),
        "{unknown:?}"
    );
    let _ = shop.kill();
    let _ = shop.wait();
}
