package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// DecisionDetail is what a decision weighed, kept with its record for
// training and off-policy evaluation: the contact, every catalog product's
// propensity and priority with the gate that stopped it, the probability
// with which the policy chose each, and the client's features as scored.
type DecisionDetail struct {
	// The contact: the interaction's reason and stage, the client's
	// sentiment, the queue and its state (busy, calm, busy_by_schedule,
	// calm_by_schedule, unknown; empty without a queue) and the pitch's
	// cost pressure.
	Reason     string  `json:"reason,omitempty"`
	Stage      string  `json:"stage,omitempty"`
	Sentiment  string  `json:"sentiment,omitempty"`
	Queue      string  `json:"queue,omitempty"`
	QueueState string  `json:"queue_state,omitempty"`
	Pressure   float64 `json:"pressure,omitempty"`
	// Candidates are the catalog's products, in catalog order.
	Candidates []CandidateRecord `json:"candidates,omitempty"`
	// Features are the client's features as scored, packed (see
	// UnpackFeatures); empty when not kept.
	Features []byte `json:"features,omitempty"`
}

// CandidateRecord is how one product fared in a decision.
type CandidateRecord struct {
	Product    string  `json:"product"`
	Propensity float64 `json:"propensity"`
	// Value is the priority bought by one unit of propensity (the
	// product's value with the channel's and stage's weight and its
	// lever); Cost is the pitch's handling cost: the priority is
	// Propensity*Value - Cost. Both 0 when a gate before arbitration
	// stopped the product.
	Value float64 `json:"value,omitempty"`
	Cost  float64 `json:"cost,omitempty"`
	// Gate is the gate that stopped the product, "" when it passed every
	// one; "timing" when it waits for its moment.
	Gate string `json:"gate,omitempty"`
	// Prob is the probability with which the policy made the product its
	// first offer now: 1 for a choice made without exploring, 0 for a
	// product it could not choose.
	Prob float64 `json:"prob,omitempty"`
}

// Priority is the candidate's priority: propensity times value, less the
// cost.
func (c *CandidateRecord) Priority() float64 { return c.Propensity*c.Value - c.Cost }

// PackFeatures returns the record's features in the packed form, which
// UnpackFeatures turns back into the same values; nil when they do not
// pack (a name over 255 bytes, more than 64 KiB in all).
func PackFeatures(r *Record) []byte {
	if r.packed != "" {
		return []byte(r.packed)
	}
	p := r.pack()
	if p.packed == "" {
		return nil
	}
	return []byte(p.packed)
}

var errCorruptFeatures = errors.New("corrupt packed features")

// payloadLen is each tag's fixed payload length (a string's length).
var payloadLen = map[byte]int{tagFloat: 8, tagTime: 8, tagString: 2, tagTrue: 0, tagFalse: 0}

// UnpackFeatures reads features packed by PackFeatures, checking every
// offset (the bytes come from storage or an export).
func UnpackFeatures(clientID string, b []byte) (Record, error) {
	if len(b) < 2 {
		return Record{}, errCorruptFeatures
	}
	n := int(binary.LittleEndian.Uint16(b))
	if 2+2*n > len(b) {
		return Record{}, errCorruptFeatures
	}
	vals := make(map[string]Value, n)
	for i := range n {
		off := int(binary.LittleEndian.Uint16(b[2+2*i:]))
		if off >= len(b) {
			return Record{}, fmt.Errorf("%w: entry %d", errCorruptFeatures, i)
		}
		l := int(b[off])
		if off+1+l+1 > len(b) {
			return Record{}, fmt.Errorf("%w: entry %d", errCorruptFeatures, i)
		}
		name := string(b[off+1 : off+1+l])
		off += 1 + l
		tag := b[off]
		off++
		k, ok := payloadLen[tag]
		if !ok || off+k > len(b) {
			return Record{}, fmt.Errorf("%w: entry %d (%s)", errCorruptFeatures, i, name)
		}
		switch tag {
		case tagFloat:
			vals[name] = Number(math.Float64frombits(binary.LittleEndian.Uint64(b[off:])))
		case tagTime:
			vals[name] = Time(time.Unix(0, int64(binary.LittleEndian.Uint64(b[off:]))))
		case tagString:
			sl := int(binary.LittleEndian.Uint16(b[off:]))
			if off+2+sl > len(b) {
				return Record{}, fmt.Errorf("%w: entry %d (%s)", errCorruptFeatures, i, name)
			}
			vals[name] = String(string(b[off+2 : off+2+sl]))
		default:
			vals[name] = Bool(tag == tagTrue)
		}
	}
	return Record{ClientID: clientID, Values: vals}, nil
}
