package rules

import _ "embed"

// Default is the shipped policy, rules/default.yaml: the transaction and
// document types that cmd/producer's generator is built to match. Parse it
// with Parse("default.yaml", Default) when no rules file is configured.
//
//go:embed default.yaml
var Default []byte
