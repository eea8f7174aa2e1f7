// Package pipeline owns the consume → decode → rules → decide → emit → commit
// loop: a franz-go consumer group over the event topics, validation with
// dead-lettering of bad records, the rule stage, a bounded pool of workers
// for the events the rules leave ambiguous, the decision, audit and DLQ
// emitters, and offset tracking that commits a record only once every record
// at or below it has its outputs acknowledged by the broker.
//
// A poll's partitions are taken on up to GOMAXPROCS goroutines, each
// partition's records decoded, evaluated and emitted in offset order:
// tracking, the audit chain (one per source partition) and producing keep
// a partition's order, and nothing orders two partitions. Rebalances wait for the poll
// loop, so no partition moves while it is being taken.
//
// The pipeline knows nothing of MCP or LLMs: ambiguous events go to a
// [Decider], and a decider that fails (or no decider at all) yields the
// event type's conservative fallback outcome, never a lost event.
//
// # Exactly once
//
// With [DeliveryExactlyOnce] (the default) each event's outputs (its
// decision, its audit records, or its dead letter and audit record) are
// produced exactly once as seen by a read_committed reader, whatever
// happens to the members. The argument:
//
//  1. Outputs and offsets commit together. A member produces through one
//     transactional producer, and every CommitInterval (100 ms) it ends
//     the open transaction with a TxnOffsetCommit of its offsets (franz-go's
//     GroupTransactSession). An event's outputs are produced under a shared
//     gate that ending a transaction holds exclusively, so they fall wholly
//     into one transaction. A crash or kill leaves the open transaction to
//     abort (at TransactionTimeout, 10 s, or at once when a member with the
//     same transactional id starts): nothing of it was ever visible.
//
//  2. Out-of-order completion is committed, not waited for. A rule-decided
//     event finishes in microseconds, an event with a sampler in seconds,
//     and the decision of the later must not wait behind the earlier. So a
//     transaction holds whatever completed since the last one, in any order,
//     and the committed offset is the contiguous watermark (the first
//     record not done). The events done above it would be decided again
//     after a crash; to prevent that, each partition's offset commit
//     carries, in its metadata, the ranges of offsets above the watermark
//     that are done (base64 varints, see encodeProgress). Offset and
//     metadata are one record of __consumer_offsets written by the same
//     transaction as the outputs, so they can never disagree with what was
//     emitted. (franz-go's group commits fill the metadata with the member
//     id, but kgo.PreTxnCommitFnContext lets the member write its own, so no
//     side topic is needed.) The commit holds exactly the partitions with
//     bookkeeping: franz-go would also commit its own view, the polled
//     position, of partitions the member never tracked (see fillCommit).
//
//  3. A new owner resumes from exactly that state. On the first records of
//     a partition it has no state for, a member reads the group's committed
//     offsets with RequireStable, which waits while the previous owner's
//     transaction is open, and skips the records in the inherited ranges:
//     they are done without a second decision, and stay in the member's own
//     progress until its watermark passes them.
//
//  4. Zombies cannot commit. The TxnOffsetCommit carries the member's group
//     generation (or KIP-848 member epoch), and the broker refuses it from a
//     member the group no longer counts; the transaction then aborts. Every
//     transaction commits the offsets of every partition with state, moved
//     or not, so even a transaction in which no watermark moved is fenced.
//
//  5. Rebalances abort, coarsely. franz-go's session aborts a transaction
//     that a revoke overlapped, and revoked partitions are dropped at once
//     (their tickets stop being live, so nothing more is emitted for them).
//     After any abort, franz-go rewinds every partition to its committed
//     offset and the member drops all its state: work done since the last
//     commit (at most one CommitInterval of completed events, plus the
//     events with a sampler at that moment) is done again, by this member
//     or the next owner. The cost of a rebalance is bounded by the commit
//     interval and the pool size, not by the sampling timeout.
//
//  6. A failed producer restarts the session, not the process. A broker
//     that aborts a transaction on its timeout (the member held up longer,
//     a broker unreachable under load) bumps the producer's epoch; what the
//     producer sends afterwards is refused. The member aborts, and when
//     franz-go cannot recover the producer, replaces its session in-process:
//     it leaves the group, drops all its state and joins again with a new
//     producer under the same transactional id (restartSession). Nothing of
//     the failed transaction was visible; its events are processed again.
//
//  7. The transaction timeout is not tied to sampling. A transaction never
//     waits for a sampler: events still with one are simply not in it, so a
//     30 s sampling timeout needs no 30 s transaction. The done ranges grow
//     with the number of unfinished events per partition, which the pool and
//     its queue bound (Workers + QueueSize + 1 ranges); should they ever
//     exceed Kafka's offset metadata limit, the commit waits for the
//     watermark to move, and aborts (safely) after half the transaction
//     timeout.
//
// # Two stages
//
// With [StageRules] and [StageSampling] (cmd/consumer's default runs both
// in one process), an ambiguous event is not decided where it is read: the
// rule stage writes a handoff record (the event's bytes, the rule, its
// source position and produce time) to the sampling topic and its handoff
// audit record to the source partition's chain, and is done with it. The
// sampling stage is a second consumer group over the sampling topic that
// feeds the workers at the samplers' pace; when they are all busy, its
// partitions pause, and only ambiguous events wait, in Kafka, as the
// sampling topic's lag. Exactly-once holds end to end because each stage
// is the argument above on its own:
//
//   - The rule stage's transaction holds the handoff record with the
//     event's offset, like a decision: a handoff is written exactly once
//     per source event, as seen by read_committed readers, the sampling
//     stage among them (its fetches are read_committed).
//   - The sampling stage's transaction holds the decision and its audit
//     records with the handoff's offset: each handoff is decided exactly
//     once. Its done ranges, rewinds and restarts are those of any member.
//   - So each source event has exactly one terminal audit record on its
//     chain (a decision, a dead letter or a handoff) and each handoff
//     exactly one decision on the sampling partition's chain; audit
//     reconciliation anchors the first on the rule stage's group and the
//     second on the sampling stage's, and the event id joins the two.
//
// Each chain keeps a single writer: the member that owns its partition. An
// event whose produce time is further back than its type's max_age when
// the sampling stage takes it (or when a worker does) gets the fallback
// with reason [FallbackStale], so a backlog drains instead of reaching the
// LLM hours late.
//
// Downstream readers of the decisions and audit topics, the ClickHouse sink
// included, must read read_committed. [DeliveryAtLeastOnce] keeps the
// non-transactional path for brokers without transactions: offsets are
// committed after the outputs are acknowledged, and a crash repeats the
// outputs of events decided after the last commit.
//
// # Synchronous decisions
//
// A caller without a Kafka topic (a checkout service, an agent in an MCP
// host) asks for one decision and waits for it: [Sync] runs the same
// decoding and validation, rules, Decider (guards, sampling) and
// decision records as a streamed event, and answers once the decision and
// its audit records are acknowledged by the broker.
//
// What differs from the stream, and why:
//
//   - Chains. A synchronous decision has no source partition. Its audit
//     records join the chain of the channel it came on in this instance,
//     audit.SyncChain(channel, instance), "http@host-123": the instance is
//     the chain's only writer, and each start of it (a Sync) begins a new
//     segment, as a new owner of a partition does. With a signer,
//     checkpoints close those chains every second.
//   - Delivery. The records are produced by an idempotent producer, not in
//     a transaction: there is no input offset to commit with them, and the
//     caller must not wait a commit interval. They are visible to every
//     reader at once.
//   - Exactly one decision per (tenant, event id) holds within the
//     idempotency window of one instance: a retried request (the same
//     event) gets the first decision, marked replayed, and leaves no second
//     record; a request that reuses an event id for a different event is
//     refused. A retry that reaches another instance, or this one after a
//     restart or past the window, is decided again: its records join the
//     chain as new rows, with the same audit ids, so that reports counting
//     distinct audit ids count the event once.
//   - Bad input is the caller's error, named by field; it is not
//     dead-lettered, since the caller holds the bytes and is told.
package pipeline
