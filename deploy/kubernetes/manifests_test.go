// Package kubernetes holds the example Kubernetes manifests; its test decodes
// them strictly into the Kubernetes API types, so that a misspelt field
// fails CI instead of being dropped silently by kubectl.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes one YAML document into v, failing on unknown fields.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type objects struct {
	deployments []appsv1.Deployment
	configMaps  map[string]corev1.ConfigMap
	secrets     map[string]bool
	claims      map[string]bool
	services    []corev1.Service
}

// load decodes every document of every manifest in this directory.
func load(t *testing.T) objects {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	o := objects{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]bool{}, claims: map[string]bool{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			where := fmt.Sprintf("%s document %d (%s)", f, i+1, meta.Kind)
			var err2 error
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				var d appsv1.Deployment
				err2 = decodeStrict(doc, &d)
				o.deployments = append(o.deployments, d)
			case "v1 ConfigMap":
				var c corev1.ConfigMap
				err2 = decodeStrict(doc, &c)
				o.configMaps[c.Name] = c
			case "v1 Secret":
				var s corev1.Secret
				err2 = decodeStrict(doc, &s)
				o.secrets[s.Name] = true
			case "v1 PersistentVolumeClaim":
				var p corev1.PersistentVolumeClaim
				err2 = decodeStrict(doc, &p)
				o.claims[p.Name] = true
			case "v1 Service":
				var s corev1.Service
				err2 = decodeStrict(doc, &s)
				o.services = append(o.services, s)
			default:
				t.Errorf("%s: no test decodes %s %s", where, meta.APIVersion, meta.Kind)
			}
			if err2 != nil {
				t.Errorf("%s: %v", where, err2)
			}
		}
	}
	return o
}

func TestManifests(t *testing.T) {
	o := load(t)
	if len(o.deployments) == 0 {
		t.Fatal("no Deployment")
	}
	for _, d := range o.deployments {
		checkSidecar(t, o, &d)
	}
	for _, s := range o.services {
		found := false
		for _, d := range o.deployments {
			if matches(s.Spec.Selector, d.Spec.Template.Labels) {
				found = true
			}
		}
		if !found {
			t.Errorf("Service %s selects no Pod of the Deployments", s.Name)
		}
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// checkSidecar checks that the relaywatch container reads the volume the
// mail server writes its log to, has its probes, its config, its secret and
// its state volume, and is scraped on the port it listens on.
func checkSidecar(t *testing.T, o objects, d *appsv1.Deployment) {
	t.Helper()
	spec := &d.Spec.Template.Spec
	if !matches(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("%s: selector does not match the Pod's labels", d.Name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var rw, mta *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "relaywatch" {
			rw = &spec.Containers[i]
		} else {
			mta = &spec.Containers[i]
		}
	}
	if rw == nil || mta == nil {
		t.Fatalf("%s: want a relaywatch container beside the mail server's", d.Name)
	}
	mounts := func(c *corev1.Container) map[string]corev1.VolumeMount {
		m := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("%s/%s mounts undeclared volume %s", d.Name, c.Name, vm.Name)
			}
			m[vm.Name] = vm
		}
		return m
	}
	rwMounts, mtaMounts := mounts(rw), mounts(mta)

	// The relaywatch config, as the container sees it.
	var configFile string
	for _, a := range rw.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			configFile = v
		}
	}
	if len(rw.Args) == 0 || rw.Args[0] != "watch" || configFile == "" {
		t.Fatalf("%s: relaywatch args %v: want watch --config=FILE", d.Name, rw.Args)
	}
	var config string
	for _, vm := range rwMounts {
		v := volumes[vm.Name]
		if v.ConfigMap != nil && filepath.Dir(configFile) == vm.MountPath {
			cm, ok := o.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("%s: ConfigMap %s is not in the manifests", d.Name, v.ConfigMap.Name)
			}
			config = cm.Data[filepath.Base(configFile)]
		}
	}
	if config == "" {
		t.Fatalf("%s: %s is not in a mounted ConfigMap", d.Name, configFile)
	}
	checkConfig(t, config)

	// Every followed file is on a volume the mail server writes.
	var cfg struct {
		Files  []string `json:"files"`
		Listen string   `json:"listen"`
	}
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Files {
		ok := false
		for name, vm := range rwMounts {
			if strings.HasPrefix(f, vm.MountPath+"/") && vm.ReadOnly {
				if w, shared := mtaMounts[name]; shared && !w.ReadOnly {
					ok = true
				}
			}
		}
		if !ok {
			t.Errorf("%s: %s is not on a volume that %s writes and relaywatch mounts read-only", d.Name, f, mta.Name)
		}
	}

	// State on a claimed volume, secrets from a Secret that exists.
	stateOK := false
	for _, a := range rw.Args {
		if dir, ok := strings.CutPrefix(a, "--state-dir="); ok {
			for _, vm := range rwMounts {
				if vm.MountPath == dir && !vm.ReadOnly && volumes[vm.Name].PersistentVolumeClaim != nil && o.claims[volumes[vm.Name].PersistentVolumeClaim.ClaimName] {
					stateOK = true
				}
			}
		}
	}
	if !stateOK {
		t.Errorf("%s: --state-dir is not a writable volume of a PersistentVolumeClaim in the manifests", d.Name)
	}
	for _, ef := range rw.EnvFrom {
		if ef.SecretRef == nil || !o.secrets[ef.SecretRef.Name] {
			t.Errorf("%s: envFrom %+v is not a Secret of the manifests", d.Name, ef)
		}
	}

	// Probes and scraping on the port relaywatch listens on.
	port := map[string]int32{}
	for _, p := range rw.Ports {
		port[p.Name] = p.ContainerPort
	}
	if !strings.HasSuffix(cfg.Listen, fmt.Sprintf(":%d", port["metrics"])) {
		t.Errorf("%s: listen %q but the metrics port is %d", d.Name, cfg.Listen, port["metrics"])
	}
	for name, pr := range map[string]*corev1.Probe{"liveness": rw.LivenessProbe, "readiness": rw.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || port[pr.HTTPGet.Port.String()] == 0 {
			t.Errorf("%s: %s probe %+v: want GET %s on the metrics port", d.Name, name, pr, want)
		}
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != fmt.Sprint(port["metrics"]) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: scrape annotations %v", d.Name, ann)
	}
	if sc := rw.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: relaywatch must run as non-root on a read-only root file system", d.Name)
	}
}

// checkConfig runs `relaywatch check-config` on the ConfigMap's config.
func checkConfig(t *testing.T, config string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "relaywatch.yml")
	if err := os.WriteFile(f, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "run", "../../cmd/relaywatch", "check-config", f).CombinedOutput()
	if err != nil {
		t.Errorf("check-config on the ConfigMap's relaywatch.yml: %v\n%s", err, out)
	}
}
