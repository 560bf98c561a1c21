// Package backend speaks newline-delimited JSON-RPC to one running stdio MCP
// server process and knows nothing of HTTP or client sessions.
//
// A Backend owns three goroutines: a reader of stdout (one message per line,
// each line bounded), a reader of stderr (logged line by line, bounded and
// rate limited) and a supervisor that notices the end of the process or of
// its stdout. Every request written through Call gets a gateway-allocated
// integer id; the reply is handed to the caller's Waiter. When the backend
// ends for any reason, every pending Waiter is failed at once with the cause,
// so no caller waits for a timeout to learn that its backend is gone.
package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// Process is what a runtime provides for one started server.
// Stop must be safe to call concurrently and repeatedly and must return
// only once the process is gone; it is bounded by the runtime's grace.
type Process interface {
	Stdin() WriteDeadliner
	Stdout() io.ReadCloser
	Stderr() io.ReadCloser
	Done() <-chan struct{}
	ExitErr() error
	Stop() error
	CloseOutputs()
	ID() string
}

// WriteDeadliner is a writer whose writes can be bounded in time.
type WriteDeadliner interface {
	io.WriteCloser
	SetWriteDeadline(time.Time) error
}

// Waiter receives the outcome of one request. Exactly one of Respond and
// Fail is called, from the backend's goroutines; neither may block.
type Waiter interface {
	Respond(m *jsonrpc.Message)
	Fail(err error)
}

// Handler receives what the server sends on its own initiative: requests
// (sampling, elicitation, roots, ping) and notifications. HandleMessage is
// called from the reader goroutine in stdout order and must not block.
// HandleClose is called once, after every pending Waiter has been failed.
type Handler interface {
	HandleMessage(m *jsonrpc.Message)
	HandleClose(err error)
}

// Errors a backend ends with; Fail receives one of them, wrapped with detail.
var (
	// ErrExited: the process exited (or closed stdout) on its own.
	ErrExited = errors.New("backend exited")
	// ErrStopped: the gateway stopped it (session end, idle, shutdown).
	ErrStopped = errors.New("backend stopped by the gateway")
	// ErrProtocol: it wrote something that is not a JSON-RPC message, or a
	// line over the size bound; the stream cannot be trusted any more.
	ErrProtocol = errors.New("backend sent an invalid message")
	// ErrOversized is wrapped in ErrProtocol for lines over the bound.
	ErrOversized = errors.New("message exceeds the size limit")
	// ErrWrite: writing to its stdin failed or timed out.
	ErrWrite = errors.New("writing to backend failed")
)

// Options configure a Backend. The zero value of each field is documented.
type Options struct {
	// Name is the server name, for logs.
	Name string
	// Runtime is "native" or "container", for logs.
	Runtime string
	// MaxMessageBytes bounds one stdout line; zero means 16 MiB.
	MaxMessageBytes int64
	// WriteTimeout bounds one write to stdin; zero means 10s. A server that
	// does not read its stdin for that long is considered broken.
	WriteTimeout time.Duration
	// StderrLineBytes bounds one logged stderr line; zero means 4096.
	StderrLineBytes int
	// StderrPerSecond and StderrBurst rate-limit logged stderr lines; zeros
	// mean 50/s with a burst of 200. Dropped lines are counted and reported.
	StderrPerSecond float64
	StderrBurst     int
	// Logger receives stderr lines and backend events; nil means slog.Default().
	Logger *slog.Logger
	// ExitHint is appended to the error of a process that exits (or
	// closes its stdout) on its own, e.g. what its sandbox allowed; ""
	// adds nothing.
	ExitHint string
	// Redact lists secret values (a server's env values) that are replaced
	// by "[redacted]" in its stderr lines before they are logged; empty
	// values and values shorter than MinRedactLen are ignored (they would
	// blank out ordinary words). nil means nothing is redacted.
	Redact []string
	// Meter counts the bytes of the traffic; nil counts nothing.
	Meter Meter
}

// Meter counts the bytes written to a backend's stdin and read from its
// stdout, newlines included. Wrote is called by the writer, Read by the
// reader goroutine: both must be safe for concurrent use and not block.
type Meter interface {
	Wrote(n int)
	Read(n int)
}

// MinRedactLen is the shortest value Options.Redact redacts.
const MinRedactLen = 4

// redacted is what replaces a secret in a logged stderr line.
const redacted = "[redacted]"

