package features

import (
	"sync"
	"sync/atomic"
	"time"
)

// A decision for a client not in the cache reads the client's features
// and then, a moment later, the contact history: two round trips to Redis.
// With PrefetchContacts on, a features read (the cache's, on a miss) asks
// for the client's contacts in the same pipeline and keeps them for the
// Contacts call that follows: one round trip instead of two on the path a
// contact centre takes most (its clients call rarely, so the first
// decision of a call misses the cache).
//
// Kept contacts are taken once, and only within prefetchFor of the read,
// so that a later decision (a cache hit, seconds on) reads the history
// afresh; a write to the client's history through this Redis (an offer
// reserved or released, an outcome) forgets them; they are as fresh as a
// read made then, and the caps are counted again by the reservation's
// script in any case. Kept contacts nobody took (a decision that stopped
// before the history, a features API read) are swept.
const prefetchFor = 50 * time.Millisecond

// prefetched is one client's contacts, read along with its features.
type prefetched struct {
	at       time.Time
	contacts []Contact // all the client's contacts, oldest first
}

// prefetchStash holds the kept contacts by client.
type prefetchStash struct {
	m     sync.Map // client id -> *prefetched
	added atomic.Uint64
}

func (s *prefetchStash) put(clientID string, p *prefetched) {
	s.m.Store(clientID, p)
	if s.added.Add(1)%1024 == 0 {
		cut := time.Now().Add(-prefetchFor)
		s.m.Range(func(k, v any) bool {
			if v.(*prefetched).at.Before(cut) {
				s.m.CompareAndDelete(k, v)
			}
			return true
		})
	}
}

// forget drops the client's kept contacts (its history is being written).
func (s *prefetchStash) forget(clientID string) { s.m.Delete(clientID) }

// take returns the client's kept contacts at or after since, when some
// were read within prefetchFor, and forgets them.
func (s *prefetchStash) take(clientID string, since time.Time) ([]Contact, bool) {
	v, ok := s.m.LoadAndDelete(clientID)
	if !ok {
		return nil, false
	}
	p := v.(*prefetched)
	if time.Since(p.at) > prefetchFor {
		return nil, false
	}
	out := make([]Contact, 0, len(p.contacts))
	for _, c := range p.contacts {
		if !c.At.Before(since) {
			out = append(out, c)
		}
	}
	return out, true
}

// PrefetchContacts makes every features read also read the client's
// contacts in the same round trip, for the Contacts call that follows
// (when this Redis is the contact history too).
func (r *Redis) PrefetchContacts(on bool) { r.prefetch.Store(on) }
