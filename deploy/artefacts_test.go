package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/config"
)

// port is the port of a listen address such as ":8080" or "0.0.0.0:9090".
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// envFunc is a getenv over m.
func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// --- Kubernetes -----------------------------------------------------------------------

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type secCtx struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	SeccompProfile           *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
	Capabilities *struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Template struct {
		Spec struct {
			TerminationGracePeriodSeconds int    `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               secCtx `yaml:"securityContext"`
			Containers                    []struct {
				Name  string   `yaml:"name"`
				Image string   `yaml:"image"`
				Args  []string `yaml:"args"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				Env []struct {
					Name      string     `yaml:"name"`
					Value     *string    `yaml:"value"`
					ValueFrom *yaml.Node `yaml:"valueFrom"`
				} `yaml:"env"`
				ReadinessProbe  probe  `yaml:"readinessProbe"`
				LivenessProbe   probe  `yaml:"livenessProbe"`
				SecurityContext secCtx `yaml:"securityContext"`
				Resources       struct {
					Requests map[string]string `yaml:"requests"`
					Limits   map[string]string `yaml:"limits"`
				} `yaml:"resources"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
					SubPath   string `yaml:"subPath"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			Volumes []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

func kustomize(t *testing.T, kubectl, dir string) []k8sObject {
	t.Helper()
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		if err := dec.Decode(&o); err != nil {
			break
		}
		objs = append(objs, o)
	}
	return objs
}

// TestKustomizeRender renders the base and the example overlay with `kubectl kustomize`
// and checks the Deployment: three replicas, probes on the ops port that --config's
// ops_listen opens, the ConfigMap mounted as a directory where --config points and holding
// a valid gateway.yaml, non-root and read-only, resource limits; and that every other
// object the docs promise is there.
func TestKustomizeRender(t *testing.T) {
	kubectl := tool(t, "kubectl", "AUTHGATE_REQUIRE_KUBECTL")
	for _, dir := range []string{"kubernetes/base", "kubernetes/overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			objs := kustomize(t, kubectl, dir)
			kinds := map[string]int{}
			configMaps := map[string]map[string]string{}
			var dep *deploymentSpec
			for _, o := range objs {
				kinds[o.Kind]++
				switch o.Kind {
				case "ConfigMap":
					configMaps[o.Metadata.Name] = o.Data
				case "Deployment":
					dep = new(deploymentSpec)
					if err := o.Spec.Decode(dep); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, k := range []string{"Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
				"HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor"} {
				if kinds[k] == 0 {
					t.Errorf("no %s rendered", k)
				}
			}
			if strings.Contains(dir, "example") && kinds["Secret"] == 0 {
				t.Error("the example overlay renders no Secret")
			}
			if dep == nil {
				t.Fatal("no Deployment")
			}
			checkDeployment(t, dep, configMaps)
		})
	}
}

func checkDeployment(t *testing.T, dep *deploymentSpec, configMaps map[string]map[string]string) {
	t.Helper()
	if dep.Replicas != 3 {
		t.Errorf("replicas %d, want 3", dep.Replicas)
	}
	pod := dep.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	// --config and the ConfigMap behind it.
	cfgPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if cfgPath == "" {
		t.Fatalf("args %v: no --config", c.Args)
	}
	var cmName string
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(cfgPath) {
			continue
		}
		if m.SubPath != "" {
			t.Errorf("config mounted with subPath %q: ConfigMap updates would never reach the file", m.SubPath)
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		t.Fatalf("no ConfigMap volume mounted at %s, the directory of --config %s", path.Dir(cfgPath), cfgPath)
	}
	data, ok := configMaps[cmName][path.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, path.Base(cfgPath))
	}
	// The config must load with the environment the Deployment gives it (Secret values
	// stand in as placeholders).
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
		case e.ValueFrom != nil:
			env[e.Name] = ""
		}
	}
	cfg, err := config.Parse("ConfigMap "+cmName, []byte(data), envFunc(env))
	if err != nil {
		t.Fatalf("ConfigMap %s %s: %v", cmName, path.Base(cfgPath), err)
	}
	if cfg.Store.Type != "redis" {
		t.Errorf("store.type %q: replicas must share a Redis store", cfg.Store.Type)
	}
	if host, _, _ := net.SplitHostPort(cfg.OpsListen); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("ops_listen %q: the kubelet cannot probe loopback", cfg.OpsListen)
	}
	// Probes on the ops port, which is the one ops_listen opens.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	opsPort := port(t, cfg.OpsListen)
	if fmt.Sprint(ports["ops"]) != opsPort {
		t.Errorf("container port ops = %d, ops_listen port %s", ports["ops"], opsPort)
	}
	if fmt.Sprint(ports["http"]) != port(t, cfg.Listen) {
		t.Errorf("container port http = %d, listen %s", ports["http"], cfg.Listen)
	}
	for name, pr := range map[string]struct {
		p    probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
		if pr.p.HTTPGet == nil {
			t.Errorf("%s probe is not an httpGet", name)
			continue
		}
		if pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s probe path %q, want %q", name, pr.p.HTTPGet.Path, pr.path)
		}
		if got := fmt.Sprint(pr.p.HTTPGet.Port); got != "ops" && got != opsPort {
			t.Errorf("%s probe port %v, want the ops port", name, pr.p.HTTPGet.Port)
		}
	}
	// Security.
	sc, psc := c.SecurityContext, pod.SecurityContext
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
		t.Error("runAsNonRoot is not set")
	}
	if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (psc.RunAsUser != nil && *psc.RunAsUser == 0) {
		t.Error("runAsUser 0")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if (sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault") &&
		(psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault") {
		t.Error("seccompProfile is not RuntimeDefault")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Error("capabilities do not drop ALL")
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
		if c.Resources.Limits[r] == "" {
			t.Errorf("no %s limit", r)
		}
	}
	if grace := cfg.Server.DrainDelay + cfg.Server.ShutdownTimeout; pod.TerminationGracePeriodSeconds <= int(grace.Seconds()) {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed drain_delay + shutdown_timeout (%s)",
			pod.TerminationGracePeriodSeconds, grace)
	}
}

