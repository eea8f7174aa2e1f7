package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/internal/loadgen"
)

// ErrNotSettled is returned (wrapped) when the group did not commit the end
// of the event topics within Config.SettleTimeout. Run still verifies, so
// the report names what is missing.
var ErrNotSettled = errors.New("chaos: the group did not commit the end of the event topics")

// queueWait is the consumers' --queue-wait with a sampler process: long
// enough for a killed sampler to come back and reconnect (its back-off
// tops out at 10 s) before ambiguous events fall back with no_sampler.
const queueWait = 30 * time.Second

// stopGrace is added to the drain timeout when the harness waits for a
// SIGTERMed process.
const stopGrace = 10 * time.Second

// Run runs the configured processes and faults, waits for the group to
// commit the end of the event topics (and, with cfg.ClickHouse, for the
// sink to store the end of the output topics), stops the processes with
// SIGTERM and verifies every produced record, then with cfg.ClickHouse the
// audit table. Processes write to their log files in cfg.Dir.
//
// The error says that the run could not be carried out as configured: a
// binary that would not start, a fault whose injection failed, a group that
// did not settle (ErrNotSettled), a sink that did not catch up
// (ErrNotCaughtUp), a verification that could not read.
// Whether the pipeline survived is the Report's (Report.Failed). The report
// is filled as far as the run got, and verification runs whenever the
// processes ran. Every process has exited when Run returns; ending ctx kills
// them all at once.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	begin := time.Now()
	defer func() { rep.Elapsed = time.Since(begin) }()
	cfg, err = cfg.withDefaults()
	if err != nil {
		return rep, err
	}
	rep.Dir, rep.Seed = cfg.Dir, cfg.Seed
	log := cfg.Logger
	signer, err := auditSigner(cfg.AuditKeyFile)
	if err != nil {
		return rep, fmt.Errorf("chaos: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return rep, fmt.Errorf("chaos: run directory: %w", err)
	}
	if cfg.Partitions > 0 {
		if err := createTopics(ctx, cfg); err != nil {
			return rep, err
		}
	}
	consumers, sampler, err := slots(cfg)
	if err != nil {
		return rep, err
	}

	// Ending runCtx kills every process the slots run; the deferred Wait
	// returns once they have exited, on every path out of Run.
	runCtx, cancel := context.WithCancel(ctx)
	procs, pctx := errgroup.WithContext(runCtx)
	defer func() {
		cancel()
		if werr := procs.Wait(); werr != nil && err == nil {
			err = werr
		}
		rep.Restarts, rep.UnexpectedExits = 0, 0
		for _, s := range append(consumers, sampler) {
			if s != nil {
				n, u := s.counts()
				rep.Restarts += max(0, n-1)
				rep.UnexpectedExits += u
			}
		}
	}()
	for _, s := range append(consumers, sampler) {
		if s != nil {
			procs.Go(func() error { return s.run(pctx) })
		}
	}
	log.Info("chaos: run started", "dir", cfg.Dir, "brokers", cfg.Brokers, "group", cfg.Topics.Group,
		"consumers", cfg.Consumers, "sampler", sampler != nil, "events", cfg.Events, "rate", cfg.Rate,
		"kills", cfg.Kills, "kill_every", cfg.KillMin.String()+"-"+cfg.KillMax.String(), "seed", cfg.Seed)

	producer, err := launch(cfg.Producer, producerArgs(cfg), nil, filepath.Join(cfg.Dir, "producer.log"))
	if err != nil {
		return rep, err
	}
	defer func() {
		_ = producer.signal(syscall.SIGKILL)
		<-producer.done
	}()

	// The kills and the faults run while the producer produces; each ends
	// with its schedule or with pctx.
	k := &killer{cfg: cfg, consumers: consumers, sampler: sampler}
	var work errgroup.Group
	work.Go(func() error { k.run(pctx); return nil })
	rep.Faults = make([]FaultResult, len(cfg.Faults))
	for i, f := range cfg.Faults {
		work.Go(func() error {
			rep.Faults[i] = inject(pctx, f, log)
			return nil
		})
	}
	select {
	case <-producer.done:
		rep.ProducerErr = producer.err
		log.Info("chaos: producer done", "exit", exitText(producer.err))
	case <-pctx.Done():
	}
	_ = work.Wait()
	rep.Kills, rep.SamplerKills = k.kills, k.samplerKills
	if err := pctx.Err(); err != nil {
		return rep, fmt.Errorf("chaos: run interrupted: %w", context.Cause(pctx))
	}
	var faultErrs []error
	for _, f := range rep.Faults {
		if f.Err != nil {
			faultErrs = append(faultErrs, fmt.Errorf("chaos: fault %s: %w", f.Name, f.Err))
		}
	}

	settleStart := time.Now()
	settleErr := settle(pctx, cfg, log)
	rep.Settle, rep.Settled = time.Since(settleStart), settleErr == nil
	if !rep.Settled {
		diagnose(pctx, cfg, log, cfg.Topics.Group, cfg.Topics.sources()...)
	}

	// The sink must catch up before the consumers stop, not after: it runs
	// inside them (cmd/consumer), and on SIGTERM it stores and commits only
	// what it has polled while the pipeline beside it drains; after the
	// stop no sink runs at all. Once the group has committed the end of the
	// event topics, every output below those commits is written (with
	// exactly-once, in the committed transactions, checkpoints included),
	// so the end offsets the sink must reach no longer move, but for the
	// aborts of killed consumers' open transactions, which the sink's
	// read_committed reading waits out. Whatever a stopping consumer might
	// still write lies above the group's commits, where the reconciliation
	// does not look.
	var catchUpErr error
	if cfg.ClickHouse != "" {
		rep.ClickHouse = &ClickHouseCheck{}
		start := time.Now()
		catchUpErr = catchUp(pctx, cfg, log)
		rep.ClickHouse.CatchUp, rep.ClickHouse.CaughtUp = time.Since(start), catchUpErr == nil
	}

	// Consumers first: their drain needs the sampler to answer what is in
	// flight.
	rep.StopErrors = stopAll(consumers, cfg.DrainTimeout+stopGrace)
	if sampler != nil {
		rep.StopErrors = append(rep.StopErrors, stopAll([]*slot{sampler}, stopGrace)...)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("chaos: run interrupted: %w", err)
	}

	// Verify reads the outputs up to their last stable offsets: wait until
	// the transactions of killed consumers are aborted.
	stableErr := stable(ctx, cfg, log)

	log.Info("chaos: verifying", "topics", cfg.Topics.sources())
	vctx, vcancel := context.WithTimeout(ctx, cfg.VerifyTimeout)
	defer vcancel()
	v, verr := loadgen.Verify(vctx, []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, loadgen.VerifyOptions{
		SourceTopics:   cfg.Topics.sources(),
		DecisionsTopic: cfg.Topics.Decisions, AuditTopic: cfg.Topics.Audit, DLQTopic: cfg.Topics.DLQ,
		Rules: cfg.Rules,
	})
	if verr == nil {
		rep.Verified, rep.Verification = true, v
	} else {
		verr = fmt.Errorf("chaos: verify: %w", verr)
	}
	var chErr error
	if cfg.ClickHouse != "" {
		log.Info("chaos: verifying ClickHouse", "group", cfg.Topics.Group, "signatures", signer != nil)
		cctx, ccancel := context.WithTimeout(ctx, cfg.VerifyTimeout)
		defer ccancel()
		chErr = verifyClickHouse(cctx, cfg, signer, rep.ClickHouse)
	}
	return rep, errors.Join(append(faultErrs, settleErr, catchUpErr, stableErr, verr, chErr)...)
}

