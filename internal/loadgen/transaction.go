package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Thresholds of the contract's default transaction policy
// (params large_amount, huge_amount; rule sample_velocity_spike). The
// generator keeps clear events on the safe side of each and pushes ambiguous
// ones over exactly one.
const (
	largeAmount     = 5000
	hugeAmount      = 50000
	velocityCount   = 40 // txn_count_24h above this (and amount > 3x avg) is sampled
	youngAccountAge = 30 // account_age_days below this with a huge amount is blocked
)

// Country lists of the default policy (params sanctioned_countries,
// high_risk_countries) and the low-risk countries the generator travels to.
var (
	sanctionedCountries = []string{"KP", "IR", "SY", "CU"}
	highRiskCountries   = []string{"NG", "RU", "UA", "VE", "PK", "BY"}
	lowRiskCountries    = []string{"US", "GB", "DE", "FR", "NL", "ES", "IT", "IE", "PT", "AT", "BE", "SE", "DK", "CH", "CA", "AU", "SG", "JP"}
)

// homeCountry weights where accounts live. Currencies are ones whose unit is
// close to a US dollar, because the policy compares raw amounts with 5000
// whatever the currency; accounts elsewhere hold USD.
type homeCountry struct {
	code, currency string
	weight         float64
}

var homeCountries = []homeCountry{
	{"US", "USD", 25}, {"GB", "GBP", 12}, {"DE", "EUR", 12}, {"FR", "EUR", 9}, {"NL", "EUR", 5},
	{"ES", "EUR", 6}, {"IT", "EUR", 6}, {"IE", "EUR", 3}, {"CH", "CHF", 2}, {"CA", "CAD", 5},
	{"AU", "AUD", 4}, {"SG", "SGD", 2}, {"BR", "USD", 2}, {"MX", "USD", 2}, {"PL", "EUR", 3},
	{"UA", "USD", 1}, {"NG", "USD", 1}, {"PK", "USD", 1},
}

type merchant struct {
	name, mcc, channel string
	large              bool // plausible for amounts above large_amount
}

var merchants = []merchant{
	{"Tesco", "5411", "card_present", false}, {"Carrefour", "5411", "card_present", false},
	{"Shell", "5541", "card_present", false}, {"Starbucks", "5814", "card_present", false},
	{"Pizzeria Da Mario", "5812", "card_present", false}, {"IKEA", "5712", "card_present", true},
	{"MediaMarkt", "5732", "card_present", true}, {"Apple Store", "5732", "ecommerce", true},
	{"Amazon", "5999", "ecommerce", true}, {"Zalando", "5651", "ecommerce", false},
	{"Booking.com", "7011", "ecommerce", true}, {"Lufthansa", "4511", "ecommerce", true},
	{"Uber", "4121", "ecommerce", false}, {"Netflix", "4899", "ecommerce", false},
	{"Steam", "5816", "ecommerce", false}, {"Coinbase", "6051", "ecommerce", true},
	{"ATM withdrawal", "6011", "atm", false}, {"Bank transfer", "4829", "transfer", true},
}

// account is the stable profile behind an account's transactions.
type account struct {
	id, user, tenant, device string
	home, currency           string
	avg                      float64 // typical amount; avg_amount_30d jitters around it
	age, chargebacks         int64
}

func newAccounts(r *rand.Rand, n, tenants int) (all []account, young []int) {
	var totalW float64
	for _, h := range homeCountries {
		totalW += h.weight
	}
	all = make([]account, n)
	for i := range all {
		u := r.Float64() * totalW
		h := homeCountries[len(homeCountries)-1]
		for _, c := range homeCountries {
			if u -= c.weight; u < 0 {
				h = c
				break
			}
		}
		a := account{
			id: fmt.Sprintf("acc-%07d", i), user: fmt.Sprintf("usr-%07d", i),
			tenant: fmt.Sprintf("tenant-%02d", r.IntN(tenants)), device: fmt.Sprintf("dev-%08x", r.Uint32()),
			home: h.code, currency: h.currency,
			avg: math.Round(math.Min(1500, math.Max(5, math.Exp(math.Log(60)+0.9*r.NormFloat64())))*100) / 100,
			age: 30 + r.Int64N(3000),
		}
		if chance(r, 0.08) {
			a.age = r.Int64N(youngAccountAge)
			young = append(young, i)
		}
		switch u := r.Float64(); {
		case u < 0.02: // chargeback-heavy: the policy sends these to review
			a.chargebacks = 3 + r.Int64N(3)
		case u < 0.06:
			a.chargebacks = 1 + r.Int64N(2)
		}
		all[i] = a
	}
	return all, young
}

// txn holds the fields of one transaction while a scenario shapes it.
type txn struct {
	a           *account
	country, ip string
	m           merchant
	amount, avg float64
	count24     int64
	device      string
}

