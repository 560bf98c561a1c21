package oauth

import (
	"sync"
	"time"
)

// docCache holds fetched client metadata documents until they expire.
// Invariant: at most max entries; when full, expired entries go first,
// then an arbitrary one (a refetch is the only cost).
type docCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]docEntry
}

type docEntry struct {
	client  *Client
	expires time.Time
}

func newDocCache(max int) *docCache {
	return &docCache{max: max, entries: map[string]docEntry{}}
}

func (c *docCache) get(id string, now time.Time) (*Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.expires) {
		delete(c.entries, id)
		return nil, false
	}
	return e.client, true
}

func (c *docCache) put(id string, client *Client, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[id] = docEntry{client: client, expires: expires}
}
