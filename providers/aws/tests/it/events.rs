//! Every event shape, on real AWS payloads, both directions.

use bytes::Bytes;
use cloudfn_aws::events::{
    http::{self, HttpSource},
    queue, schedule, storage, topic,
};
use cloudfn_core::{HttpResponse, StorageEventKind};
use serde_json::{Value, json};

use crate::support::fixture;

/// An event as the bytes Lambda hands over.
fn bytes(event: &Value) -> Vec<u8> {
    serde_json::to_vec(event).unwrap()
}

/// The answer `encode` gives, as the JSON Lambda reads.
fn encoded(response: HttpResponse, source: HttpSource) -> Value {
    serde_json::to_value(http::encode(response, source)).unwrap()
}

#[test]
fn http_api_v2_event_becomes_a_request() {
    let event = fixture("example-apigw-v2-request-multi-value-parameters.json");
    assert_eq!(
        http::source_of(event.to_string().as_bytes()),
        Some(HttpSource::HttpV2)
    );
    let req = http::decode(event.to_string().as_bytes(), HttpSource::HttpV2).unwrap();
    assert_eq!(req.method, ::http::Method::GET);
    assert_eq!(req.path, "/my/path");
    assert_eq!(
        req.query.as_deref(),
        Some("Parameter1=value1&Parameter1=value2")
    );
    assert_eq!(
        req.query_pairs().len(),
        2,
        "repeated query parameters are kept"
    );
    assert_eq!(
        req.header("cookie"),
        Some("cookie1; cookie2"),
        "cookies go back into the Cookie header"
    );
    assert_eq!(req.header("header2"), Some("value1,value2"));
    assert_eq!(req.path_params["proxy"], "hello/world");
    assert_eq!(&req.body[..], b"{\r\n\t\"a\": 1\r\n}");
}

#[test]
fn a_named_stage_does_not_break_routing() {
    let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
    event["rawPath"] = json!("/prod/orders/42");
    event["requestContext"]["stage"] = json!("prod");
    let req = http::decode(event.to_string().as_bytes(), HttpSource::HttpV2).unwrap();
    assert_eq!(req.path, "/orders/42");
    event["rawPath"] = json!("/prod");
    assert_eq!(
        http::decode(event.to_string().as_bytes(), HttpSource::HttpV2)
            .unwrap()
            .path,
        "/"
    );
    event["rawPath"] = json!("/production/x");
    assert_eq!(
        http::decode(event.to_string().as_bytes(), HttpSource::HttpV2)
            .unwrap()
            .path,
        "/production/x",
        "only a whole segment is a stage"
    );
}

#[test]
fn rest_api_v1_event_becomes_a_request() {
    let event = fixture("example-apigw-request-multi-value-parameters.json");
    assert_eq!(
        http::source_of(event.to_string().as_bytes()),
        Some(HttpSource::RestV1)
    );
    let req = http::decode(event.to_string().as_bytes(), HttpSource::RestV1).unwrap();
    assert_eq!(req.method, ::http::Method::POST);
    assert_eq!(
        req.path, "/hello/world",
        "the stage is not part of the path"
    );
    let names: Vec<_> = req
        .query_pairs()
        .into_iter()
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(names, ["me", "me2"]);
    assert_eq!(req.header("accept"), Some("*/*"));
    assert_eq!(req.path_params["proxy"], "hello/world");
}

