package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/internal/config"
)

// envRequireKubectl set to "1" (by .ci/run) makes a missing kubectl a
// test failure.
const envRequireKubectl = "MCPGW_REQUIRE_KUBECTL"

// k8sObject is the part of a manifest the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Deployment
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service, PodDisruptionBudget
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		MaxUnavailable           int    `yaml:"maxUnavailable"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			SecretKeyRef *struct {
				Name, Key string
			} `yaml:"secretKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe probe `yaml:"readinessProbe"`
	LivenessProbe  probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

// TestKubernetesManifests: deploy/kubernetes holds a Deployment whose
// ConfigMap config passes "mcpgw check" as a cluster of replicas found
// through the headless Service, probes on /healthz and /readyz, a preStop
// shorter than the grace period, the secrets from a Secret, and a PDB over
// the same pods; "kubectl kustomize" (offline) renders it.
func TestKubernetesManifests(t *testing.T) {
	dir := "../../deploy/kubernetes"
	objs := map[string]k8sObject{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	dep, ok := objs["Deployment/mcpgw"]
	if !ok {
		t.Fatalf("no Deployment mcpgw among %v", objs)
	}
	if dep.Spec.Replicas < 2 {
		t.Errorf("%d replicas: a cluster needs at least 2", dep.Spec.Replicas)
	}
	podLabels := dep.Spec.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(dep.Spec.Selector.MatchLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", dep.Spec.Selector.MatchLabels, podLabels)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %q, liveness %q; want /readyz and /healthz", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "from-the-secret-" + e.ValueFrom.SecretKeyRef.Key + "-0123456789abcdef0123456789"
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = "mcpgw-7d9f8b6c5-x2x7q" // a Deployment pod's name
		}
	}
	env["REDIS_URL"] = "redis://:password@redis:6379/0"
	for _, name := range []string{"MCPGW_CLUSTER_KEY", "REDIS_URL", "MCPGW_TOKEN"} {
		if _, ok := env[name]; !ok {
			t.Errorf("%s does not come from the Secret", name)
		}
	}

	cm := objs["ConfigMap/mcpgw"]
	cfgPath := filepath.Join(t.TempDir(), "mcpgw.yaml")
	// The image's /mcpgw is this test's binary here: check looks for it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := cm.Data["mcpgw.yaml"]
	if !strings.Contains(text, `["/mcpgw", "demo-server"]`) {
		t.Fatalf("the ConfigMap's config does not serve the image's demo server:\n%s", text)
	}
	text = strings.ReplaceAll(text, `["/mcpgw", "demo-server"]`, `["`+self+`", "demo-server"]`)
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(c.Args) < 3 || c.Args[0] != "serve" || c.Args[2] != "/etc/mcpgw/mcpgw.yaml" {
		t.Errorf("args %q, want serve --config /etc/mcpgw/mcpgw.yaml", c.Args)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if code, _, stderr := execute([]string{"check", "--config", cfgPath}, lookup); code != 0 {
		t.Fatalf("mcpgw check of the ConfigMap's mcpgw.yaml: exit %d\n%s", code, stderr)
	}
	cfg, err := config.Load(cfgPath, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster == nil || cfg.Cluster.Redis == nil || cfg.Cluster.ReplicaID != env["POD_NAME"] {
		t.Fatalf("the config is not a cluster with Redis named by the pod: %+v", cfg.Cluster)
	}
	headless := objs["Service/mcpgw-headless"]
	if headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service mcpgw-headless: clusterIP %q, publishNotReadyAddresses %t; want a headless Service that lists draining pods", headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	if want := []string{"dns:///mcpgw-headless:8080"}; strings.Join(cfg.Cluster.Peers, ",") != strings.Join(want, ",") {
		t.Errorf("cluster.peers %q, want %q (the headless Service)", cfg.Cluster.Peers, want)
	}
	grace := time.Duration(dep.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if preStop <= 0 || grace < preStop+cfg.Limits.ShutdownTimeout+5*time.Second {
		t.Errorf("preStop %s, grace %s: the grace must cover the preStop, limits.shutdown_timeout (%s) and the servers' stop", preStop, grace, cfg.Limits.ShutdownTimeout)
	}
	pdb := objs["PodDisruptionBudget/mcpgw"]
	if !matches(pdb.Spec.Selector.MatchLabels) || pdb.Spec.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget: selector %v, maxUnavailable %d; want the Deployment's pods, one at a time", pdb.Spec.Selector.MatchLabels, pdb.Spec.MaxUnavailable)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv(envRequireKubectl) == "1" {
			t.Fatalf("kubectl is not installed and %s=1: apt-get install -y kubernetes-client", envRequireKubectl)
		}
		t.Skipf("skipping the kustomize rendering: kubectl is not installed (apt-get install -y kubernetes-client; set %s=1 to make this a failure)", envRequireKubectl)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	for _, kind := range []string{"kind: Deployment", "kind: ConfigMap", "kind: PodDisruptionBudget", "name: mcpgw-headless"} {
		if !bytes.Contains(out, []byte(kind)) {
			t.Errorf("kubectl kustomize does not render %q", kind)
		}
	}
}
