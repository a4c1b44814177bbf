//! What reaches logs and `Debug` output: escaped, and without credentials.

use cloudfn::{App, Context, Error, Function, HttpRequest, HttpResponse, Method};

use crate::support::{Logs, client, start};

/// A path parameter decoded from `%0A` and `%00` reaches the log inside an
/// error message, escaped: it cannot start a line of its own, or put a NUL
/// byte in the log.
#[tokio::test]
async fn a_url_cannot_forge_a_log_line() {
    let logs = Logs::capture();
    let app = App::new("t").function(Function::http(
        "order",
        Method::Get,
        "/orders/{id}",
        |req: HttpRequest, _: Context| async move {
            let id = req.path_param("id")?;
            Err::<HttpResponse, _>(Error::not_found(format!("no order {id}")))
        },
    ));
    let running = start(app).await;
    let res = client()
        .get(format!(
            "{}/orders/o-1%0AERROR%20forged%20line%00after-nul",
            running.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    running.shutdown().await;
    let written = logs.text();
    assert!(
        written.contains("forged line"),
        "the failure is logged: {written}"
    );
    assert!(
        !written.lines().any(|line| line.starts_with("ERROR forged")),
        "a forged line: {written}"
    );
    assert!(!written.contains('\0'), "a NUL byte: {written:?}");
}

/// Credentials a request carries are marked sensitive by the local server,
/// so even a handler printing the raw header map does not show them.
#[tokio::test]
async fn request_credentials_are_marked_sensitive() {
    let app = App::new("t").function(Function::http(
        "show",
        Method::Get,
        "/show",
        |req: HttpRequest, _: Context| async move {
            Ok::<_, Error>(HttpResponse::text(
                200,
                format!("{:?}\n{req:?}", req.headers),
            ))
        },
    ));
    let running = start(app).await;
    let shown = client()
        .get(format!("{}/show", running.url()))
        .header("authorization", "Bearer a-secret")
        .header("cookie", "session=c-secret")
        .header("x-api-key", "k-secret")
        .header("proxy-authorization", "Basic p-secret")
        .header("x-probe", "visible")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    running.shutdown().await;
    assert!(shown.contains("visible"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}