// slots builds the consumer slots and, with a sampler binary, the sampler's
// slot connected to every consumer's MCP endpoint.
func slots(cfg Config) (consumers []*slot, sampler *slot, err error) {
	maskKey, err := secret()
	if err != nil {
		return nil, nil, err
	}
	token, err := secret()
	if err != nil {
		return nil, nil, err
	}
	// Secrets go in the environment: ps shows flags.
	env := []string{"TRIAGE_MASK_KEY=" + maskKey, "TRIAGE_MCP_TOKEN=" + token, "TRIAGE_TOKEN=" + token}
	var servers []string
	for i := range cfg.Consumers {
		name := "consumer-" + strconv.Itoa(i+1)
		args := consumerArgs(cfg)
		if cfg.StableTransactionalIDs {
			args = append(args, "--transactional-id", cfg.Topics.Group+"."+name)
		}
		if cfg.Sampler != "" {
			// A restarted consumer listens where the sampler knows to
			// find it.
			addr, err := freeAddr()
			if err != nil {
				return nil, nil, err
			}
			servers = append(servers, "http://"+addr+"/mcp")
			args = append(args, "--sampler", "none", "--mcp-listen", addr, "--queue-wait", queueWait.String())
		} else {
			args = append(args, "--sampler", "builtin", "--mcp-listen", "", "--offline-latency", cfg.SamplerLatency.String())
		}
		args = append(args, cfg.ConsumerArgs...)
		consumers = append(consumers, newSlot(name, cfg.Consumer, args, env, cfg.Dir, cfg.RestartDelay, cfg.Logger))
	}
	if cfg.Sampler != "" {
		args := append([]string{"--server", strings.Join(servers, ","), "--provider", "offline",
			"--offline-latency", cfg.SamplerLatency.String(), "--log-format", "text"}, cfg.SamplerArgs...)
		sampler = newSlot("sampler", cfg.Sampler, args, env, cfg.Dir, cfg.RestartDelay, cfg.Logger)
	}
	return consumers, sampler, nil
}

