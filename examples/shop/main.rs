//! The shop on whichever provider the environment names; with no cloud, on
//! the local runtime at http://127.0.0.1:$PORT (3000 by default).
//!
//! ```sh
//! cargo run --example shop
//! ```

#![forbid(unsafe_code)]

// The accessors the integration tests use to observe the shop go unused here.
#[allow(dead_code)]
mod app;

#[tokio::main]
async fn main() -> Result<(), cloudfn::Error> {
    let shop = app::Shop::from_env()?;
    #[cfg(feature = "local")]
    if cloudfn::Provider::detect() == cloudfn::Provider::Local
        && std::env::var_os(cloudfn::PRINT_SPEC_VARIABLE).is_none()
    {
        // The address the runtime will take, so a bad PORT fails here with
        // the runtime's own message rather than being printed.
        let url = format!("http://{}", cloudfn::local::address_from_env()?);
        println!(
            "The shop is at {url} (charges fail {:.0}% of the time). Try:\n\
             \n  curl -si -X POST {url}/orders -H 'content-type: application/json' \\\n\
             \x20   -d '{{\"customer\":\"ada@example.com\",\"items\":[{{\"sku\":\"BOOK-1\",\"qty\":2}}]}}'\n\
             \n  curl -s {url}/orders/<id from the answer>\n\
             \nCtrl-C stops it once in-flight work is done.\n",
            shop.charge_failure_rate * 100.0
        );
    }
    cloudfn::run(app::app(shop)).await
}
