// Package status is the gateway's status page: what a person needs to see
// at a glance — which servers are ready (and why not), their processes,
// sessions and back-off, the recent errors, the config and the version —
// as server-rendered HTML (no script, readable on a phone) or as JSON, and
// its terminal form for `mcpgw status`. It renders a Page; the gateway
// builds the Page from the session layer's snapshot.
package status

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Page is everything the status page shows. Without Detail (an
// unauthenticated caller when authentication is on) only Status, Version
// and Time are filled.
type Page struct {
	Status       string    `json:"status"` // "ready", "not ready", "draining"
	Version      string    `json:"version,omitempty"`
	Time         time.Time `json:"time"`
	Detail       bool      `json:"detail"`
	Started      time.Time `json:"started,omitzero"`
	Uptime       string    `json:"uptime,omitempty"`
	ConfigPath   string    `json:"config_path,omitempty"`
	ConfigLoaded time.Time `json:"config_loaded,omitzero"`
	Servers      []Server  `json:"servers,omitempty"`
	Errors       []Error   `json:"recent_errors,omitempty"`
}

// Server is one configured server.
type Server struct {
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	Mode    string `json:"mode"`
	Ready   bool   `json:"ready"`
	// Reason says why it is not ready (a missing image, a crash loop).
	Reason    string    `json:"reason,omitempty"`
	Backoff   bool      `json:"backoff"`
	Failures  int       `json:"consecutive_failures"`
	Starts    int64     `json:"starts"`
	Crashes   int64     `json:"crashes"`
	InFlight  int       `json:"in_flight"`
	Starting  int       `json:"starting"`
	Processes []Process `json:"processes"`
	// Sessions counts sessions by protocol version, Identities by the
	// identity that opened them ("anonymous" without authentication).
	Sessions   map[string]int `json:"sessions"`
	Identities map[string]int `json:"sessions_by_identity"`
	Streams    map[string]int `json:"streams"`
}

// Process is one running process of a server.
type Process struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	Era      string    `json:"era"`
	Started  time.Time `json:"started"`
	Age      string    `json:"age"`
	InFlight int       `json:"in_flight"`
	Sessions int       `json:"sessions"`
}

// SessionCount is the number of sessions of s.
func (s Server) SessionCount() int {
	n := 0
	for _, c := range s.Sessions {
		n += c
	}
	return n
}

// Age renders a duration for people: "3d4h", "2h5m", "4m10s", "12s".
func Age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

//go:embed page.html
var files embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"counts": func(m map[string]int) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	},
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
}).ParseFS(files, "page.html"))

// HTML renders p as the status page.
func HTML(w io.Writer, p *Page) error { return page.Execute(w, p) }

// Text renders p for a terminal (`mcpgw status`).
func Text(w io.Writer, p *Page) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mcpgw %s: %s\n", p.Version, p.Status)
	if !p.Detail {
		b.WriteString("(no detail: send the credentials of an MCP client, e.g. MCPGW_TOKEN, to see servers and errors)\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	cfg := p.ConfigPath
	if cfg == "" {
		cfg = "built-in"
	}
	fmt.Fprintf(&b, "up %s since %s; config %s loaded %s\n\n", p.Uptime, p.Started.UTC().Format(time.RFC3339), cfg, p.ConfigLoaded.UTC().Format(time.RFC3339))
	for _, s := range p.Servers {
		state := "ready"
		if !s.Ready {
			state = "NOT READY: " + s.Reason
		}
		fmt.Fprintf(&b, "%s (%s, %s): %s\n", s.Name, s.Runtime, s.Mode, state)
		fmt.Fprintf(&b, "  processes %d (+%d starting), in flight %d, starts %d, crashes %d", len(s.Processes), s.Starting, s.InFlight, s.Starts, s.Crashes)
		if s.Backoff {
			fmt.Fprintf(&b, ", BACK-OFF after %d failures", s.Failures)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  sessions %d (%s)", s.SessionCount(), countsText(s.Sessions))
		if len(s.Identities) > 0 {
			fmt.Fprintf(&b, " by %s", countsText(s.Identities))
		}
		b.WriteString("\n")
		for _, pr := range s.Processes {
			fmt.Fprintf(&b, "  - process %s %s, age %s, in flight %d, sessions %d\n", pr.ID, pr.State, pr.Age, pr.InFlight, pr.Sessions)
		}
	}
	if len(p.Errors) > 0 {
		fmt.Fprintf(&b, "\nrecent errors (newest first):\n")
		for _, e := range p.Errors {
			fmt.Fprintf(&b, "  %s %s HTTP %d request %s: %s\n", e.Time.UTC().Format("15:04:05"), orDash(e.Server), e.Status, e.RequestID, e.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countsText(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
