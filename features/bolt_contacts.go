package features

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketContacts = []byte("contacts")

var _ ContactHistory = (*Bolt)(nil)

// boltContacts is the in-process part of the embedded contact history.
//
// Offers are reserved on the Decide path without a disk write: a reserved
// offer is held here ("pending") until the decision log writes its
// decision, and the same transaction writes the offer to the contacts
// bucket (SaveDecisions). Reserve counts durable and pending offers under
// the client's lock, so concurrent decisions never exceed a cap. A kill -9
// loses the offers of the last unwritten batch (at most the decision log's
// flush interval); acknowledged outcomes are written before they return.
// An offer whose decision the log dropped (buffer full) stays pending, and
// counted, until it is older than the longest cap window.
type boltContacts struct {
	seed  maphash.Seed
	locks [64]sync.Mutex

	mu      sync.Mutex
	pending map[string][]Contact // by client id
	byDec   map[string]string    // decision id -> client id
}

func newBoltContacts() *boltContacts {
	return &boltContacts{seed: maphash.MakeSeed(), pending: map[string][]Contact{}, byDec: map[string]string{}}
}

func (h *boltContacts) lock(clientID string) *sync.Mutex {
	return &h.locks[maphash.String(h.seed, clientID)%uint64(len(h.locks))]
}