func consumerArgs(cfg Config) []string {
	t := cfg.Topics
	return []string{"--brokers", strings.Join(cfg.Brokers, ","), "--group", t.Group,
		"--topics", t.Transactions + "," + t.Documents, "--decisions-topic", t.Decisions,
		"--audit-topic", t.Audit, "--dlq-topic", t.DLQ, "--sink-dlq-topic", t.SinkDLQ, "--sampling-topic", t.Sampling,
		"--group-protocol", cfg.GroupProtocol, "--session-timeout", cfg.SessionTimeout.String(),
		"--drain-timeout", cfg.DrainTimeout.String(), "--http-listen", "", "--log-format", "text",
		"--clickhouse", cfg.ClickHouse, "--audit-key-file", cfg.AuditKeyFile}
}

func producerArgs(cfg Config) []string {
	return []string{"--brokers", strings.Join(cfg.Brokers, ","), "--events", strconv.Itoa(cfg.Events),
		"--rate", strconv.FormatFloat(cfg.Rate, 'g', -1, 64), "--bad", strconv.FormatFloat(cfg.Bad, 'g', -1, 64),
		"--seed", strconv.FormatInt(cfg.ProducerSeed, 10),
		// The producer stands in for upstream systems, which ride out a
		// broker restart (on a loaded machine Apache Kafka took 24 s to
		// come back): records must wait for it, not fail the run.
		"--delivery-timeout", "3m",
		"--topic-transactions", cfg.Topics.Transactions, "--topic-documents", cfg.Topics.Documents}
}

// secret returns 32 random bytes in hex: the run's mask key and MCP token.
func secret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("chaos: secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: free address: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// stopAll SIGTERMs the slots at once and returns the errors of those that
// did not exit 0 within timeout.
func stopAll(slots []*slot, timeout time.Duration) []error {
	errs := make([]error, len(slots))
	var g errgroup.Group
	for i, s := range slots {
		g.Go(func() error {
			errs[i] = s.stop(timeout)
			return nil
		})
	}
	_ = g.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// createTopics creates the run's topics with cfg.Partitions partitions.
func createTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("chaos: create topics: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, cfg.Partitions, -1, nil, cfg.Topics.All()...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("chaos: create topics %v: %w", cfg.Topics.All(), err)
	}
	return nil
}
