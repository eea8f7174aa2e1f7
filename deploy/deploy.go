// Package deploy embeds the deployment files the binaries need at run
// time: the dashboard queries under clickhouse/queries, which Grafana panels
// and `consumer report` share.
package deploy

import "embed"

// Queries holds clickhouse/queries/*.sql; see audit.LoadQueries for their
// header and parameter syntax.
//
//go:embed clickhouse/queries/*.sql
var Queries embed.FS

// QueriesDir is the directory of the queries inside Queries.
const QueriesDir = "clickhouse/queries"
