package main

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/internal/config"
)

// envRequireSystemdAnalyze set to "1" (by .ci/run) makes a missing
// systemd-analyze a test failure.
const envRequireSystemdAnalyze = "MCPGW_REQUIRE_SYSTEMD_ANALYZE"

// unitDirectives reads the key=value lines of a unit file, section by
// section ("Service.ProtectSystem" → values, in order).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit: deploy/mcpgw.service keeps the hardening it documents,
// what Landlock and the container runtime need, and passes
// "systemd-analyze verify" without a warning and "systemd-analyze
// security" at an exposure of 2.0 or less (its threshold counts tenths).
func TestSystemdUnit(t *testing.T) {
	const unit = "../../deploy/mcpgw.service"
	d := unitDirectives(t, unit)
	for _, want := range []struct{ key, value string }{
		{"Service.ExecStart", "/usr/local/bin/mcpgw serve --config /etc/mcpgw/mcpgw.yaml"},
		{"Service.ExecReload", "/usr/local/bin/mcpgw reload --config /etc/mcpgw/mcpgw.yaml"},
		{"Service.DynamicUser", "yes"},
		{"Service.StateDirectory", "mcpgw"},
		{"Service.ProtectSystem", "strict"},
		{"Service.ProtectHome", "yes"},
		{"Service.PrivateTmp", "yes"},
		{"Service.NoNewPrivileges", "yes"}, // Landlock needs it
		{"Service.CapabilityBoundingSet", ""},
		{"Service.RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"}, // AF_UNIX: the engine's socket
		{"Service.SystemCallFilter", "@system-service"},
		{"Service.SystemCallFilter", "landlock_create_ruleset landlock_add_rule landlock_restrict_self"},
		{"Service.KillSignal", "SIGTERM"},
		{"Service.RestartPreventExitStatus", "2"},
	} {
		if !slices.Contains(d[want.key], want.value) {
			t.Errorf("%s: no %s=%s (have %q)", unit, want.key, want.value, d[want.key])
		}
	}
	if d["Service.MemoryDenyWriteExecute"] != nil {
		t.Errorf("%s sets MemoryDenyWriteExecute, which breaks Node.js servers", unit)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv(envRequireSystemdAnalyze) == "1" {
			t.Fatalf("systemd-analyze is not installed and %s=1", envRequireSystemdAnalyze)
		}
		t.Skipf("skipping: systemd-analyze is not installed (apt-get install systemd; set %s=1 to make this a failure)", envRequireSystemdAnalyze)
	}
	// verify checks that ExecStart's and ExecReload's program exists:
	// point them at a built mcpgw, and change nothing else.
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "mcpgw.service")
	bin := buildBinary(t)
	unitText := strings.ReplaceAll(string(text), "ExecStart=/usr/local/bin/mcpgw ", "ExecStart="+bin+" ")
	writeFile(t, copyPath, strings.ReplaceAll(unitText, "ExecReload=/usr/local/bin/mcpgw ", "ExecReload="+bin+" "))

	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	help, _ := exec.Command(analyze, "--help").Output()
	if !bytes.Contains(help, []byte("--offline")) {
		t.Logf("this systemd-analyze has no security --offline; the exposure is not rated")
		return
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", copyPath).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
}

// TestDeployConfigs: deploy/mcpgw.yaml is what the unit starts and
// passes "mcpgw check"; deploy/cloudflared.yml routes its public host to
// its listen address, leaves the Host header alone, and ends with a
// catch-all rule as cloudflared requires.
func TestDeployConfigs(t *testing.T) {
	env := map[string]string{"MCPGW_CI_TOKEN": testToken}
	code, stdout, stderr := execute([]string{"check", "--config", "../../deploy/mcpgw.yaml"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if code != 0 {
		t.Fatalf("mcpgw check deploy/mcpgw.yaml: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, ": ok (") {
		t.Errorf("check: %q", stdout)
	}
	cfg, err := config.Load("../../deploy/mcpgw.yaml", envWithSelf(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile("../../deploy/cloudflared.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tunnel struct {
		Tunnel          string `yaml:"tunnel"`
		CredentialsFile string `yaml:"credentials-file"`
		Ingress         []struct {
			Hostname      string         `yaml:"hostname"`
			Service       string         `yaml:"service"`
			OriginRequest map[string]any `yaml:"originRequest"`
		} `yaml:"ingress"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tunnel); err != nil {
		t.Fatalf("deploy/cloudflared.yml: %v", err)
	}
	if tunnel.Tunnel == "" || !strings.Contains(tunnel.CredentialsFile, tunnel.Tunnel) {
		t.Errorf("tunnel %q, credentials-file %q: want both, the file named after the tunnel", tunnel.Tunnel, tunnel.CredentialsFile)
	}
	if n := len(tunnel.Ingress); n < 2 || tunnel.Ingress[n-1].Hostname != "" || tunnel.Ingress[n-1].Service != "http_status:404" {
		t.Fatalf("ingress must end with a catch-all rule (service: http_status:404): %+v", tunnel.Ingress)
	}
	rule := tunnel.Ingress[0]
	if rule.Service != "http://"+cfg.Listen {
		t.Errorf("ingress service %q, want the gateway's listen address http://%s", rule.Service, cfg.Listen)
	}
	if !slices.Contains(cfg.AllowedHosts, rule.Hostname) || cfg.PublicURL != "https://"+rule.Hostname {
		t.Errorf("the gateway does not accept the tunnel's host %q: allowed_hosts %q, public_url %q", rule.Hostname, cfg.AllowedHosts, cfg.PublicURL)
	}
	if _, ok := rule.OriginRequest["httpHostHeader"]; ok {
		t.Errorf("originRequest sets httpHostHeader, which would hide the client's Host from the gateway")
	}
	if !slices.Contains(cfg.TrustedProxies, mustPrefix(t, "127.0.0.1/32")) {
		t.Errorf("trusted_proxies %v does not name cloudflared on loopback", cfg.TrustedProxies)
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
