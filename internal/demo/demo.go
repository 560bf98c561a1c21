// Package demo owns mcpgw's built-in demo MCP server, the one `mcpgw
// demo-server` runs over stdio. It is written with the official Go SDK and
// offers a handful of harmless tools (echo, now, list_files, read_file, sleep)
// so that a gateway can be tried out without installing any third-party
// server.
//
// The file tools are confined to one directory with [os.Root], so `..`,
// absolute paths and symbolic links cannot reach anything outside it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Name is the server name the demo server reports in its initialize result.
const Name = "mcpgw-demo"

// maxLineLength bounds one inbound JSON-RPC line on the stdio transport. The
// demo tools take a few short strings, so 1 MiB is generous while keeping a
// misbehaving client from making the server buffer the SDK default of 16 MiB.
const maxLineLength = 1 << 20

// Options configures a demo [Server]. The zero value is valid.
type Options struct {
	// Root is the directory that list_files and read_file are confined to.
	// Empty means "." — the process's working directory when the server is
	// created.
	Root string
}

// Server is the demo MCP server. It may serve any number of sessions, one per
// call to [Server.Serve], concurrently.
type Server struct {
	mcp     *mcp.Server
	root    *os.Root // nil when the directory could not be opened
	rootErr error    // why root is nil
}

// New returns a demo server that reports version as its implementation
// version. A nil opts is equivalent to &Options{}. The caller must Close the
// server to release the directory handle of its root.
func New(version string, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	dir := opts.Root
	if dir == "" {
		dir = "."
	}
	// A sandboxed demo server (mcpgw's default: Landlock without
	// workspaces) may not read its working directory at all; it then still
	// serves echo, now and sleep, and the file tools say why they cannot work.
	root, rootErr := os.OpenRoot(dir)
	if rootErr != nil {
		rootErr = fmt.Errorf("the directory %q is not accessible to this server (%w); give it a workspace to read files", dir, rootErr)
	}
	s := &Server{
		rootErr: rootErr,
		mcp: mcp.NewServer(&mcp.Implementation{Name: Name, Version: version}, &mcp.ServerOptions{
			Instructions: "mcpgw demo server: echo text, tell the time, list and read files " +
				"under the server's working directory, and sleep with progress notifications.",
		}),
		root: root,
	}
	if err := s.addTools(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// Serve runs one MCP session over t until the client disconnects or ctx is
// cancelled. It returns nil in both cases: a requested shutdown is not a
// failure. Tool calls still running when ctx is cancelled are cancelled too,
// so Serve returns promptly even while a long sleep is in flight.
func (s *Server) Serve(ctx context.Context, t mcp.Transport) error {
	// The SDK detaches request contexts from the connection context on
	// purpose (jsonrpc2.ConnectionConfig.PropagateCancellation), so handlers
	// only see the peer's notifications/cancelled or a broken transport. Values
	// still flow through, so the session context travels as one and blocking
	// handlers merge it back in (see handlerContext).
	sctx := context.WithValue(ctx, sessionCtxKey{}, ctx)
	ss, err := s.mcp.Connect(sctx, t, nil)
	if err != nil {
		return fmt.Errorf("connecting demo server session: %w", err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- ss.Wait() }()
	select {
	case err := <-waitc:
		if err != nil {
			return fmt.Errorf("demo server session: %w", err)
		}
		return nil
	case <-ctx.Done():
		// Close waits for in-flight handlers; they observe ctx through
		// handlerContext, so this does not wait out a sleep.
		closeErr := ss.Close()
		<-waitc
		if closeErr != nil {
			return fmt.Errorf("closing demo server session: %w", closeErr)
		}
		return nil
	}
}

// Close releases the server's root directory. Sessions still being served
// fail their file tools afterwards. Close may be called more than once.
func (s *Server) Close() error {
	if s.root == nil {
		return nil
	}
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("closing demo root: %w", err)
	}
	return nil
}

// Run serves the demo server over newline-delimited JSON-RPC on in and out
// (the MCP stdio transport), with the file tools confined to the process's
// working directory. It returns nil when the client closes in or ctx is
// cancelled, and closes in and out before returning.
func Run(ctx context.Context, in io.ReadCloser, out io.WriteCloser, version string) error {
	s, err := New(version, nil)
	if err != nil {
		return errors.Join(err, in.Close(), out.Close())
	}
	serveErr := s.Serve(ctx, &mcp.IOTransport{Reader: in, Writer: out, MaxLineLength: maxLineLength})
	return errors.Join(serveErr, s.Close())
}

// sessionCtxKey is the context key under which Serve stores its own context
// for handlerContext.
type sessionCtxKey struct{}

// handlerContext returns a context that is cancelled when either the request
// (ctx) or the Serve call that received it is cancelled. The caller must call
// the returned cancel function.
func handlerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, ok := ctx.Value(sessionCtxKey{}).(context.Context)
	hctx, cancel := context.WithCancelCause(ctx)
	if !ok {
		return hctx, func() { cancel(nil) }
	}
	stop := context.AfterFunc(sctx, func() { cancel(context.Cause(sctx)) })
	return hctx, func() {
		stop()
		cancel(nil)
	}
}