#[test]
fn alb_events_become_requests_and_keep_their_header_mode() {
    let multi = fixture("example-alb-lambda-target-request-multivalue-headers.json");
    let source = http::source_of(multi.to_string().as_bytes()).unwrap();
    assert_eq!(source, HttpSource::Alb { multi_value: true });
    let req = http::decode(multi.to_string().as_bytes(), source).unwrap();
    assert_eq!(req.query_param("key").as_deref(), Some("hello"));
    assert_eq!(&req.body[..], b"Some text");
    let res = encoded(HttpResponse::text(200, "ok"), source);
    assert_eq!(res["statusDescription"], "200 OK");
    assert_eq!(
        res["multiValueHeaders"]["content-type"],
        json!(["text/plain; charset=utf-8"])
    );
    assert_eq!(
        res["headers"],
        json!({}),
        "only the header mode's own field carries headers"
    );

    let single = fixture("example-alb-lambda-target-request-headers-only.json");
    let source = http::source_of(single.to_string().as_bytes()).unwrap();
    assert_eq!(source, HttpSource::Alb { multi_value: false });
    let res = encoded(HttpResponse::text(404, "no"), source);
    assert_eq!(res["statusDescription"], "404 Not Found");
    assert_eq!(res["headers"]["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res["multiValueHeaders"], json!({}));
}

#[test]
fn responses_take_each_integration_shape() {
    let response = HttpResponse::json(201, &json!({"id": 1}))
        .with_header("set-cookie", "a=1")
        .with_header("set-cookie", "b=2")
        .with_header("x-tag", "one")
        .with_header("x-tag", "two");
    let v2 = encoded(response.clone(), HttpSource::HttpV2);
    assert_eq!(v2["statusCode"], 201);
    assert_eq!(v2["cookies"], json!(["a=1", "b=2"]));
    assert!(v2["headers"].get("set-cookie").is_none());
    assert_eq!(v2["headers"]["x-tag"], "one, two");
    assert_eq!(v2["body"], r#"{"id":1}"#);
    assert_eq!(v2["isBase64Encoded"], false);
    let v1 = encoded(response, HttpSource::RestV1);
    assert_eq!(v1["multiValueHeaders"]["set-cookie"], json!(["a=1", "b=2"]));
    assert_eq!(
        v1["headers"],
        json!({}),
        "API Gateway would merge a joined copy in"
    );
    let binary = encoded(
        HttpResponse::new(200).with_body(vec![0xff, 0x00, 0xfe]),
        HttpSource::HttpV2,
    );
    assert_eq!(binary["isBase64Encoded"], true);
    assert_eq!(binary["body"], "/wD+");
}

#[test]
fn base64_bodies_are_decoded() {
    let mut event = fixture("example-apigw-v2-request-no-authorizer.json");
    event["body"] = json!("/wD+");
    event["isBase64Encoded"] = json!(true);
    assert_eq!(
        &http::decode(event.to_string().as_bytes(), HttpSource::HttpV2)
            .unwrap()
            .body[..],
        [0xff, 0x00, 0xfe]
    );
    event["body"] = json!("not base64!");
    assert!(
        http::decode(event.to_string().as_bytes(), HttpSource::HttpV2)
            .unwrap_err()
            .message()
            .contains("base64")
    );
}

#[test]
fn the_emulated_v2_event_round_trips() {
    let request = cloudfn_core::HttpRequest::new(::http::Method::POST, "/orders?x=1")
        .with_header("content-type", "application/json")
        .with_header("cookie", "s=1; t=2")
        .with_body(Bytes::from_static(br#"{"a":1}"#));
    let event = serde_json::to_vec(&http::v2_event(&request, "POST /orders", "req-1")).unwrap();
    assert_eq!(http::source_of(&event), Some(HttpSource::HttpV2));
    let back = http::decode(&event, HttpSource::HttpV2).unwrap();
    assert_eq!(
        (&back.method, back.path.as_str(), back.query.as_deref()),
        (&request.method, "/orders", Some("x=1"))
    );
    assert_eq!(back.header("cookie"), Some("s=1; t=2"));
    assert_eq!(back.body, request.body);
    let response = http::decode_v2_response(encoded(
        HttpResponse::text(202, "ok").with_header("set-cookie", "a=1"),
        HttpSource::HttpV2,
    ))
    .unwrap();
    assert_eq!(response.status, 202);
    assert_eq!(response.headers["set-cookie"], "a=1");
    assert_eq!(&response.body[..], b"ok");
}

#[test]
fn sqs_records_become_messages() {
    let event = bytes(&fixture("example-sqs-event-obj.json"));
    assert!(queue::is_sqs(&event));
    let records = queue::decode(&event).unwrap();
    let record = &records[0];
    assert_eq!(record.sqs_message_id, "MessageID_1");
    assert_eq!(record.receipt_handle, "MessageReceiptHandle");
    assert_eq!(record.queue, "SQSQueue");
    let m = &record.message;
    assert_eq!(m.attempt, 2, "ApproximateReceiveCount is the attempt");
    assert_eq!(m.source, "SQSQueue");
    assert_eq!(m.attribute("Attribute1"), Some("AttributeValue1"));
    assert_eq!(m.attribute("Attribute2"), Some("123"));
    assert_eq!(
        m.attribute("Attribute3"),
        None,
        "binary attributes are not text"
    );
    assert_eq!(m.published_at.unwrap().timestamp_millis(), 1520621625029);
    assert_eq!(&m.body[..], br#"{"a":"Test","b":123}"#);
}

#[test]
fn fifo_records_keep_their_group() {
    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["attributes"]["MessageGroupId"] = json!("acct-7");
    event["Records"][0]["attributes"]["MessageDeduplicationId"] = json!("d-1");
    let records = queue::decode(&bytes(&event)).unwrap();
    assert_eq!(records[0].message.ordering_key.as_deref(), Some("acct-7"));
}

#[test]
fn batch_failures_name_only_the_failed_records() {
    let response = serde_json::to_vec(&queue::batch_response(["m-2".to_owned()])).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    );
    let all = ["m-1".to_owned(), "m-2".to_owned()];
    assert_eq!(queue::failed_ids(&response, &all), ["m-2"]);
    assert!(queue::failed_ids(br#"{"batchItemFailures": []}"#, &all).is_empty());
    assert!(queue::failed_ids(b"null", &all).is_empty());
    assert!(queue::failed_ids(b"{}", &all).is_empty());
    assert!(queue::failed_ids(b"", &all).is_empty());
    for unreadable in [
        &br#""garbage""#[..],
        b"not json",
        b"[]",
        br#"{"batchItemFailures": [{"id": "m-2"}]}"#,
    ] {
        assert_eq!(
            queue::failed_ids(unreadable, &all),
            all,
            "an unreadable answer fails the batch: {}",
            String::from_utf8_lossy(unreadable)
        );
    }
}

#[test]
fn sns_notifications_become_messages() {
    let event = bytes(&fixture("example-sns-event.json"));
    assert!(topic::is_sns(&event));
    let messages = topic::decode_sns(&event).unwrap();
    let m = &messages[0];
    assert_eq!(m.id, "82833b5c-8d5d-56d0-b0e1-7511f8253eb8");
    assert_eq!(m.source, "snsNetTest");
    assert_eq!(&m.body[..], b"Hello\r\nworld!");
    assert!(m.published_at.is_some());
}

#[test]
fn eventbridge_events_become_messages_and_ticks() {
    let event = bytes(&fixture("example-eventbridge-event-obj.json"));
    assert!(topic::is_eventbridge(&event));
    let m = topic::decode_eventbridge(&event).unwrap();
    assert_eq!(m.source, "aws.ec2");
    let tick_event = bytes(&fixture("example-eventbridge-schedule.json"));
    assert!(schedule::is_scheduled(&tick_event));
    let tick = schedule::decode(&tick_event, "0 * * * *").unwrap();
    assert_eq!(
        tick.scheduled_time.to_rfc3339(),
        "2015-10-08T16:53:06+00:00"
    );
    assert_eq!(tick.schedule, "0 * * * *");
}

#[test]
fn s3_notifications_become_storage_events() {
    let event = bytes(&fixture("example-s3-event.json"));
    assert!(storage::is_s3(&event));
    let changes = storage::decode(&event).unwrap();
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(
        (c.bucket.as_str(), c.key.as_str()),
        ("sourcebucket", "Happy Face.jpg")
    );
    assert_eq!(c.kind, StorageEventKind::Created);
    assert_eq!(c.size, Some(1024));
    let mut removed = fixture("example-s3-event.json");
    removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    removed["Records"][0]["s3"]["object"]["key"] = json!("a+b%2Bc.txt");
    let c = storage::decode(&bytes(&removed)).unwrap().remove(0);
    assert_eq!(
        (c.kind, c.key.as_str()),
        (StorageEventKind::Deleted, "a b+c.txt")
    );
}

/// Credentials and sessions a request carries never show in `Debug`,
/// whichever integration sent it and however its headers were shaped.
#[test]
fn request_credentials_are_marked_sensitive_in_every_shape() {
    let secrets = json!({
        "authorization": "Bearer a-secret",
        "cookie": "session=c-secret",
        "x-api-key": "k-secret",
        "proxy-authorization": "Basic p-secret",
    });
    let multi_secrets: serde_json::Map<String, Value> = secrets
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), json!([value])))
        .collect();
    let mut v2 = fixture("example-apigw-v2-request-no-authorizer.json");
    v2["headers"] = secrets.clone();
    v2["cookies"] = json!(["jar=j-secret"]);
    let mut v1 = fixture("example-apigw-request-multi-value-parameters.json");
    v1["headers"] = secrets.clone();
    v1["multiValueHeaders"] = json!(multi_secrets);
    let mut alb = fixture("example-alb-lambda-target-request-headers-only.json");
    alb["headers"] = secrets.clone();
    for event in [v2, v1, alb] {
        let source = http::source_of(&bytes(&event)).unwrap();
        let req = http::decode(&bytes(&event), source).unwrap();
        assert_eq!(
            req.header("x-api-key"),
            Some("k-secret"),
            "{source:?}: the handler still reads it"
        );
        for shown in [format!("{:?}", req.headers), format!("{req:?}")] {
            assert!(!shown.contains("secret"), "{source:?}: {shown}");
        }
    }
}
