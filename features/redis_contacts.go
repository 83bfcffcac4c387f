package features

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ ContactHistory = (*Redis)(nil)

// A client's contact history is one sorted set:
//
//	<prefix>{<client_id>}:contacts
//
// scored by the contact's time in Unix milliseconds, with members
//
//	<kind>|<channel>|<decision_id>|<product_id>|<agent_reason>
//
// where kind is o (offered), p (presented), a (accepted), d (declined) or
// n (not presented). The hash tag puts it in the slot of the client's
// features. Entries older than HistoryRetention are trimmed on every write
// and the key expires HistoryRetention after the last one. How durable an
// acknowledged outcome is depends on Redis's persistence: run it with
// appendonly yes (and appendfsync always for no loss at all).

// reserveScript checks every cap and adds the offers that fit, atomically,
// unless the decision's reservation was released already (its reply was
// lost and the release overtook it). KEYS[1] the contacts key, KEYS[2] the
// decision's release mark. ARGV: trim-before (ms), expire (ms), now (ms),
// channel, number of caps, then per cap since (ms) and max, then the
// members to add (decision|product). It returns {offers added, index of
// the cap that stopped the rest (0-based, -1 none), offers that cap
// counted}; {-1, -1, 0} when released.
var reserveScript = redis.NewScript(`
local key = KEYS[1]
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, -1, 0} end
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
local ch = ARGV[4]
local ncaps = tonumber(ARGV[5])
local first = 6 + 2 * ncaps
local room = #ARGV - first + 1
local limit, used = -1, 0
local prefix = 'o|' .. ch .. '|'
for i = 0, ncaps - 1 do
  local n = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, ARGV[6 + 2 * i], '+inf')) do
    if string.sub(m, 1, #prefix) == prefix then n = n + 1 end
  end
  local r = math.max(tonumber(ARGV[7 + 2 * i]) - n, 0)
  if r < room then room, limit, used = r, i, n end
end
for j = 0, room - 1 do
  redis.call('ZADD', key, 'NX', ARGV[3], prefix .. ARGV[first + j] .. '|')
end
if room > 0 then redis.call('PEXPIRE', key, ARGV[2]) end
return {room, limit, used}
`)

// releaseScript undoes a reservation whose reply was lost: it removes the
// decision's offers and marks the decision released for releaseMark, so
// that a reservation still on its way is refused when it arrives. KEYS[1]
// the contacts key, KEYS[2] the release mark. ARGV: mark lifetime (ms),
// then the offer members.
var releaseScript = redis.NewScript(`
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
for i = 2, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return 0
`)

// releaseMark is how long a released decision stays marked: far longer
// than any reservation can be on its way.
const releaseMark = time.Minute

// releaseTimeout bounds a release, which runs after the caller gave up.
const releaseTimeout = 2 * time.Second

// outcomeScript adds an outcome; a not-presented outcome removes the
// offer it is about. KEYS[1] the contacts key. ARGV: trim-before (ms),
// expire (ms), at (ms), member, offer member to remove or "".
var outcomeScript = redis.NewScript(`
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
if ARGV[5] ~= '' then redis.call('ZREM', key, ARGV[5]) end
local added = redis.call('ZADD', key, 'NX', ARGV[3], ARGV[4])
redis.call('PEXPIRE', key, ARGV[2])
return added
`)

