package status

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	"github.com/triage-dev/triage/sampling"
)

// page is the status page: plain HTML with inline CSS and JS, no external
// assets, so it works wherever the consumer's HTTP port is reachable.
//
//go:embed page.html
var page []byte

// Sources are the readings of the moment that a served snapshot adds to
// the aggregator's figures. A nil func leaves its figure out.
type Sources struct {
	// Decider names what decides ambiguous events.
	Decider string
	// Lag is the fetch lag (pipeline.Pipeline.Lag).
	Lag func() int64
	// Paused lists the paused partitions (pipeline.Pipeline.Paused).
	Paused func() map[string][]int32
	// SamplingItems is the items in the sampling stage, and whether it is
	// known.
	SamplingItems func() (int64, bool)
	// Samplers lists the connected samplers (sampling.Pool.Samplers); nil
	// without a pool.
	Samplers func() []sampling.SamplerInfo
	// Logger receives the errors of writing a response. Default: none.
	Logger *slog.Logger
}

// Handler serves the page at / and the snapshot at /status.json (GET
// only). Mount it on both paths, or at the root of its own mux.
func Handler(a *Aggregator, src Sources) http.Handler {
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pagePolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(src.read(a.Snapshot()))
		if err != nil {
			// Only non-finite floats can fail here; none are produced.
			src.Logger.Error("status: encode snapshot", "err", err)
			http.Error(w, "status: encode snapshot", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if _, err := w.Write(body); err != nil {
			src.Logger.Debug("status: write snapshot", "err", err)
		}
	})
	return mux
}

// read adds the readings of the moment to s.
func (src Sources) read(s Snapshot) Snapshot {
	s.Decider = src.Decider
	if src.Lag != nil {
		s.FetchLag = src.Lag()
	}
	if src.Paused != nil {
		for topic, parts := range src.Paused() {
			for _, p := range parts {
				s.Paused = append(s.Paused, fmt.Sprintf("%s/%d", topic, p))
			}
		}
		slices.Sort(s.Paused)
	}
	if src.SamplingItems != nil {
		if n, ok := src.SamplingItems(); ok {
			s.SamplingItems = &n
		}
	}
	if src.Samplers != nil {
		s.Samplers = []Sampler{}
		for _, x := range src.Samplers() {
			s.Samplers = append(s.Samplers, Sampler{
				Name: x.Name, Protocol: x.Protocol, Mode: x.Mode, Region: x.Region, Tools: x.Tools,
				InFlight: x.InFlight, Quarantined: x.Quarantined, SeenAgoS: max(0, s.Now.Sub(x.LastSeen).Seconds()),
			})
		}
	}
	return s
}

// pagePolicy allows the page its own inline style and script, by hash, and
// requests to its own origin; nothing else. Should a value ever slip past
// the page's escaping, the browser still runs no injected script and loads
// nothing from elsewhere.
var pagePolicy = "default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"style-src " + inlineHash(page, "style") + "; script-src " + inlineHash(page, "script")

// inlineHash is the CSP source expression of the first inline <tag>
// element of html, or 'none' if it has none.
func inlineHash(html []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	i := bytes.Index(html, open)
	if i < 0 {
		return "'none'"
	}
	body := html[i+len(open):]
	j := bytes.Index(body, end)
	if j < 0 {
		return "'none'"
	}
	sum := sha256.Sum256(body[:j])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
