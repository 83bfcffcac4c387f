package server

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// checkDecideJSON holds parseDecideRequest to protojson on one body: what
// the quick parser accepts, protojson must read without error into the
// same message.
func checkDecideJSON(t *testing.T, body []byte) (quick bool) {
	t.Helper()
	var fast tactv1.DecideRequest
	if !parseDecideRequest(body, &fast) {
		return false
	}
	var slow tactv1.DecideRequest
	if err := (protojson.UnmarshalOptions{}).Unmarshal(body, &slow); err != nil {
		t.Fatalf("quick parser accepted %q, which protojson refuses: %v", body, err)
	}
	if !proto.Equal(&fast, &slow) {
		t.Fatalf("%q: quick parser read %v, protojson %v", body, &fast, &slow)
	}
	return true
}

func TestDecideJSONAgrees(t *testing.T) {
	// What desktops and tactload send: the quick path must take them.
	common := []string{
		`{"client_id":"C00003","channel":"CHANNEL_PHONE_INBOUND","context":{"reason":"INTERACTION_REASON_SALES_ENQUIRY","stage":"INTERACTION_STAGE_IN_PROGRESS"}}`,
		`{"clientId":"C00001","channel":"CHANNEL_WEB","queue":"cards","agentId":"a-7","maxOffers":3,"explain":true}`,
		" {\n \"client_id\" : \"x@bank:1\" ,\t\"channel\":\"CHANNEL_BRANCH\", \"context\":{}, \"max_offers\":0, \"explain\":false }\r\n",
		`{}`,
		`{"context":{"sentiment":"SENTIMENT_NEGATIVE","reason":"INTERACTION_REASON_COMPLAINT","stage":"INTERACTION_STAGE_WRAP_UP"}}`,
	}
	for _, body := range common {
		if !checkDecideJSON(t, []byte(body)) {
			t.Errorf("quick parser refused a plain request: %s", body)
		}
	}
	// The unusual kinds: left to protojson (or read the same).
	unusual := []string{
		`{"client_id":"C\u0030001","channel":"CHANNEL_WEB"}`, `{"client_id":"é","channel":"CHANNEL_WEB"}`,
		`{"channel":1}`, `{"channel":"CHANNEL_NOPE"}`, `{"max_offers":"3"}`, `{"max_offers":3.0}`, `{"max_offers":1e1}`,
		`{"max_offers":-1}`, `{"max_offers":4294967296}`, `{"client_id":null}`, `{"context":null}`,
		`{"client_id":"a","clientId":"b"}`, `{"client_id":"a","client_id":"a"}`, `{"context":{"reason":"INTERACTION_REASON_COMPLAINT","reason":"INTERACTION_REASON_COMPLAINT"}}`,
		`{"nope":1}`, `{"explain":"true"}`, `[]`, `"x"`, `{"context":{"nope":"x"}}`, `{"client_id":"C1"} `,
	}
	for _, body := range unusual {
		if !json.Valid([]byte(body)) {
			t.Fatalf("test body %s is not JSON", body)
		}
		checkDecideJSON(t, []byte(body))
	}
}

func FuzzDecideJSON(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"C00003","channel":"CHANNEL_PHONE_INBOUND","context":{"reason":"INTERACTION_REASON_SALES_ENQUIRY","stage":"INTERACTION_STAGE_IN_PROGRESS"}}`,
		`{"clientId":"C00001","channel":"CHANNEL_WEB","queue":"cards","agentId":"a-7","maxOffers":3,"explain":true}`,
		`{"max_offers":4294967295,"context":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return // refused with 400 before the gateway decodes
		}
		checkDecideJSON(t, body)
	})
}
