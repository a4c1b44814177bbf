//! Routing an HTTP request to the app's HTTP function, shared by every provider.

use std::{collections::BTreeMap, sync::Arc};

use crate::{Context, Error, Function, HttpRequest, HttpResponse, Method, Trigger, invoke::Invoke};

/// A route table: `(method, route)` pairs, `{name}` parameters and
/// `{*tail}` wildcards included, each leading to a target `T` (a function,
/// or a function's name where only the spec is at hand).
#[derive(Clone)]
pub struct Routes<T> {
    table: matchit::Router<Vec<(Method, usize)>>,
    targets: Vec<T>,
}

/// Where a request goes.
pub enum Route<'a, T> {
    /// To this target, with these route parameters (percent-decoded).
    Matched {
        /// The target.
        target: &'a T,
        /// The route's parameters.
        params: BTreeMap<String, String>,
    },
    /// The path exists but not for this method.
    MethodNotAllowed {
        /// The methods it answers.
        allowed: Vec<Method>,
    },
    /// No route matches the path.
    NotFound,
}

impl<T> Routes<T> {
    /// A table of `(name, method, route, target)` entries; `name` names the
    /// entry in errors. Two routes that cannot be told apart are an error
    /// naming both.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a str, Method, &'a str, T)>,
    ) -> Result<Self, Error> {
        let mut by_route: BTreeMap<&str, Vec<(Method, usize)>> = BTreeMap::new();
        let mut names = Vec::new();
        let mut targets = Vec::new();
        for (name, method, route, target) in entries {
            if !route.starts_with('/') {
                return Err(Error::invalid(format!(
                    "route `{route}` of function `{name}` must start with `/`"
                )));
            }
            let entry = by_route.entry(route).or_default();
            if let Some((_, other)) = entry
                .iter()
                .find(|(m, _)| *m == method || *m == Method::Any || method == Method::Any)
            {
                return Err(Error::invalid(format!(
                    "functions `{}` and `{name}` both answer {method} {route}",
                    names[*other]
                )));
            }
            entry.push((method, targets.len()));
            names.push(name);
            targets.push(target);
        }
        let mut table = matchit::Router::new();
        for (route, entries) in by_route {
            table.insert(route, entries).map_err(|e| {
                Error::invalid(format!("route `{route}` conflicts with another: {e}"))
            })?;
        }
        Ok(Self { table, targets })
    }

    /// Finds the target for `method` and `path`.
    pub fn route(&self, method: &http::Method, path: &str) -> Route<'_, T> {
        let Ok(found) = self.table.at(path) else {
            return Route::NotFound;
        };
        match found.value.iter().find(|(m, _)| m.matches(method)) {
            Some((_, index)) => Route::Matched {
                target: &self.targets[*index],
                // Decoded one by one, so an encoded `/` stays inside its segment.
                params: found
                    .params
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_owned(),
                            percent_encoding::percent_decode_str(v)
                                .decode_utf8_lossy()
                                .into_owned(),
                        )
                    })
                    .collect(),
            },
            None => Route::MethodNotAllowed {
                allowed: found.value.iter().map(|(m, _)| *m).collect(),
            },
        }
    }
}

/// The answer for a request no route takes: 404, or 405 with `Allow`.
pub fn unrouted<T>(
    route: &Route<'_, T>,
    method: &http::Method,
    path: &str,
) -> Option<HttpResponse> {
    match route {
        Route::Matched { .. } => None,
        Route::MethodNotAllowed { allowed } => {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            Some(
                HttpResponse::from_error(&Error::new(
                    crate::ErrorKind::MethodNotAllowed,
                    format!("{method} is not allowed on {path}"),
                ))
                .with_header("allow", &allow.join(", ")),
            )
        }
        Route::NotFound => Some(HttpResponse::from_error(&Error::not_found(format!(
            "no route for {path}"
        )))),
    }
}

/// The app's HTTP routes, leading to its HTTP functions.
#[derive(Clone)]
pub struct HttpRouter {
    routes: Routes<Arc<Function>>,
}

impl HttpRouter {
    /// The routes of every HTTP function in `functions`.
    pub fn new(functions: &[Arc<Function>]) -> Result<Self, Error> {
        let entries = functions.iter().filter_map(|f| match f.trigger() {
            Trigger::Http { method, route } => Some((f.name(), *method, route.as_str(), f.clone())),
            _ => None,
        });
        Ok(Self {
            routes: Routes::new(entries)?,
        })
    }

    /// Finds the function for `method` and `path`.
    pub fn route(&self, method: &http::Method, path: &str) -> Route<'_, Arc<Function>> {
        self.routes.route(method, path)
    }

    /// Routes and runs `request`, always answering: 404 for an unknown path,
    /// 405 with `Allow` for a known path with the wrong method, else the
    /// function's response. `context` builds the invocation's context once the
    /// function is known.
    pub async fn handle(
        &self,
        mut request: HttpRequest,
        context: impl FnOnce(&Function) -> Context,
    ) -> HttpResponse {
        let route = self.route(&request.method, &request.path);
        if let Some(response) = unrouted(&route, &request.method, &request.path) {
            return response;
        }
        let Route::Matched { target, params } = route else {
            unreachable!("unrouted answers every other case")
        };
        request.path_params = params;
        let ctx = context(target);
        target.invoke_http(request, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok(_: HttpRequest, _: Context) -> Result<HttpResponse, Error> {
        Ok(HttpResponse::new(200))
    }

    fn router(functions: Vec<Function>) -> Result<HttpRouter, Error> {
        HttpRouter::new(&functions.into_iter().map(Arc::new).collect::<Vec<_>>())
    }

    #[test]
    fn routes_by_method_and_extracts_params() {
        let r = router(vec![
            Function::http("create", Method::Post, "/orders", ok),
            Function::http("show", Method::Get, "/orders/{id}", ok),
            Function::http("files", Method::Any, "/files/{*path}", ok),
        ])
        .unwrap();
        match r.route(&http::Method::GET, "/orders/o%201%2F2") {
            Route::Matched { target, params } => {
                assert_eq!(target.name(), "show");
                assert_eq!(params["id"], "o 1/2");
            }
            _ => panic!("GET /orders/o-1 should match"),
        }
        match r.route(&http::Method::DELETE, "/files/a/b.txt") {
            Route::Matched { params, .. } => assert_eq!(params["path"], "a/b.txt"),
            _ => panic!("tail route should match"),
        }
        assert!(matches!(
            r.route(&http::Method::GET, "/orders"),
            Route::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            r.route(&http::Method::GET, "/nope"),
            Route::NotFound
        ));
    }

    #[test]
    fn duplicate_and_conflicting_routes_are_refused() {
        let err = router(vec![
            Function::http("a", Method::Get, "/x", ok),
            Function::http("b", Method::Get, "/x", ok),
        ])
        .err()
        .unwrap();
        assert!(err.message().contains("`a` and `b`"), "{err}");
        let err = router(vec![
            Function::http("a", Method::Get, "/x/{id}", ok),
            Function::http("b", Method::Get, "/x/{name}", ok),
        ])
        .err()
        .unwrap();
        assert!(err.message().contains("conflicts"), "{err}");
        let err = router(vec![Function::http("a", Method::Get, "x", ok)])
            .err()
            .unwrap();
        assert!(err.message().contains("must start with `/`"), "{err}");
    }
}
