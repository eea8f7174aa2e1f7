package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/headless"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/status"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// screenshotEnv names a file the status page test also saves its
// screenshot to (scripts/screenshot sets it to docs/status.png).
const screenshotEnv = "TRIAGE_SCREENSHOT"

// TestStatusPage runs the consumer (embedded broker, builtin MCP sampler
// with the offline scorer) on real events, then loads its status page in
// headless Chromium, kept off the network, and checks what the page
// rendered: the decision count, the audit ids of LLM-stage decisions as the
// audit topic has them, a sampled latency row, the connected sampler, and
// prompts shown as text. The screenshot is a test artefact.
func TestStatusPage(t *testing.T) {
	bin, err := headless.Find()
	if err != nil {
		t.Fatal(err)
	}
	browser := headless.Browser{Bin: bin, ProfileDir: t.TempDir()}
	if v, err := browser.Version(t.Context()); err == nil {
		t.Log(v)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr, logs, errc := startServe(t, ctx, "--log-level", "debug")
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	brokers := logStrings(logs.String(), "embedded broker started", "addrs")
	if len(brokers) == 0 {
		t.Fatalf("no broker address in the logs:\n%s", logs)
	}
	base := "http://" + addr

	// Real events at a steady rate, so that the page has a throughput to
	// show; some are ambiguous (sampled, or answered by the cache).
	const events = 1500
	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 11, Repeat: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(loadgen.ProducerClientOpts(), kgo.SeedBrokers(brokers...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rep, err := loadgen.Produce(ctx, cl, gen, loadgen.ProduceOptions{Events: events, Rate: 600, Track: true})
	if err != nil || len(rep.Produced) != events {
		t.Fatalf("produced %d of %d: %v", len(rep.Produced), events, err)
	}
	testrun.Until(t, "every event decided on /status.json", 2*time.Minute, 50*time.Millisecond, func() bool {
		return fetchSnapshot(t, base).Decisions == events
	})

	// What the pipeline wrote: the audit ids of the LLM-stage decisions.
	decisions := readDecisionAudits(t, ctx, brokers, events)
	llmStage := map[string]string{} // audit id → path
	for _, r := range decisions {
		if r.Path != pipeline.PathRule {
			llmStage[r.AuditID] = r.Path
		}
	}
	if len(llmStage) == 0 {
		t.Fatal("no LLM-stage decision in the audit topic")
	}

	dom, err := browser.DumpDOM(t.Context(), base+"/")
	if err != nil {
		t.Fatal(err)
	}
	if got := domValue(t, dom, "decisions"); got != strconv.Itoa(events) {
		t.Fatalf("the page shows %s decisions, want %d", got, events)
	}
	if !regexp.MustCompile(`id="state"[^>]*>live<`).MatchString(dom) {
		t.Fatalf("the page is not live:\n%s", dom)
	}
	ids := regexp.MustCompile(`data-audit-id="([^"]*)"`).FindAllStringSubmatch(dom, -1)
	if want := min(20, len(llmStage)); len(ids) != want {
		t.Fatalf("the page lists %d recent decisions, want %d", len(ids), want)
	}
	sampled := 0
	for _, m := range ids {
		path, ok := llmStage[m[1]]
		if !ok {
			t.Fatalf("the page shows audit id %q, which is no LLM-stage decision of the audit topic", m[1])
		}
		if !strings.Contains(dom, ">"+m[1]+"<") {
			t.Fatalf("audit id %s is not shown as text", m[1])
		}
		if path == pipeline.PathSampled {
			sampled++
		}
	}
	if sampled == 0 {
		t.Fatalf("none of the recent decisions on the page is sampled: %v", ids)
	}
	if lat := section(t, dom, "latency"); !strings.Contains(lat, `path sampled`) || !strings.Contains(lat, `path rule`) {
		t.Fatalf("no sampled and rule latency rows: %s", lat)
	}
	if s := section(t, dom, "samplers"); !strings.Contains(s, "triage-builtin-sampler") || !strings.Contains(s, "pull") {
		t.Fatalf("the builtin sampler is not listed: %s", s)
	}
	// The prompts fence untrusted fields with <<< and >>> lines: the page
	// shows them as text, which serialises escaped.
	if r := section(t, dom, "recent"); !strings.Contains(r, "&lt;&lt;&lt;") {
		t.Fatalf("no prompt with its fences shown as text: %s", r)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	browser.ProfileDir = t.TempDir() // a profile per run
	if err := browser.Screenshot(t.Context(), base+"/", shot); err != nil {
		t.Fatal(err)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("the screenshot is not a PNG of a rendered page (%d bytes)", len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if dst := os.Getenv(screenshotEnv); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatalf("%s: %v", screenshotEnv, err)
		}
		t.Logf("screenshot copied to %s", dst)
	}
}

// domValue is the data-value of the element with id in a dumped DOM.
func domValue(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `"[^>]*data-value="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no #%s with a value in the page:\n%s", id, dom)
	}
	return m[1]
}

// section is the dumped tbody with id.
func section(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tbody id="` + id + `">.*?</tbody>`).FindString(dom)
	if m == "" {
		t.Fatalf("no tbody #%s in the page", id)
	}
	return m
}

func fetchSnapshot(t *testing.T, base string) status.Snapshot {
	t.Helper()
	res, err := http.Get(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s status.Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatalf("status.json: %v", err)
	}
	return s
}

// readDecisionAudits reads the audit topic, read_committed, until it holds
// want decision records, and returns them.
func readDecisionAudits(t *testing.T, ctx context.Context, brokers []string, want int) []audit.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var out []audit.Record
	testrun.Until(t, fmt.Sprintf("%d decision audit records", want), time.Minute, 100*time.Millisecond, func() bool {
		starts, err := adm.ListStartOffsets(ctx, "audit")
		if err == nil {
			err = starts.Error()
		}
		ends, err2 := adm.ListCommittedOffsets(ctx, "audit")
		if err == nil && err2 == nil {
			err = ends.Error()
		}
		if err != nil || err2 != nil {
			t.Fatalf("audit offsets: %v %v", err, err2)
		}
		out = out[:0]
		err = kafka.ReadRange(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, kgo.ReadCommitted(), starts, ends, func(r *kgo.Record) {
			var a audit.Record
			if json.Unmarshal(r.Value, &a) == nil && a.Kind == audit.KindDecision {
				out = append(out, a)
			}
		})
		if err != nil {
			t.Fatalf("read audit: %v", err)
		}
		return len(out) >= want
	})
	return out
}

// logStrings returns the string list field of the first JSON log line
// whose msg is msg.
func logStrings(logs, msg, field string) []string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil || string(line["msg"]) != strconv.Quote(msg) {
			continue
		}
		var out []string
		if json.Unmarshal(line[field], &out) == nil {
			return out
		}
	}
	return nil
}