// Backend is one running server process.
type Backend struct {
	proc    Process
	handler Handler
	opts    Options
	secrets []string // Options.Redact worth redacting, longest first
	log     *slog.Logger
	started time.Time

	writeMu sync.Mutex // serialises writes to stdin

	mu      sync.Mutex
	nextID  int64
	pending map[int64]Waiter
	err     error // non-nil once ended

	closeReq  chan error    // asks the supervisor to stop; buffered 1
	readerErr chan error    // the stdout reader's end
	done      chan struct{} // closed when the backend has fully ended
	wg        sync.WaitGroup
}

// New takes ownership of proc and starts serving it. handler must be non-nil.
func New(proc Process, handler Handler, opts Options) *Backend {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 16 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.StderrLineBytes <= 0 {
		opts.StderrLineBytes = 4096
	}
	if opts.StderrPerSecond <= 0 {
		opts.StderrPerSecond = 50
	}
	if opts.StderrBurst <= 0 {
		opts.StderrBurst = 200
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Backend{
		proc:      proc,
		handler:   handler,
		opts:      opts,
		log:       log.With("tool", opts.Name, "runtime", opts.Runtime, "process", proc.ID()),
		started:   time.Now(),
		pending:   make(map[int64]Waiter),
		closeReq:  make(chan error, 1),
		readerErr: make(chan error, 1),
		done:      make(chan struct{}),
	}
	b.secrets = secretsOf(opts.Redact)
	b.wg.Go(func() { b.readerErr <- b.readStdout() })
	b.wg.Go(b.readStderr)
	b.wg.Go(b.supervise)
	return b
}

// ID is the process identifier for logs.
func (b *Backend) ID() string { return b.proc.ID() }

// Done is closed once the backend has ended and its process is gone.
func (b *Backend) Done() <-chan struct{} { return b.done }

// Err returns why the backend ended, or nil while it runs.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Call writes request m with a fresh gateway id and registers w for its
// reply. It returns that id. m.ID is not modified; the caller keeps the
// client's id for the way back.
func (b *Backend) Call(ctx context.Context, m *jsonrpc.Message, w Waiter) (int64, error) {
	id, err := b.Register(w)
	if err != nil {
		return 0, err
	}
	return id, b.Write(ctx, id, m)
}

// Register allocates a gateway id and registers w for the reply to the
// request that Write will send under it. Splitting the two lets a caller
// record the id (for its timeout and cancellation) before the write,
// without holding a lock of its own across the write to stdin.
func (b *Backend) Register(w Waiter) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	b.nextID++
	b.pending[b.nextID] = w
	return b.nextID, nil
}

// Write sends request m under the id Register returned. On failure the
// waiter is forgotten (and never called).
func (b *Backend) Write(ctx context.Context, id int64, m *jsonrpc.Message) error {
	out := *m
	out.ID = jsonrpc.IntID(id)
	if err := b.write(ctx, jsonrpc.Encode(&out)); err != nil {
		b.Forget(id)
		return err
	}
	return nil
}

// Roundtrip sends request m and waits for its reply, for requests the
// gateway makes itself (initialize, server/discover, re-subscriptions).
// When ctx ends first, the waiter is forgotten (a late reply is discarded)
// and ctx's error is returned; when the backend ends first, its cause.
func (b *Backend) Roundtrip(ctx context.Context, m *jsonrpc.Message) (*jsonrpc.Message, error) {
	w := &chanWaiter{resp: make(chan *jsonrpc.Message, 1), err: make(chan error, 1)}
	id, err := b.Call(ctx, m, w)
	if err != nil {
		return nil, err
	}
	select {
	case resp := <-w.resp:
		return resp, nil
	case err := <-w.err:
		return nil, err
	case <-ctx.Done():
		b.Forget(id)
		return nil, ctx.Err()
	}
}

// chanWaiter hands an outcome to Roundtrip.
type chanWaiter struct {
	resp chan *jsonrpc.Message
	err  chan error
}

func (w *chanWaiter) Respond(m *jsonrpc.Message) { w.resp <- m }
func (w *chanWaiter) Fail(err error)             { w.err <- err }

// Forget drops the waiter for id (after a timeout or a cancellation); a late
// reply is then discarded.
func (b *Backend) Forget(id int64) {
	b.mu.Lock()
	delete(b.pending, id)
	b.mu.Unlock()
}

// Send writes a notification or a response (to a server-initiated request).
func (b *Backend) Send(ctx context.Context, m *jsonrpc.Message) error {
	if err := b.Err(); err != nil {
		return err
	}
	return b.write(ctx, jsonrpc.Encode(m))
}

