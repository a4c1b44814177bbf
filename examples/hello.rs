//! The smallest cloudfn app: one HTTP function, on any provider.
//!
//! ```sh
//! cargo run --example hello                      # local: curl 'http://127.0.0.1:3000/hello?name=ada'
//! cargo cloudfn package --cloud aws --example hello   # a Lambda package (target/cloudfn/aws)
//! ```

#![forbid(unsafe_code)]

use cloudfn::{App, Context, Error, Function, HttpRequest, HttpResponse, Method};

async fn hello(req: HttpRequest, _ctx: Context) -> Result<HttpResponse, Error> {
    let name = req.query_param("name").unwrap_or_else(|| "world".into());
    Ok(HttpResponse::json(
        200,
        &serde_json::json!({ "message": format!("hello, {name}") }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    cloudfn::run(App::new("hello").function(Function::http("hello", Method::Get, "/hello", hello)))
        .await
}
