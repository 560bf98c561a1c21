package config

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestObserveKeys(t *testing.T) {
	c := mustParse(t, `
servers: {a: {command: [x]}}
metrics: {listen: 127.0.0.1:9464}
tracing: {otlp_endpoint: "http://127.0.0.1:4318", sample_ratio: 0.25, service_name: gw}
status: {enabled: false, recent_errors: 10}
`, nil)
	want := struct {
		M Metrics
		T Tracing
		S bool
		N int
	}{Metrics{Listen: "127.0.0.1:9464"}, Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.25, ServiceName: "gw"}, false, 10}
	got := want
	got.M, got.T, got.S, got.N = c.Metrics, c.Tracing, c.StatusEnabled(), c.Status.RecentErrors
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStatusDefault(t *testing.T) {
	for _, tt := range []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true}, {"[::1]:8080", true}, {"localhost:8080", true},
		{"0.0.0.0:8080", false}, {":8080", false}, {"192.0.2.1:8080", false},
	} {
		c := mustParse(t, "servers: {a: {command: [x]}}\nauth: {mode: none}\nlisten: \""+tt.listen+"\"", nil)
		if got := c.StatusEnabled(); got != tt.want {
			t.Errorf("listen %s: StatusEnabled = %v, want %v", tt.listen, got, tt.want)
		}
	}
}

func TestObserveProblems(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"remote metrics", "metrics: {listen: 0.0.0.0:9464}", "metrics.listen: is not a loopback address"},
		{"bad metrics listen", "metrics: {listen: nope}", "metrics.listen: must be host:port"},
		{"allow_remote alone", "metrics: {allow_remote: true}", "metrics.allow_remote: has no effect"},
		{"bad endpoint", "tracing: {otlp_endpoint: 127.0.0.1:4318}", "tracing.otlp_endpoint: must be the http:// or https:// URL"},
		{"ratio above 1", "tracing: {sample_ratio: 2}", "tracing.sample_ratio: must be from 0 to 1"},
		{"ratio not a number", "tracing: {sample_ratio: half}", "tracing.sample_ratio: must be a number"},
		{"recent errors", "status: {recent_errors: 0}", "status.recent_errors: must be from 1 to 1000"},
		{"unknown key", "metrics: {port: 9464}", "metrics.port: unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("servers: {a: {command: [x]}}\n"+tt.yaml), envOf(nil))
			ps := problemsOf(t, err)
			if !slices.ContainsFunc(ps, func(p string) bool { return len(p) >= len(tt.want) && p[:len(tt.want)] == tt.want }) {
				t.Errorf("problems %q, want one starting %q", ps, tt.want)
			}
		})
	}
	// An explicit opt-in allows a remote metrics listener.
	mustParse(t, "servers: {a: {command: [x]}}\nmetrics: {listen: 0.0.0.0:9464, allow_remote: true}", nil)
}