func (b *Backend) write(ctx context.Context, line []byte) error {
	deadline := time.Now().Add(b.opts.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	if err := b.Err(); err != nil {
		return err
	}
	stdin := b.proc.Stdin()
	_ = stdin.SetWriteDeadline(deadline)
	_, err := stdin.Write(append(line, '\n'))
	if err != nil {
		// A partial write leaves a broken frame on the server's stdin: the
		// stream cannot continue.
		err = fmt.Errorf("%w: %v", ErrWrite, err)
		b.end(err)
		return err
	}
	if b.opts.Meter != nil {
		b.opts.Meter.Wrote(len(line) + 1)
	}
	return nil
}

// Close stops the backend: pending requests fail with ErrStopped, the
// process is stopped with the runtime's sequence, and Close returns once
// every goroutine of the backend has ended. Safe to call more than once.
func (b *Backend) Close() error {
	b.end(ErrStopped)
	<-b.done
	return nil
}

// End ends the backend with cause without waiting; Done tells when it is
// over. The first cause wins.
func (b *Backend) End(cause error) { b.end(cause) }

// Swap replaces the waiter of a pending request, reporting whether it was
// still pending. The gateway uses it to keep watching a request that timed
// out for the server's late answer.
func (b *Backend) Swap(id int64, w Waiter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.pending[id]; !ok {
		return false
	}
	b.pending[id] = w
	return true
}

// end asks the supervisor to end the backend with cause (first cause wins).
func (b *Backend) end(cause error) {
	select {
	case b.closeReq <- cause:
	default:
	}
}

func (b *Backend) supervise() {
	var cause error
	readerDone := false
	select {
	case err := <-b.readerErr:
		readerDone = true
		cause = err
		if errors.Is(err, ErrExited) {
			// stdout closed: the process is usually exiting; a moment's wait
			// turns "stdout closed" into its exit status for the error.
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-b.proc.Done():
				cause = fmt.Errorf("%w: %s", ErrExited, exitDetail(b.proc.ExitErr()))
			case <-t.C:
			}
			t.Stop()
			cause = b.withHint(cause)
		}
	case <-b.proc.Done():
		cause = fmt.Errorf("%w: %s", ErrExited, exitDetail(b.proc.ExitErr()))
		// Replies the process wrote just before exiting may still sit in the
		// pipe: let the reader deliver them before failing what is left.
		t := time.NewTimer(time.Second)
		select {
		case err := <-b.readerErr:
			readerDone = true
			if errors.Is(err, ErrProtocol) {
				cause = err
			}
		case <-t.C:
		}
		t.Stop()
		cause = b.withHint(cause)
	case cause = <-b.closeReq:
	}

	// Fail everything pending first, so callers learn at once.
	b.mu.Lock()
	if b.err == nil {
		b.err = cause
	}
	pending := b.pending
	b.pending = map[int64]Waiter{}
	b.mu.Unlock()
	for _, w := range pending {
		w.Fail(cause)
	}

	stopErr := b.proc.Stop()
	// The reader may still block on a pipe an escaped grandchild holds.
	if !readerDone {
		t := time.NewTimer(time.Second)
		select {
		case <-b.readerErr:
		case <-t.C:
			b.proc.CloseOutputs()
			<-b.readerErr
		}
		t.Stop()
	}
	b.proc.CloseOutputs()

	// The gateway's own decisions (session end, idle, shutdown) are not
	// errors: they are logged at info with their reason and an empty error.
	if errors.Is(cause, ErrStopped) {
		b.log.Info("backend ended", "reason", StopReason(cause), "error", "",
			"exit", exitDetail(b.proc.ExitErr()), "lifetime_ms", time.Since(b.started).Milliseconds())
	} else {
		b.log.Warn("backend ended", "reason", "", "error", cause.Error(),
			"exit", exitDetail(b.proc.ExitErr()), "lifetime_ms", time.Since(b.started).Milliseconds())
	}
	if stopErr != nil {
		b.log.Error("stopping backend", "error", stopErr.Error())
	}
	b.handler.HandleClose(cause)
	go func() { b.wg.Wait(); close(b.done) }() // owner: Close/Done waiters; ends with the stderr reader
}

// StopReason is why the gateway stopped a backend, from an error that
// wraps ErrStopped ("client ended the session (DELETE)", "idle timeout"),
// without the "backend stopped by the gateway" prefix.
func StopReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ErrStopped.Error()+": "); ok {
		return after
	}
	if msg == ErrStopped.Error() {
		return "stopped by the gateway"
	}
	return msg
}

// withHint appends Options.ExitHint to the cause of a process that
// exited on its own.
func (b *Backend) withHint(cause error) error {
	if b.opts.ExitHint == "" || !errors.Is(cause, ErrExited) {
		return cause
	}
	return fmt.Errorf("%w; %s", cause, b.opts.ExitHint)
}

