package deploy_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/client"
)

const k8sDir = "k8s"

// manifests are deploy/k8s decoded into the Kubernetes API types.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

// kustomization is the part of kustomization.yaml these manifests use,
// decoded strictly too.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// decodeStrict decodes one YAML document into v, refusing unknown or
// duplicate fields, with field names matched case-sensitively as the API
// server matches them (sigs.k8s.io/json, the decoder behind its strict
// field validation). encoding/json would take readinessprobe for
// readinessProbe; the API server drops it, and the pod has no probe.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every resource kustomization.yaml lists, by kind,
// and checks that it lists every YAML file of the directory.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	var k kustomization
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
	}
	for _, res := range k.Resources {
		data, err := os.ReadFile(filepath.Join(k8sDir, res))
		if err != nil {
			t.Fatalf("kustomization.yaml: %v", err)
		}
		for i, doc := range docSeparator.Split(string(data), -1) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
				t.Fatalf("%s document %d: no kind (%v)", res, i, err)
			}
			var obj interface{ GetName() string }
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				obj, m.deployments[nameOf(doc)] = d, d
			case "v1 Service":
				s := &corev1.Service{}
				obj, m.services[nameOf(doc)] = s, s
			case "v1 ConfigMap":
				c := &corev1.ConfigMap{}
				obj, m.configMaps[nameOf(doc)] = c, c
			case "v1 Secret":
				s := &corev1.Secret{}
				obj, m.secrets[nameOf(doc)] = s, s
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				obj, m.pdbs = p, append(m.pdbs, p)
			case "autoscaling/v2 HorizontalPodAutoscaler":
				h := &autoscalingv2.HorizontalPodAutoscaler{}
				obj, m.hpas = h, append(m.hpas, h)
			default:
				t.Fatalf("%s document %d: %s %s is not a kind these tests know", res, i, meta.APIVersion, meta.Kind)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", res, i, meta.Kind, err)
			}
			if obj.GetName() == "" {
				t.Errorf("%s document %d: no metadata.name", res, i)
			}
		}
	}
	return m
}

func nameOf(doc string) string {
	var v struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	yaml.Unmarshal([]byte(doc), &v)
	return v.Metadata.Name
}

// value returns the key of a ConfigMap or Secret, failing the test when
// either is missing.
func (m manifests) value(t *testing.T, kind, name, key string) string {
	t.Helper()
	switch kind {
	case "ConfigMap":
		if c, ok := m.configMaps[name]; ok {
			if v, ok := c.Data[key]; ok {
				return v
			}
		}
	case "Secret":
		if s, ok := m.secrets[name]; ok {
			if v, ok := s.StringData[key]; ok {
				return v
			}
			if v, ok := s.Data[key]; ok {
				return string(v)
			}
		}
	}
	t.Fatalf("no key %q in %s %s", key, kind, name)
	return ""
}

// podEnv resolves a container's environment: values, and references to
// ConfigMap and Secret keys, which must exist.
func (m manifests) podEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			env[e.Name] = m.value(t, "Secret", r.Name, r.Key)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			env[e.Name] = m.value(t, "ConfigMap", r.Name, r.Key)
		default:
			t.Fatalf("container %s: env %s: a source these tests do not resolve", c.Name, e.Name)
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Fatalf("container %s: envFrom is not checked key by key; use env", c.Name)
	}
	return env
}

// mountFiles writes the ConfigMap and Secret volumes a container mounts
// under dir, as the kubelet would under /, and returns a function that
// rewrites a path (or any text naming one) to its copy. Every key a volume
// names must exist.
func (m manifests) mountFiles(t *testing.T, spec corev1.PodSpec, c corev1.Container, dir string) func(string) string {
	t.Helper()
	var mounts []string
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("container %s mounts volume %s, which the pod does not have", c.Name, vm.Name)
		}
		v := spec.Volumes[i]
		var kind, name string
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			kind, name, items = "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items
		case v.Secret != nil:
			kind, name, items = "Secret", v.Secret.SecretName, v.Secret.Items
		default:
			continue
		}
		if len(items) == 0 {
			t.Fatalf("volume %s: list its items, so that the test knows every file", v.Name)
		}
		for _, it := range items {
			p := filepath.Join(dir, vm.MountPath, it.Path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(m.value(t, kind, name, it.Key)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mounts = append(mounts, vm.MountPath)
	}
	return func(s string) string {
		for _, mp := range mounts {
			s = strings.ReplaceAll(s, mp+"/", filepath.Join(dir, mp)+"/")
		}
		return s
	}
}

// containerPort resolves a probe's or a Service's port (a name or a
// number) to a port the container declares.
func containerPort(t *testing.T, c corev1.Container, port string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s declares no port %s", c.Name, port)
	return 0
}

func onlyContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment %s: %d containers, want 1", d.Name, len(d.Spec.Template.Spec.Containers))
	}
	return d.Spec.Template.Spec.Containers[0]
}

