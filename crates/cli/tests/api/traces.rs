//! Traces (`--otlp-endpoint`): the real binary exports its spans over OTLP/HTTP
//! with protobuf to a receiver on loopback; the request span and its children
//! arrive, in one trace, a refusal carries its rule, no attribute carries an
//! assertion or a token, and the last spans are sent at shutdown. Without the
//! option nothing is exported, whatever the `OTEL_*` variables say.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use crate::support::*;

/// What the receiver got: every export request's raw body and its spans.
#[derive(Default)]
struct Received {
    bodies: Vec<Vec<u8>>,
    spans: Vec<Span>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`, answered with an empty (protobuf) response.
struct Receiver {
    base: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            base: format!("http://{addr}"),
            received,
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().bodies.clone()
    }
}

async fn export(
    State(received): State<Arc<Mutex<Received>>>,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
    let mut received = received.lock().unwrap();
    received.bodies.push(body.to_vec());
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            received.spans.extend(scope.spans);
        }
    }
    ([("content-type", "application/x-protobuf")], Vec::new())
}

/// A span's attribute, as text (numbers written out).
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        AnyValue::StringValue(text) => text.clone(),
        AnyValue::IntValue(n) => n.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// Every attribute value of every span, as text.
fn all_attribute_text(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .flat_map(|span| {
            span.attributes
                .iter()
                .map(move |kv| format!("{}={:?} ({})", kv.key, kv.value, span.name))
        })
        .collect()
}

/// The spans whose parent is `parent`, in its trace.
fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|span| span.trace_id == parent.trace_id && span.parent_span_id == parent.span_id)
        .collect()
}

fn names(spans: &[&Span]) -> Vec<String> {
    spans.iter().map(|span| span.name.clone()).collect()
}

/// The threads of process `pid` by name (`comm`, cut at 15 bytes).
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

// The receiver answers on a worker while the test blocks waiting for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_and_their_steps_reach_an_otlp_receiver() {
    let receiver = Receiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (_, ik, key) = app_integration(dir, &[]);
    // The base URL: the server posts to its /v1/traces. The batch's delay stays
    // the SDK's 5 s, so the spans arrive by the flush at shutdown.
    let server = serve_store(dir, &["--otlp-endpoint", &receiver.base]).await;
    #[cfg(target_os = "linux")]
    assert!(
        thread_names(server.pid())
            .iter()
            .any(|name| name.starts_with("OpenTelemetry")),
        "the batch exporter's thread runs: {:?}",
        thread_names(server.pid())
    );

    let assertion = mint(dir, &ik, None, &key, &server.host());
    let (status, body) = server.token(&assertion).await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    // The same assertion again: refused, its jti already used.
    let (status, refused) = server.token(&assertion).await;
    assert_eq!((status, oauth_error(&refused).0), (400, "invalid_grant"));

    let exited = server.terminate();
    assert!(exited.success(), "{exited}");
    let spans = receiver.spans();

    let requests: Vec<&Span> = spans
        .iter()
        .filter(|span| span.name == "POST /oauth/token")
        .collect();
    assert_eq!(
        requests.len(),
        2,
        "{:?}",
        names(&spans.iter().collect::<Vec<_>>())
    );
    let by_status = |code: &str| {
        *requests
            .iter()
            .find(|span| attribute(span, "http.response.status_code").as_deref() == Some(code))
            .unwrap_or_else(|| panic!("no request span with status {code}"))
    };
    let issued = by_status("200");
    let refusal = by_status("400");
    for request in [issued, refusal] {
        assert!(request.parent_span_id.is_empty(), "a root span");
        assert_eq!(
            attribute(request, "http.request.method").as_deref(),
            Some("POST")
        );
        assert_eq!(
            attribute(request, "http.route").as_deref(),
            Some("/oauth/token")
        );
        assert_eq!(
            attribute(request, "jwtgrant.grant_type").as_deref(),
            Some(JWT_BEARER)
        );
    }
    assert_ne!(issued.trace_id, refusal.trace_id, "a trace per request");

    // The steps of the grant are children of its request span, in its trace.
    let steps = children(&spans, issued);
    for step in [
        "parse_form",
        "parse_assertion",
        "key_lookup",
        "verify_signature",
        "replay_record",
        "sign_access_token",
    ] {
        assert!(
            names(&steps).iter().any(|name| name == step),
            "no {step} under the request span: {:?}",
            names(&steps)
        );
    }
    let replay = steps
        .iter()
        .find(|span| span.name == "replay_record")
        .unwrap();
    assert_eq!(
        attribute(replay, "jwtgrant.replay").as_deref(),
        Some("recorded")
    );
    assert_eq!(
        names(&children(&spans, replay)),
        ["store"],
        "the durable write under the replay record"
    );
    assert!(attribute(issued, "jwtgrant.rule").is_none());

    // The refusal names its rule and error; nothing was signed for it.
    assert_eq!(
        attribute(refusal, "jwtgrant.error").as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(
        attribute(refusal, "jwtgrant.rule").as_deref(),
        Some("jti_replayed")
    );
    let refusal_steps = children(&spans, refusal);
    assert!(
        !names(&refusal_steps)
            .iter()
            .any(|name| name == "sign_access_token"),
        "{:?}",
        names(&refusal_steps)
    );
    let replayed = refusal_steps
        .iter()
        .find(|span| span.name == "replay_record")
        .unwrap();
    assert_eq!(
        attribute(replayed, "jwtgrant.replay").as_deref(),
        Some("replayed")
    );

    // Neither the assertion nor the token, nor any of their segments (the
    // signatures are the secrets' tell-tale), is in an attribute or anywhere in
    // what was sent.
    let attributes = all_attribute_text(&spans);
    let bodies = receiver.bodies();
    for secret in [assertion.as_str(), access_token.as_str()]
        .into_iter()
        .flat_map(|jwt| std::iter::once(jwt).chain(jwt.split('.')))
        .filter(|part| part.len() >= 16)
    {
        assert!(
            !attributes.iter().any(|text| text.contains(secret)),
            "an attribute holds {secret}"
        );
        assert!(
            !bodies
                .iter()
                .any(|body| body.windows(secret.len()).any(|w| w == secret.as_bytes())),
            "an export holds {secret}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_nothing_is_exported() {
    let receiver = Receiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (_, ik, key) = app_integration(dir, &[]);
    // The standard variables point at the receiver: anything that built an
    // exporter would send there.
    let traces_url = format!("{}/v1/traces", receiver.base);
    let mut command = jwtgrant(dir);
    command
        .args(store_args(dir))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let server = serve_until_ready(command, dir, &[]).await;
    #[cfg(target_os = "linux")]
    {
        let threads = thread_names(server.pid());
        assert!(
            !threads
                .iter()
                .any(|name| name.starts_with("OpenTelemetry") || name.starts_with("reqwest")),
            "no exporter thread: {threads:?}"
        );
    }
    let assertion = mint(dir, &ik, None, &key, &server.host());
    assert_eq!(server.token(&assertion).await.0, 200);
    assert_eq!(server.token(&assertion).await.0, 400);
    // Five batch delays of the variables' exporter, had one been built.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.terminate().success());
    assert!(
        receiver.bodies().is_empty(),
        "{} exports arrived",
        receiver.bodies().len()
    );
}

#[tokio::test]
async fn a_bad_endpoint_names_its_option() {
    let data = tempfile::tempdir().unwrap();
    let output = run({
        let mut command = jwtgrant(data.path());
        command.args(store_args(data.path())).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
            "127.0.0.1:4318",
        ]);
        command
    });
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("otlp_endpoint"), "{stderr}");
}
