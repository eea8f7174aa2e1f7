package deploy_test

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/triage-dev/triage/deploy/grafana"
)

// No Docker engine runs where the tests do, so docker-compose.yml is
// checked by reading it: decoded strictly into the part of the Compose
// specification it uses, interpolated as compose would, and every file,
// flag, variable, port and healthcheck in it held against the repository
// and the binaries.

const composeFile = "../docker-compose.yml"

type composeSpec struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	// Lists only: a string would go through a shell-like split.
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Restart     string            `yaml:"restart"`
	Ulimits     map[string]any    `yaml:"ulimits"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// composeEnv is the environment the test interpolates with: a value for
// every variable the file requires.
var composeEnv = map[string]string{
	"TRIAGE_MCP_TOKEN":            "test-mcp-token",
	"TRIAGE_MASK_KEY":             "0123456789abcdef0123456789abcdef",
	"CLICKHOUSE_PASSWORD":         "ch-secret",
	"GRAFANA_CLICKHOUSE_PASSWORD": "grafana-secret",
	"GRAFANA_ADMIN_PASSWORD":      "admin-secret",
}

// secretVars must be required (${VAR:?...}): a default would be a
// published, known secret, as the old `change-me` token was.
var secretVars = []string{"TRIAGE_MCP_TOKEN", "TRIAGE_MASK_KEY", "CLICKHOUSE_PASSWORD", "GRAFANA_CLICKHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}

// composeVar is compose's interpolation: $$, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; any other $ is an
// error to compose too.
var composeVar = regexp.MustCompile(`\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|)`)

// interpolate substitutes env into s as compose does, and records each
// variable's operator in ops.
func interpolate(t *testing.T, s string, env map[string]string, ops map[string][]string) string {
	t.Helper()
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sm := composeVar.FindStringSubmatch(m)
		switch {
		case sm[1] != "":
			return "$"
		case sm[2] == "" && sm[5] == "":
			t.Fatalf("compose: a bare $ in %q (write $$)", s)
		}
		name, op, arg := sm[2]+sm[5], sm[3], sm[4]
		ops[name] = append(ops[name], op)
		v, set := env[name]
		switch op {
		case ":-", "-":
			if !set || (op == ":-" && v == "") {
				return arg
			}
		case ":?", "?":
			if !set || (op == ":?" && v == "") {
				t.Fatalf("compose: %s is required (%s)", name, arg)
			}
		}
		return v
	})
}

// loadCompose decodes and interpolates docker-compose.yml; ops has the
// operators each variable was used with.
func loadCompose(t *testing.T, env map[string]string) (composeSpec, map[string][]string) {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw composeSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	ops := map[string][]string{}
	ip := func(s string) string { return interpolate(t, s, env, ops) }
	spec := composeSpec{Services: map[string]composeService{}, Volumes: raw.Volumes}
	for name, s := range raw.Services {
		s.Image = ip(s.Image)
		for _, l := range [][]string{s.Entrypoint, s.Command, s.Ports, s.Volumes} {
			for i := range l {
				l[i] = ip(l[i])
			}
		}
		for k, v := range s.Environment {
			s.Environment[k] = ip(v)
		}
		if s.Healthcheck != nil {
			for i := range s.Healthcheck.Test {
				s.Healthcheck.Test[i] = ip(s.Healthcheck.Test[i])
			}
		}
		spec.Services[name] = s
	}
	return spec, ops
}

// TestComposeSecretsHaveNoDefault: compose refuses to start without each
// secret, and none has a default.
func TestComposeSecretsHaveNoDefault(t *testing.T) {
	_, ops := loadCompose(t, composeEnv)
	for _, v := range secretVars {
		if len(ops[v]) == 0 {
			t.Errorf("%s is not used", v)
		}
		for _, op := range ops[v] {
			if op != ":?" {
				t.Errorf("${%s%s...}: a secret must be required, ${%s:?message}", v, op, v)
			}
		}
	}
	data, _ := os.ReadFile(composeFile)
	if bytes.Contains(data, []byte("change-me")) {
		t.Error("docker-compose.yml still has a change-me secret")
	}
}

// TestComposeServices: images are pinned, every service restarts, mounted
// files exist, published ports are loopback ports the service listens on,
// and dependencies on health have a healthcheck to wait for.
func TestComposeServices(t *testing.T) {
	spec, _ := loadCompose(t, composeEnv)
	for _, want := range []string{"kafka", "clickhouse", "consumer", "sampler", "producer", "prometheus", "grafana"} {
		if _, ok := spec.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	pinned := regexp.MustCompile(`^[a-z0-9./_-]+:v?[0-9]+\.[0-9]+[0-9A-Za-z.-]*$`)
	for name, s := range spec.Services {
		switch {
		case s.Build != nil:
			for _, p := range []string{s.Build.Context, filepath.Join(s.Build.Context, s.Build.Dockerfile)} {
				if _, err := os.Stat(filepath.Join("..", p)); err != nil {
					t.Errorf("%s: build: %v", name, err)
				}
			}
		case !pinned.MatchString(s.Image):
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		if s.Restart != "unless-stopped" && s.Restart != "on-failure" && s.Restart != "always" {
			t.Errorf("%s: restart %q: nothing restarts it when it exits", name, s.Restart)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, "./") {
				if _, ok := spec.Volumes[src]; !ok {
					t.Errorf("%s: volume %s is not declared", name, src)
				}
				continue
			}
			rel := strings.TrimPrefix(src, "./")
			if _, err := os.Stat(filepath.Join("..", rel)); err != nil {
				t.Errorf("%s: mounts %s: %v", name, src, err)
			}
		}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s: port %q: publish on 127.0.0.1 only (127.0.0.1:HOST:CONTAINER)", name, p)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := spec.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		if s.Healthcheck != nil && (len(s.Healthcheck.Test) < 2 || (s.Healthcheck.Test[0] != "CMD" && s.Healthcheck.Test[0] != "CMD-SHELL")) {
			t.Errorf("%s: healthcheck %q", name, s.Healthcheck.Test)
		}
	}
}

// entrypoint is the binary a service built from deploy/Dockerfile runs.
func entrypoint(t *testing.T, s composeService) string {
	t.Helper()
	if len(s.Entrypoint) == 0 {
		return "consumer" // the Dockerfile's ENTRYPOINT
	}
	bin, ok := strings.CutPrefix(s.Entrypoint[0], "/usr/local/bin/")
	if !ok || len(s.Entrypoint) != 1 {
		t.Fatalf("entrypoint %q: want one of /usr/local/bin's binaries", s.Entrypoint)
	}
	return bin
}

// TestComposeBinaries: the flags and variables given to the triage
// binaries are theirs, the consumer's configuration loads, its healthcheck
// asks /readyz on its --http-listen port with a tool the image has, its
// published ports are the ones it listens on, and its DSN is the
// ClickHouse service's user and database.
func TestComposeBinaries(t *testing.T) {
	spec, _ := loadCompose(t, composeEnv)
	var consumerName string
	for name, s := range spec.Services {
		if s.Build == nil {
			continue
		}
		bin := entrypoint(t, s)
		checkImageBuilds(t, bin)
		if bin == "consumer" {
			consumerName = name
			continue
		}
		checkBinary(t, bin, s.Command, s.Environment)
	}
	s, ok := spec.Services[consumerName]
	if !ok {
		t.Fatal("no service runs the consumer")
	}
	cfg := loadConsumer(t, s.Command, s.Environment)

	hc := s.Healthcheck
	if hc == nil {
		t.Fatal("consumer: no healthcheck")
	}
	var target *url.URL
	for _, a := range hc.Test {
		if u, err := url.Parse(a); err == nil && u.Scheme == "http" {
			target = u
		}
	}
	if target == nil || target.Path != "/readyz" || target.Port() != portOf(t, cfg.HTTPListen) {
		t.Errorf("consumer: healthcheck %q: want /readyz on --http-listen %s", hc.Test, cfg.HTTPListen)
	}
	if tool := hc.Test[1]; strings.HasPrefix(tool, "/busybox/") {
		df, _ := os.ReadFile("Dockerfile")
		froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllSubmatch(df, -1)
		if len(froms) == 0 || !strings.Contains(string(froms[len(froms)-1][1]), "distroless/static-debian12:debug") {
			t.Errorf("consumer: the healthcheck runs %s, which only distroless' debug images have", tool)
		}
	} else {
		t.Errorf("consumer: healthcheck tool %s: the distroless image has no shell nor HTTP client", tool)
	}
	listens := []string{portOf(t, cfg.HTTPListen), portOf(t, cfg.MCPListen)}
	for _, p := range s.Ports {
		if parts := strings.Split(p, ":"); !slices.Contains(listens, parts[len(parts)-1]) {
			t.Errorf("consumer: publishes %s, listens on %v", p, listens)
		}
	}

	ch := spec.Services["clickhouse"]
	dsn, err := url.Parse(cfg.ClickHouse)
	if err != nil {
		t.Fatalf("consumer: ClickHouse DSN: %v", err)
	}
	pw, _ := dsn.User.Password()
	if dsn.Hostname() != "clickhouse" || dsn.Port() != "9000" || dsn.User.Username() != ch.Environment["CLICKHOUSE_USER"] ||
		pw != ch.Environment["CLICKHOUSE_PASSWORD"] || dsn.Path != "/"+ch.Environment["CLICKHOUSE_DB"] {
		t.Errorf("consumer: DSN %s is not the clickhouse service's user, password and database", dsn.Redacted())
	}
	if ch.Environment["CLICKHOUSE_PASSWORD"] == "" {
		t.Error("clickhouse: no CLICKHOUSE_PASSWORD")
	}
}

// TestComposeObservability: Prometheus scrapes the consumer's metrics
// port, and Grafana gets every variable its provisioning reads, the
// ClickHouse plugin the dashboard is written for, a read-only user that
// the ClickHouse service defines, and the dashboards where the provider
// looks for them.
func TestComposeObservability(t *testing.T) {
	spec, _ := loadCompose(t, composeEnv)
	cfg := loadConsumer(t, spec.Services["consumer"].Command, spec.Services["consumer"].Environment)

	var prom struct {
		Global        map[string]string `yaml:"global"`
		RuleFiles     []string          `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAMLFile(t, "prometheus/prometheus.yml", &prom, true)
	mounted := mounts(spec.Services["prometheus"])
	for _, rf := range prom.RuleFiles {
		if _, ok := mounted[rf]; !ok {
			t.Errorf("prometheus.yml loads %s, which the prometheus service does not mount", rf)
		}
	}
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, "consumer:"+portOf(t, cfg.HTTPListen))
		}
	}
	if !scraped {
		t.Errorf("prometheus.yml does not scrape consumer:%s", portOf(t, cfg.HTTPListen))
	}

	g := spec.Services["grafana"]
	if want := grafana.ClickHouseType + " " + grafana.ClickHousePluginVersion; g.Environment["GF_INSTALL_PLUGINS"] != want {
		t.Errorf("grafana: GF_INSTALL_PLUGINS %q, want %q (the version the dashboard is generated for)", g.Environment["GF_INSTALL_PLUGINS"], want)
	}
	gm := mounts(g)
	ds, ok := gm["/etc/grafana/provisioning/datasources"]
	if !ok {
		t.Fatal("grafana: the datasources are not provisioned")
	}
	dsYAML, err := os.ReadFile(filepath.Join("..", ds, "triage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Grafana expands $VAR and ${VAR} in provisioning files, comments aside.
	uncommented := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(string(dsYAML), "")
	for _, m := range regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(uncommented, -1) {
		if g.Environment[m[1]] == "" {
			t.Errorf("grafana: the datasource provisioning reads $%s, which the service does not set", m[1])
		}
	}
	var dsSpec struct {
		Datasources []struct {
			UID      string         `yaml:"uid"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	decodeYAMLFile(t, "grafana/provisioning/datasources/triage.yaml", &dsSpec, false)
	uids := []string{}
	for _, d := range dsSpec.Datasources {
		uids = append(uids, d.UID)
	}
	for _, want := range []string{grafana.ClickHouseUID, grafana.PrometheusUID} {
		if !slices.Contains(uids, want) {
			t.Errorf("the datasource provisioning has no uid %s, which the dashboard's panels name", want)
		}
	}
	users, err := os.ReadFile("grafana/clickhouse-users.xml")
	if err != nil {
		t.Fatal(err)
	}
	if user := g.Environment["TRIAGE_GRAFANA_CLICKHOUSE_USER"]; !bytes.Contains(users, []byte("<"+user+">")) {
		t.Errorf("grafana: ClickHouse user %s is not in clickhouse-users.xml", user)
	}
	if _, ok := mounts(spec.Services["clickhouse"])["/etc/clickhouse-server/users.d/grafana.xml"]; !ok {
		t.Error("clickhouse: grafana's read-only user is not mounted")
	}
	if g.Environment["TRIAGE_GRAFANA_CLICKHOUSE_PASSWORD"] != spec.Services["clickhouse"].Environment["TRIAGE_GRAFANA_CLICKHOUSE_PASSWORD"] {
		t.Error("grafana and clickhouse disagree on grafana's ClickHouse password")
	}

	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAMLFile(t, "grafana/provisioning/dashboards/triage.yaml", &provider, false)
	for _, p := range provider.Providers {
		src, ok := gm[p.Options.Path]
		if !ok {
			t.Errorf("grafana: the dashboard provider reads %s, which is not mounted", p.Options.Path)
			continue
		}
		if _, err := os.Stat(filepath.Join("..", src, filepath.Base(grafana.DashboardFile))); err != nil {
			t.Errorf("grafana: %v", err)
		}
	}
}

// mounts maps a service's mount targets to their sources, relative to the
// repository.
func mounts(s composeService) map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out[parts[1]] = strings.TrimPrefix(parts[0], "./")
		}
	}
	return out
}

// decodeYAMLFile decodes path into v; strict refuses fields v does not
// have (for files v describes whole).
func decodeYAMLFile(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestDockerignore: the build context leaves out the repository's history
// and the local work directory (servers' data, caches).
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, want := range []string{".git", ".work"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "deploy", "rules", "audit"} {
		if slices.Contains(lines, keep) || slices.Contains(lines, "/"+keep) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", keep)
		}
	}
}
