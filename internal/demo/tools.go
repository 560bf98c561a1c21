package demo

import (
	"context"
	"fmt"
	"time"
	_ "time/tzdata" // now must accept IANA names even in images without /usr/share/zoneinfo.

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxSleep bounds the sleep tool, so a demo call cannot pin a session for
// longer than a gateway's request timeouts are likely to allow.
const maxSleep = 300 * time.Second

// progressInterval is how often sleep reports progress.
const progressInterval = time.Second

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to return unchanged"`
}

type nowArgs struct {
	Timezone string `json:"timezone,omitempty" jsonschema:"IANA time zone name such as Europe/Paris or UTC; defaults to the server's local time zone"`
}

type nowResult struct {
	Time     string `json:"time" jsonschema:"the current time in RFC 3339 format"`
	Unix     int64  `json:"unix" jsonschema:"the current time in seconds since the Unix epoch"`
	Timezone string `json:"timezone" jsonschema:"the time zone the time is expressed in"`
}

type sleepArgs struct {
	Seconds float64 `json:"seconds" jsonschema:"how long to sleep, in seconds (0 to 300)"`
}

type sleepResult struct {
	Slept float64 `json:"slept" jsonschema:"how long the server slept, in seconds"`
}

// addTools registers the demo tools on s.mcp.
func (s *Server) addTools() error {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "echo",
		Description: "Return the given text unchanged.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, echo)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "now",
		Description: "Return the current time in RFC 3339 format and as Unix seconds, optionally in a given IANA time zone.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, now)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "list_files",
		Description: fmt.Sprintf("List the entries (name, type, size) of a directory under the server's working directory, at most %d of them.", maxListEntries),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, s.listFiles)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "read_file",
		Description: "Return the text content of a UTF-8 file under the server's working directory, at most 1 MiB.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, s.readFile)

	// The inferred schema cannot express the bounds, so state them here for
	// clients; sleep checks them again because schemas are advisory to callers.
	sleepSchema, err := jsonschema.For[sleepArgs](nil)
	if err != nil {
		return fmt.Errorf("inferring sleep input schema: %w", err)
	}
	sleepSchema.Properties["seconds"].Minimum = new(0.0)
	sleepSchema.Properties["seconds"].Maximum = new(maxSleep.Seconds())
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name: "sleep",
		Description: "Sleep for the given number of seconds (at most 300), sending a progress " +
			"notification every second when the request carries a progress token.",
		InputSchema: sleepSchema,
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: new(false)},
	}, sleep)
	return nil
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
}

func now(_ context.Context, _ *mcp.CallToolRequest, in nowArgs) (*mcp.CallToolResult, nowResult, error) {
	loc := time.Local
	if in.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(in.Timezone); err != nil {
			return nil, nowResult{}, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Paris", in.Timezone)
		}
	}
	t := time.Now().In(loc)
	return nil, nowResult{Time: t.Format(time.RFC3339), Unix: t.Unix(), Timezone: loc.String()}, nil
}

// sleep sleeps for in.Seconds, reporting progress every progressInterval if
// the caller asked for it (MCP 2025-11-25, basic/utilities/progress). It stops
// as soon as the request is cancelled (basic/utilities/cancellation) or its
// session is shut down; the SDK then sends no response.
func sleep(ctx context.Context, req *mcp.CallToolRequest, in sleepArgs) (*mcp.CallToolResult, sleepResult, error) {
	if in.Seconds < 0 || in.Seconds > maxSleep.Seconds() {
		return nil, sleepResult{}, fmt.Errorf("seconds must be between 0 and %g, got %g", maxSleep.Seconds(), in.Seconds)
	}
	ctx, cancel := handlerContext(ctx)
	defer cancel()

	total := time.Duration(in.Seconds * float64(time.Second))
	token := req.Params.GetProgressToken()
	start := time.Now()
	timer := time.NewTimer(min(progressInterval, total))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, sleepResult{}, fmt.Errorf("sleep interrupted after %s: %w", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		case <-timer.C:
		}
		elapsed := time.Since(start)
		if elapsed >= total {
			return nil, sleepResult{Slept: elapsed.Seconds()}, nil
		}
		if token != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token,
				Progress:      elapsed.Seconds(),
				Total:         total.Seconds(),
				Message:       fmt.Sprintf("slept %s of %s", elapsed.Round(time.Second), total),
			})
			if err != nil && ctx.Err() == nil {
				return nil, sleepResult{}, fmt.Errorf("sending sleep progress: %w", err)
			}
		}
		timer.Reset(min(progressInterval, total-elapsed))
	}
}
