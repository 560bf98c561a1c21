package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/mcpgw/mcpgw/internal/pins"
	"github.com/mcpgw/mcpgw/internal/pins/redispins"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

const toolsUsage = `Subcommands:
  mcpgw tools list    [--config FILE | --state-dir DIR]               the pinned tools (pin_tools) and their state
  mcpgw tools approve [--config FILE | --state-dir DIR] SERVER TOOL   trust the definition of TOOL last seen

A tool is pinned to the first definition the gateway sees. When it changes,
"tools list" shows it as pending when its server has pin_tools: enforce (it
is hidden until approved), and as changed under pin_tools: warn (it is
served, and was logged). A running gateway applies an approval within a
second and tells its connected clients that their tool list changed.
With --config naming a config with cluster.redis, the pins are the ones in
Redis that every replica shares (the command needs the Redis URL in its
environment), and an approval holds on every replica.
`

var toolsCommand = &command{
	name:     "tools",
	synopsis: "list|approve [--config FILE | --state-dir DIR] [SERVER TOOL]",
	summary:  "list pinned tool definitions and approve changed ones",
	about:    "Reads and changes the tool pins (pin_tools) under state_dir.\n\n" + toolsUsage,
	maxArgs:  1 << 16,
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(ctx context.Context, args []string) error {
			return runTools(ctx, args, c.stdout, c.stderr, c.lookupEnv)
		}
	},
}

func runTools(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, toolsUsage)
		return usageError{errors.New("tools: no subcommand given")}
	}
	sub := args[0]
	fs := flag.NewFlagSet("tools "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // main reports the error once
	cfgPath := fs.String("config", "", "config file whose state_dir to use")
	stateDir := fs.String("state-dir", "", "state directory (default: the config's state_dir, else the per-user default)")
	switch sub {
	case "list", "approve":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, toolsUsage)
		return nil
	default:
		fmt.Fprint(stderr, toolsUsage)
		return usageError{fmt.Errorf("tools: unknown subcommand %q", sub)}
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	switch {
	case sub == "list" && fs.NArg() > 0:
		return usageError{errors.New("tools list takes no arguments besides --config or --state-dir")}
	case sub == "approve" && fs.NArg() != 2:
		return usageError{errors.New("tools approve needs SERVER TOOL, e.g. mcpgw tools approve github get_issue (see mcpgw tools list)")}
	}
	dir, cfg, err := stateDirOf("tools", *cfgPath, *stateDir, lookupEnv)
	if err != nil {
		return err
	}
	var st pinDB
	if cfg != nil && cfg.Cluster != nil && cfg.Cluster.Redis != nil {
		conn, err := redisconn.New(cfg.Cluster.Redis)
		if err != nil {
			return err
		}
		st, dir = redispins.New(conn, nil), "Redis (cluster.redis, "+cfg.Cluster.Redis.URLEnv+")"
	} else if st, err = pins.Open(ctx, dir, nil); err != nil {
		return err
	}
	defer st.Close()
	if sub == "list" {
		return listPins(ctx, st, stdout)
	}
	server, tool := fs.Arg(0), fs.Arg(1)
	switch was, err := st.Approve(ctx, server, tool); {
	case errors.Is(err, pins.ErrUnknown):
		return fmt.Errorf("server %q has no pinned tool %q in %s; mcpgw tools list shows the pinned tools", printable(server), printable(tool), dir)
	case err != nil:
		return err
	case !was:
		fmt.Fprintf(stdout, "%s of server %s is already approved: its definition has not changed\n", printable(tool), printable(server))
	default:
		fmt.Fprintf(stdout, "approved %s of server %s; a running gateway serves it within a second\n", printable(tool), printable(server))
	}
	return nil
}

// pinDB is the tool pins as the commands use them: a *pins.Store, or a
// *redispins.Store when the config has cluster.redis.
type pinDB interface {
	List(ctx context.Context) ([]*pins.Pin, error)
	Approve(ctx context.Context, server, tool string) (bool, error)
	Close() error
}

func listPins(ctx context.Context, st pinDB, stdout io.Writer) error {
	list, err := st.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tSTATE\tAPPROVED\tSEEN\tFIRST_SEEN\tCHANGED")
	for _, p := range list {
		state := "pinned"
		if p.Pending() {
			approve := "(approve with: mcpgw tools approve " + printable(p.Server) + " " + printable(p.Tool) + ")"
			switch p.Mode {
			case "enforce":
				state = "pending: hidden until approved " + approve
			case "warn":
				state = "changed: served, with a warning " + approve
			default:
				state = "changed " + approve
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(p.Server), printable(p.Tool), state, short(p.Approved), short(p.Seen),
			p.FirstSeen.UTC().Format(time.RFC3339), p.Changed.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// short is a digest's first 16 hex digits, as the gateway logs it.
func short(digest string) string { return digest[:min(16, len(digest))] }
