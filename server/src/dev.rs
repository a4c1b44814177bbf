//! What the cloud emulations share (feature `dev`): a front on a loopback
//! port, requests passed on as sent, and the wait for a started process
//! to answer.

use std::{future::Future, sync::Arc, time::Duration};

use cloudfn_core::{Error, HttpRequest, HttpResponse};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Serves `answer` on `port` of the loopback interface (0: any free one)
/// until `stop`, requests read within `limit` bytes; the front's URL.
pub async fn serve_loopback<A, F>(
    port: u16,
    limit: usize,
    stop: CancellationToken,
    answer: A,
) -> Result<(String, JoinHandle<()>), Error>
where
    A: Fn(HttpRequest) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::unavailable(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| Error::unavailable(format!("no address: {e}")))?
    );
    let answer = Arc::new(answer);
    let task = tokio::spawn(crate::serve(
        listener,
        Duration::from_secs(30),
        stop,
        move |request| {
            let answer = answer.clone();
            async move {
                let response = match crate::read_request(request, limit).await {
                    Ok(request) => answer(request).await,
                    Err(error) => HttpResponse::from_error(&error),
                };
                response.into_http()
            }
        },
    ));
    Ok((url, task))
}

/// `request` as sent, addressed to the server at `base` (its `Host`
/// header left for the client to set); add headers before sending.
pub fn forwarded(
    http: &reqwest::Client,
    base: &str,
    request: &HttpRequest,
) -> reqwest::RequestBuilder {
    let url = match &request.query {
        Some(q) => format!("{base}{}?{q}", request.path),
        None => format!("{base}{}", request.path),
    };
    let mut headers = request.headers.clone();
    headers.remove(http::header::HOST);
    http.request(request.method.clone(), url)
        .headers(headers)
        .body(request.body.clone())
}

/// The answer to a forwarded request, as the front's own answer.
pub async fn answer_of(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<HttpResponse, Error> {
    let response =
        sent.map_err(|e| Error::unavailable(format!("the server is unreachable: {e}")))?;
    let mut answer = HttpResponse::new(response.status().as_u16());
    answer.headers = response.headers().clone();
    answer.body = response
        .bytes()
        .await
        .map_err(|e| Error::unavailable(format!("the server's answer broke off: {e}")))?;
    Ok(answer)
}

/// A port of the loopback interface free now, for a process to listen on.
pub async fn free_port() -> Result<u16, Error> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::unavailable(format!("no free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::unavailable(format!("no free port: {e}")))
}

/// Polls `GET url` every 25 ms until any answer comes (a started process
/// is listening); gives up after `within`, saying what did not answer.
pub async fn wait_answering(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    within: Duration,
) -> Result<(), Error> {
    let give_up = tokio::time::Instant::now() + within;
    while http.get(url).send().await.is_err() {
        if tokio::time::Instant::now() > give_up {
            return Err(Error::unavailable(format!(
                "{what} did not answer on {url} within {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}