// TestK8sConsumer: the consumer's Deployment starts a configuration that
// config.Load accepts (its --config file and rules as mounted, its
// variables from the Secret), its probes hit /readyz and /healthz on the
// port the consumer listens on, and the mounted files are what it needs.
func TestK8sConsumer(t *testing.T) {
	m := loadManifests(t)
	d, ok := m.deployments["triage-consumer"]
	if !ok {
		t.Fatal("no Deployment triage-consumer")
	}
	c := onlyContainer(t, d)
	if len(c.Command) > 0 {
		t.Errorf("consumer: command %q: the image's entrypoint is the consumer", c.Command)
	}
	dir := t.TempDir()
	rewrite := m.mountFiles(t, d.Spec.Template.Spec, c, dir)
	// The --config file names other mounted files: rewrite it in place.
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = rewrite(a)
		if args[i] != a {
			b, err := os.ReadFile(args[i])
			if err != nil {
				t.Fatalf("consumer arg %s: %v", a, err)
			}
			if err := os.WriteFile(args[i], []byte(rewrite(string(b))), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := m.podEnv(t, c)
	for k, v := range env {
		env[k] = rewrite(v)
	}
	cfg := loadConsumer(t, args, env)

	// The files it reads at start.
	if cfg.Rules == "" {
		t.Error("consumer: no rules file: the built-in policy, not the ConfigMap")
	} else if got, err := os.ReadFile(cfg.Rules); err != nil {
		t.Errorf("consumer: rules %s: %v", cfg.Rules, err)
	} else if want, _ := os.ReadFile("../rules/default.yaml"); string(got) != string(want) {
		t.Error("the rules ConfigMap is not rules/default.yaml: copy it into deploy/k8s/rules.yaml")
	}
	if key, err := cfg.MaskSecret(); err != nil || len(key) < 32 {
		t.Errorf("consumer: mask key: %d bytes, %v; want at least 32", len(key), err)
	}
	if _, err := sampling.LoadTokens(cfg.MCPTokensFile); cfg.MCPTokensFile == "" || err != nil {
		t.Errorf("consumer: sampler tokens file %q: %v", cfg.MCPTokensFile, err)
	}
	if cfg.MCPToken == "" || cfg.ClickHouse == "" {
		t.Errorf("consumer: MCP token %q, ClickHouse DSN %q: both come from the Secret", cfg.MCPToken, cfg.ClickHouse)
	}

	// Probes on the port --http-listen serves.
	httpPort := portOf(t, cfg.HTTPListen)
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("consumer: no HTTP probe for %s", name)
			continue
		}
		if p.HTTPGet.Path != name {
			t.Errorf("consumer: probe on %s, want %s", p.HTTPGet.Path, name)
		}
		if got := containerPort(t, c, p.HTTPGet.Port.String()); strconv.Itoa(int(got)) != httpPort {
			t.Errorf("consumer: %s probe on port %d, --http-listen is %s", name, got, cfg.HTTPListen)
		}
	}
	if got := containerPort(t, c, "mcp"); strconv.Itoa(int(got)) != portOf(t, cfg.MCPListen) {
		t.Errorf("consumer: port mcp is %d, --mcp-listen is %s", got, cfg.MCPListen)
	}
	// The drain must end before the kubelet kills the container.
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || float64(*g) <= cfg.DrainTimeout.Seconds() {
		t.Errorf("consumer: terminationGracePeriodSeconds must exceed drain_timeout %s", cfg.DrainTimeout)
	}
}

