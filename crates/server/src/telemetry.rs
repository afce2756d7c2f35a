//! Traces: with `--otlp-endpoint`, one span per request and a child span for each
//! step of a grant (parsing, key lookup, signature check, replay record, store,
//! signing), exported over OTLP/HTTP with protobuf by the OpenTelemetry SDK. Without
//! the option nothing here is built: no exporter, no provider, no thread, no
//! request layer. The step spans stay in the code as `trace`-level spans of their
//! own [`TARGET`], which the binary's log filter leaves off unless `RUST_LOG` asks
//! for them, so each costs a level comparison.
//!
//! No span attribute carries an assertion, a token, a secret or key material: the
//! spans name steps, routes, grant types, outcomes and rule codes only.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The target of every span exported as a trace; the exporter's layer takes these
/// spans and nothing else (no log event, no other crate's span).
pub const TARGET: &str = "jwtgrant::trace";

/// The path of OTLP/HTTP's traces endpoint on a collector.
pub const TRACES_PATH: &str = "/v1/traces";

/// How long a shutdown waits for the last spans to be sent.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(5);

/// The URL spans are posted to: `endpoint` as given when its path already ends in
/// `/v1/traces`, else the collector's base URL with `/v1/traces` appended (as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read). `endpoint` is a validated base URL (no
/// query, no fragment, no trailing slash).
pub fn traces_url(endpoint: &str) -> String {
    if endpoint.ends_with(TRACES_PATH) {
        endpoint.to_owned()
    } else {
        format!("{endpoint}{TRACES_PATH}")
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {url}: {reason}")]
pub struct TracesError {
    url: String,
    reason: String,
}

/// The trace pipeline of `--otlp-endpoint`: the SDK's provider with a batching
/// processor (its own thread; a full queue drops spans, never holds a request)
/// and the OTLP/HTTP exporter. Built only when the option is set.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter for `url` (see [`traces_url`]) and the provider. The
    /// exporter's other settings (headers, timeout, compression) follow the
    /// standard `OTEL_EXPORTER_OTLP_*` variables, and `OTEL_SERVICE_NAME` (or
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) names the service, by default
    /// `jwtgrant`.
    pub fn start(url: &str) -> Result<Self, TracesError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build()
            .map_err(|error| TracesError {
                url: url.to_owned(),
                reason: error.to_string(),
            })?;
        // The SDK's detectors name the service from the environment, else
        // `unknown_service:...`: then it is jwtgrant.
        let named = Resource::builder()
            .build()
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
        let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
        if !named {
            resource = resource.with_service_name("jwtgrant");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns the spans of [`TARGET`] into OpenTelemetry
    /// spans, with only the attributes the spans set (no source location, thread
    /// or timing attributes added).
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("jwtgrant"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE))
    }

    /// Sends the spans still queued and stops the exporter, waiting at most a few
    /// seconds (a collector that does not answer loses them). Call it once the
    /// server has stopped, outside the runtime.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_WITHIN) {
            tracing::warn!(%error, "the last spans could not be exported");
        }
    }
}

/// The request span, around every request when traces are on (see [`crate::app`]):
/// named `METHOD ROUTE` (`POST /oauth/token`), of kind server, with the method,
/// the route and the status. The token endpoint adds the grant type, and on a
/// refusal the rule and the OAuth error code ([`record_refusal`]).
pub async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let method = request.method().as_str();
    let span = tracing::trace_span!(
        target: TARGET,
        "request",
        otel.name = %SpanName(method, route),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        jwtgrant.grant_type = Empty,
        jwtgrant.rule = Empty,
        jwtgrant.error = Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

/// `METHOD ROUTE`, or the method alone when no route matched (the path itself
/// would give every unknown URL a span name of its own).
struct SpanName<'a>(&'a str, Option<&'a str>);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(route) => write!(f, "{} {route}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// Records on a `replay_record` span whether the `jti` was new.
pub fn record_replay(span: &tracing::Span, outcome: jwtgrant_store::JtiOutcome) {
    let outcome = match outcome {
        jwtgrant_store::JtiOutcome::Recorded => "recorded",
        jwtgrant_store::JtiOutcome::Replayed => "replayed",
    };
    span.record("jwtgrant.replay", outcome);
}

/// Records the grant type on the current request span.
pub fn record_grant_type(grant_type: &'static str) {
    tracing::Span::current().record("jwtgrant.grant_type", grant_type);
}

/// Records a refusal on the current request span: the stable rule code (as the
/// audit trail and the metrics name it) and the OAuth error code. Every endpoint
/// that audits its decisions calls it through `routes::token::audited`.
pub fn record_refusal(rule: &'static str, error: &'static str) {
    let span = tracing::Span::current();
    span.record("jwtgrant.rule", rule);
    span.record("jwtgrant.error", error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector.example/otlp"),
            "https://collector.example/otlp/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn span_names_are_method_and_route() {
        assert_eq!(
            SpanName("POST", Some("/oauth/token")).to_string(),
            "POST /oauth/token"
        );
        assert_eq!(SpanName("GET", None).to_string(), "GET");
    }
}
