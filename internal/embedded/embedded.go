// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) so that triage runs, demos and tests need no installed
// infrastructure. It speaks the real wire protocol on 127.0.0.1: any Kafka
// client, kcat included, can talk to it.
package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running in-process broker.
type Broker struct {
	cluster *kfake.Cluster
}

// Config configures Start. Zero values mean the defaults in the comments.
type Config struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free port.
	Port int
	// Partitions for each seeded topic. Default 6.
	Partitions int32
	// Topics are created up front; other topics are created on first use.
	Topics []string
	// DataDir, when set, persists the log across restarts.
	DataDir string
}

// Start starts a single-node broker.
func Start(cfg Config) (*Broker, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 6
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
	}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(cfg.Partitions, cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: start broker on port %d: %w", cfg.Port, err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs are the broker's listen addresses, to use as seed brokers.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for fault injection in tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker.
func (b *Broker) Close() { b.cluster.Close() }
