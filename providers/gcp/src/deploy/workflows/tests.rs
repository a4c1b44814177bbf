use std::collections::BTreeMap;

use cloudfn_core::workflow::{
    Choice,
    fixture::{FUNCTIONS, every_kind_of_step},
};

use super::*;
use crate::deploy::{
    DATASTORE_USER, Member, PUBSUB_PUBLISHER, RUN_INVOKER, Resource, WORKFLOWS_INVOKER,
    deploy_script, grants, knative_service, plan,
    tests::{shop, shop_app},
};

/// The definition every rendering is checked against, as Workflows reads
/// it; `UPDATE_GOLDEN=1` writes it anew.
const GOLDEN: &str = "tests/fixtures/order.workflows.yaml";

fn render(flow: Workflow) -> Result<Value, Error> {
    let spec = shop(flow.clone());
    workflow_definition(&flow, &plan(&spec, "shop")?)
}

fn order() -> Value {
    render(every_kind_of_step()).unwrap()
}

/// Every named step of `value`, wherever it sits: in a subworkflow, a
/// `try`, an `except`, a `switch` case or a parallel branch.
fn named_steps(value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, entry) in mapping {
                if matches!(key.as_str(), Some("steps" | "branches"))
                    && let Value::Sequence(items) = entry
                {
                    for item in items {
                        if let Value::Mapping(one) = item
                            && let Some((name, body)) = one.iter().next()
                        {
                            let name = name.as_str().unwrap().to_owned();
                            assert!(
                                out.insert(name.clone(), body.clone()).is_none(),
                                "step `{name}` is named twice"
                            );
                        }
                    }
                }
                named_steps(entry, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| named_steps(item, out)),
        _ => {}
    }
}

fn steps_of(definition: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    named_steps(definition, &mut out);
    out
}

/// The steps of a `steps:` list, by name, in order.
fn list(steps: &Value) -> Vec<(&str, &Value)> {
    steps
        .as_sequence()
        .unwrap()
        .iter()
        .map(|item| {
            let (name, body) = item.as_mapping().unwrap().iter().next().unwrap();
            (name.as_str().unwrap(), body)
        })
        .collect()
}

#[test]
fn the_fixture_renders_as_the_golden_definition() {
    let spec = shop(every_kind_of_step());
    let yaml = workflow_yaml(&every_kind_of_step(), &plan(&spec, "shop").unwrap()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        golden == yaml,
        "{GOLDEN} differs from the rendering (UPDATE_GOLDEN=1 writes it):\n{yaml}"
    );
    // YAML that reads back as what was rendered.
    let read: Value = serde_norway::from_str(&golden).unwrap();
    assert_eq!(read, order());
}

