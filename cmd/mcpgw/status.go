package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/status"
)

// statusTimeout bounds the whole request of "mcpgw status".
const statusTimeout = 10 * time.Second

var statusCommand = &command{
	name:     "status",
	synopsis: "[--url URL]",
	summary:  "show what a running gateway is doing: servers, processes, sessions, errors",
	about: `
Fetches the status page of a running gateway (GET URL/status with Accept:
application/json) and prints it: each server's readiness (and why not),
processes with their age and load, starts, crashes and back-off, sessions
by protocol version and identity, and the recent errors. With
authentication on, set MCPGW_TOKEN to a client token to see the detail.
The exit status is 0 when the gateway is ready, 1 otherwise.`,
	define: func(fs *flag.FlagSet, c *cli) action {
		u := fs.String("url", "http://127.0.0.1:8080", "the gateway's base URL")
		return func(ctx context.Context, _ []string) error {
			return runStatus(ctx, c, *u)
		}
	},
}

func runStatus(ctx context.Context, c *cli, base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("--url %q: must be the gateway's http:// or https:// base URL, e.g. http://127.0.0.1:8080", base)}
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u.String(), "/")+"/status", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if tok, ok := c.lookupEnv("MCPGW_TOKEN"); ok && tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the gateway at %s: %v; is \"mcpgw serve\" running there? (set --url to its address)", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the status of %s: %w", u.Host, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s has no status page: it is off (set status: {enabled: true} in its config), or this is not mcpgw", u.Host)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable:
		return fmt.Errorf("the status page of %s answered %s", u.Host, resp.Status)
	}
	var p status.Page
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("the status page of %s is not mcpgw's JSON: %v", u.Host, err)
	}
	if err := status.Text(c.stdout, &p); err != nil {
		return err
	}
	if p.Status != "ready" {
		return errNotReady{p.Status}
	}
	return nil
}

// errNotReady makes the exit status 1 once the status is printed.
type errNotReady struct{ status string }

func (e errNotReady) Error() string { return "the gateway is " + e.status }
