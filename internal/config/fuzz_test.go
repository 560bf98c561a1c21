package config

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzSecret is what every variable of the fuzz environment holds (around
// other text), so that a message showing an expanded value is caught.
const fuzzSecret = "Fz-S3cret"

// FuzzParse checks that Parse never panics, that what it accepts passes
// Validate again, and that no message shows a value from the environment.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML)
	f.Add([]byte(fullYAML))
	f.Add([]byte("servers: {fs: {command: [x]}}"))
	f.Add([]byte("servers:\n  a: &a {command: [x], env: {T: \"${TOKEN}\"}}\n  b: {<<: *a, mode: daemon}\n"))
	f.Add([]byte("listen: ${PORT}\nallowed_hosts: [\"${HOST}\", 'X:1']\nallowed_origins: ['https://A:443/', 'null']\nservers: {s: {command: [\"$$\", \"${BIN}\"]}}\n"))
	f.Add([]byte("limits: {max_body_bytes: 4MiB, sse_keepalive: 1s, max_processes: 1}\nservers: {a: {command: [x], timeouts: {idle: 1h}, queue_timeout: 0}}\n"))
	f.Add([]byte("auth: {}\nservers: {a: {command: [x], container: {image: x}}}\n---\n"))
	f.Add([]byte("auth:\n  tokens: [{name: a, value_env: TOKEN}, {name: b, sha256: \"${HEX}\"}]\n  jwt: {issuer: \"${ISS}\", audiences: [x], clock_skew: 1s}\ntrusted_proxies: [\"${IP}\", ::1]\nrate: {requests_per_second: \"${RPS}\", per: ip}\nservers: {a: {command: [x], allow: [\"*@${D}\"], session_rate: {requests_per_second: 1e3}}}\n"))
	env := func(name string) (string, bool) {
		switch name {
		case "UNSET":
			return "", false
		case "PORT":
			return fuzzSecret + ":8080", true
		case "EMPTY":
			return "", true
		}
		return "x" + fuzzSecret + "\x00" + name, true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, env)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned both a Config and an error: %v", err)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error is %T, want *Error: %v", err, err)
			}
			if !bytes.Contains(data, []byte("S3cret")) && strings.Contains(err.Error(), "S3cret") {
				t.Fatalf("error shows a value from the environment:\n%v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v\ninput:\n%s", err, data)
		}
		for name, s := range c.Servers {
			if s.Name != name {
				t.Fatalf("server %q has Name %q", name, s.Name)
			}
		}
	})
}
