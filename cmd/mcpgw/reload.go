package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/reload"
)

var reloadCommand = &command{
	name:     "reload",
	synopsis: "[--config FILE | --state-dir DIR]",
	summary:  "make a running gateway re-read its config file",
	about: `
Asks the "mcpgw serve" whose state directory is given (the config's
state_dir, else the per-user default) to re-read its config file, and
prints what it did: unchanged servers keep their processes and sessions,
changed and removed ones drain, added ones serve. A config with problems
is refused and listed, and the gateway goes on with the one it has; the
exit code is then 1. With --config the file is read here first, and a file
with problems is listed as "mcpgw check" lists it (exit 2) without asking
the gateway. SIGHUP to the gateway does the same without an answer.

It talks to the gateway over the Unix socket STATE_DIR/mcpgw.sock, which
only the gateway's user (or root) may use; run it as that user.`,
	define: func(fs *flag.FlagSet, c *cli) action {
		cfgPath := fs.String("config", "", "config `file` whose state_dir to use")
		stateDir := fs.String("state-dir", "", "the gateway's state `dir`ectory (default: the config's state_dir, else the per-user default)")
		return func(ctx context.Context, _ []string) error {
			return runReload(ctx, c, *cfgPath, *stateDir)
		}
	},
}

func runReload(ctx context.Context, c *cli, cfgPath, stateDir string) error {
	switch {
	case stateDir != "" && cfgPath != "":
		return usageError{errors.New("reload: give --config or --state-dir, not both")}
	case cfgPath != "":
		cfg, err := loadConfig(cfgPath, c.lookupEnv)
		if err != nil {
			// The gateway would refuse it the same way: say so here
			// rather than ask it.
			return usageError{fmt.Errorf("not reloaded: %w", err)}
		}
		stateDir = cfg.StateDir
	case stateDir == "":
		if cfg, err := config.Default(envWithSelf(c.lookupEnv)); err == nil {
			stateDir = cfg.StateDir
		}
	}
	if stateDir == "" {
		return usageError{errors.New("reload: no state directory (neither XDG_STATE_HOME nor HOME is set): give --state-dir or --config")}
	}
	r, err := reload.Request(ctx, stateDir)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if !r.OK {
		for _, p := range r.Problems[:max(0, len(r.Problems)-1)] {
			fmt.Fprintln(c.stderr, p)
		}
		last := "refused"
		if n := len(r.Problems); n > 0 {
			last = r.Problems[n-1]
		}
		return errors.New(last)
	}
	fmt.Fprintln(c.stdout, r.Summary)
	return nil
}

// reloader re-reads the config file of a running "mcpgw serve" on SIGHUP,
// on "mcpgw reload" (the control socket) and, with reload: watch, when the
// file changes. One reload runs at a time.
type reloader struct {
	path, listen string // --config ("" for the built-in configuration) and --listen
	lookupEnv    func(string) (string, bool)
	g            *gateway.Gateway
	log          *slog.Logger
	level        *slog.LevelVar // the log level, which a reload changes
	format       string         // the log format, which only a restart changes

	mu          sync.Mutex
	watchCancel context.CancelFunc // stops the watcher; nil when not watching
	wg          sync.WaitGroup     // the watcher
}

