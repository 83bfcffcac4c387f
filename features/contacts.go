package features

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The kinds of contact in a client's history. An offer is made by Tact
// (a Decide answer that offered the product now); the rest are outcomes
// reported by the caller.
const (
	ContactOffered      = "offered"
	ContactPresented    = "presented"
	ContactAccepted     = "accepted"
	ContactDeclined     = "declined"
	ContactNotPresented = "not_presented"
)

// OfferAnswers is what an offer's outcomes so far say of it: presented
// (a presented, accepted or declined outcome: a client cannot answer an
// offer never put to them) and accepted. Each counts once, however many
// outcomes say it.
type OfferAnswers struct{ Presented, Accepted bool }

// Add takes an outcome of the offer and reports whether it made the offer
// presented, or accepted, for the first time.
func (a *OfferAnswers) Add(outcome string) (presented, accepted bool) {
	switch outcome {
	case ContactPresented, ContactAccepted, ContactDeclined:
		presented, a.Presented = !a.Presented, true
	}
	if outcome == ContactAccepted {
		accepted, a.Accepted = !a.Accepted, true
	}
	return presented, accepted
}

var contactKinds = map[string]byte{
	ContactOffered:      'o',
	ContactPresented:    'p',
	ContactAccepted:     'a',
	ContactDeclined:     'd',
	ContactNotPresented: 'n',
}

var contactKindNames = func() map[byte]string {
	m := make(map[byte]string, len(contactKinds))
	for name, b := range contactKinds {
		m[b] = name
	}
	return m
}()

// Contact is one entry of a client's contact history.
//
// An offer counts against the client's frequency caps from the moment Tact
// makes it until the agent reports that it was not presented: an agent's
// veto removes the offer (the client was not contacted), and is kept as a
// contact of its own, apart from the client's refusals.
type Contact struct {
	ClientID   string
	Kind       string // one of the Contact* constants
	DecisionID string
	ProductID  string
	Channel    string
	// AgentReason is why the agent did not present the offer; set only for
	// ContactNotPresented.
	AgentReason string
	At          time.Time
}

// Cap is a frequency cap: at most Max offers on one channel within Window
// before now.
type Cap struct {
	Window time.Duration
	Max    int
}

// Reservation asks for offers to be recorded for a decision, on one
// channel, if the caps allow.
type Reservation struct {
	ClientID   string
	Channel    string
	DecisionID string
	// Products in the order they are wanted; the caps may allow only a
	// prefix of them.
	Products []string
	At       time.Time
	Caps     []Cap
	// Decision, when set, is the decision the offers belong to. A store
	// that replicas share (Redis) records it, with Products set to the
	// offers granted, in the same call when any are, so that an outcome
	// for the decision is accepted by every replica; a store of one
	// process leaves it to the decision log.
	Decision *DecisionRecord
}

// Reserved is what Reserve did: N offers recorded, a prefix of those asked.
// When fewer were recorded than asked, Limit is the cap that allowed no
// more (the tightest) and Used the offers it counted in Limit's window
// before this reservation: the figures a refusal is worded with, so that
// no caller counts the history a second time.
type Reserved struct {
	N     int
	Limit Cap // zero when every offer asked fit
	Used  int
}

// ContactHistory is a client's durable contact history, shared by every
// tactd that serves the client. Reserve checks the caps and records the
// offers in one atomic step, so that concurrent decisions for one client
// (in one process or many) never exceed a cap together.
type ContactHistory interface {
	// Contacts returns the client's contacts at or after since, oldest
	// first, offers included.
	Contacts(ctx context.Context, clientID string, since time.Time) ([]Contact, error)
	// Reserve records as many of the offers as every cap allows (a prefix
	// of r.Products) and says how many, and which cap stopped the rest.
	// When it returns an error nothing stays recorded: a reservation that
	// was made but whose reply was lost (a timeout) is released.
	Reserve(ctx context.Context, r Reservation) (Reserved, error)
	// AddContact records an outcome. Recording the same (decision,
	// product, kind) again changes nothing. A ContactNotPresented removes
	// the matching offer from the caps' count.
	AddContact(ctx context.Context, c Contact) error
}

// HistoryRetention is how long contacts are kept: the longest cap window
// or cool-down a policy may use.
const HistoryRetention = 400 * 24 * time.Hour

// ErrBadContact is returned for a contact or reservation that cannot be
// stored as given.
var ErrBadContact = errors.New("features: bad contact")

func checkContact(c *Contact) error {
	if _, ok := contactKinds[c.Kind]; !ok || c.Kind == ContactOffered {
		return fmt.Errorf("%w: kind %q is not an outcome", ErrBadContact, c.Kind)
	}
	return checkIDs(c.ClientID, c.DecisionID, c.Channel, c.ProductID, c.AgentReason)
}

func checkReservation(r *Reservation) error {
	if err := checkIDs(r.ClientID, r.DecisionID, r.Channel, r.Products...); err != nil {
		return err
	}
	for _, c := range r.Caps {
		if c.Window <= 0 || c.Window > HistoryRetention || c.Max < 0 {
			return fmt.Errorf("%w: cap %d in %v", ErrBadContact, c.Max, c.Window)
		}
	}
	return nil
}

// checkIDs rejects empty ids and the separator the stores use.
func checkIDs(client, decision, channel string, more ...string) error {
	if client == "" || decision == "" || channel == "" {
		return fmt.Errorf("%w: client, decision and channel are required", ErrBadContact)
	}
	for _, s := range append([]string{client, decision, channel}, more...) {
		for i := 0; i < len(s); i++ {
			if s[i] == '|' || s[i] == 0 {
				return fmt.Errorf("%w: %q holds a reserved character", ErrBadContact, s)
			}
		}
	}
	return nil
}

func longestWindow(caps []Cap) time.Duration {
	var w time.Duration
	for _, c := range caps {
		w = max(w, c.Window)
	}
	return w
}

// room is how many of r's products the caps allow, given the times of the
// offers already made on r's channel.
func room(offers []time.Time, r *Reservation) Reserved {
	res := Reserved{N: len(r.Products)}
	for _, c := range r.Caps {
		from := r.At.Add(-c.Window)
		used := 0
		for _, t := range offers {
			if !t.Before(from) {
				used++
			}
		}
		if left := max(c.Max-used, 0); left < res.N {
			res = Reserved{N: left, Limit: c, Used: used}
		}
	}
	return res
}

// Preview is what Reserve would grant r, counted from contacts (the
// client's history as read) without reserving anything: a dry run's.
func Preview(contacts []Contact, r Reservation) Reserved {
	var offers []time.Time
	for i := range contacts {
		if c := &contacts[i]; c.Kind == ContactOffered && c.Channel == r.Channel {
			offers = append(offers, c.At)
		}
	}
	return room(offers, &r)
}