// TestK8sSampler: the sampler's flags and variables are the binary's, it
// reaches the consumers' /mcp through a Service port that leads to the
// consumer's mcp port, and its token is one the consumers accept.
func TestK8sSampler(t *testing.T) {
	m := loadManifests(t)
	d, ok := m.deployments["triage-sampler"]
	if !ok {
		t.Fatal("no Deployment triage-sampler")
	}
	c := onlyContainer(t, d)
	if !slices.Equal(c.Command, []string{"/usr/local/bin/sampler"}) {
		t.Errorf("sampler: command %q, want the image's /usr/local/bin/sampler", c.Command)
	}
	checkImageBuilds(t, "sampler")
	env := m.podEnv(t, c)
	checkBinary(t, "sampler", c.Args, env)

	i := slices.Index(c.Args, "--server")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatal("sampler: no --server")
	}
	// Leases live in the consumer pod that handed them out: a sampler must
	// reach each pod, not one behind a balancer (client.DiscoverPrefix on a
	// headless Service).
	raw, discover := strings.CutPrefix(c.Args[i+1], client.DiscoverPrefix)
	u, err := url.Parse(raw)
	if err != nil || u.Path != "/mcp" || !discover {
		t.Fatalf("sampler: --server %s: want %shttp://SERVICE:PORT/mcp (%v)", c.Args[i+1], client.DiscoverPrefix, err)
	}
	m.checkServiceReaches(t, u.Hostname(), u.Port(), "triage-consumer", "mcp")
	if s := m.services[u.Hostname()]; s.Spec.ClusterIP != "None" {
		t.Errorf("Service %s is not headless: its name resolves to one balanced address, not to each consumer pod", u.Hostname())
	}

	tokens, err := sampling.ReadTokens("sampler-tokens", strings.NewReader(m.value(t, "Secret", "triage-consumer", "sampler-tokens")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tokens, func(tk sampling.Token) bool { return tk.Secret == env["TRIAGE_TOKEN"] }) {
		t.Errorf("sampler: its token is not among the consumer's sampler tokens")
	}
}

// checkServiceReaches: Service name has port, which leads to the named
// container port of deployment's pods.
func (m manifests) checkServiceReaches(t *testing.T, name, port, deployment, containerPortName string) {
	t.Helper()
	s, ok := m.services[name]
	if !ok {
		t.Fatalf("no Service %s", name)
	}
	d := m.deployments[deployment]
	if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
		t.Fatalf("Service %s does not select the pods of %s", name, deployment)
	}
	for _, p := range s.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == port {
			want := containerPort(t, onlyContainer(t, d), containerPortName)
			if got := containerPort(t, onlyContainer(t, d), p.TargetPort.String()); got != want {
				t.Errorf("Service %s port %s leads to %d, want %s (%d)", name, port, got, containerPortName, want)
			}
			return
		}
	}
	t.Errorf("Service %s has no port %s", name, port)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestK8sWiring: every Service, PodDisruptionBudget and autoscaler points
// at pods and ports that exist, and the autoscaler scales on CPU (with
// requests to scale against) and on the consumer lag metric.
func TestK8sWiring(t *testing.T) {
	m := loadManifests(t)
	for name, s := range m.services {
		found := false
		for _, d := range m.deployments {
			if selects(s.Spec.Selector, d.Spec.Template.Labels) {
				found = true
				for _, p := range s.Spec.Ports {
					containerPort(t, onlyContainer(t, d), p.TargetPort.String())
				}
			}
		}
		if !found {
			t.Errorf("Service %s selects no pods", name)
		}
	}
	for _, d := range m.deployments {
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: its selector does not match its pods", d.Name)
		}
	}
	if len(m.pdbs) == 0 || len(m.hpas) == 0 {
		t.Fatalf("%d PodDisruptionBudgets and %d autoscalers, want both", len(m.pdbs), len(m.hpas))
	}
	for _, p := range m.pdbs {
		if !selects(p.Spec.Selector.MatchLabels, m.deployments["triage-consumer"].Spec.Template.Labels) {
			t.Errorf("PodDisruptionBudget %s does not cover the consumers", p.Name)
		}
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		d, ok := m.deployments[ref.Name]
		if !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Fatalf("autoscaler %s scales %s %s %s, which is not here", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
		var cpu, lag bool
		for _, mt := range h.Spec.Metrics {
			switch {
			case mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU:
				cpu = true
				for _, c := range d.Spec.Template.Spec.Containers {
					if c.Resources.Requests.Cpu().IsZero() {
						t.Errorf("autoscaler %s scales on CPU, container %s requests none", h.Name, c.Name)
					}
				}
			case mt.External != nil && mt.External.Metric.Name == "triage_consumer_fetch_lag_records":
				lag = true
			}
		}
		if !cpu || !lag {
			t.Errorf("autoscaler %s: CPU metric %v, lag metric %v; want both", h.Name, cpu, lag)
		}
	}
}

// checkImageBuilds: deploy/Dockerfile puts ./cmd/name into the image.
func checkImageBuilds(t *testing.T, name string) {
	t.Helper()
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`for cmd in ([a-z ]+); do`).FindSubmatch(df)
	if m == nil || !slices.Contains(strings.Fields(string(m[1])), name) {
		t.Errorf("deploy/Dockerfile does not build %s into /usr/local/bin", name)
	}
}
