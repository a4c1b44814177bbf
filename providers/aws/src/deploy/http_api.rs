//! The app's HTTP API: one API Gateway HTTP API for every HTTP function,
//! private (IAM) by default, JWT authorizers as declared, throttled.

use std::collections::BTreeSet;

use cloudfn_core::{Access, FunctionSpec, Method, Trigger};
use serde_json::{Map, Value, json};

use super::{Renderer, cfn::reference, function::api_path};

/// The HTTP API's logical id.
pub(super) const HTTP_API: &str = "HttpApi";

impl Renderer<'_> {
    /// The HTTP API, if any function answers HTTP: IAM is the default
    /// authorizer, so a route is private unless its function is public;
    /// every route is throttled.
    pub(super) fn http_api(&mut self) {
        let http: Vec<&FunctionSpec> = self
            .spec
            .functions
            .iter()
            .filter(|f| matches!(f.trigger, Trigger::Http { .. }))
            .collect();
        if http.is_empty() {
            return;
        }
        let mut authorizers = Map::new();
        for (name, issuer, audience) in jwt_authorizers(&http) {
            authorizers.insert(
                name,
                json!({
                    "IdentitySource": "$request.header.Authorization",
                    "JwtConfiguration": { "issuer": issuer, "audience": audience },
                }),
            );
        }
        let mut auth = json!({ "EnableIamAuthorizer": true, "DefaultAuthorizer": "AWS_IAM" });
        if !authorizers.is_empty() {
            auth["Authorizers"] = Value::Object(authorizers);
        }
        self.resources.insert(
            HTTP_API.into(),
            json!({
                "Type": "AWS::Serverless::HttpApi",
                "Properties": {
                    "Auth": auth,
                    "DefaultRouteSettings": {
                        "ThrottlingBurstLimit": self.options.throttle_burst,
                        "ThrottlingRateLimit": self.options.throttle_rate,
                    },
                }
            }),
        );
    }
}

/// One JWT authorizer per distinct issuer and audience, named `Jwt1`,
/// `Jwt2`… in a stable order.
fn jwt_authorizers(functions: &[&FunctionSpec]) -> Vec<(String, String, Vec<String>)> {
    let distinct: BTreeSet<(&String, &Vec<String>)> = functions
        .iter()
        .filter_map(|f| match &f.policy.access {
            Access::Jwt { issuer, audience } => Some((issuer, audience)),
            _ => None,
        })
        .collect();
    distinct
        .into_iter()
        .enumerate()
        .map(|(i, (issuer, audience))| (format!("Jwt{}", i + 1), issuer.clone(), audience.clone()))
        .collect()
}

/// The `HttpApi` event of an HTTP function, on the app's HTTP API with the
/// function's access.
pub(super) fn http_event(function: &FunctionSpec, all: &[FunctionSpec]) -> Option<Value> {
    let Trigger::Http { method, route } = &function.trigger else {
        return None;
    };
    let method = match method {
        Method::Any => "ANY".to_owned(),
        other => other.as_str().to_lowercase(),
    };
    let authorizer = match &function.policy.access {
        Access::Private => "AWS_IAM".to_owned(),
        Access::Public => "NONE".to_owned(),
        Access::Jwt { issuer, audience } => {
            let http: Vec<&FunctionSpec> = all.iter().collect();
            jwt_authorizers(&http)
                .into_iter()
                .find(|(_, i, a)| i == issuer && a == audience)
                .map(|(name, ..)| name)
                .unwrap_or_default()
        }
    };
    Some(json!({
        "Type": "HttpApi",
        "Properties": {
            "ApiId": reference(HTTP_API),
            "Path": api_path(route),
            "Method": method,
            "Auth": { "Authorizer": authorizer },
        }
    }))
}
