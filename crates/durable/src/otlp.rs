//! Sending spans to OpenTelemetry (feature `otlp`): the engine's
//! `workflow.run`, `step`, `claim` ... spans (see the crate's telemetry
//! table) and the application's own, through a `tracing` layer, to a
//! collector over OTLP/HTTP (protobuf).
//!
//! Written here because every application would write the same twenty
//! lines of exporter, provider and layer set-up, and get the runtime
//! wrong: the batch exporter runs on a thread of its own with a blocking
//! HTTP client, so it needs no Tokio runtime and never slows a step.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_opentelemetry::OpenTelemetryLayer;

use crate::error::DurableError;

/// An OTLP exporter of spans: add its [`OtlpExport::layer`] to your
/// `tracing` subscriber, and call [`OtlpExport::shutdown`] before the
/// process exits so the last spans are sent.
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn demo() -> Result<(), durable::DurableError> {
/// let export = durable::otlp::OtlpExport::new("billing-worker", "http://127.0.0.1:4318/v1/traces")?;
/// let subscriber = tracing_subscriber::registry().with(export.layer());
/// tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
/// // ... run workers and workflows ...
/// export.shutdown()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl OtlpExport {
    /// An exporter to `endpoint` (the collector's traces URL, usually
    /// `http://HOST:4318/v1/traces`), naming this process `service_name`.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] if the exporter cannot be built from
    /// the endpoint.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), durable::DurableError> {
    /// let export = durable::otlp::OtlpExport::new("api", "http://otel-collector:4318/v1/traces")?;
    /// # Ok(()) }
    /// ```
    pub fn new(service_name: &str, endpoint: &str) -> Result<Self, DurableError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| {
                DurableError::InvalidInput(format!("cannot export spans to {endpoint}: {e}"))
            })?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service_name.to_string())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans for
    /// this exporter.
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt;
    /// # fn demo(export: &durable::otlp::OtlpExport) {
    /// let subscriber = tracing_subscriber::registry().with(export.layer());
    /// # let _ = subscriber;
    /// # }
    /// ```
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("durable"))
    }

    /// Send what is buffered and stop.
    ///
    /// # Errors
    /// [`DurableError::Interrupted`] if the last spans could not be sent.
    ///
    /// ```no_run
    /// # fn demo(export: durable::otlp::OtlpExport) -> Result<(), durable::DurableError> {
    /// export.shutdown()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown(self) -> Result<(), DurableError> {
        self.provider
            .shutdown()
            .map_err(|e| DurableError::Interrupted(format!("span export did not finish: {e}")))
    }
}
