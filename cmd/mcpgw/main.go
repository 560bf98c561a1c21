// Command mcpgw publishes stdio MCP servers to remote MCP clients over
// Streamable HTTP. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/demo"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version or VCS revision is used.
var version = ""

func main() {
	// The sandbox shim: the gateway re-executes itself to confine
	// a native server with Landlock before exec'ing it.
	if sandbox.Requested() {
		os.Exit(sandbox.Main())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(exitCode(err))
}

// usageError marks command-line and config errors (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `mcpgw — publish stdio MCP servers over Streamable HTTP

Usage:
  mcpgw serve [--config FILE] [--listen ADDR]   run the gateway (default config: the demo server)
  mcpgw check --config FILE                     validate a config file and list every problem
  mcpgw token [NAME]                            generate a bearer token and its auth.tokens line
  mcpgw demo-server                             the built-in stdio MCP demo server
  mcpgw version                                 print the version
`

// run is the whole program; main only adapts it to the OS.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr, lookupEnv)
	case "check":
		return runCheck(args[1:], stdout, stderr, lookupEnv)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "demo-server":
		return demo.Run(ctx, io.NopCloser(stdin), nopWriteCloser{stdout}, versionString())
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "mcpgw", versionString())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
}

// runToken generates a bearer token of 256 random bits (base64url, 43
// characters) and prints it once, with the auth.tokens line that holds
// only its SHA-256: the token itself is stored nowhere.
func runToken(args []string, stdout, stderr io.Writer) error {
	name := "client"
	switch len(args) {
	case 0:
	case 1:
		name = args[0]
	default:
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("token takes at most one argument, the token's name")}
	}
	if !config.TokenNamePattern.MatchString(name) {
		return usageError{fmt.Errorf("token name %q: use 1 to 64 characters A-Z, a-z, 0-9, _, . and -, starting with a letter or digit", name)}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("generating a token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	fmt.Fprintf(stdout, "# token %q, shown only now: give it to the client, which sends \"Authorization: Bearer <token>\"\n%s\n", name, token)
	fmt.Fprintf(stdout, "# add this line under auth.tokens in the config (it holds only the token's SHA-256):\n- {name: %s, sha256: \"%s\"}\n", name, hex.EncodeToString(sum[:]))
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
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

func loadConfig(path string, lookupEnv func(string) (string, bool)) (*config.Config, error) {
	lookup := envWithSelf(lookupEnv)
	if path == "" {
		return config.Default(lookup)
	}
	return config.Load(path, lookup)
}

func runCheck(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to validate")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *path == "" || fs.NArg() > 0 {
		return usageError{errors.New("usage: mcpgw check --config FILE")}
	}
	cfg, err := loadConfig(*path, lookupEnv)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(ce.Problems))
			for _, p := range ce.Problems {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
			// check exits 1 with all errors listed.
			return fmt.Errorf("%s is not valid", *path)
		}
		return err
	}
	names := slices.Sorted(maps.Keys(cfg.Servers))
	fmt.Fprintf(stdout, "%s: ok (%d server(s): %s)\n", *path, len(cfg.Servers), strings.Join(names, ", "))
	return nil
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default: embedded config serving the demo server)")
	listen := fs.String("listen", "", "listen address host:port (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := loadConfig(*path, lookupEnv)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintf(stderr, "config: %s\n", p)
			}
		}
		return usageError{fmt.Errorf("loading config: %w", err)}
	}
	if *listen != "" {
		if _, _, err := net.SplitHostPort(*listen); err != nil {
			return usageError{fmt.Errorf("--listen %q: %w", *listen, err)}
		}
		cfg.Listen = *listen
		if err := cfg.Validate(); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					fmt.Fprintf(stderr, "config (with --listen %s): %s\n", *listen, p)
				}
			}
			return usageError{fmt.Errorf("--listen %q: %w", *listen, err)}
		}
	}
	log := newLogger(cfg.Log, stderr)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another gateway running? change listen or --listen)", cfg.Listen, err)
	}
	g := gateway.New(cfg, &gateway.Options{Logger: log, Getenv: lookupEnv, Version: versionString()})
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
	names := slices.Sorted(maps.Keys(cfg.Servers))
	fmt.Fprintf(stdout, "mcpgw %s listening on http://%s — connect an MCP client to http://%s/mcp/%s (servers: %s)\n",
		versionString(), addr, addr, names[0], strings.Join(names, ", "))
	log.Info("gateway started", "listen", addr, "servers", strings.Join(names, ","), "version", versionString())

	serveErr := make(chan error, 1)
	go func() { serveErr <- g.Serve(ln) }() // owner: runServe, which waits below

	select {
	case err := <-serveErr:
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
		_ = g.Shutdown(sctx)
		cancel()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout_ms", cfg.Limits.ShutdownTimeout.Milliseconds())
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout)
	err = g.Shutdown(sctx)
	cancel()
	<-serveErr
	log.Info("gateway stopped", "duration", float64(time.Since(start).Microseconds())/1000)
	return err
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