// transaction builds a transaction event in g.obj and returns its key.
// Clear ones: mostly allow (chargeback-heavy accounts get review), about
// 0.5% block_sanctioned and 0.3% block_huge_new_account; none can reach a
// sample rule. Ambiguous ones hit one of sample_large_high_risk,
// sample_geo_mismatch_large and sample_velocity_spike, and nothing before it.
func (g *Generator) transaction(id string, ambiguous bool) string {
	r := g.rng
	t := txn{a: &g.accounts[g.zipf.Uint64()]}
	t.country, t.ip = t.a.home, t.a.home
	t.m = pick(r, merchants)
	t.avg = round2(t.a.avg * between(r, 0.95, 1.05))
	t.count24 = min(int64(r.ExpFloat64()*4), velocityCount)
	t.amount = round2(math.Min(30000, t.a.avg*math.Exp(0.8*r.NormFloat64())))
	t.device = t.a.device
	if chance(r, 0.05) {
		t.device = "dev-" + strconv.FormatUint(uint64(r.Uint32()), 16)
	}
	scenario := r.Float64()
	switch {
	case ambiguous:
		g.ambiguousTxn(&t, scenario)
	case scenario < 0.005: // block_sanctioned: mostly a VPN exit in a sanctioned country
		s := pick(r, sanctionedCountries)
		if chance(r, 0.7) {
			t.ip = s
		} else {
			t.country = s
		}
	case scenario < 0.008 && len(g.young) > 0: // block_huge_new_account
		t.a = &g.accounts[pick(r, g.young)]
		t.country, t.ip = t.a.home, t.a.home
		t.m = merchants[len(merchants)-1]
		t.amount = round2(between(r, hugeAmount, 5*hugeAmount))
	default:
		g.allowTxn(&t, scenario)
	}
	if t.m.channel == "atm" {
		t.amount = math.Max(20, math.Round(t.amount/20)*20)
	}
	g.envelope(id, TypeTransaction, t.a.tenant)
	o := &g.obj
	o.add("account_id", str(t.a.id))
	o.add("user_id", str(t.a.user))
	o.add("amount", number(t.amount, 2))
	o.add("currency", str(t.a.currency))
	o.add("country", str(t.country))
	o.add("ip_country", str(t.ip))
	o.add("merchant", str(t.m.name))
	o.add("mcc", str(t.m.mcc))
	o.add("channel", str(t.m.channel))
	o.add("device_id", str(t.device))
	o.add("txn_count_24h", integer(t.count24))
	o.add("avg_amount_30d", number(t.avg, 2))
	o.add("account_age_days", integer(t.a.age))
	o.add("chargebacks_90d", integer(t.a.chargebacks))
	return t.a.id
}

// allowTxn shapes a transaction no block or sample rule matches (it can still
// be reviewed for chargebacks, which comes after the sample rules).
func (g *Generator) allowTxn(t *txn, u float64) {
	r := g.rng
	if u > 0.92 { // travelling
		t.country = pick(r, lowRiskCountries)
		t.ip = t.country
	}
	if chance(r, 0.08) { // VPN or roaming: harmless below large_amount
		t.ip = pick(r, lowRiskCountries)
	}
	if u < 0.02 && !isHighRisk(t.country) { // a legitimately large purchase at home
		t.m = pickLarge(r)
		t.amount = round2(between(r, largeAmount, 30000))
	}
	if t.amount >= largeAmount {
		if isHighRisk(t.country) {
			t.amount = round2(between(r, 100, largeAmount-1))
		}
		t.ip = t.country
	}
	if t.m.channel == "atm" && t.amount >= largeAmount-20 {
		t.amount = 400 // rounding to 20 must not cross large_amount either
	}
}

// ambiguousTxn shapes a transaction that hits exactly one sample rule: the
// first sample rule it matches is the one chosen by u, and no block rule
// (ahead of them) matches.
func (g *Generator) ambiguousTxn(t *txn, u float64) {
	r := g.rng
	safeHome := t.a.home
	if isHighRisk(safeHome) {
		safeHome = pick(r, lowRiskCountries)
	}
	switch {
	case u < 1.0/3: // sample_large_high_risk
		t.country = pick(r, highRiskCountries)
		if chance(r, 0.7) {
			t.ip = t.country
		}
		t.m = pickLarge(r)
		t.amount = round2(between(r, largeAmount, 0.9*hugeAmount))
	case u < 2.0/3: // sample_geo_mismatch_large
		t.country = safeHome
		for t.ip = t.country; t.ip == t.country; {
			t.ip = pick(r, lowRiskCountries)
		}
		t.m = pickLarge(r)
		t.amount = round2(between(r, largeAmount, 0.9*hugeAmount))
	default: // sample_velocity_spike
		t.country, t.ip = safeHome, safeHome
		if t.m.channel == "atm" { // ATM rounding could bring the amount back under 3x avg
			t.m = merchants[0]
		}
		t.count24 = velocityCount + 1 + r.Int64N(110)
		t.amount = round2(math.Min(0.9*hugeAmount, t.avg*between(r, 3.5, 10)))
	}
}

func pickLarge(r *rand.Rand) merchant {
	for {
		if m := pick(r, merchants); m.large {
			return m
		}
	}
}

func isHighRisk(c string) bool { return slices.Contains(highRiskCountries, c) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