#[test]
fn every_step_retry_and_catch_of_the_fixture_survives() {
    let flow = every_kind_of_step();
    let definition = order();
    let steps = steps_of(&definition);
    for neutral in flow.all_steps() {
        let name = identifier(&neutral.name);
        let body = steps
            .get(&name)
            .unwrap_or_else(|| panic!("no step `{name}`"));
        match &neutral.action {
            Action::Call { function } => {
                let call = steps
                    .values()
                    .find(|s| {
                        s["call"] == "http.post" && s["args"]["body"]["step"] == *neutral.name
                    })
                    .unwrap_or_else(|| panic!("no call of step `{}`", neutral.name));
                assert_eq!(
                    call["args"]["url"],
                    format!("${{sys.get_env(\"{}\")}}", url_variable(function))
                );
                assert_eq!(call["args"]["auth"]["type"], "OIDC");
                assert_eq!(call["args"]["body"]["input"], "${value}");
            }
            Action::Send { .. } | Action::Publish { .. } => {
                let id = format!("${{{EXECUTION} + \"/{}\"}}", neutral.name);
                assert!(
                    steps.values().any(|s| {
                        s["call"] == "googleapis.pubsub.v1.projects.topics.publish"
                            && s["args"]["body"]["messages"][0]["attributes"][PUBLISHED_ID] == *id
                    }),
                    "no publish of step `{}`",
                    neutral.name
                );
            }
            _ => {}
        }
        match &neutral.retry {
            Some(policy) => {
                let retry = &body["retry"];
                assert_eq!(retry["predicate"], "${cloudfn_retryable}");
                assert_eq!(retry["max_retries"], policy.max_attempts - 1);
                assert_eq!(
                    retry["backoff"]["initial_delay"],
                    policy.initial_delay.as_secs()
                );
                assert_eq!(retry["backoff"]["max_delay"], policy.max_delay.as_secs());
            }
            None => assert!(body.get("retry").is_none(), "`{name}` retries"),
        }
        if neutral.catch.is_empty() {
            assert!(body.get("except").is_none(), "`{name}` catches");
            continue;
        }
        let except = &body["except"];
        assert_eq!(except["as"], "e");
        let (_, switch) = list(&except["steps"])[1];
        let cases = switch["switch"].as_sequence().unwrap();
        assert_eq!(
            cases.len(),
            neutral.catch.len() + 1,
            "and one passing it on"
        );
        assert_eq!(cases.last().unwrap()["raise"], "${e}");
        for (catch, case) in neutral.catch.iter().zip(cases) {
            let handled = list(&case["steps"]);
            assert_eq!(
                handled[1].0,
                identifier(&catch.steps[0].name),
                "the catch's steps run after `error` joins the input"
            );
        }
    }
    let reserve = &steps["reserve"]["except"]["steps"];
    let case = &list(reserve)[1].1["switch"][0];
    assert_eq!(case["condition"], r#"${error.kind in ["conflict"]}"#);
    let caught = list(&case["steps"])[0].1;
    assert_eq!(
        caught["switch"][0]["steps"][0]["reserve_error"]["assign"][0]["value[\"error\"]"],
        "${error}"
    );
}

#[test]
fn a_call_posts_the_step_call_and_counts_its_attempts_when_it_retries() {
    let steps = steps_of(&order());
    let validate = &steps["validate"];
    assert_eq!(validate["call"], "http.post");
    assert_eq!(validate["args"]["body"]["workflow"], "order");
    assert_eq!(
        validate["args"]["body"]["execution"],
        "${sys.get_env(\"GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID\")}"
    );
    assert_eq!(validate["args"]["body"]["attempt"], 1);
    assert_eq!(validate["args"]["timeout"], 40, "the service's timeout");
    assert_eq!(validate["result"], "response");
    assert_eq!(
        steps["validate_output"]["assign"][0]["value"],
        "${response.body}"
    );
    let charge = list(&steps["charge"]["try"]["steps"]);
    assert_eq!(charge[0].1["assign"][0]["attempt"], "${attempt + 1}");
    assert_eq!(charge[1].1["args"]["body"]["attempt"], "${attempt}");
    assert_eq!(charge[2].1["assign"][1]["done_charge"], true);
    assert_eq!(steps["charge_attempts"]["assign"][0]["attempt"], 0);
}

#[test]
fn sends_and_publishes_go_to_the_topics_of_the_plan() {
    let steps = steps_of(&order());
    let topic = |step: &str| steps[step]["args"]["topic"].as_str().unwrap().to_owned();
    assert_eq!(
        topic("backorder"),
        r#"${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/topics/shop-backorders"}"#
    );
    assert!(topic("rush").ends_with(r#"+ "/topics/shop-rush-orders"}"#));
    assert!(topic("announce").ends_with(r#"+ "/topics/shop-order-paid"}"#));
    assert_eq!(
        steps["rush"]["args"]["body"]["messages"][0]["data"],
        "${base64.encode(json.encode(value))}"
    );
    // A topic only the workflow publishes to is in the spec, so it is made too.
    let own = Workflow::new("order")
        .step(Step::call("validate", "validate-order"))
        .step(Step::publish("shout", "nobody-listens"));
    let rendered = render(own).unwrap();
    let text = serde_norway::to_string(&rendered).unwrap();
    assert!(text.contains("/topics/shop-nobody-listens"), "{text}");
}

#[test]
fn waits_choices_and_the_end() {
    let steps = steps_of(&order());
    assert_eq!(steps["settle"]["call"], "sys.sleep");
    assert_eq!(steps["settle"]["args"]["seconds"], 30);
    assert_eq!(steps["express_field_1"]["call"], "cloudfn_field");
    assert_eq!(
        steps["express_field_1"]["args"]["path"],
        Value::Sequence(vec!["shipping".into()])
    );
    let cases = steps["express"]["switch"].as_sequence().unwrap();
    assert_eq!(cases[0]["condition"], r#"${field_1 == "express"}"#);
    assert_eq!(list(&cases[0]["steps"])[0].0, "rush");
    assert_eq!(cases[1]["condition"], true);
    assert_eq!(list(&cases[1]["steps"])[0].0, "settle");
    assert_eq!(steps["done"]["return"], "${value}");

    let nested = Workflow::new("order").step(Step::choice(
        "route",
        Choice::new()
            .when(
                Condition::exists("order.id")
                    .and(Condition::greater_than("order.total", 2.5).negate()),
                [],
            )
            .when(
                Condition::less_than("n", 0.0).or(Condition::equals("flag", true)),
                [Step::fail("odd", "odd", "${not} an expression")],
            ),
    ));
    let steps = steps_of(&render(nested).unwrap());
    let cases = steps["route"]["switch"].as_sequence().unwrap();
    assert_eq!(cases.len(), 2, "no `otherwise`, no default case");
    assert_eq!(
        cases[0]["condition"],
        r#"${(field_1 != null) and (not (if(get_type(field_2) in ["integer", "double"], field_2, 2.5) > 2.5))}"#
    );
    assert_eq!(
        list(&cases[0]["steps"])[0].1["assign"][0]["value"],
        "${value}",
        "an empty branch changes nothing"
    );
    assert_eq!(
        cases[1]["condition"],
        r#"${(if(get_type(field_3) in ["integer", "double"], field_3, 0) < 0) or (field_4 == true)}"#
    );
    assert_eq!(
        steps["odd"]["raise"],
        serde_norway::from_str::<Value>(
            r#"{kind: invalid, message: '${"odd: ${not} an expression"}'}"#
        )
        .unwrap(),
        "text that looks like an expression stays text"
    );
    let object = Workflow::new("order").step(Step::choice(
        "route",
        Choice::new().when(Condition::equals("a", serde_json::json!({"b": 1})), []),
    ));
    assert!(render(object).unwrap_err().message().contains("not with"));
}

#[test]
fn parallel_branches_are_subworkflows_whose_outputs_keep_branch_order() {
    let definition = order();
    let steps = steps_of(&definition);
    assert_eq!(
        steps["tell_start"]["assign"][0]["branch_outputs"],
        Value::Sequence(vec![Value::Null, Value::Null])
    );
    let parallel = &steps["tell"]["parallel"];
    assert_eq!(
        parallel["shared"],
        Value::Sequence(vec!["branch_outputs".into(), "branch_failures".into()])
    );
    let branches = list(&parallel["branches"]);
    assert_eq!(branches.len(), 2);
    let run = list(&branches[1].1["steps"])[0].1;
    let work = list(&run["try"]["steps"]);
    assert_eq!(work[0].1["call"], "tell_branch_2");
    assert_eq!(
        work[1].1["assign"][0]["branch_outputs[1]"],
        "${branch_output}"
    );
    assert_eq!(
        list(&run["except"]["steps"])[0].1["assign"][0]["branch_failures[1]"],
        "${branch_error}"
    );
    assert_eq!(
        steps["tell_failed"]["switch"][0]["raise"],
        "${branch_failures[0]}"
    );
    assert_eq!(
        steps["tell_output"]["assign"][0]["value"],
        "${branch_outputs}"
    );
    let branch = &definition["tell_branch_1"];
    assert_eq!(branch["params"], Value::Sequence(vec!["value".into()]));
    let inner = list(&branch["steps"]);
    assert_eq!(inner[0].0, "email");
    assert_eq!(inner.last().unwrap().1["return"], "${value}");

    let wide = Workflow::new("order").step(Step::parallel(
        "fan",
        (0..11).map(|i| vec![Step::call(format!("n{i}"), "notify")]),
    ));
    assert!(render(wide).unwrap_err().message().contains("10 branches"));
    let deep = |depth: usize| {
        let mut steps = vec![Step::call("leaf", "notify")];
        for level in 0..depth {
            steps = vec![Step::parallel(format!("p{level}"), [steps])];
        }
        Workflow::new("order").step(steps.remove(0))
    };
    assert!(render(deep(2)).is_ok());
    assert!(render(deep(3)).unwrap_err().message().contains("2 deep"));
}

#[test]
fn an_uncaught_failure_undoes_the_done_steps_latest_first_then_fails() {
    let definition = order();
    let main = list(&definition["main"]["steps"]);
    let init = &main[0].1["assign"];
    assert_eq!(init[0]["value"], "${input}");
    assert_eq!(init[1]["done_charge"], false);
    assert_eq!(init[2]["done_reserve"], false);
    let undo = list(&main[1].1["except"]["steps"]);
    let names: Vec<&str> = undo.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["failure", "undo_reserve", "undo_charge", "failed"]);
    assert_eq!(undo[0].1["call"], "cloudfn_error");
    let reserve = &undo[1].1["switch"][0];
    assert_eq!(reserve["condition"], "${done_reserve}");
    let guard = list(&reserve["steps"])[1].1;
    let call = list(&guard["try"]["steps"])[1].1;
    assert_eq!(call["args"]["body"]["step"], "compensate:reserve");
    assert_eq!(call["args"]["body"]["input"], "${value}");
    assert_eq!(
        call["args"]["url"],
        "${sys.get_env(\"CLOUDFN_URL_RELEASE_STOCK\")}"
    );
    assert_eq!(guard["retry"]["max_retries"], 2, "the default policy");
    assert_eq!(
        list(&guard["except"]["steps"])[0].1["call"],
        "sys.log",
        "a failed compensation does not stop the others"
    );
    assert_eq!(undo[3].1["raise"], "${failure}");
    assert_eq!(main[2].1["return"], "${value}");
}

#[test]
fn failures_are_read_as_kinds_and_only_retryable_ones_are_retried() {
    let definition = order();
    let retryable = list(&definition["cloudfn_retryable"]["steps"]);
    assert_eq!(
        retryable[1].1["return"],
        r#"${error.kind in ["throttled", "timeout", "unavailable", "internal"]}"#
    );
    let classify = list(&definition["cloudfn_error"]["steps"])
        .into_iter()
        .find(|(name, _)| *name == "classify")
        .unwrap()
        .1["switch"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|case| {
            (
                case["condition"].as_str().unwrap().to_owned(),
                case["return"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>();
    for (condition, kind) in [
        ("${code == 400}", "bad_input"),
        ("${code in [401, 403]}", "forbidden"),
        ("${code == 404}", "not_found"),
        ("${code in [409, 412]}", "conflict"),
        ("${code == 413}", "too_large"),
        (
            "${code in [408, 429] or (code >= 500 and code <= 599)}",
            "unavailable",
        ),
        (r#"${"TimeoutError" in tags}"#, "timeout"),
    ] {
        assert!(
            classify.contains(&(condition.to_owned(), kind.to_owned())),
            "{condition} → {kind} not in {classify:#?}"
        );
    }
    // The kind a function answered comes before its status.
    assert_eq!(classify[1].1, "${answered}");
}

#[test]
fn neutral_names_are_workflows_names_and_never_clash() {
    assert_eq!(identifier("charge-card"), "charge_card");
    assert_eq!(identifier("1st"), "step_1st");
    let flow = Workflow::new("order")
        .step(Step::call("a-b", "notify"))
        .step(Step::call("a_b", "notify"))
        .step(Step::call("run", "notify"))
        .step(Step::call("classify", "notify"));
    let steps = steps_of(&render(flow).unwrap());
    for name in ["a_b", "a_b_2", "run_2", "run", "classify_2", "classify"] {
        assert!(steps.contains_key(name), "no `{name}`");
    }
    assert_eq!(steps["a_b_2"]["args"]["body"]["step"], "a_b");
    assert_eq!(url_variable("charge-card"), "CLOUDFN_URL_CHARGE_CARD");
}

#[test]
fn the_workflow_may_invoke_only_its_step_functions_and_publish_only_to_its_topics() {
    let spec = shop(every_kind_of_step());
    let plan = plan(&spec, "shop").unwrap();
    let flow = plan.flow("order").unwrap();
    assert_eq!(flow.name, "shop-order");
    assert_eq!(flow.account, "shop-workflow-order");
    let grants = grants(&spec, &plan).unwrap();
    let held = |member: &Member, role: &str| -> Vec<Resource> {
        grants
            .iter()
            .filter(|g| &g.member == member && g.role == role)
            .map(|g| g.resource.clone())
            .collect()
    };
    let workflow = Member::Workflow("order".into());
    let mut services: Vec<Resource> = FUNCTIONS
        .iter()
        .map(|f| Resource::Service(format!("shop-{f}")))
        .collect();
    services.sort();
    assert_eq!(held(&workflow, RUN_INVOKER), services);
    assert_eq!(
        held(&workflow, PUBSUB_PUBLISHER),
        ["shop-backorders", "shop-order-paid", "shop-rush-orders"]
            .map(|t| Resource::Topic(t.into()))
    );
    assert!(
        grants.iter().filter(|g| g.member == workflow).count() == 9,
        "nothing else"
    );
    assert!(
        held(&Member::Invoker, RUN_INVOKER)
            .iter()
            .all(|s| !services.contains(s)),
        "the app's invoker calls no step function"
    );
}

#[test]
fn the_script_deploys_the_workflow_with_its_urls_after_the_services() {
    let spec = shop(every_kind_of_step());
    let plan = plan(&spec, "shop").unwrap();
    let script = deploy_script(&spec, &plan, "0123456789abcdef").unwrap();
    let joined = script.replace("\\\n", "");
    let line = joined
        .lines()
        .find(|l| l.starts_with("workflow "))
        .expect("a workflow line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[..4],
        [
            "workflow",
            "shop-order",
            "order.yaml",
            "shop-workflow-order"
        ]
    );
    assert_eq!(words.len(), 4 + FUNCTIONS.len());
    assert!(words.contains(&"CLOUDFN_URL_CHARGE_CARD=shop-charge-card"));
    assert!(words.contains(&"CLOUDFN_URL_REFUND=shop-refund"));
    assert!(script.contains("workflows.googleapis.com"));
    assert!(script.contains("\naccount shop-workflow-order 'cloudfn shop: workflow order'\n"));
    assert!(
        script
            .contains("on_service shop-refund \"$(member shop-workflow-order)\" roles/run.invoker")
    );
    assert!(script.contains(
        "on_topic shop-backorders \"$(member shop-workflow-order)\" roles/pubsub.publisher"
    ));
    assert!(script.contains("--set-env-vars=$(IFS=,; echo \"${urls[*]}\")"));
    let at = |text: &str| script.find(text).unwrap_or_else(|| panic!("no {text}"));
    assert!(at("\naccount shop-workflow-order ") < at("\non_topic shop-backorders "));
    assert!(at("\ndeploy_service refund.yaml") < at("\non_service shop-refund "));
    assert!(at("\non_service shop-refund ") < at("\nworkflow shop-order "));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deploy.sh");
    std::fs::write(&path, &script).unwrap();
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
    if let Ok(out) = std::process::Command::new("shellcheck").arg(&path).output() {
        assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[ignore = "prints the deploy script of the shop"]
fn print_the_script() {
    let spec = shop(every_kind_of_step());
    print!(
        "{}",
        deploy_script(&spec, &plan(&spec, "shop").unwrap(), "tag").unwrap()
    );
}

/// A function that starts a workflow is told the workflow's full name
/// (project and region filled in by the script), may start executions and
/// claim ids in the executions collection; the others are told nothing.
#[test]
fn a_function_that_starts_a_workflow_is_told_its_name_and_may_start_it() {
    async fn place(
        _: cloudfn_core::HttpRequest,
        _: cloudfn_core::Context,
    ) -> Result<cloudfn_core::HttpResponse, Error> {
        Ok(cloudfn_core::HttpResponse::new(202))
    }
    let spec = shop_app(every_kind_of_step())
        .function(
            cloudfn_core::Function::http("place", cloudfn_core::Method::Post, "/orders", place)
                .starts_workflow("order"),
        )
        .spec()
        .with_recorded_starts();
    let plan = plan(&spec, "shop").unwrap();
    let env = |function: &str| -> BTreeMap<String, String> {
        let service = plan
            .services
            .iter()
            .find(|s| s.function == function)
            .unwrap();
        let yaml = knative_service(&spec, &plan, service);
        yaml["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
                (text(&e["name"]), text(&e["value"]))
            })
            .collect()
    };
    let flow = plan.flow("order").unwrap();
    assert_eq!(
        env("place")["CLOUDFN_WORKFLOW_ORDER"],
        format!(
            "projects/${{PROJECT}}/locations/${{REGION}}/workflows/{}",
            flow.name
        )
    );
    assert!(env("place").contains_key("CLOUDFN_STORE_COLLECTION_CLOUDFN_EXECUTIONS"));
    assert!(!env("charge-card").contains_key("CLOUDFN_WORKFLOW_ORDER"));

    let grants = grants(&spec, &plan).unwrap();
    let roles_of_place: Vec<&str> = grants
        .iter()
        .filter(|g| g.member == Member::Function("place".into()) && g.resource == Resource::Project)
        .map(|g| g.role)
        .collect();
    assert_eq!(roles_of_place, [DATASTORE_USER, WORKFLOWS_INVOKER]);
    let script = deploy_script(&spec, &plan, "t").unwrap();
    assert!(
        script.contains("workflowexecutions.googleapis.com"),
        "{script}"
    );
    assert!(script.contains("s|[$]{REGION}|"), "services get the region");
}
