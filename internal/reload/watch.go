package reload

import (
	"bytes"
	"context"
	"io"
	"os"
	"time"
)

// WatchInterval is how often Watch looks at the file.
const WatchInterval = time.Second

// Watch calls changed whenever the content of the file at path changes and
// then stays the same for one more look (the debounce: an editor that
// writes in several steps, or a tool that truncates and rewrites, is
// reloaded once, when it is done). It polls rather than using inotify so
// that it follows what the path names however the file is replaced: an
// editor's rename, a symlink swapped by a configuration manager (as in a
// Kubernetes ConfigMap volume), a file on a network file system. A file
// that cannot be read is not a change: the last content stays the
// reference, and a reload happens once it is readable again and
// different. Watch returns when ctx ends.
func Watch(ctx context.Context, path string, interval time.Duration, changed func()) {
	last, _ := readFile(path)
	var pending []byte // a new content seen once, waiting to settle
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := readFile(path)
		switch {
		case err != nil || bytes.Equal(cur, last):
			pending = nil
		case pending == nil || !bytes.Equal(cur, pending):
			pending = cur
		default: // the same new content twice in a row: it settled
			last, pending = cur, nil
			changed()
		}
	}
}

// readFile reads at most a configuration's size limit (1 MiB) and one
// byte more, so that a huge file is seen as changed without being read
// whole; config.Load reports it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20+1))
}
