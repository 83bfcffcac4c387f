package server

import (
	"bytes"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// NewDecoder reads a REST DecideRequest with parseDecideRequest when it
// can, and everything else with protojson. protojson (behind a first pass
// of encoding/json) was 9% of a REST decision's CPU; a request the quick
// parser is unsure of (escapes, numbers for enums, unknown or repeated
// fields, anything unusual) is read by protojson from the same bytes, so
// protojson stays the judge of what is invalid and the writer of the
// error. TestDecideJSONAgrees and FuzzDecideJSON check that what the
// quick parser accepts, protojson reads the same.
func (m gatewayMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		req, ok := v.(*tactv1.DecideRequest)
		if !ok {
			switch v.(type) {
			case *tactv1.PutClientFeaturesRequest, *tactv1.BatchPutClientFeaturesRequest:
				return m.decodeFeatures(r, v)
			}
			return m.JSONPb.NewDecoder(r).Decode(v)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if parseDecideRequest(body, req) {
			return nil
		}
		req.Reset()
		return m.JSONPb.NewDecoder(bytes.NewReader(body)).Decode(v)
	})
}

// parseDecideRequest reads b into r if b is a JSON object of the plain
// kind every desktop sends: known fields once each, strings of printable
// ASCII without escapes, enums by name, max_offers a plain whole number.
// It returns false for anything else, leaving r partly filled.
func parseDecideRequest(b []byte, r *tactv1.DecideRequest) bool {
	p := jsonScan{b: b}
	var seen uint16
	ok := p.object(func(key []byte) bool {
		var bit uint16
		var ok bool
		switch string(key) {
		case "client_id", "clientId":
			bit = 1
			r.ClientId, ok = p.str()
		case "channel":
			bit = 2
			var n int32
			n, ok = p.enum(tactv1.Channel_value)
			r.Channel = tactv1.Channel(n)
		case "queue":
			bit = 4
			r.Queue, ok = p.str()
		case "agent_id", "agentId":
			bit = 8
			r.AgentId, ok = p.str()
		case "max_offers", "maxOffers":
			bit = 16
			r.MaxOffers, ok = p.uint32()
		case "explain":
			bit = 32
			r.Explain, ok = p.bool()
		case "context":
			bit = 64
			ok = p.context(r)
		default:
			return false
		}
		return firstRead(&seen, bit, ok)
	})
	p.ws()
	return ok && p.i == len(p.b)
}

// context reads the interaction context object into r.
func (p *jsonScan) context(r *tactv1.DecideRequest) bool {
	c := &tactv1.InteractionContext{}
	r.Context = c
	var seen uint16
	return p.object(func(key []byte) bool {
		var bit uint16
		var n int32
		var ok bool
		switch string(key) {
		case "reason":
			bit = 1
			n, ok = p.enum(tactv1.InteractionReason_value)
			c.Reason = tactv1.InteractionReason(n)
		case "stage":
			bit = 2
			n, ok = p.enum(tactv1.InteractionStage_value)
			c.Stage = tactv1.InteractionStage(n)
		case "sentiment":
			bit = 4
			n, ok = p.enum(tactv1.Sentiment_value)
			c.Sentiment = tactv1.Sentiment(n)
		default:
			return false
		}
		return firstRead(&seen, bit, ok)
	})
}

// firstRead notes field bit as read, and reports whether it was read well
// and for the first time (protojson refuses a field given twice).
func firstRead(seen *uint16, bit uint16, ok bool) bool {
	if !ok || *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// jsonScan reads the plain JSON parseDecideRequest accepts. Its readers
// return false when the input is not of that kind.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScan) eat(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field for each key with the
// scanner at the value.
func (p *jsonScan) object(field func(key []byte) bool) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		return true
	}
	for {
		p.ws()
		key, ok := p.raw()
		if !ok || !p.eat(':') {
			return false
		}
		p.ws()
		if !field(key) {
			return false
		}
		if p.eat(',') {
			continue
		}
		return p.eat('}')
	}
}

// raw reads a string of printable ASCII without escapes.
func (p *jsonScan) raw() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

func (p *jsonScan) str() (string, bool) {
	s, ok := p.raw()
	return string(s), ok
}

func (p *jsonScan) enum(values map[string]int32) (int32, bool) {
	s, ok := p.raw()
	if !ok {
		return 0, false
	}
	n, ok := values[string(s)]
	return n, ok
}

// uint32 reads a whole number without sign, fraction, exponent or
// leading zero, that fits in 32 bits.
func (p *jsonScan) uint32() (uint32, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + uint64(p.b[p.i]-'0')
		p.i++
		if p.i-start > 10 {
			return 0, false
		}
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.b[start] == '0') || n > 1<<32-1 {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	return uint32(n), true
}

// bool reads true or false; the value itself is the first result, whether
// there was one the second.
func (p *jsonScan) bool() (value, ok bool) {
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}