// --- Dockerfile -----------------------------------------------------------------------

// TestDockerfile checks the image's build: multi-stage, a static binary, a distroless
// nonroot (or scratch) runtime as a non-root user, no HEALTHCHECK, OCI labels, and EXPOSE
// matching the ports the embedded configuration opens with the image's environment.
func TestDockerfile(t *testing.T) {
	raw := string(readFile(t, "Dockerfile"))
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	var froms, exposes []string
	var user, labels string
	env := map[string]string{}
	stage := 0
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
			stage++
			env = map[string]string{} // ENV of the final stage is what counts
		case "USER":
			user = rest
		case "EXPOSE":
			exposes = append(exposes, strings.Fields(rest)...)
		case "LABEL":
			labels += rest + " "
		case "ENV":
			for _, m := range regexp.MustCompile(`(\w+)="?([^"\s]*)"?`).FindAllStringSubmatch(rest, -1) {
				env[m[1]] = m[2]
			}
		case "HEALTHCHECK":
			t.Error("HEALTHCHECK: orchestrators probe /healthz and /readyz themselves")
		}
	}
	if len(froms) < 2 {
		t.Errorf("%d FROM lines: want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && !strings.HasPrefix(final, "scratch") {
		t.Errorf("runtime image %q: want distroless static or scratch", final)
	}
	if !strings.Contains(raw, "CGO_ENABLED=0") {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	if u := strings.SplitN(user, ":", 2)[0]; u == "" || u == "root" || u == "0" {
		t.Errorf("USER %q: want a non-root user", user)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if !strings.Contains(labels, l+"=") {
			t.Errorf("no LABEL %s", l)
		}
	}
	// The embedded configuration, with the image's ENV, opens the exposed ports, and the
	// ops listener is reachable from outside the container.
	cfg, err := config.Parse("gateway.yaml (embedded)", authgate.DefaultConfig, envFunc(env))
	if err != nil {
		t.Fatalf("embedded config with the image's ENV %v: %v", env, err)
	}
	for _, addr := range []string{cfg.Listen, cfg.OpsListen} {
		p := port(t, addr)
		found := false
		for _, e := range exposes {
			found = found || strings.TrimSuffix(e, "/tcp") == p
		}
		if !found {
			t.Errorf("port %s (%s) is not in EXPOSE %v", p, addr, exposes)
		}
	}
	if host, _, _ := net.SplitHostPort(cfg.OpsListen); host == "127.0.0.1" {
		t.Errorf("ops_listen %q in the image: probes from outside the container cannot reach it", cfg.OpsListen)
	}
	if len(exposes) != 2 {
		t.Errorf("EXPOSE %v: want exactly the main and ops ports", exposes)
	}
}

// --- systemd --------------------------------------------------------------------------

// TestSystemdUnit checks the unit's hardening and its reload: DynamicUser, a state
// directory for the signing key, ProtectSystem=strict, NoNewPrivileges, no capabilities
// (or only CAP_NET_BIND_SERVICE), and ExecReload sending SIGHUP.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open(filepath.Join("systemd", "authgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("unit line %q is not key=value", l)
			continue
		}
		kv[k] = append(kv[k], v)
	}
	one := func(k string) string {
		if len(kv[k]) == 0 {
			t.Errorf("%s is not set", k)
			return ""
		}
		return kv[k][len(kv[k])-1]
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"StateDirectory": "authgate", "ProtectHome": "yes", "PrivateTmp": "yes"} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if caps := one("CapabilityBoundingSet"); caps != "" && caps != "CAP_NET_BIND_SERVICE" {
		t.Errorf("CapabilityBoundingSet=%q: want empty, or CAP_NET_BIND_SERVICE for :443", caps)
	}
	if r := one("ExecReload"); !regexp.MustCompile(`kill -(HUP|s HUP|SIGHUP) \$MAINPID$`).MatchString(r) {
		t.Errorf("ExecReload=%q: want kill -HUP $MAINPID", r)
	}
	if _, ok := kv["User"]; ok {
		t.Error("User= is set: DynamicUser allocates the user")
	}
	start := one("ExecStart")
	if !strings.Contains(start, " serve --config /etc/authgate/gateway.yaml") {
		t.Errorf("ExecStart=%q: want serve --config /etc/authgate/gateway.yaml", start)
	}
}

