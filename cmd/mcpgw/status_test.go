package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatusCommand runs "mcpgw status" against a running "mcpgw serve",
// as a person would after starting it.
func TestStatusCommand(t *testing.T) {
	bin := buildBinary(t)
	_, base := startServe(t, bin)
	connectDemo(t, base)
	noEnv := func(string) (string, bool) { return "", false }
	code, stdout, stderr := execute([]string{"status", "--url", base}, noEnv)
	if code != 0 {
		t.Fatalf("mcpgw status: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{": ready\n", "demo (native, launcher): ready", "sessions 1 (2025-11-25: 1) by anonymous: 1", "- process "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestStatusCommandErrors(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad url", []string{"status", "--url", "127.0.0.1:8080"}, 2, `--url "127.0.0.1:8080": must be the gateway's http:// or https:// base URL`},
		{"nothing listening", []string{"status", "--url", "http://127.0.0.1:1"}, 1, `is "mcpgw serve" running there? (set --url to its address)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := execute(tt.args, noEnv)
			if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestServeMetricsListener: metrics.listen opens a listener of its own,
// logged at start, that serves the Prometheus text format; the gateway's
// own port does not serve /metrics.
func TestServeMetricsListener(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mcpgw.yaml"), "listen: 127.0.0.1:0\nmetrics: {listen: \"127.0.0.1:0\"}\nservers:\n  demo: {command: [\"${MCPGW_BIN}\", demo-server]}\n")
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "mcpgw.yaml"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	_, base, logs := awaitServe(t, cmd)
	connectDemo(t, base) // calls echo without listing the tools first: its label is "other"
	var metricsURL string
	for _, l := range logs.JSONLines() {
		if l["msg"] == "metrics listening" {
			metricsURL, _ = l["url"].(string)
		}
	}
	if metricsURL == "" {
		t.Fatalf("no \"metrics listening\" log line:\n%s", logs.String())
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "mcpgw_build_info{") ||
		!strings.Contains(string(body), `mcpgw_requests_total{class="ok",era="session",method="tools/call",mode="launcher",runtime="native",server="demo",tool="other"} 1`) {
		var lines []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "mcpgw_requests_total") || strings.HasPrefix(l, "mcpgw_build_info") {
				lines = append(lines, l)
			}
		}
		t.Errorf("GET %s: %d\n%s", metricsURL, resp.StatusCode, strings.Join(lines, "\n"))
	}
	if resp, err := http.Get(base + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the gateway's own port answers /metrics with %d", resp.StatusCode)
		}
	}
}
