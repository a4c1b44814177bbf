//! Who may call: the local runtime serves every route, and says at start
//! which are public and what the others require once deployed.

use crate::{
    shop_app::{self, Shop},
    support::{Logs, start},
};

#[tokio::test]
async fn the_local_runtime_says_which_routes_are_public() {
    let logs = Logs::capture();
    let running = start(shop_app::app(Shop::new(0.0))).await;
    let url = running.url();
    running.shutdown().await;
    let written = logs.text();
    assert!(
        written.contains(&format!("POST {url}/orders (public)")),
        "{written}"
    );
    assert!(
        written.contains(&format!(
            "GET {url}/orders/{{id}} (private when deployed; open here)"
        )),
        "{written}"
    );
}