// --- Compose --------------------------------------------------------------------------

// TestComposeFile checks deploy/compose.yaml against the files it mounts and the
// configuration it runs: every bind-mounted path and the build's Dockerfile exist, the
// gateway config in the mounted directory loads with the replicas' environment, both
// replicas publish the ops port that config opens, and Prometheus scrapes both replicas
// there and loads the alert rules.
func TestComposeFile(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "compose.yaml"), &compose); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"redis", "demo-upstream", "authgate-1", "authgate-2", "prometheus", "grafana", "jaeger"} {
		if _, ok := compose.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	hasService := func(name string) bool { _, ok := compose.Services[name]; return ok }
	mounts := map[string]string{} // container path -> host path (relative to deploy/)
	for name, s := range compose.Services {
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: build: %v", name, err)
			}
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
				continue // named volumes
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
	}
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	promFile := mounts["/etc/prometheus/prometheus.yml"]
	if promFile == "" {
		t.Fatal("prometheus.yml is not mounted")
	}
	if err := yaml.Unmarshal(readFile(t, promFile), &promCfg); err != nil {
		t.Fatal(err)
	}
	for _, rf := range promCfg.RuleFiles {
		if host := mounts[rf]; host == "" || filepath.Clean(host) != filepath.Join("prometheus", "alerts.yaml") {
			t.Errorf("rule file %s is not the mounted deploy/prometheus/alerts.yaml (%q)", rf, host)
		}
	}
	if len(promCfg.RuleFiles) == 0 {
		t.Error("Prometheus loads no rule file")
	}
	targets := map[string]bool{}
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	if mounts["/var/lib/grafana/dashboards/authgate.json"] == "" || mounts["/etc/grafana/provisioning"] == "" {
		t.Error("Grafana does not get the dashboard and its provisioning")
	}
	for _, name := range []string{"authgate-1", "authgate-2"} {
		s := compose.Services[name]
		cfgArg := ""
		for i, a := range s.Command {
			if a == "--config" && i+1 < len(s.Command) {
				cfgArg = s.Command[i+1]
			}
		}
		host := mounts[path.Dir(cfgArg)]
		if host == "" {
			t.Fatalf("%s: --config %q is not in a mounted directory", name, cfgArg)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = regexp.MustCompile(`\$\{\w+:-([^}]*)\}`).ReplaceAllString(v, "$1")
		}
		cfg, err := config.Load(filepath.Join(host, path.Base(cfgArg)), envFunc(env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Store.Type != "redis" || cfg.Store.Redis.Addrs[0] != "redis:6379" {
			t.Errorf("%s: store %s %v, want the compose Redis", name, cfg.Store.Type, cfg.Store.Redis.Addrs)
		}
		if !cfg.Tracing.Enabled {
			t.Errorf("%s: tracing is off in Compose, which runs a trace collector", name)
		} else if u, err := url.Parse(cfg.Tracing.Endpoint); err != nil || !hasService(u.Hostname()) {
			t.Errorf("%s: tracing.endpoint %q is not a Compose service", name, cfg.Tracing.Endpoint)
		}
		if !targets[name+":"+port(t, cfg.OpsListen)] {
			t.Errorf("Prometheus does not scrape %s:%s (targets %v)", name, port(t, cfg.OpsListen), targets)
		}
		published := strings.Join(s.Ports, " ")
		for _, p := range []string{port(t, cfg.Listen), port(t, cfg.OpsListen)} {
			if !strings.Contains(published, ":"+p) {
				t.Errorf("%s: port %s is not published (%v)", name, p, s.Ports)
			}
		}
	}
}