// reload re-reads the file and applies it; trigger names what asked, for
// the log. Every problem of a refused config is logged once, one line
// each, and returned in the reply.
func (r *reloader) reload(ctx context.Context, trigger string) reload.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Info("reloading the configuration", "trigger", trigger, "config", r.path)
	refuse := func(problems ...string) reload.Reply {
		for _, p := range problems {
			r.log.Error("reload refused: " + p)
		}
		what := fmt.Sprintf("%d problems", len(problems))
		if len(problems) == 1 {
			what = "1 problem"
		}
		summary := fmt.Sprintf("reload refused (%s); still serving the previous configuration", what)
		r.log.Error(summary, "trigger", trigger)
		return reload.Reply{Problems: append(problems, summary)}
	}
	if r.path == "" {
		return refuse("the gateway serves the built-in configuration (no --config): there is no file to re-read; restart it with --config FILE")
	}
	cfg, err := loadConfig(r.path, r.lookupEnv)
	if err == nil && r.listen != "" {
		err = applyListen(cfg, r.path, r.listen) // --listen still wins over the file
	}
	if err != nil {
		return refuse(r.problemLines(err)...)
	}
	res, err := r.g.Reload(ctx, cfg)
	if err != nil {
		return refuse(r.problemLines(err)...)
	}
	r.level.Set(logLevel(cfg.Log))
	if cfg.Log.Format != r.format {
		r.log.Warn("log.format changed: it takes effect when mcpgw restarts; the rest of the configuration is applied", "format", r.format)
	}
	r.setWatch(cfg.Reload == config.ReloadWatch)
	summary := summarize(res)
	r.log.Info("configuration reloaded", "trigger", trigger, "unchanged", strings.Join(res.Unchanged, ","),
		"changed", strings.Join(res.Changed, ","), "added", strings.Join(res.Added, ","), "removed", strings.Join(res.Removed, ","),
		"listen", cfg.Listen)
	return reload.Reply{OK: true, Summary: summary}
}

// openControl serves the control socket of "mcpgw reload" in the state
// directory. Without it (no state directory, another gateway holds it) the
// gateway logs why and runs on: SIGHUP still reloads.
func openControl(cfg *config.Config, rl *reloader, log *slog.Logger) *reload.Server {
	ctl, err := reload.Listen(cfg.StateDir, func(ctx context.Context) reload.Reply { return rl.reload(ctx, "mcpgw reload") }, log)
	if err != nil {
		log.Warn("no control socket: mcpgw reload cannot reach this gateway; SIGHUP still reloads it", "error", err.Error())
		return nil
	}
	log.Info("control socket for mcpgw reload", "socket", ctl.Path())
	return ctl
}

// problemLines are the lines of err: one per problem of a config error,
// each prefixed with the file.
func (r *reloader) problemLines(err error) []string {
	var ce *config.Error
	if errors.As(err, &ce) {
		if ce.File == "" {
			ce = &config.Error{File: r.path, Problems: ce.Problems}
		}
		return strings.Split(ce.Error(), "\n")
	}
	return []string{err.Error()}
}

// summarize is the one line "mcpgw reload" prints.
func summarize(res *gateway.ReloadResult) string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"unchanged", res.Unchanged}, {"changed", res.Changed}, {"added", res.Added}, {"removed", res.Removed}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+": "+strings.Join(p.names, ", "))
		}
	}
	s := "reloaded"
	if len(parts) > 0 {
		s += "; " + strings.Join(parts, "; ")
	}
	if !res.DrainBy.IsZero() {
		s += "; sessions of changed and removed servers end by " + res.DrainBy.UTC().Format("15:04:05Z")
	}
	if res.Listen != "" {
		s += "; now listening on " + res.Listen
	}
	return s
}

// setWatch starts or stops the watcher of the config file.
func (r *reloader) setWatch(on bool) {
	switch {
	case on && r.watchCancel == nil && r.path != "":
		ctx, cancel := context.WithCancel(context.Background())
		r.watchCancel = cancel
		r.log.Info("watching the config file for changes (reload: watch)", "config", r.path)
		r.wg.Go(func() { // owner: reloader; ends with close
			reload.Watch(ctx, r.path, reload.WatchInterval, func() { r.reload(ctx, "file changed") })
		})
	case !on && r.watchCancel != nil:
		r.watchCancel()
		r.watchCancel = nil
		r.log.Info("no longer watching the config file (reload: signal)", "config", r.path)
	}
}

// close stops the watcher and waits for it.
func (r *reloader) close() {
	r.mu.Lock()
	if r.watchCancel != nil {
		r.watchCancel()
		r.watchCancel = nil
	}
	r.mu.Unlock()
	r.wg.Wait()
}
