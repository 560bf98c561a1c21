// Package pins keeps the digests of the tool definitions the gateway has
// seen (tool pinning) in an SQLite database under the state directory. The
// database runs in WAL mode with a busy timeout, so the gateway and
// `mcpgw tools` commands use the same file at once: an approval written by
// a command is what the gateway reads at its next refresh.
//
// Each pin holds two digests: the approved one (the first definition seen,
// trusted on first use, or the one an operator approved) and the one seen
// last. They differ exactly while a changed definition waits for approval.
package pins

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// FileName is the database's name in the state directory.
const FileName = "tool-pins.db"

const schema = `
CREATE TABLE IF NOT EXISTS pins (
	server TEXT NOT NULL, tool TEXT NOT NULL,
	approved TEXT NOT NULL, approved_def BLOB NOT NULL,
	seen TEXT NOT NULL, seen_def BLOB NOT NULL,
	first_seen INTEGER NOT NULL, changed INTEGER NOT NULL,
	PRIMARY KEY (server, tool));
CREATE TABLE IF NOT EXISTS modes (server TEXT PRIMARY KEY, mode TEXT NOT NULL);
`

// queueSize bounds the observations waiting to be written. One that does
// not fit is dropped (and logged): the gateway sees the definition again at
// the next list after its next refresh, and records it then.
const queueSize = 1024

// Pin is one tool's pinned definition.
type Pin struct {
	Server, Tool string
	// Approved is the digest of the trusted definition; Seen the digest of
	// the last definition seen. ApprovedDef and SeenDef are those
	// definitions as canonical JSON.
	Approved, Seen       string
	ApprovedDef, SeenDef []byte
	FirstSeen, Changed   time.Time
	// Mode is the server's pin_tools as the gateway last declared it
	// (SetModes): "warn", "enforce", or "" when no gateway using this
	// database pins the server's tools now. List fills it in.
	Mode string
}

// Pending reports whether the definition last seen is not the approved
// one: it waits for an operator's approval.
func (p *Pin) Pending() bool { return p.Approved != p.Seen }

// Store is the pin database. Safe for concurrent use.
type Store struct {
	db  *sql.DB
	log *slog.Logger

	queue chan Pin
	wg    sync.WaitGroup // owner: Store, the writer goroutine
	once  sync.Once
}

// Open opens (creating when needed) the database in dir, which is created
// with mode 0700. log receives write failures; nil means slog.Default().
func Open(ctx context.Context, dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening tool pins %s: %w", path, err)
	}
	_ = f.Close()
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening tool pins %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing tool pins %s: %w", path, err)
	}
	s := &Store{db: db, log: log, queue: make(chan Pin, queueSize)}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

// Close writes what is queued and closes the database. It may be called
// more than once; Record must not be called after it.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.queue)
		s.wg.Wait()
		err = s.db.Close()
	})
	return err
}

// Record queues an observation of a tool's definition without blocking:
// a tool without a pin is pinned to it (trust on first use); a pinned tool
// gets it as its last seen definition. Approved and FirstSeen of p are
// used only for a new pin.
func (s *Store) Record(p Pin) {
	select {
	case s.queue <- p:
	default:
		s.log.Warn("tool pins: too many definitions waiting to be written; one is dropped and will be recorded when seen again",
			"tool", p.Server, "name", p.Tool)
	}
}

func (s *Store) writer() {
	defer s.wg.Done()
	for p := range s.queue {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := s.write(ctx, p); err != nil {
			s.log.Warn("tool pins: could not record a tool definition", "tool", p.Server, "name", p.Tool, "error", err.Error())
		}
		cancel()
	}
}

func (s *Store) write(ctx context.Context, p Pin) error {
	now := time.Now().UnixNano()
	for _, d := range []*[]byte{&p.ApprovedDef, &p.SeenDef} {
		if *d == nil {
			*d = []byte{} // a nil slice would be NULL
		}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO pins (server, tool, approved, approved_def, seen, seen_def, first_seen, changed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (server, tool) DO UPDATE SET seen = excluded.seen, seen_def = excluded.seen_def, changed = excluded.changed
		WHERE pins.seen != excluded.seen`,
		p.Server, p.Tool, p.Approved, p.ApprovedDef, p.Seen, p.SeenDef, now, now)
	return err
}

// SetModes records the pin_tools mode of each server the gateway pins
// (server name to "warn" or "enforce"), replacing what was recorded
// before, so that `mcpgw tools list` can tell a change that is only
// logged from one that is held for approval. The gateway calls it when it
// starts and at each reload.
func (s *Store) SetModes(ctx context.Context, modes map[string]string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording the pinned servers: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM modes`); err != nil {
		return fmt.Errorf("recording the pinned servers: %w", err)
	}
	for server, mode := range modes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO modes (server, mode) VALUES (?, ?)`, server, mode); err != nil {
			return fmt.Errorf("recording the pinned servers: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording the pinned servers: %w", err)
	}
	return nil
}

// Load returns the pins of server by tool name.
func (s *Store) Load(ctx context.Context, server string) (map[string]*Pin, error) {
	list, err := s.query(ctx, `WHERE p.server = ?`, server)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Pin, len(list))
	for _, p := range list {
		out[p.Tool] = p
	}
	return out, nil
}

// List returns every pin, by server and tool.
func (s *Store) List(ctx context.Context) ([]*Pin, error) {
	return s.query(ctx, `ORDER BY p.server, p.tool`)
}

func (s *Store) query(ctx context.Context, where string, args ...any) ([]*Pin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.server, p.tool, p.approved, p.approved_def, p.seen, p.seen_def, p.first_seen, p.changed,
		COALESCE(m.mode, '') FROM pins p LEFT JOIN modes m ON m.server = p.server `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	defer rows.Close()
	var out []*Pin
	for rows.Next() {
		var p Pin
		var first, changed int64
		if err := rows.Scan(&p.Server, &p.Tool, &p.Approved, &p.ApprovedDef, &p.Seen, &p.SeenDef, &first, &changed, &p.Mode); err != nil {
			return nil, fmt.Errorf("reading tool pins: %w", err)
		}
		p.FirstSeen, p.Changed = time.Unix(0, first), time.Unix(0, changed)
		out = append(out, &p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	return out, nil
}

// ErrUnknown is Approve's error for a tool that has no pin.
var ErrUnknown = errors.New("no such pinned tool")

// Approve makes the definition last seen of server's tool the approved
// one, and reports whether it was pending.
func (s *Store) Approve(ctx context.Context, server, tool string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE pins SET approved = seen, approved_def = seen_def WHERE server = ? AND tool = ? AND approved != seen`, server, tool)
	if err != nil {
		return false, fmt.Errorf("approving %s of server %s: %w", tool, server, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	var one int
	switch err := s.db.QueryRowContext(ctx, `SELECT 1 FROM pins WHERE server = ? AND tool = ?`, server, tool).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return false, ErrUnknown
	case err != nil:
		return false, fmt.Errorf("approving %s of server %s: %w", tool, server, err)
	}
	return false, nil
}
