package features

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The decision log's stored form: one byte decisionV1 (1), then
//
//	string  id, client_id, channel, action (a string is a uvarint length
//	        and its bytes)
//	uvarint number of products, then each product id (string)
//	string  tier, model_version, reason
//	byte    degraded (0 or 1)
//	varint  at, Unix nanoseconds
//	uvarint number of exposures, then each: experiment, feature (string),
//	        variation_id (varint), variation, name (string)
//
// and, from decisionV2 (2) on, a byte 0 (no detail) or 1 and the detail:
//
//	string  reason, stage, sentiment, queue, queue_state
//	float64 pressure (8 bytes, little endian)
//	uvarint number of candidates, then each: product (string),
//	        propensity, value, cost (float64), gate (string), prob
//	        (float64)
//	string  features (packed, see PackFeatures)
//
// Records of decisionV1 are still read (no detail). JSON (the log's first form, which starts with '{') is still read, and
// written for a time outside the years 1678-2262. encoding/json was a
// third of the log writer's CPU (2.4% of a decision's).
const (
	decisionV1 = 1
	decisionV2 = 2
)

var errCorruptDecision = errors.New("corrupt decision record")

func encodeDecision(d *DecisionRecord) ([]byte, error) {
	if d.At.Before(minTime) || d.At.After(maxTime) {
		return json.Marshal(d)
	}
	n := 1 + 5*binary.MaxVarintLen64 + len(d.ID) + len(d.ClientID) + len(d.Channel) + len(d.Action) + len(d.Tier) + len(d.ModelVersion) + len(d.Reason) + 16
	for _, p := range d.Products {
		n += binary.MaxVarintLen64 + len(p)
	}
	if dt := d.Detail; dt != nil {
		n += 6*binary.MaxVarintLen64 + len(dt.Reason) + len(dt.Stage) + len(dt.Sentiment) + len(dt.Queue) + len(dt.QueueState) + 8 + len(dt.Features)
		for _, c := range dt.Candidates {
			n += 2*binary.MaxVarintLen64 + len(c.Product) + len(c.Gate) + 32
		}
	}
	b := make([]byte, 0, n)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, decisionV2)
	str(d.ID)
	str(d.ClientID)
	str(d.Channel)
	str(d.Action)
	b = binary.AppendUvarint(b, uint64(len(d.Products)))
	for _, p := range d.Products {
		str(p)
	}
	str(d.Tier)
	str(d.ModelVersion)
	str(d.Reason)
	if d.Degraded {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendVarint(b, d.At.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(d.Exposures)))
	for _, e := range d.Exposures {
		str(e.Experiment)
		str(e.Feature)
		b = binary.AppendVarint(b, int64(e.VariationID))
		str(e.Variation)
		str(e.Name)
	}
	f64 := func(f float64) { b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f)) }
	dt := d.Detail
	if dt == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	str(dt.Reason)
	str(dt.Stage)
	str(dt.Sentiment)
	str(dt.Queue)
	str(dt.QueueState)
	f64(dt.Pressure)
	b = binary.AppendUvarint(b, uint64(len(dt.Candidates)))
	for _, c := range dt.Candidates {
		str(c.Product)
		f64(c.Propensity)
		f64(c.Value)
		f64(c.Cost)
		str(c.Gate)
		f64(c.Prob)
	}
	b = binary.AppendUvarint(b, uint64(len(dt.Features)))
	return append(b, dt.Features...), nil
}

func decodeDecision(raw []byte, d *DecisionRecord) error {
	if len(raw) > 0 && raw[0] == '{' {
		return json.Unmarshal(raw, d)
	}
	if len(raw) == 0 || (raw[0] != decisionV1 && raw[0] != decisionV2) {
		return errCorruptDecision
	}
	r := decisionReader{b: raw[1:]}
	*d = DecisionRecord{ID: r.str(), ClientID: r.str(), Channel: r.str(), Action: r.str()}
	if n := r.count(); n > 0 {
		d.Products = make([]string, n)
		for i := range d.Products {
			d.Products[i] = r.str()
		}
	}
	d.Tier, d.ModelVersion, d.Reason = r.str(), r.str(), r.str()
	switch r.byte() {
	case 0:
	case 1:
		d.Degraded = true
	default:
		r.bad = true
	}
	d.At = time.Unix(0, r.varint()).UTC()
	if n := r.count(); n > 0 {
		d.Exposures = make([]Exposure, n)
		for i := range d.Exposures {
			e := &d.Exposures[i]
			e.Experiment, e.Feature = r.str(), r.str()
			e.VariationID = int(r.varint())
			e.Variation, e.Name = r.str(), r.str()
		}
	}
	if raw[0] >= decisionV2 && r.byte() == 1 {
		dt := &DecisionDetail{Reason: r.str(), Stage: r.str(), Sentiment: r.str(), Queue: r.str(), QueueState: r.str(), Pressure: r.f64()}
		if n := r.count(); n > 0 {
			dt.Candidates = make([]CandidateRecord, n)
			for i := range dt.Candidates {
				c := &dt.Candidates[i]
				c.Product = r.str()
				c.Propensity, c.Value, c.Cost = r.f64(), r.f64(), r.f64()
				c.Gate, c.Prob = r.str(), r.f64()
			}
		}
		if f := r.str(); f != "" {
			dt.Features = []byte(f)
		}
		d.Detail = dt
	}
	if r.bad || len(r.b) != 0 {
		return fmt.Errorf("%w (%d bytes)", errCorruptDecision, len(raw))
	}
	return nil
}

// decisionReader reads the fields in turn; after the first short or bad
// field it reads zeros and bad is set.
type decisionReader struct {
	b   []byte
	bad bool
}

func (r *decisionReader) uvarint() uint64 { return r.took(binary.Uvarint(r.b)) }

func (r *decisionReader) varint() int64 {
	v, n := binary.Varint(r.b)
	return int64(r.took(uint64(v), n))
}

// took moves past a varint of n bytes (n <= 0: none could be read).
func (r *decisionReader) took(v uint64, n int) uint64 {
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decisionReader) str() string {
	l := r.uvarint()
	if l > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[:l])
	r.b = r.b[l:]
	return s
}

// count reads a number of items, each at least one byte long.
func (r *decisionReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return 0
	}
	return int(n)
}

func (r *decisionReader) f64() float64 {
	if len(r.b) < 8 {
		r.bad, r.b = true, nil
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return f
}

func (r *decisionReader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}
