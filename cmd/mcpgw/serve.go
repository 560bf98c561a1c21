package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/tracing"
)

var serveCommand = &command{
	name:     "serve",
	synopsis: "[--config FILE] [--listen ADDR]",
	summary:  "run the gateway (without --config: the built-in demo server)",
	about: `
Runs the gateway until SIGTERM or SIGINT, which drain in-flight requests for
up to limits.shutdown_timeout and stop every server process. SIGHUP (or
"mcpgw reload") re-reads the config file and applies it without dropping
sessions; a file with problems is refused and the running config kept.

Without --config it serves the built-in demo server at
http://127.0.0.1:8080/mcp/demo, reachable from this machine only. It prints
one line on stdout saying where it listens and which URLs to give MCP
clients; its log goes to stderr.`,
	argsHint: func(extra []string) string {
		return fmt.Sprintf("; give a config file with --config %s", extra[0])
	},
	define: func(fs *flag.FlagSet, c *cli) action {
		path := fs.String("config", "", "config `file` (default: the built-in configuration serving the demo server)")
		listen := fs.String("listen", "", "listen `addr`ess host:port; overrides listen: in the config")
		return func(ctx context.Context, _ []string) error {
			return runServe(ctx, c, *path, *listen)
		}
	},
}

// loadConfig reads the configuration at path, or the built-in one when
// path is "". A file that cannot be read gets an error saying which file
// and what to do.
func loadConfig(path string, lookupEnv func(string) (string, bool)) (*config.Config, error) {
	lookup := envWithSelf(lookupEnv)
	if path == "" {
		return config.Default(lookup)
	}
	cfg, err := config.Load(path, lookup)
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return nil, configFileError(path, pe)
	}
	return cfg, err
}

// configFileError explains why the config file at path cannot be read.
func configFileError(path string, pe *fs.PathError) error {
	switch {
	case errors.Is(pe.Err, fs.ErrNotExist):
		wd, _ := os.Getwd()
		return fmt.Errorf("config file %s does not exist (relative paths are from %s); check the path given to --config", path, wd)
	case errors.Is(pe.Err, fs.ErrPermission):
		return fmt.Errorf("config file %s cannot be read: permission denied; make it readable for uid %d, which runs mcpgw", path, os.Getuid())
	}
	return fmt.Errorf("reading config file %s: %w", path, pe.Err)
}

// envWithSelf adds MCPGW_BIN (the running binary) to the lookup used for
// ${VAR} expansion, so that the default config can start the demo server.
func envWithSelf(lookupEnv func(string) (string, bool)) func(string) (string, bool) {
	self, err := os.Executable()
	return func(k string) (string, bool) {
		if k == "MCPGW_BIN" {
			if v, ok := lookupEnv(k); ok {
				return v, true
			}
			if err == nil {
				return self, true
			}
		}
		return lookupEnv(k)
	}
}

// applyListen overrides cfg.Listen with the --listen flag and validates
// the result; its problems name the flag as their source.
func applyListen(cfg *config.Config, path, listen string) error {
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return usageError{fmt.Errorf("--listen %q: %s; write host:port, e.g. 127.0.0.1:8080 (or :8080 for every interface)", listen, addrProblem(err))}
	}
	cfg.Listen = listen
	if err := cfg.Validate(); err != nil {
		if ce, ok := errors.AsType[*config.Error](err); ok {
			source := "built-in configuration"
			if path != "" {
				source = path
			}
			return usageError{&config.Error{File: source + " with --listen " + listen, Problems: ce.Problems}}
		}
		return usageError{fmt.Errorf("--listen %q: %w", listen, err)}
	}
	return nil
}

// addrProblem is what net.SplitHostPort found wrong, without the address
// it repeats.
func addrProblem(err error) string {
	if ae, ok := errors.AsType[*net.AddrError](err); ok {
		return ae.Err
	}
	return err.Error()
}

