package main

import (
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
