//! Routing an HTTP request to the app's HTTP function, shared by every provider.

use std::{collections::BTreeMap, sync::Arc};

use crate::{Context, Error, Function, HttpRequest, HttpResponse, Method, Trigger};

/// The app's HTTP routes, `{name}` parameters and `{*tail}` wildcards included.
#[derive(Clone)]
pub struct HttpRouter {
    routes: matchit::Router<Vec<(Method, usize)>>,
    functions: Vec<Arc<Function>>,
}

/// Where a request goes.
pub enum Route<'a> {
    /// To this function, with these route parameters.
    Matched {
        /// The function.
        function: &'a Arc<Function>,
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

impl HttpRouter {
    /// The routes of every HTTP function in `functions`; two routes that
    /// cannot be told apart are an error naming both.
    pub fn new(functions: &[Arc<Function>]) -> Result<Self, Error> {
        let mut by_route: BTreeMap<&str, Vec<(Method, usize)>> = BTreeMap::new();
        let mut http_functions = Vec::new();
        for function in functions {
            if let Trigger::Http { method, route } = function.trigger() {
                if !route.starts_with('/') {
                    return Err(Error::invalid(format!(
                        "route `{route}` of function `{}` must start with `/`",
                        function.name()
                    )));
                }
                let entries = by_route.entry(route.as_str()).or_default();
                if let Some((_, other)) = entries
                    .iter()
                    .find(|(m, _)| *m == *method || *m == Method::Any || *method == Method::Any)
                {
                    let other: &Arc<Function> = &http_functions[*other];
                    return Err(Error::invalid(format!(
                        "functions `{}` and `{}` both answer {method} {route}",
                        other.name(),
                        function.name()
                    )));
                }
                entries.push((*method, http_functions.len()));
                http_functions.push(function.clone());
            }
        }
        let mut routes = matchit::Router::new();
        for (route, entries) in by_route {
            routes.insert(route, entries).map_err(|e| {
                Error::invalid(format!("route `{route}` conflicts with another: {e}"))
            })?;
        }
        Ok(Self {
            routes,
            functions: http_functions,
        })
    }

    /// Finds the function for `method` and `path`.
    pub fn route(&self, method: &http::Method, path: &str) -> Route<'_> {
        let Ok(found) = self.routes.at(path) else {
            return Route::NotFound;
        };
        match found.value.iter().find(|(m, _)| m.matches(method)) {
            Some((_, index)) => Route::Matched {
                function: &self.functions[*index],
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

    /// Routes and runs `request`, always answering: 404 for an unknown path,
    /// 405 with `Allow` for a known path with the wrong method, else the
    /// function's response. `context` builds the invocation's context once the
    /// function is known.
    pub async fn handle(
        &self,
        mut request: HttpRequest,
        context: impl FnOnce(&Function) -> Context,
    ) -> HttpResponse {
        match self.route(&request.method, &request.path) {
            Route::Matched { function, params } => {
                request.path_params = params;
                let ctx = context(function);
                function.invoke_http(request, ctx).await
            }
            Route::MethodNotAllowed { allowed } => {
                let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                HttpResponse::from_error(&Error::new(
                    crate::ErrorKind::MethodNotAllowed,
                    format!("{} is not allowed on {}", request.method, request.path),
                ))
                .with_header("allow", &allow.join(", "))
            }
            Route::NotFound => HttpResponse::from_error(&Error::not_found(format!(
                "no route for {}",
                request.path
            ))),
        }
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
            Route::Matched { function, params } => {
                assert_eq!(function.name(), "show");
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