func exitDetail(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// readStdout reads messages until EOF or a protocol error.
func (b *Backend) readStdout() error {
	r := bufio.NewReaderSize(b.proc.Stdout(), 64<<10)
	max := b.opts.MaxMessageBytes
	var buf []byte
	for {
		buf = buf[:0]
		line, err := readLine(r, buf, max)
		if err != nil {
			if errors.Is(err, ErrOversized) {
				b.log.Warn("backend wrote an oversized line", "limit_bytes", max)
				return fmt.Errorf("%w: %w (%d bytes)", ErrProtocol, ErrOversized, max)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return fmt.Errorf("%w: stdout closed", ErrExited)
			}
			return fmt.Errorf("%w: reading stdout: %v", ErrExited, err)
		}
		if b.opts.Meter != nil {
			b.opts.Meter.Read(len(line))
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, perr := jsonrpc.Parse(line)
		if perr != nil {
			b.log.Warn("backend wrote a line that is not JSON-RPC", "line", clip.Bytes(line, 200), "error", perr.Error())
			return fmt.Errorf("%w: %v", ErrProtocol, perr)
		}
		b.dispatch(m)
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a huge buffer alive
		} else {
			buf = line[:0]
		}
	}
}

func (b *Backend) dispatch(m *jsonrpc.Message) {
	if m.Kind != jsonrpc.KindResponse {
		b.handler.HandleMessage(m)
		return
	}
	id, err := strconv.ParseInt(string(bytes.TrimSpace(m.ID)), 10, 64)
	if err != nil {
		b.log.Warn("backend answered an id the gateway never sent", "id", clip.Bytes(m.ID, 64))
		return
	}
	b.mu.Lock()
	w, ok := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	if !ok {
		// Late reply to a request that timed out or was cancelled.
		b.log.Debug("discarding reply to a forgotten request", "id", id)
		return
	}
	w.Respond(m)
}

// readLine reads one '\n'-terminated line into buf, failing with
// ErrOversized once it exceeds max bytes, without buffering more than that.
func readLine(r *bufio.Reader, buf []byte, max int64) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if int64(len(buf)+len(chunk)) > max+1 { // +1 for the newline itself
			return nil, ErrOversized
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			if int64(len(buf)) > max {
				return nil, ErrOversized
			}
			return buf, nil // final line without newline
		default:
			return nil, err
		}
	}
}

// readStderr logs each stderr line at info, bounded in length and rate.
func (b *Backend) readStderr() {
	r := bufio.NewReaderSize(b.proc.Stderr(), 16<<10)
	limit := b.opts.StderrLineBytes
	lim := rate.NewLimiter(rate.Limit(b.opts.StderrPerSecond), b.opts.StderrBurst)
	dropped := 0
	reportDropped := func() {
		if dropped > 0 {
			b.log.Warn("backend stderr was rate limited", "stream", "stderr", "dropped_lines", dropped)
			dropped = 0
		}
	}
	for {
		line, truncated, err := readBoundedLine(r, limit)
		if len(line) > 0 || truncated {
			if lim.Allow() {
				reportDropped()
				attrs := []any{"stream", "stderr", "line", b.redact(string(line))}
				if truncated {
					attrs = append(attrs, "truncated", true)
				}
				b.log.Info("backend stderr", attrs...)
			} else {
				dropped++
			}
		}
		if err != nil {
			reportDropped()
			return
		}
	}
}

// redact replaces every secret of Options.Redact in line, longest first
// (so that a secret containing another is replaced whole). A secret cut
// by the line bound is not recognised in its truncated form; the bound is
// far longer than a token.
func (b *Backend) redact(line string) string { return redactLine(line, b.secrets) }

func redactLine(line string, secrets []string) string {
	for _, v := range secrets {
		line = strings.ReplaceAll(line, v, redacted)
	}
	return line
}

// secretsOf is the values worth redacting, without duplicates, longest
// first.
func secretsOf(values []string) []string {
	var out []string
	for _, v := range values {
		if len(v) >= MinRedactLen && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(x, y string) int { return len(y) - len(x) })
	return out
}

// readBoundedLine returns at most limit bytes of the next line and discards
// the rest of it.
func readBoundedLine(r *bufio.Reader, limit int) (line []byte, truncated bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		room := limit - len(line)
		if room > 0 {
			take := chunk
			if len(take) > room {
				take = take[:room]
				truncated = true
			}
			line = append(line, take...)
		} else if len(chunk) > 0 && !(len(chunk) == 1 && chunk[0] == '\n') {
			truncated = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), truncated, err
	}
}
