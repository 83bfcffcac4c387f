// Package deploy_test checks the Kustomize base and its overlays offline:
// each renders, every object strict-decodes into its Kubernetes API type
// (an unknown or misspelt field fails), the Deployment keeps the promises
// the README makes (gRPC health probes, the drain, non-root, read-only
// root), and the configuration in the ConfigMap is one tactd accepts.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/tact-nba/tact/server"
)

// render builds a kustomization as `kubectl kustomize` does.
func render(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out[r.GetKind()+"/"+r.GetName()] = b
	}
	return out
}

// strict decodes JSON into v, refusing unknown fields.
func strict(t *testing.T, name string, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s does not decode strictly: %v", name, err)
	}
}

func TestManifests(t *testing.T) {
	for _, dir := range []string{"base", "overlays/redis-cluster"} {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			var dep appsv1.Deployment
			var cm corev1.ConfigMap
			kinds := map[string]int{}
			for name, raw := range objs {
				kind, _, _ := strings.Cut(name, "/")
				kinds[kind]++
				switch kind {
				case "Deployment":
					strict(t, name, raw, &dep)
				case "Service":
					strict(t, name, raw, &corev1.Service{})
				case "ConfigMap":
					strict(t, name, raw, &cm)
				case "Secret":
					strict(t, name, raw, &corev1.Secret{})
				case "PodDisruptionBudget":
					strict(t, name, raw, &policyv1.PodDisruptionBudget{})
				case "HorizontalPodAutoscaler":
					strict(t, name, raw, &autoscalingv2.HorizontalPodAutoscaler{})
				default:
					t.Errorf("unexpected object %s", name)
				}
			}
			want := map[string]int{"Deployment": 1, "Service": 2, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1}
			if fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Errorf("objects %v, want %v", kinds, want)
			}
			checkDeployment(t, &dep, &cm)
			cfg := checkConfig(t, &cm)
			if dir == "overlays/redis-cluster" && (cfg.Redis.Mode != "cluster" || !strings.Contains(cfg.Redis.Addrs, "redis-cluster-0")) {
				t.Errorf("the overlay's tactd is not on the cluster: mode %q, addrs %q", cfg.Redis.Mode, cfg.Redis.Addrs)
			}
		})
	}
}

func checkDeployment(t *testing.T, dep *appsv1.Deployment, cm *corev1.ConfigMap) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != 9090 {
			t.Errorf("%s probe %+v: want gRPC health on 9090", name, p)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v: want a read-only root and no privilege escalation", sc)
	}
	if ps := pod.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65532 {
		t.Errorf("pod security context %+v: want non-root user 65532", ps)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}
	// The drain fits the grace period: preStop, then tactd's drain_delay
	// and shutdown_timeout (from the ConfigMap's tactd.yaml).
	cfg := loadConfig(t, cm)
	preStop := int64(0)
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep")
	} else {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	drain := preStop + int64(cfg.DrainDelay.Seconds()) + int64(cfg.ShutdownTimeout.Seconds())
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= drain {
		t.Errorf("terminationGracePeriodSeconds %v does not cover preStop + drain_delay + shutdown_timeout = %d s", pod.TerminationGracePeriodSeconds, drain)
	}
	if cfg.DrainDelay <= 0 {
		t.Error("drain_delay is 0: readiness would not fail before the listeners close")
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	for _, p := range []string{"/etc/tact", "/etc/tact/secrets", cfg.DataDir, "/tmp"} {
		if !mounts[p] {
			t.Errorf("nothing mounted at %s (the root filesystem is read-only)", p)
		}
	}
}

// loadConfig reads tactd.yaml out of the ConfigMap as tactd would.
func loadConfig(t *testing.T, cm *corev1.ConfigMap) server.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "tactd.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["tactd.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig([]string{"--config", path}, nil)
	if err != nil {
		t.Fatalf("tactd refuses the ConfigMap's tactd.yaml: %v", err)
	}
	return cfg
}

// checkConfig checks that tactd accepts the ConfigMap's configuration,
// with its files where the pod mounts them.
func checkConfig(t *testing.T, cm *corev1.ConfigMap) server.Config {
	t.Helper()
	cfg := loadConfig(t, cm)
	for key, path := range map[string]string{"catalog_file": cfg.CatalogFile, "policy_file": cfg.PolicyFile,
		"feature_schema": cfg.FeatureSchema, "experiments_file": cfg.ExperimentsFile} {
		name, ok := strings.CutPrefix(path, "/etc/tact/")
		if !ok || cm.Data[name] == "" {
			t.Errorf("%s: %s is not a file of the ConfigMap (mounted at /etc/tact)", key, path)
		}
	}
	if cfg.FeatureStore != "redis" || cfg.AuthAPIKeysFile == "" || cfg.Demo == "true" {
		t.Errorf("feature_store %q, auth_api_keys_file %q, demo %q: want shared state on Redis, authentication on, no demo", cfg.FeatureStore, cfg.AuthAPIKeysFile, cfg.Demo)
	}
	return cfg
}

// TestConfigFilesAreTheSources: the ConfigMap's demo files are the
// repository's (a change there must reach the manifests).
func TestConfigFilesAreTheSources(t *testing.T) {
	for copyPath, source := range map[string]string{
		"base/config/catalog.yaml":     "../model/demo/catalog.yaml",
		"base/config/policy.yaml":      "../model/policy/default.yaml",
		"base/config/schema.yaml":      "../model/demo/schema.yaml",
		"base/config/experiments.json": "../examples/experiments.json",
	} {
		a, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: cp %s %s", copyPath, source, source, copyPath)
		}
	}
	// The overlay's tactd.yaml is the base's but for the Redis lines.
	base, _ := os.ReadFile("base/config/tactd.yaml")
	over, err := os.ReadFile("overlays/redis-cluster/tactd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strip := func(b []byte) string {
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "redis_") && !strings.Contains(l, "shares one Redis") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(base) != strip(over) {
		t.Error("overlays/redis-cluster/tactd.yaml differs from base/config/tactd.yaml beyond the redis_ lines")
	}
}
