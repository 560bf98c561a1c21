package importer

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/config"
)

// FuzzConvert: Convert never panics; what it accepts, mcpgw accepts with
// the variables it names set; and no env value it judged a secret
// appears in its output.
func FuzzConvert(f *testing.F) {
	for _, fx := range fixtures {
		if data, err := os.ReadFile(fx.path); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"mcpServers": {"a": {"command": "npx", "args": ["-y", "x", "--token", "abc"], "env": {"API_KEY": "sk-EXAMPLE0000000000000000"}}}}`))
	f.Add([]byte(`{"servers": {"a": {"command": "docker", "args": ["run", "-i", "-e", "T=ghp_EXAMPLEexample000000000000000000000", "img"]}}}`))
	f.Add([]byte(`{"mcpServers": {"": {"command": "$", "args": ["${", "${a:-b}", "${input:}", "$${x}"]}}}`))
	f.Add([]byte("{\"mcp\": {\"servers\": {\"x\": {\"command\": \"a\", // c\n}}},}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert(data, &Options{ReadFile: func(string) ([]byte, error) { return []byte("A=1\n"), nil }})
		if err != nil {
			if res != nil {
				t.Fatalf("Convert returned a result and an error: %v", err)
			}
			return
		}
		vars := map[string]bool{}
		for _, v := range res.Variables {
			vars[v] = true
		}
		cfg, err := config.Parse(res.YAML, func(name string) (string, bool) { return "set", vars[name] })
		if err != nil {
			t.Fatalf("mcpgw refuses the output: %v\ninput:\n%s\noutput:\n%s", err, data, res.YAML)
		}
		if len(cfg.Servers) != len(res.Servers) {
			t.Fatalf("%d servers in the config, %d reported", len(cfg.Servers), len(res.Servers))
		}
		for _, secret := range literalSecrets(data) {
			if bytes.Contains(res.YAML, []byte(secret)) {
				t.Fatalf("the output shows the secret %q:\n%s", secret, res.YAML)
			}
		}
	})
}

// literalSecrets returns the env values of data's servers that Convert
// treats as secrets, as the fuzz target's oracle. Short values are left
// out: "abc" may appear in the output for other reasons.
func literalSecrets(data []byte) []string {
	clean, err := stripJSONC(data)
	if err != nil {
		return nil
	}
	var doc struct {
		MCPServers map[string]struct {
			Env map[string]any `json:"env"`
		} `json:"mcpServers"`
		Servers map[string]struct {
			Env map[string]any `json:"env"`
		} `json:"servers"`
	}
	if json.Unmarshal(clean, &doc) != nil {
		return nil
	}
	var out []string
	add := func(env map[string]any) {
		for k, v := range env {
			s, ok := v.(string)
			if ok && len(s) >= 12 && !strings.Contains(s, "${") && envIsSecret(k, s) && envName.MatchString(k) {
				out = append(out, s)
			}
		}
	}
	if doc.MCPServers != nil {
		for _, s := range doc.MCPServers {
			add(s.Env)
		}
	} else {
		for _, s := range doc.Servers {
			add(s.Env)
		}
	}
	return out
}

// FuzzStripJSONC: never panics, keeps the length (so JSON errors keep
// their offsets), and changes nothing in a document that is already JSON.
func FuzzStripJSONC(f *testing.F) {
	for _, fx := range fixtures {
		if data, err := os.ReadFile(fx.path); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"a": "//", "b": [1,2,], /* c */ "d": "\"/*"}`))
	f.Add([]byte("\xef\xbb\xbf{\"a\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := stripJSONC(data)
		if err != nil {
			return
		}
		if len(out) != len(data) {
			t.Fatalf("length %d, want %d", len(out), len(data))
		}
		if bytes.Count(out, []byte("\n")) != bytes.Count(data, []byte("\n")) {
			t.Fatalf("the line count changed")
		}
		if json.Valid(data) && !bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) && !bytes.Equal(out, data) {
			t.Fatalf("valid JSON changed:\n%q\n%q", data, out)
		}
	})
}