// listenError explains a failed net.Listen on addr: who holds the port,
// or why this address cannot be used, and what to change.
func listenError(addr string, err error) error {
	const change = "choose another with --listen or listen: in the config"
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listening on %s: the address is already in use (another mcpgw, or another program, holds that port); stop it or %s", addr, change)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("listening on %s: permission denied (ports below 1024 need the CAP_NET_BIND_SERVICE capability); use a port from 1024 up, e.g. 127.0.0.1:8080, or grant the capability", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("listening on %s: this machine has no such address; use 127.0.0.1, or an address of one of its interfaces (%s)", addr, change)
	}
	return fmt.Errorf("listening on %s: %w; %s", addr, err, change)
}

// newLogger returns the gateway's logger and its level, which a reload
// changes.
func newLogger(cfg config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lvl := new(slog.LevelVar)
	lvl.Set(logLevel(cfg))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), lvl
	}
	return slog.New(slog.NewJSONHandler(w, opts)), lvl
}

func logLevel(cfg config.Log) slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	return lvl
}

func runServe(ctx context.Context, c *cli, path, listen string) error {
	// SIGHUP reloads (below); caught from the start, so that one sent
	// while the gateway starts does not kill it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := loadConfig(path, c.lookupEnv)
	if err != nil {
		return usageError{err}
	}
	if listen != "" {
		if err := applyListen(cfg, path, listen); err != nil {
			return err
		}
	}
	log, level := newLogger(cfg.Log, c.stderr)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return listenError(cfg.Listen, err)
	}
	gopts := &gateway.Options{Logger: log, Getenv: c.lookupEnv, Version: versionString(),
		ConfigPath: path, ConfigLoaded: time.Now()}
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen: listening on %s: %s; choose another address for metrics.listen in the config, or remove it to turn metrics off",
				cfg.Metrics.Listen, addrErrorText(err))
		}
		defer mln.Close() // Shutdown closes it first; this is for the error paths
		gopts.MetricsListener = mln
	}
	if ts, on, err := tracing.Resolve(cfg.Tracing, c.lookupEnv); err != nil {
		ln.Close()
		return usageError{fmt.Errorf("tracing: %w", err)}
	} else if on {
		tr, err := tracing.New(ctx, ts, versionString(), nil)
		if err != nil {
			ln.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(sctx); err != nil {
				log.Warn("tracing: could not export the last spans", "error", err.Error())
			}
		}()
		gopts.Tracer = tr
		u, _ := url.Parse(ts.Endpoint)
		log.Info("tracing on: exporting spans over OTLP/HTTP", "collector", u.Scheme+"://"+u.Host, "sample_ratio", ts.SampleRatio,
			"service_name", ts.ServiceName)
	}
	var g *gateway.Gateway
	if cfg.Auth.OAuth != nil {
		as, st, err := startOAuth(ctx, cfg, log, func(r *http.Request) string { return g.ClientIP(r) })
		if err != nil {
			ln.Close()
			return err
		}
		defer st.Close()
		defer as.Close()
		gopts.OAuth = as
	}
	g = gateway.New(cfg, gopts)
	// Before the startup line: the containers an earlier instance left
	// are removed, and warm processes start.
	if err := g.Open(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("starting the gateway: %w", err)
	}
	addr := ln.Addr().String()
	if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) && cfg.Auth.Mode == config.AuthNone {
		log.Warn("listening on a non-loopback address: anyone who can reach it can use the servers; put it behind an authenticating proxy",
			"listen", addr)
	}
	for _, h := range cfg.AllowedHosts {
		log.Info("accepting non-loopback Host header", "host", h)
	}
	for _, o := range cfg.AllowedOrigins {
		log.Info("accepting browser Origin", "origin", o)
	}
	fmt.Fprintln(c.stdout, startupLine(cfg, addr, versionString()))
	log.Info("gateway started", "listen", addr, "servers", strings.Join(serverNames(cfg), ","), "version", versionString())
	logServers(ctx, log, g, publicBase(cfg, addr))

	serveErr := make(chan error, 1)
	go func() { serveErr <- g.Serve(ln) }() // owner: runServe, which waits below

	rl := &reloader{path: path, listen: listen, lookupEnv: c.lookupEnv, g: g, log: log, level: level, format: cfg.Log.Format}
	rl.setWatch(cfg.Reload == config.ReloadWatch)
	defer rl.close()
	if path != "" { // the built-in configuration has no file to re-read
		if ctl := openControl(cfg, rl, log); ctl != nil {
			defer ctl.Close()
		}
	}
	for done := false; !done; {
		select {
		case err := <-serveErr:
			rl.close()
			sctx, cancel := context.WithTimeout(context.Background(), g.Config().Limits.ShutdownTimeout)
			_ = g.Shutdown(sctx)
			cancel()
			return err // says "serving HTTP on ADDR: …"
		case <-hup:
			rl.reload(ctx, "SIGHUP")
		case <-ctx.Done():
			done = true
		}
	}
	rl.close()
	cfg = g.Config() // the reloaded one: its shutdown_timeout
	log.Info("shutting down: draining in-flight requests", "timeout_ms", cfg.Limits.ShutdownTimeout.Milliseconds())
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout)
	err = g.Shutdown(sctx)
	cancel()
	<-serveErr
	log.Info("gateway stopped", "duration", float64(time.Since(start).Microseconds())/1000)
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// serverNames returns the configured server names in order.
func serverNames(cfg *config.Config) []string {
	return slices.Sorted(maps.Keys(cfg.Servers))
}