func (h *boltContacts) pendingOf(clientID string, since time.Time) []Contact {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Contact
	for _, c := range h.pending[clientID] {
		if !c.At.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// peek returns a decision's pending offers.
func (h *boltContacts) peek(decisionID string) []Contact {
	h.mu.Lock()
	defer h.mu.Unlock()
	client, ok := h.byDec[decisionID]
	if !ok {
		return nil
	}
	var out []Contact
	for _, c := range h.pending[client] {
		if c.DecisionID == decisionID {
			out = append(out, c)
		}
	}
	return out
}

// done drops written offers from the pending set. It takes each client's
// lock, so that a Reserve in progress, which read the store before the
// offers were committed, still counts them.
func (h *boltContacts) done(written []Contact) {
	for _, w := range written {
		l := h.lock(w.ClientID)
		l.Lock()
		h.mu.Lock()
		delete(h.byDec, w.DecisionID)
		h.pending[w.ClientID] = slices.DeleteFunc(h.pending[w.ClientID], func(c Contact) bool {
			return c.DecisionID == w.DecisionID && c.ProductID == w.ProductID
		})
		if len(h.pending[w.ClientID]) == 0 {
			delete(h.pending, w.ClientID)
		}
		h.mu.Unlock()
		l.Unlock()
	}
}

func (h *boltContacts) add(cs []Contact, expireBefore time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	client := cs[0].ClientID
	h.pending[client] = slices.DeleteFunc(h.pending[client], func(c Contact) bool {
		if c.At.Before(expireBefore) {
			delete(h.byDec, c.DecisionID)
			return true
		}
		return false
	})
	h.pending[client] = append(h.pending[client], cs...)
	for _, c := range cs {
		h.byDec[c.DecisionID] = client
	}
}

// Contacts returns a client's contacts at or after since, oldest first,
// with the offers reserved and not yet written.
func (b *Bolt) Contacts(ctx context.Context, clientID string, since time.Time) ([]Contact, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Under the client's lock the log cannot drop written offers from
	// the pending set (done) halfway through this read: each offer is in
	// the file, pending, or both (between the log's commit and its done),
	// and is returned once.
	l := b.contacts.lock(clientID)
	l.Lock()
	defer l.Unlock()
	pending := b.contacts.pendingOf(clientID, since)
	var out []Contact
	prefix := contactPrefix(clientID)
	err := b.view("read contacts", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContacts).Cursor()
		for k, v := c.Seek(contactSeek(clientID, since)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(pending) > 0 && isPending(pending, k[len(prefix):]) {
				continue
			}
			var ct Contact
			if err := decodeContact(clientID, k, v, &ct); err != nil {
				return err
			}
			if out == nil {
				out = make([]Contact, 0, 8)
			}
			out = append(out, ct)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("features: read contacts: %w", err)
	}
	if len(pending) > 0 {
		out = append(out, pending...)
		slices.SortStableFunc(out, func(a, b Contact) int { return a.At.Compare(b.At) })
	}
	return out, nil
}

// isPending reports whether the stored contact whose key ends in rest
// (time, kind, "decision|product") is one of the pending offers: written
// by the log, which has not yet dropped it from the pending set.
func isPending(pending []Contact, rest []byte) bool {
	if len(rest) < 9 || rest[8] != contactKinds[ContactOffered] {
		return false
	}
	at, id := int64(binary.BigEndian.Uint64(rest)), rest[9:]
	for i := range pending {
		p := &pending[i]
		if p.At.UnixNano() == at && len(id) == len(p.DecisionID)+1+len(p.ProductID) &&
			string(id[:len(p.DecisionID)]) == p.DecisionID && id[len(p.DecisionID)] == '|' && string(id[len(p.DecisionID)+1:]) == p.ProductID {
			return true
		}
	}
	return false
}

// Reserve records as many offers as the caps allow. The offers are held
// in memory until the decision log writes the decision (see boltContacts).
func (b *Bolt) Reserve(ctx context.Context, r Reservation) (Reserved, error) {
	if err := checkReservation(&r); err != nil {
		return Reserved{}, err
	}
	if err := ctx.Err(); err != nil {
		return Reserved{}, err
	}
	l := b.contacts.lock(r.ClientID)
	l.Lock()
	defer l.Unlock()
	since := r.At.Add(-longestWindow(r.Caps))
	// The pending offers cannot change while the lock is held; those the
	// log has written but not yet dropped count once, as pending.
	pending := b.contacts.pendingOf(r.ClientID, since)
	// Only the offers on the channel count: read their times from the
	// keys, without decoding the rest.
	var offers []time.Time
	prefix := contactPrefix(r.ClientID)
	err := b.view("read contacts", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContacts).Cursor()
		for k, v := c.Seek(contactSeek(r.ClientID, since)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) < len(prefix)+9 || k[len(prefix)+8] != 'o' || !valueOnChannel(v, r.Channel) ||
				(len(pending) > 0 && isPending(pending, k[len(prefix):])) {
				continue
			}
			offers = append(offers, time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))))
		}
		return nil
	})
	if err != nil {
		return Reserved{}, fmt.Errorf("features: reserve: %w", err)
	}
	for _, p := range pending {
		if p.Channel == r.Channel {
			offers = append(offers, p.At)
		}
	}
	res := room(offers, &r)
	n := res.N
	if n == 0 {
		return res, nil
	}
	made := make([]Contact, n)
	for i := range made {
		made[i] = Contact{ClientID: r.ClientID, Kind: ContactOffered, DecisionID: r.DecisionID, ProductID: r.Products[i], Channel: r.Channel, At: r.At.UTC()}
	}
	b.contacts.add(made, since)
	return res, nil
}

// AddContact records an outcome durably. A not-presented outcome deletes
// the matching offer in the same transaction.
func (b *Bolt) AddContact(ctx context.Context, c Contact) error {
	if err := checkContact(&c); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.At = c.At.UTC()
	l := b.contacts.lock(c.ClientID)
	l.Lock()
	defer l.Unlock()
	err := b.update("write contact", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketContacts)
		if c.Kind == ContactNotPresented {
			if err := deleteOffer(bk, &c); err != nil {
				return err
			}
		}
		return putContact(bk, &c)
	})
	if err != nil {
		return fmt.Errorf("features: add contact: %w", err)
	}
	return nil
}

// deleteOffer removes the offer a veto is about. An offer still pending
// is written by the decision log with its decision, which RecordOutcome
// flushes before it records a veto, so it is found here.
func deleteOffer(bk *bolt.Bucket, veto *Contact) error {
	prefix := contactPrefix(veto.ClientID)
	c := bk.Cursor()
	var found []byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ct Contact
		if err := decodeContact(veto.ClientID, k, v, &ct); err != nil {
			return err
		}
		if ct.Kind == ContactOffered && ct.DecisionID == veto.DecisionID && ct.ProductID == veto.ProductID {
			found = slices.Clone(k)
			break
		}
	}
	if found == nil {
		return nil
	}
	return bk.Delete(found)
}

