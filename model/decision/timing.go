package decision

import (
	"fmt"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/policy"
)

// timing returns when to offer a product whose moment has not come, and
// a clause saying why for the agent; a nil window means now. Days run in
// loc.
func timing(p *catalog.Product, rec *features.Record, now time.Time, ch catalog.Channel, loc *time.Location) (*Window, string) {
	var w *Window
	what := ""
	if n := p.Timing.Need; n != nil {
		if from, to, days, ok := needWindow(n, rec, now, loc); ok {
			w, what = &Window{NotBefore: from, NotAfter: to}, fmt.Sprintf("%s in %d days", n.What, days)
		}
	}
	if pd := p.Timing.Payday; w == nil && pd != nil {
		if from, to, ok := paydayWindow(pd, rec, now, loc); ok {
			w, what = &Window{NotBefore: from, NotAfter: to}, fmt.Sprintf("it is best offered just after %s (day %d of the month)", pd.What, from.Day())
		}
	}
	if w == nil {
		return nil, ""
	}
	w.Channel = ch
	// A contact the client started cannot be repeated at will: suggest an
	// outbound call when the client allows it and the product sells there.
	if !ch.Outbound() && rec.Flag("consent_outbound") && p.SoldOn(catalog.PhoneOutbound) {
		w.Channel = catalog.PhoneOutbound
	}
	return w, what
}

// needWindow: the moment is DaysFeature days from now (or DateFeature);
// the window runs from LeadDays before it to LagDays after it. ok is false
// when the client has no such moment, or the window is open now or past.
func needWindow(n *catalog.Need, rec *features.Record, now time.Time, loc *time.Location) (from, to time.Time, days int, ok bool) {
	var moment time.Time
	if n.DaysFeature != "" {
		d, has := rec.Num(n.DaysFeature)
		if !has {
			return from, to, 0, false
		}
		moment = now.Add(time.Duration(d * float64(24*time.Hour)))
	} else {
		v, has := rec.Value(n.DateFeature)
		if !has || v.Kind != features.KindTime {
			return from, to, 0, false
		}
		moment = v.Time
	}
	from = startOfDay(moment.AddDate(0, 0, -n.LeadDays), loc)
	if !now.Before(from) {
		return from, to, 0, false
	}
	days = int(moment.Sub(now).Hours() / 24)
	return from, startOfDay(moment.AddDate(0, 0, n.LagDays+1), loc), days, true
}

// paydayWindow: the window opens on payday (the feature's day of month,
// or the month's last day) and lasts WithinDays more days.
func paydayWindow(pd *catalog.Payday, rec *features.Record, now time.Time, loc *time.Location) (from, to time.Time, ok bool) {
	day, has := rec.Num(pd.DayFeature)
	if !has || day < 1 || day > 31 {
		return from, to, false
	}
	local := now.In(loc)
	payday := func(y int, m time.Month) time.Time {
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, loc).Day()
		return time.Date(y, m, min(int(day), last), 0, 0, 0, 0, loc)
	}
	y, m, _ := local.Date()
	for _, start := range []time.Time{payday(y, m-1), payday(y, m), payday(y, m+1)} {
		end := start.AddDate(0, 0, pd.WithinDays+1)
		if !local.Before(start) && local.Before(end) {
			return from, to, false // in the window: now
		}
		if local.Before(start) {
			return start, end, true
		}
	}
	return from, to, false
}

func startOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// placeWindow narrows a later window to the client's preferred contact
// hours on its channel, when the client has given them.
func (e *Engine) placeWindow(w *Window, rec *features.Record, pol *policy.Policy) {
	loc := pol.Load.Location()
	w.TimeZone = loc.String()
	name := pol.ContactHours(w.Channel)
	if name == "" {
		return
	}
	hours := rec.Str(name)
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(hours, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil || n != 4 || h1*60+m1 >= h2*60+m2 || h2 > 24 || m1 > 59 || m2 > 59 {
		return
	}
	w.PreferredHours = hours
	start := startOfDay(w.NotBefore, loc).Add(time.Duration(h1)*time.Hour + time.Duration(m1)*time.Minute)
	if start.Before(w.NotBefore) {
		start = start.AddDate(0, 0, 1)
	}
	if start.Before(w.NotAfter) {
		w.NotBefore = start
	}
}

func hoursWords(w *Window) string {
	s := " by " + channelWords(w.Channel)
	if w.PreferredHours != "" {
		s += ", between " + w.PreferredHours + " (" + w.TimeZone + ") as the client prefers"
	}
	return s
}

// reasonNames are the reason codes' names in the decision log and exports.
var reasonNames = map[ReasonCode]string{
	HighPropensity:           "high_propensity",
	ClientUnknown:            "client_unknown",
	FeaturesUnavailable:      "features_unavailable",
	NoConsent:                "no_consent",
	AlreadyHeld:              "already_held",
	NotEligible:              "not_eligible",
	ChannelNotSold:           "channel_not_sold",
	BelowTierBar:             "below_tier_bar",
	Complaint:                "complaint",
	ProtectedTierServiceCall: "protected_tier_service_call",
	CallStage:                "call_stage",
	BusyPeriod:               "busy_period",
	NeedNotYet:               "need_not_yet",
	CapReached:               "cap_reached",
	CoolDown:                 "cool_down",
	NoEligibleProduct:        "no_eligible_product",
	NegativeSentiment:        "negative_sentiment",
	RecentlyAccepted:         "recently_accepted",
	NotWorthCost:             "not_worth_cost",
	HistoryUnavailable:       "history_unavailable",
}