// startupLine is the one line serve prints on stdout once it listens:
// where, and the URL of every server that a client connects to (under
// public_url when set), and whether a client needs credentials.
func startupLine(cfg *config.Config, addr, version string) string {
	base := publicBase(cfg, addr)
	names := serverNames(cfg)
	urls := make([]string, len(names))
	for i, n := range names {
		urls[i] = base + "/mcp/" + n
	}
	what := "an MCP client to "
	if len(urls) > 1 {
		what = "MCP clients to "
	}
	line := fmt.Sprintf("mcpgw %s listening on http://%s — connect %s%s", version, addr, what, strings.Join(urls, ", "))
	if cfg.Auth.Mode == config.AuthRequired {
		line += " (" + credentialsNeeded(&cfg.Auth) + ")"
	}
	return line
}

// publicBase is the base of the URLs clients connect to: public_url, else
// the listen address as a client on this machine dials it.
func publicBase(cfg *config.Config, addr string) string {
	if cfg.PublicURL != "" {
		return cfg.PublicURL
	}
	return "http://" + clientAddr(addr)
}

// logServers logs one line per server at start: its URL, runtime, mode
// and sandbox, and, as a warning, what /readyz will report about it when
// it cannot be started here.
func logServers(ctx context.Context, log *slog.Logger, g *gateway.Gateway, base string) {
	for _, st := range g.ServerStates(ctx) {
		attrs := []any{"tool", st.Name, "url", base + "/mcp/" + st.Name, "runtime", st.Runtime, "mode", st.Mode}
		if st.Sandbox != "" {
			attrs = append(attrs, "sandbox", st.Sandbox)
		}
		if st.Problem != nil {
			log.Warn("server not ready", append(attrs, "problem", st.Problem.Error())...)
			continue
		}
		log.Info("serving", attrs...)
	}
}

// credentialsNeeded says what a client must send, in a few words.
func credentialsNeeded(a *config.Auth) string {
	switch {
	case len(a.Tokens) > 0 && a.JWT != nil:
		return "needs a token: a bearer token from auth.tokens or a JWT from " + a.JWT.Issuer
	case a.JWT != nil:
		return "needs a JWT from " + a.JWT.Issuer
	default:
		return `needs a token: "Authorization: Bearer <token>", see auth.tokens`
	}
}

// clientAddr is addr as a client on this machine dials it: an unspecified
// host (0.0.0.0, ::) becomes the loopback address of its family.
func clientAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addrErrorText says why net.Listen failed, without the address it
// repeats.
func addrErrorText(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "the address is already in use"
	case errors.Is(err, syscall.EACCES):
		return "permission denied"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "this machine has no such address"
	}
	return err.Error()
}