// ContactsKey returns the Redis key of a client's contact history.
func (r *Redis) ContactsKey(clientID string) string {
	return r.prefix + "{" + clientID + "}:contacts"
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Contacts returns a client's contacts at or after since, oldest first.
func (r *Redis) Contacts(ctx context.Context, clientID string, since time.Time) ([]Contact, error) {
	if cs, ok := r.stash.take(clientID, since); ok {
		return cs, nil
	}
	zs, err := r.client.ZRangeByScoreWithScores(ctx, r.ContactsKey(clientID), &redis.ZRangeBy{Min: ms(since), Max: "+inf"}).Result()
	if err != nil {
		return nil, r.unavailable("read contacts", err)
	}
	return parseContacts(clientID, zs)
}

// parseContacts reads a contacts sorted set's members, oldest first.
func parseContacts(clientID string, zs []redis.Z) ([]Contact, error) {
	out := make([]Contact, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		parts := strings.Split(m, "|")
		if len(parts) != 5 || len(parts[0]) != 1 || contactKindNames[parts[0][0]] == "" {
			return nil, fmt.Errorf("features: redis contacts: malformed member %q", m)
		}
		out = append(out, Contact{
			ClientID:    clientID,
			Kind:        contactKindNames[parts[0][0]],
			Channel:     parts[1],
			DecisionID:  parts[2],
			ProductID:   parts[3],
			AgentReason: parts[4],
			At:          time.UnixMilli(int64(z.Score)).UTC(),
		})
	}
	return out, nil
}

// releaseKey returns the key that marks a decision's reservation released
// (in the client's slot).
func (r *Redis) releaseKey(clientID, decisionID string) string {
	return r.prefix + "{" + clientID + "}:released:" + decisionID
}

// Reserve runs reserveScript: the caps are checked and the offers added in
// one atomic step on the Redis server, so that every tactd sharing it is
// held to the same caps. When the call fails (above all when its reply
// misses the caller's deadline, though Redis may have made the
// reservation) the reservation is released in the background, so that no
// offer the caller never gave uses up a cap slot.
func (r *Redis) Reserve(ctx context.Context, res Reservation) (Reserved, error) {
	r.stash.forget(res.ClientID)
	if err := checkReservation(&res); err != nil {
		return Reserved{}, err
	}
	args := []any{ms(res.At.Add(-HistoryRetention)), HistoryRetention.Milliseconds(), ms(res.At), res.Channel, len(res.Caps)}
	for _, c := range res.Caps {
		args = append(args, ms(res.At.Add(-c.Window)), c.Max)
	}
	for _, p := range res.Products {
		args = append(args, res.DecisionID+"|"+p)
	}
	keys := []string{r.ContactsKey(res.ClientID), r.releaseKey(res.ClientID, res.DecisionID)}
	vals, err := reserveScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err == nil && (len(vals) != 3 || vals[0] < 0 || vals[1] >= int64(len(res.Caps))) {
		err = fmt.Errorf("unexpected reply %v", vals)
	}
	if err != nil {
		go r.release(context.WithoutCancel(ctx), res)
		return Reserved{}, r.unavailable("reserve offers", err)
	}
	out := Reserved{N: int(vals[0])}
	if vals[1] >= 0 {
		out.Limit, out.Used = res.Caps[vals[1]], int(vals[2])
	}
	if out.N > 0 && res.Decision != nil {
		rec := *res.Decision
		rec.Products = res.Products[:out.N]
		if err := r.putDecision(ctx, &rec); err != nil {
			// An offer no replica could take the outcome of is not given.
			go r.release(context.WithoutCancel(ctx), res)
			return Reserved{}, err
		}
	}
	return out, nil
}

// DecisionKey returns the key of a decision's record, kept for
// Retention.OfferDecisions (in the decision's own slot: an outcome names only the
// decision).
func (r *Redis) DecisionKey(id string) string { return r.prefix + "decision:{" + id + "}" }

func (r *Redis) putDecision(ctx context.Context, rec *DecisionRecord) error {
	raw, err := encodeDecision(rec)
	if err != nil {
		return err
	}
	if err := r.client.Set(ctx, r.DecisionKey(rec.ID), raw, r.ret.OfferDecisions).Err(); err != nil {
		return r.unavailable("record decision", err)
	}
	return nil
}

// GetDecision returns a decision recorded with its offers (Reserve), or
// ErrNotFound.
func (r *Redis) GetDecision(ctx context.Context, id string) (DecisionRecord, error) {
	raw, err := r.client.Get(ctx, r.DecisionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return DecisionRecord{}, ErrNotFound
	}
	if err != nil {
		return DecisionRecord{}, r.unavailable("read decision", err)
	}
	var d DecisionRecord
	if err := decodeDecision(raw, &d); err != nil {
		return DecisionRecord{}, fmt.Errorf("features: decode decision %s: %w", id, err)
	}
	return d, nil
}

// release undoes a reservation whose reply was lost (releaseScript).
func (r *Redis) release(ctx context.Context, res Reservation) {
	r.stash.forget(res.ClientID)
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	args := []any{releaseMark.Milliseconds()}
	for _, p := range res.Products {
		args = append(args, "o|"+res.Channel+"|"+res.DecisionID+"|"+p+"|")
	}
	keys := []string{r.ContactsKey(res.ClientID), r.releaseKey(res.ClientID, res.DecisionID)}
	if err := releaseScript.Run(ctx, r.client, keys, args...).Err(); err != nil {
		// The offers, if the reservation was made, hold their cap slots
		// until they leave the caps' windows.
		r.logger.Warn("redis: releasing a reservation whose reply was lost failed", "decision_id", res.DecisionID, "offers", len(res.Products), "err", err)
	}
}

// AddContact runs outcomeScript.
func (r *Redis) AddContact(ctx context.Context, c Contact) error {
	r.stash.forget(c.ClientID)
	if err := checkContact(&c); err != nil {
		return err
	}
	member := fmt.Sprintf("%c|%s|%s|%s|%s", contactKinds[c.Kind], c.Channel, c.DecisionID, c.ProductID, c.AgentReason)
	veto := ""
	if c.Kind == ContactNotPresented {
		veto = "o|" + c.Channel + "|" + c.DecisionID + "|" + c.ProductID + "|"
	}
	err := outcomeScript.Run(ctx, r.client, []string{r.ContactsKey(c.ClientID)},
		ms(c.At.Add(-HistoryRetention)), HistoryRetention.Milliseconds(), ms(c.At), member, veto).Err()
	if err != nil {
		return r.unavailable("write contact", err)
	}
	return nil
}
