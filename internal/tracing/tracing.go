// Package tracing exports OpenTelemetry traces of the gateway's requests
// over OTLP/HTTP: a server span per client HTTP request (continuing the
// client's W3C traceparent when it sends one), and the session layer's
// child spans for queueing, process starts and backend round trips
// (session.Tracer), whose trace context is forwarded to the server in
// params._meta. Attributes follow OpenTelemetry's semantic conventions for
// MCP where they exist (mcp.method.name, mcp.session.id,
// mcp.protocol.version, jsonrpc.request.id, gen_ai.tool.name, error.type).
//
// Tracing is off unless tracing.otlp_endpoint or the standard
// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// variables name a collector; OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off. The file's keys win over the
// variables; the exporter reads the other OTEL_EXPORTER_OTLP_* variables
// (headers, timeout, compression) itself.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/problem"
	"github.com/mcpgw/mcpgw/internal/session"
)

// Tracer makes the gateway's spans. It implements session.Tracer. A nil
// *Tracer is valid and traces nothing.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	t    trace.Tracer
	prop propagation.TraceContext
}

// Settings are the effective tracing settings.
type Settings struct {
	Endpoint    string  // the OTLP/HTTP traces URL
	SampleRatio float64 // of new traces
	ServiceName string
}

// Resolve combines the file's tracing keys with the OTEL_* variables;
// on is false when tracing stays off. Errors name the variable at fault.
func Resolve(c config.Tracing, getenv func(string) (string, bool)) (s Settings, on bool, err error) {
	env := func(k string) string {
		if getenv == nil {
			return ""
		}
		v, _ := getenv(k)
		return strings.TrimSpace(v)
	}
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || env("OTEL_TRACES_EXPORTER") == "none" {
		return s, false, nil
	}
	switch {
	case c.OTLPEndpoint != "":
		s.Endpoint = tracesURL(c.OTLPEndpoint)
	case env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		s.Endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") // the full URL, as the spec says
	case env("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		s.Endpoint = strings.TrimSuffix(env("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	default:
		return s, false, nil
	}
	if u, perr := url.Parse(s.Endpoint); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, false, fmt.Errorf("the OTLP endpoint must be an http:// or https:// URL, e.g. http://127.0.0.1:4318 (check tracing.otlp_endpoint and OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	s.SampleRatio = c.SampleRatio
	if s.SampleRatio < 0 {
		s.SampleRatio = 1
		if v := env("OTEL_TRACES_SAMPLER_ARG"); v != "" {
			r, perr := strconv.ParseFloat(v, 64)
			if perr != nil || r < 0 || r > 1 {
				return s, false, errors.New("OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, e.g. 0.1")
			}
			s.SampleRatio = r
		}
	}
	s.ServiceName = c.ServiceName
	if s.ServiceName == "" {
		s.ServiceName = env("OTEL_SERVICE_NAME")
	}
	if s.ServiceName == "" {
		s.ServiceName = "mcpgw"
	}
	return s, true, nil
}

// tracesURL is the traces URL of a configured endpoint: a base URL
// without a path gets OTLP/HTTP's /v1/traces.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	return strings.TrimSuffix(endpoint, "/") + "/v1/traces"
}

// New returns a tracer that exports to s.Endpoint in batches. exporter,
// when not nil, replaces the OTLP exporter (tests).
func New(ctx context.Context, s Settings, version string, exporter sdktrace.SpanExporter) (*Tracer, error) {
	if exporter == nil {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("tracing: the OTLP exporter for %s: %w", s.Endpoint, err)
		}
		exporter = exp
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(s.ServiceName), semconv.ServiceVersion(version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(s.SampleRatio))),
	)
	return &Tracer{tp: tp, t: tp.Tracer("github.com/mcpgw/mcpgw")}, nil
}

// Shutdown exports what is left, bounded by ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// StartRequest begins the server span of an HTTP request, a child of the
// client's traceparent when it sent one.
func (t *Tracer) StartRequest(r *http.Request) (context.Context, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.t.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
}

// Span implements session.Tracer.
func (t *Tracer) Span(ctx context.Context, name string, attrs ...session.Attr) (context.Context, func(error)) {
	kv := make([]attribute.KeyValue, len(attrs))
	for i, a := range attrs {
		kv[i] = attribute.String(a.Key, a.Value)
	}
	kind := trace.SpanKindInternal
	if strings.HasPrefix(name, "backend ") {
		kind = trace.SpanKindClient
	}
	ctx, span := t.t.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(kv...))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(attribute.String("error.type", ErrorType(err)))
		}
		span.End()
	}
}

// ErrorType is error.type for err: the session layer's outcome class when
// it is one, else a fixed word.
func ErrorType(err error) string {
	switch s := err.Error(); s {
	case session.ClassError, session.ClassTimeout, session.ClassBackendError, session.ClassCancelled:
		return s
	}
	if pe, ok := errors.AsType[*problem.Error](err); ok {
		return strings.ReplaceAll(pe.Kind.String(), " ", "_")
	}
	return "_OTHER"
}

// Inject implements session.Tracer. Only a sampled context is forwarded:
// an unsampled one would cost every request a rewrite of its params for a
// trace nobody records.
func (t *Tracer) Inject(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	t.prop.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// EndRequest finishes the server span of an HTTP request with what the
// front door learnt about it.
func EndRequest(span trace.Span, status int, method, server, sessionID, protocolVersion, errMsg string) {
	attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", status)}
	if method != "" {
		attrs = append(attrs, attribute.String("mcp.method.name", method))
		span.SetName(method)
	}
	if server != "" {
		attrs = append(attrs, attribute.String("mcpgw.server", server))
	}
	if sessionID != "" {
		attrs = append(attrs, attribute.String("mcp.session.id", sessionID))
	}
	if protocolVersion != "" {
		attrs = append(attrs, attribute.String("mcp.protocol.version", protocolVersion))
	}
	if status >= 500 {
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(status)))
		span.SetStatus(codes.Error, errMsg)
	} else if errMsg != "" && status < 400 {
		span.SetStatus(codes.Error, errMsg)
	}
	span.SetAttributes(attrs...)
	span.End()
}