// saveReservedOffers writes the pending offers of the decisions in recs;
// it runs inside SaveDecisions' transaction and returns the offers written,
// which leave the pending set once the transaction commits (done).
func (b *Bolt) saveReservedOffers(tx *bolt.Tx, recs []DecisionRecord) ([]Contact, error) {
	bk := tx.Bucket(bucketContacts)
	var done []Contact
	for i := range recs {
		offers := b.contacts.peek(recs[i].ID)
		for j := range offers {
			// Only the offers the decision says were given are written;
			// one it withdrew (its answer became NO_OFFER) is dropped
			// from the pending set with them, and counts no more.
			if slices.Contains(recs[i].Products, offers[j].ProductID) {
				if err := putContact(bk, &offers[j]); err != nil {
					return done, err
				}
			}
		}
		done = append(done, offers...)
	}
	return done, nil
}

// The value of a contact: the decision, product, channel and agent's
// reason, each a uvarint length and the bytes (the key holds the client,
// time and kind).
func encodeContactValue(c *Contact) []byte {
	buf := make([]byte, 0, 4+len(c.DecisionID)+len(c.ProductID)+len(c.Channel)+len(c.AgentReason))
	for _, s := range []string{c.DecisionID, c.ProductID, c.Channel, c.AgentReason} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// valueOnChannel reports whether a stored value's channel (its third
// field) is ch, without decoding the value.
func valueOnChannel(v []byte, ch string) bool {
	for range 2 {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return false
		}
		v = v[k+int(n):]
	}
	n, k := binary.Uvarint(v)
	return k > 0 && uint64(len(v)-k) >= n && string(v[k:k+int(n)]) == ch
}

func decodeContactValue(v []byte, c *Contact) error {
	for i, dst := range []*string{&c.DecisionID, &c.ProductID, &c.Channel, &c.AgentReason} {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return errors.New("features: decode contact: truncated value")
		}
		if i == 0 {
			*dst = string(v[k : k+int(n)])
		} else {
			*dst = contactWords.of(v[k : k+int(n)])
		}
		v = v[k+int(n):]
	}
	return nil
}

// contactWords holds one copy of each product id, channel and reason read
// from contacts: a few dozen strings that every decision reads again (a
// string allocated per field per contact was a tenth of reading a
// client's history). Past maxWords distinct strings, new ones are not
// kept.
var contactWords = words{m: map[string]string{}}

const maxWords = 4096

type words struct {
	mu sync.RWMutex
	m  map[string]string
}

func (w *words) of(b []byte) string {
	w.mu.RLock()
	s, ok := w.m[string(b)]
	w.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	w.mu.Lock()
	if len(w.m) < maxWords {
		w.m[s] = s
	}
	w.mu.Unlock()
	return s
}

// Key: client id, 0x00, big-endian Unix nanoseconds, kind byte, decision
// id, '|', product id. A client's contacts are contiguous and in time
// order; the same outcome recorded twice has the same key.
func contactPrefix(clientID string) []byte {
	return append([]byte(clientID), 0)
}

func contactSeek(clientID string, since time.Time) []byte {
	k := contactPrefix(clientID)
	return binary.BigEndian.AppendUint64(k, uint64(max(since.UnixNano(), 0)))
}

func putContact(bk *bolt.Bucket, c *Contact) error {
	k := contactSeek(c.ClientID, c.At)
	k = append(k, contactKinds[c.Kind])
	k = append(k, c.DecisionID+"|"+c.ProductID...)
	return bk.Put(k, encodeContactValue(c))
}

func decodeContact(clientID string, k, v []byte, c *Contact) error {
	n := len(clientID) + 1
	if len(k) < n+9 {
		return fmt.Errorf("features: contact key of %d bytes", len(k))
	}
	*c = Contact{
		ClientID: clientID,
		Kind:     contactKindNames[k[n+8]],
		At:       time.Unix(0, int64(binary.BigEndian.Uint64(k[n:n+8]))).UTC(),
	}
	return decodeContactValue(v, c)
}
