package sqlite

import (
	"sync"
	"time"

	"github.com/hasadna/conductor"
)

// keyCache keeps recent answers of FindUserByFingerprint. Every SSH
// connection looks its key up, and under load these lookups, serialized on
// the one connection, were a noticeable part of a command's cost. Any change
// to users or keys through this DB empties the cache at once; a change by
// another process (`conductor init` adding a key) is seen within ttl.
// Only found keys are kept: a key added anywhere works at once.
type keyCache struct {
	ttl time.Duration

	mu      sync.Mutex
	gen     uint64 // bumped by every invalidation
	entries map[string]keyCacheEntry
}

type keyCacheEntry struct {
	user conductor.User
	at   time.Time
}

func newKeyCache() *keyCache {
	return &keyCache{ttl: 2 * time.Second, entries: map[string]keyCacheEntry{}}
}

// get returns a copy of the cached user of fingerprint, if fresh, and the
// generation to pass to put after a lookup in the database.
func (c *keyCache) get(fingerprint string) (*conductor.User, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[fingerprint]
	if !ok || time.Since(e.at) > c.ttl {
		return nil, c.gen
	}
	u := e.user
	return &u, c.gen
}

// put keeps u for fingerprint unless the cache was invalidated since get
// returned gen (the lookup may have read what was just changed).
func (c *keyCache) put(fingerprint string, u *conductor.User, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.entries[fingerprint] = keyCacheEntry{user: *u, at: time.Now()}
	}
}

// invalidate forgets everything: users or keys have changed.
func (c *keyCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
