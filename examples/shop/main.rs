//! The shop on whichever provider the environment names; with no cloud, on
//! the local runtime at http://127.0.0.1:$PORT (3000 by default).
//!
//! ```sh
//! cargo run --example shop
//! ```

// The accessors the integration tests use to observe the shop go unused here.
#[allow(dead_code)]
mod app;

#[tokio::main]
async fn main() -> Result<(), cloudfn::Error> {
    let shop = app::Shop::from_env()?;
    let describing = std::env::var_os(cloudfn::PRINT_SPEC_VARIABLE).is_some();
    if cloudfn::Provider::detect() == cloudfn::Provider::Local && !describing {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        println!(
            "The shop is at http://127.0.0.1:{port} (charges fail {:.0}% of the time). Try:\n\
             \n  curl -si -X POST http://127.0.0.1:{port}/orders -H 'content-type: application/json' \\\n\
             \x20   -d '{{\"customer\":\"ada@example.com\",\"items\":[{{\"sku\":\"BOOK-1\",\"qty\":2}}]}}'\n\
             \n  curl -s http://127.0.0.1:{port}/orders/<id from the answer>\n\
             \nCtrl-C stops it once in-flight work is done.\n",
            shop.charge_failure_rate * 100.0
        );
    }
    cloudfn::run(app::app(shop)).await
}
