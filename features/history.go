package features

import "time"

// DecisionRecord is what the decision log keeps of one decision, for
// outcome attribution: who was decided for, on which channel, what was
// offered and by which model.
type DecisionRecord struct {
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	Channel      string   `json:"channel"`
	Action       string   `json:"action"`
	Products     []string `json:"products,omitempty"`
	Tier         string   `json:"tier,omitempty"`
	ModelVersion string   `json:"model_version,omitempty"`
	Degraded     bool     `json:"degraded,omitempty"`
	// Reason is the main reason code's name, e.g. "busy_period".
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// Exposures are the experiments the decision was made in.
	Exposures []Exposure `json:"exposures,omitempty"`
	// Detail is what the decision weighed, for training and off-policy
	// evaluation; nil when it stopped before the products were weighed
	// (or was written before details were kept).
	Detail *DecisionDetail `json:"detail,omitempty"`
}

// Exposure is a client's assignment to one variation of an experiment.
type Exposure struct {
	Experiment  string `json:"experiment"`
	Feature     string `json:"feature"`
	VariationID int    `json:"variation_id"`
	Variation   string `json:"variation"`
	Name        string `json:"name,omitempty"`
}

// Offered reports whether the decision offered the product.
func (d *DecisionRecord) Offered(productID string) bool {
	for _, p := range d.Products {
		if p == productID {
			return true
		}
	}
	return false
}

// OutcomeRecord is what happened to one offer of a decision.
type OutcomeRecord struct {
	DecisionID string `json:"decision_id"`
	ProductID  string `json:"product_id"`
	// Outcome is one of "presented", "accepted", "declined", "not_presented".
	Outcome string `json:"outcome"`
	// NotPresentedReason is set when Outcome is "not_presented".
	NotPresentedReason string `json:"not_presented_reason,omitempty"`
	// ClientID and Channel are copied from the decision so that contact
	// history can be read per client.
	ClientID   string    `json:"client_id"`
	Channel    string    `json:"channel"`
	OccurredAt time.Time `json:"occurred_at"`
	RecordedAt time.Time `json:"recorded_at"`
}
