package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "4194304", want: 4 << 20},
		{in: "100B", want: 100},
		{in: "512k", want: 512 << 10},
		{in: "512K", want: 512 << 10},
		{in: "512KiB", want: 512 << 10},
		{in: "512m", want: 512 << 20},
		{in: "4M", want: 4 << 20},
		{in: "4MiB", want: 4 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "1GiB", want: 1 << 30},
		{in: "10kB", want: 10_000},
		{in: "10KB", want: 10_000},
		{in: "4MB", want: 4_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "4 MiB", want: 4 << 20},
		{in: " 4MiB ", want: 4 << 20},
		{in: "8589934591G", want: 8589934591 << 30},
		{in: "", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "4mb", wantErr: true},
		{in: "4mib", wantErr: true},
		{in: "4Mi", wantErr: true},
		{in: "4T", wantErr: true},
		{in: "1.5MiB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "0x10", wantErr: true},
		{in: "1_000", wantErr: true},
		{in: "4 M iB", wantErr: true},
		{in: "8589934592G", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseSize(%q) = %d, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatSizeAndDuration(t *testing.T) {
	sizes := map[int64]string{0: "0", 1000: "1000", 1 << 10: "1KiB", 64 << 10: "64KiB", 3 << 20: "3MiB", 1 << 30: "1GiB", 1<<20 + 1: "1048577"}
	for n, want := range sizes {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	durations := map[time.Duration]string{0: "0s", time.Second: "1s", 10 * time.Minute: "10m", 720 * time.Hour: "720h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s"}
	for d, want := range durations {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "1", "B_2": "two", "EMPTY": "", "DOLLAR": "$", "REF": "${A}"})
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "", want: ""},
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1"},
		{in: "x${A}y${B_2}z", want: "x1ytwoz"},
		{in: "${EMPTY}", want: ""},
		{in: "${DOLLAR}{A}", want: "${A}"},
		{in: "${REF}", want: "${A}"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$${A}"},
		{in: "$$${A}", want: "$1"},
		{in: "${UNSET}", wantErr: "environment variable UNSET is not set"},
		{in: "${" + strings.Repeat("V", 100) + "}", wantErr: "environment variable " + strings.Repeat("V", 64) + "… is not set"},
		{in: "$", wantErr: `"$" must be followed by "{" or "$"`},
		{in: "$A", wantErr: `"$" must be followed by "{" or "$"`},
		{in: "a $ b", wantErr: `"$" must be followed by "{" or "$"`},
		{in: "${A", wantErr: `"${" without a closing "}"`},
		{in: "${}", wantErr: `"${…}" must hold just a variable name`},
		{in: "${A:-x}", wantErr: `"${…}" must hold just a variable name`},
		{in: "${ A }", wantErr: `"${…}" must hold just a variable name`},
		{in: "${9}", wantErr: `"${…}" must hold just a variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expand(tt.in, env)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("expand(%q) = %q, %v; want error starting %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidServerName(t *testing.T) {
	tests := map[string]bool{
		"fs":                     true,
		"a":                      true,
		"0":                      true,
		"git_hub-2":              true,
		strings.Repeat("a", 64):  true,
		"":                       false,
		strings.Repeat("a", 65):  false,
		"Fs":                     false,
		"_fs":                    false,
		"-fs":                    false,
		"f.s":                    false,
		"..":                     false,
		"f/s":                    false,
		"fs\n":                   false,
		"fs%2f":                  false,
		"fé":                     false,
		"fs ":                    false,
		strings.Repeat("a", 200): false,
	}
	for name, want := range tests {
		if got := ValidServerName(name); got != want {
			t.Errorf("ValidServerName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name      string
		normalize func(string) (string, error)
		in, want  string
	}{
		{"host", normalizeHost, "mcp.example.com", "mcp.example.com"},
		{"host upper", normalizeHost, "MCP.Example.COM", "mcp.example.com"},
		{"host port", normalizeHost, "Example.com:8443", "example.com:8443"},
		{"host ipv4", normalizeHost, "192.168.1.10:8080", "192.168.1.10:8080"},
		{"host ipv6", normalizeHost, "[::1]", "[::1]"},
		{"host ipv6 port", normalizeHost, "[2001:DB8::1]:443", "[2001:db8::1]:443"},
		{"host underscore", normalizeHost, "my_host.internal", "my_host.internal"},
		{"origin", normalizeOrigin, "https://claude.ai", "https://claude.ai"},
		{"origin slash", normalizeOrigin, "https://claude.ai/", "https://claude.ai"},
		{"origin case", normalizeOrigin, "HTTPS://Claude.AI", "https://claude.ai"},
		{"origin default port", normalizeOrigin, "https://claude.ai:443", "https://claude.ai"},
		{"origin http default port", normalizeOrigin, "http://localhost:80", "http://localhost"},
		{"origin other port", normalizeOrigin, "http://localhost:6274", "http://localhost:6274"},
		{"origin ipv6", normalizeOrigin, "http://[::1]:6274", "http://[::1]:6274"},
		{"public url", normalizePublicURL, "https://mcp.example.com", "https://mcp.example.com"},
		{"public url slash", normalizePublicURL, "https://MCP.example.com/", "https://mcp.example.com"},
		{"public url port", normalizePublicURL, "http://gw.local:8080", "http://gw.local:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.normalize(tt.in)
			if err != nil {
				t.Fatalf("normalize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Normal forms are fixed points.
			if again, err := tt.normalize(got); err != nil || again != got {
				t.Errorf("normalize(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name      string
		normalize func(string) (string, error)
		in        string
	}{
		{"host trailing dot", normalizeHost, "example.com."},
		{"host label hyphen", normalizeHost, "a.-b.com"},
		{"host long label", normalizeHost, strings.Repeat("a", 64) + ".com"},
		{"host user", normalizeHost, "user@example.com"},
		{"host space", normalizeHost, "a b"},
		{"host bracket junk", normalizeHost, "[::1]x"},
		{"host bracket not ipv6", normalizeHost, "[127.0.0.1]"},
		{"host port letters", normalizeHost, "a:http"},
		{"host unicode", normalizeHost, "bücher.example"},
		{"origin file", normalizeOrigin, "file:///etc"},
		{"origin other scheme", normalizeOrigin, "vscode-webview://abc123"},
		{"origin no host", normalizeOrigin, "https://"},
		{"origin port 0", normalizeOrigin, "https://a:0"},
		{"origin empty port", normalizeOrigin, "https://a:"},
		{"origin escaped path", normalizeOrigin, "https://a/%2f"},
		{"origin query", normalizeOrigin, "https://a?"},
		{"origin ipv6 zone", normalizeOrigin, "http://[fe80::1%25eth0]"},
		{"public url relative", normalizePublicURL, "/mcp"},
		{"public url ws", normalizePublicURL, "wss://a"},
		{"public url empty fragment", normalizePublicURL, "https://a#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.normalize(tt.in); err == nil {
				t.Errorf("normalize(%q) = %q, want an error", tt.in, got)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := fields{"command": nil, "max_concurrent": nil, "max_processes": nil, "env": nil}
	tests := map[string]string{
		"comand":        "; did you mean command?",
		"commands":      "; did you mean command?",
		"maxConcurrent": "; did you mean max_concurrent?",
		"MAX-PROCESSES": "; did you mean max_processes?",
		"max_process":   "; did you mean max_processes?",
		"image":         "",
		"en":            "",
		"envv":          "; did you mean env?",
	}
	for key, want := range tests {
		if diff := cmp.Diff(want, suggest("servers.fs.timeouts", key, known)); diff != "" {
			t.Errorf("suggest(%q) mismatch (-want +got):\n%s", key, diff)
		}
	}
}
