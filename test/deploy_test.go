package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"go.yaml.in/yaml/v3"
)

// The manifests under deploy/ are kustomize bases and overlays. These tests
// stay light (no kustomize here; building the overlays with kustomize and
// validating them against a real API server is test/k8s's job): they read
// the kustomizations the way kustomize does for what deploy/ uses
// (resources, patches by file, configMapGenerator), apply the patches, and
// check each overlay's result.

// deployEnv is the downward-API environment the agent's configurations
// expand ${VAR} from in a Cassandra pod.
var deployEnv = []string{"POD_NAME=cluster1-dc1-default-sts-0", "POD_NAMESPACE=cassandra"}

// TestDeployYAML parses every YAML file under deploy/ (kustomizations,
// resources, patches) and checks that every kustomization references only
// files that exist.
func TestDeployYAML(t *testing.T) {
	root := filepath.Join(repoRoot(), "deploy")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d YAML files under deploy/", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if filepath.Base(f) == "kustomization.yaml" {
			k := readKustomization(t, filepath.Dir(f))
			for _, r := range k.references() {
				if _, err := os.Stat(filepath.Join(filepath.Dir(f), r)); err != nil {
					t.Errorf("%s references %s: %v", rel, r, err)
				}
			}
			continue
		}
		for i, d := range readDocs(t, f) {
			if str(d, "apiVersion") == "" || str(d, "kind") == "" || str(d, "metadata", "name") == "" {
				t.Errorf("%s: document %d has no apiVersion, kind or metadata.name", rel, i+1)
			}
		}
	}
	// Every file is used by some kustomization (a stray manifest is one
	// nobody applies).
	used := map[string]bool{}
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			continue
		}
		used[f] = true
		for _, r := range readKustomization(t, filepath.Dir(f)).references() {
			used[filepath.Join(filepath.Dir(f), r)] = true
		}
	}
	for _, f := range files {
		if !used[f] {
			t.Errorf("%s is in no kustomization", f)
		}
	}
}

// TestDeployOverlays checks what each overlay deploys.
func TestDeployOverlays(t *testing.T) {
	root := filepath.Join(repoRoot(), "deploy")
	overlays, err := os.ReadDir(filepath.Join(root, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range overlays {
		names = append(names, o.Name())
	}
	if !slices.Contains(names, "csi-driver") || !slices.Contains(names, "pod-certificates") {
		t.Fatalf("overlays: %v, want csi-driver and pod-certificates", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { checkOverlay(t, build(t, filepath.Join(root, "overlays", name))) })
	}
	t.Run("default", func(t *testing.T) {
		got, want := build(t, root), build(t, filepath.Join(root, "overlays", "csi-driver"))
		if !reflect.DeepEqual(objs(got), objs(want)) {
			t.Error("deploy/kustomization.yaml does not deploy the csi-driver overlay")
		}
	})
}

func checkOverlay(t *testing.T, ms []manifest) {
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[m.kind()]++
	}
	for _, k := range []string{"ClusterIssuer", "Issuer", "Certificate", "Bundle", "CassandraDatacenter", "Deployment",
		"PodMonitor", "PrometheusRule", "ConfigMap", "Secret"} {
		if kinds[k] == 0 {
			t.Errorf("no %s", k)
		}
	}
	agentCM := find(ms, "ConfigMap", "cassandra-tls-agent")
	if agentCM == nil {
		t.Fatal("no ConfigMap cassandra-tls-agent")
	}
	configs := map[string]string{}
	for k, v := range mapAt(agentCM.obj, "data") {
		configs[k], _ = v.(string)
	}

	pods := podTemplates(t, ms)
	if len(pods) != 2 {
		t.Fatalf("%d pod templates, want 2 (Cassandra, Reaper)", len(pods))
	}
	usedConfigs := map[string]bool{}
	for _, p := range pods {
		t.Run(p.where, func(t *testing.T) {
			checkSecurity(t, p)
			checkMounts(t, p)
			checkKeys(t, p, ms)
			checkIdentity(t, p, ms)
			for _, c := range p.containers() {
				if !isAgent(c) {
					continue
				}
				key, cfg := agentConfig(t, p, c, configs)
				usedConfigs[key] = true
				if cfg == "" {
					continue
				}
				checkConfigPaths(t, p, c, key, cfg, ms)
				parsed, err := config.Parse([]byte(cfg), key, deployEnv)
				if err != nil {
					t.Errorf("%s: %v", key, err)
					continue
				}
				if list(c, "args")[0] == "sidecar" {
					checkLiveness(t, p, c, key, parsed)
				}
			}
		})
	}
	for k := range configs {
		if !usedConfigs[k] {
			t.Errorf("ConfigMap cassandra-tls-agent: %s is used by no container", k)
		}
	}
	checkMonitoring(t, ms, pods)
}

// podTemplate is a pod template as it will run: a Deployment's, or a
// CassandraDatacenter's podTemplateSpec completed with what cass-operator
// adds.
type podTemplate struct {
	where     string
	spec      map[string]any
	labels    map[string]any
	volumes   map[string]map[string]any
	cassandra bool
	replicas  int
	peers     int // other Cassandra nodes a sidecar may probe
}

func (p podTemplate) containers() []map[string]any {
	var out []map[string]any
	for _, f := range []string{"initContainers", "containers"} {
		for _, c := range list(p.spec, f) {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

// casOperatorVolumes are the volumes cass-operator adds to every Cassandra
// pod (pkg/reconciliation/construct_podtemplatespec.go, addVolumes) and the
// data PVC of its StatefulSet.
var casOperatorVolumes = []string{"server-config", "server-logs", "server-config-base", "vector-lib", "server-data"}

func podTemplates(t *testing.T, ms []manifest) []podTemplate {
	var out []podTemplate
	for _, m := range ms {
		switch m.kind() {
		case "Deployment":
			r, ok := get(m.obj, "spec", "replicas").(int)
			if !ok {
				r = 1
			}
			p := podTemplate{where: "Deployment/" + m.name(), spec: mapAt(m.obj, "spec", "template", "spec"),
				labels: mapAt(m.obj, "spec", "template", "metadata", "labels"), replicas: r}
			out = append(out, withVolumes(t, p, nil))
		case "CassandraDatacenter":
			size, _ := get(m.obj, "spec", "size").(int)
			p := podTemplate{where: "CassandraDatacenter/" + m.name(), spec: mapAt(m.obj, "spec", "podTemplateSpec", "spec"),
				labels: mapAt(m.obj, "spec", "podTemplateSpec", "metadata", "labels"), cassandra: true, replicas: size, peers: size - 1}
			extra := map[string]map[string]any{}
			for _, v := range list(m.obj, "spec", "storageConfig", "additionalVolumes") {
				av := v.(map[string]any)
				src := mapAt(av, "volumeSource")
				if src == nil || str(av, "mountPath") == "" {
					t.Errorf("%s: additionalVolumes %s: want mountPath and volumeSource", p.where, str(av, "name"))
					continue
				}
				vol := map[string]any{"name": av["name"]}
				for k, v := range src {
					vol[k] = v
				}
				extra[str(av, "name")] = vol
			}
			for _, n := range casOperatorVolumes {
				extra[n] = map[string]any{"name": n, "emptyDir": map[string]any{}}
			}
			out = append(out, withVolumes(t, p, extra))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].where < out[j].where })
	return out
}

func withVolumes(t *testing.T, p podTemplate, extra map[string]map[string]any) podTemplate {
	p.volumes = map[string]map[string]any{}
	for _, v := range list(p.spec, "volumes") {
		vol := v.(map[string]any)
		if _, dup := p.volumes[str(vol, "name")]; dup {
			t.Errorf("%s: volume %s defined twice", p.where, str(vol, "name"))
		}
		p.volumes[str(vol, "name")] = vol
	}
	for n, v := range extra {
		if _, dup := p.volumes[n]; dup {
			t.Errorf("%s: volume %s is also cass-operator's or an additionalVolume", p.where, n)
		}
		p.volumes[n] = v
	}
	return p
}

func isAgent(c map[string]any) bool {
	return strings.Contains(str(c, "image"), "cassandra-tls-agent")
}

// checkSecurity: every container non-root with an explicit uid, read-only
// root filesystem, no privilege escalation, no capabilities, RuntimeDefault
// seccomp; the agent with resource requests and limits and the pod's uid
// (the stores it writes are 0600).
func checkSecurity(t *testing.T, p podTemplate) {
	psc := mapAt(p.spec, "securityContext")
	podUID, _ := get(psc, "runAsUser").(int)
	if get(psc, "runAsNonRoot") != true || podUID <= 0 || get(psc, "fsGroup") == nil || str(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot, runAsUser, fsGroup, seccompProfile RuntimeDefault", psc)
	}
	if p.cassandra && podUID != 999 {
		t.Errorf("pod runAsUser %d, want 999 (the Cassandra image's uid)", podUID)
	}
	names := map[string]bool{}
	for _, c := range p.containers() {
		name := str(c, "name")
		if names[name] {
			t.Errorf("container name %s used twice (init containers and containers share one namespace)", name)
		}
		names[name] = true
		sc := mapAt(c, "securityContext")
		uid, _ := get(sc, "runAsUser").(int)
		switch {
		case get(sc, "runAsNonRoot") != true:
			t.Errorf("%s: runAsNonRoot not true", name)
		case uid <= 0:
			t.Errorf("%s: no explicit non-zero runAsUser", name)
		case get(sc, "readOnlyRootFilesystem") != true:
			t.Errorf("%s: readOnlyRootFilesystem not true", name)
		case get(sc, "allowPrivilegeEscalation") != false:
			t.Errorf("%s: allowPrivilegeEscalation not false", name)
		case !slices.Equal(list(sc, "capabilities", "drop"), []any{"ALL"}) || get(sc, "capabilities", "add") != nil:
			t.Errorf("%s: capabilities %v, want drop [ALL] and nothing added", name, get(sc, "capabilities"))
		case str(sc, "seccompProfile", "type") != "RuntimeDefault":
			t.Errorf("%s: seccompProfile not RuntimeDefault", name)
		case get(sc, "privileged") == true:
			t.Errorf("%s: privileged", name)
		}
		if isAgent(c) || (p.cassandra && name == "cassandra") {
			if uid != podUID {
				t.Errorf("%s: runAsUser %d, want the pod's %d (stores are written 0600 for their reader)", name, uid, podUID)
			}
		}
		if isAgent(c) {
			for _, r := range []string{"requests", "limits"} {
				for _, res := range []string{"cpu", "memory"} {
					if str(c, "resources", r, res) == "" {
						t.Errorf("%s: no resources.%s.%s", name, r, res)
					}
				}
			}
		}
	}
}

// checkMounts: every mount names a volume of the pod; no subPath (a subPath
// mount never sees the kubelet's updates).
func checkMounts(t *testing.T, p podTemplate) {
	for _, c := range p.containers() {
		for _, m := range list(c, "volumeMounts") {
			vm := m.(map[string]any)
			if p.volumes[str(vm, "name")] == nil {
				t.Errorf("%s: mount of %s: no such volume", str(c, "name"), str(vm, "name"))
			}
			if str(vm, "subPath") != "" || str(vm, "subPathExpr") != "" {
				t.Errorf("%s: %s mounted with a subPath: it would never be updated", str(c, "name"), str(vm, "name"))
			}
		}
	}
}

// checkKeys: no pod template reads a private key that is not its own. The
// Secrets of deploy/'s Certificates hold keys: a CA's key is mounted
// nowhere, a Cassandra pod mounts none (its key comes from csi-driver or a
// podCertificate, per pod), and a single-replica Deployment at most one.
func checkKeys(t *testing.T, p podTemplate, ms []manifest) {
	keySecrets := map[string]bool{} // secretName → isCA
	for _, m := range ms {
		if m.kind() == "Certificate" {
			keySecrets[str(m.obj, "spec", "secretName")] = get(m.obj, "spec", "isCA") == true
		}
	}
	var refs []string
	for _, v := range p.volumes {
		if s := str(v, "secret", "secretName"); s != "" {
			refs = append(refs, s)
		}
		for _, src := range list(v, "projected", "sources") {
			if s := str(src.(map[string]any), "secret", "name"); s != "" {
				refs = append(refs, s)
			}
		}
		if str(v, "csi", "driver") != "" && str(v, "csi", "driver") != "csi.cert-manager.io" {
			t.Errorf("volume %s: CSI driver %s", str(v, "name"), str(v, "csi", "driver"))
		}
	}
	for _, c := range p.containers() {
		for _, e := range list(c, "env") {
			if s := str(e.(map[string]any), "valueFrom", "secretKeyRef", "name"); s != "" && keySecrets[s] {
				t.Errorf("%s: environment from the key Secret %s", str(c, "name"), s)
			}
		}
	}
	own := 0
	for _, s := range refs {
		isCA, isKey := keySecrets[s]
		switch {
		case !isKey:
		case isCA:
			t.Errorf("mounts the CA key Secret %s", s)
		case p.cassandra:
			t.Errorf("mounts the key Secret %s: every Cassandra pod would read it", s)
		case p.replicas != 1:
			t.Errorf("mounts the key Secret %s in %d replicas", s, p.replicas)
		default:
			own++
		}
	}
	if own > 1 {
		t.Errorf("mounts %d key Secrets; a pod has one identity", own)
	}
}

// checkIdentity: a Cassandra pod's key comes from a per-pod source.
func checkIdentity(t *testing.T, p podTemplate, ms []manifest) {
	if !p.cassandra {
		return
	}
	v := p.volumes["node-identity"]
	if v == nil {
		t.Fatal("no node-identity volume")
	}
	switch {
	case get(v, "csi") != nil:
		attr := mapAt(v, "csi", "volumeAttributes")
		kind, name := str(attr, "csi.cert-manager.io/issuer-kind"), str(attr, "csi.cert-manager.io/issuer-name")
		if find(ms, kind, name) == nil {
			t.Errorf("csi-driver issuer %s/%s is not deployed", kind, name)
		}
		dns := str(attr, "csi.cert-manager.io/dns-names")
		if !strings.HasPrefix(dns, "${POD_NAME}.") || !strings.Contains(dns, "${POD_NAMESPACE}") {
			t.Errorf("csi-driver dns-names %q: want the pod's own name first (${POD_NAME}.…${POD_NAMESPACE}…)", dns)
		}
		if str(attr, "csi.cert-manager.io/key-encoding") != "PKCS8" {
			t.Error("csi-driver key-encoding is not PKCS8 (Cassandra's PEM factory reads PKCS#8 only)")
		}
		for _, k := range []string{"renew-before", "fs-group", "common-name", "key-usages"} {
			if str(attr, "csi.cert-manager.io/"+k) == "" {
				t.Errorf("csi-driver attribute %s not set", k)
			}
		}
		if u := str(attr, "csi.cert-manager.io/key-usages"); !strings.Contains(u, "server auth") || !strings.Contains(u, "client auth") {
			t.Errorf("csi-driver key-usages %q: internode TLS needs server auth and client auth", u)
		}
	case get(v, "projected") != nil:
		var pc, ctb map[string]any
		for _, s := range list(v, "projected", "sources") {
			src := s.(map[string]any)
			if x := mapAt(src, "podCertificate"); x != nil {
				pc = x
			}
			if x := mapAt(src, "clusterTrustBundle"); x != nil {
				ctb = x
			}
		}
		if pc == nil || str(pc, "signerName") == "" || str(pc, "keyType") == "" || str(pc, "credentialBundlePath") == "" {
			t.Errorf("node-identity: want a podCertificate with signerName, keyType and credentialBundlePath, got %v", pc)
		}
		if ctb == nil || str(ctb, "signerName") != str(pc, "signerName") || str(ctb, "path") == "" {
			t.Errorf("node-identity: want a clusterTrustBundle of the same signer, got %v", ctb)
		}
	default:
		t.Errorf("node-identity volume %v: want csi.cert-manager.io or a podCertificate projection", v)
	}
}

// agentConfig finds the ConfigMap key an agent container runs with.
func agentConfig(t *testing.T, p podTemplate, c map[string]any, configs map[string]string) (string, string) {
	args := list(c, "args")
	if len(args) != 3 || args[1] != "--config" {
		t.Errorf("%s: args %v, want [init|sidecar --config FILE]", str(c, "name"), args)
		return "", ""
	}
	file, _ := args[2].(string)
	m, v := mountOf(p, c, file)
	if v == nil || str(v, "configMap", "name") != "cassandra-tls-agent" {
		t.Errorf("%s: %s is not in the cassandra-tls-agent ConfigMap's mount", str(c, "name"), file)
		return "", ""
	}
	key := strings.TrimPrefix(file, str(m, "mountPath")+"/")
	cfg, ok := configs[key]
	if !ok {
		t.Errorf("%s: --config %s: the ConfigMap has no key %s", str(c, "name"), file, key)
	}
	return key, cfg
}

// mountOf returns the container's mount that holds file, and its volume.
func mountOf(p podTemplate, c map[string]any, file string) (map[string]any, map[string]any) {
	var best map[string]any
	for _, m := range list(c, "volumeMounts") {
		vm := m.(map[string]any)
		mp := str(vm, "mountPath")
		if strings.HasPrefix(file, strings.TrimSuffix(mp, "/")+"/") && (best == nil || len(mp) > len(str(best, "mountPath"))) {
			best = vm
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, p.volumes[str(best, "name")]
}

// checkConfigPaths: every file the configuration reads is in a volume of
// the container that holds it (a key of the Secret, an item of the
// ConfigMap, a path of the projection); every output is on a writable
// emptyDir.
func checkConfigPaths(t *testing.T, p podTemplate, c map[string]any, key, cfg string, ms []manifest) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Errorf("%s: %v", key, err)
		return
	}
	var inputs, dirs, outputs []string
	for _, s := range list(doc, "stores") {
		st := s.(map[string]any)
		dirs = append(dirs, str(st, "source"))
		inputs = append(inputs, str(st, "credentialBundle"), str(st, "passwordFile"), str(st, "truststorePasswordFile"))
		for _, b := range list(st, "trustBundles") {
			inputs = append(inputs, b.(string))
		}
		outputs = append(outputs, str(st, "keystore", "path"), str(st, "truststore", "path"), str(st, "pem", "dir")+"/x")
	}
	for _, tp := range list(doc, "templates") {
		tm := tp.(map[string]any)
		dirs = append(dirs, str(tm, "secretsDir"))
		inputs = append(inputs, str(tm, "template"))
		outputs = append(outputs, str(tm, "out"))
	}
	inputs = append(inputs, str(doc, "wait", "usernameFile"), str(doc, "wait", "passwordFile"))
	name := str(c, "name")
	for _, d := range dirs {
		if d != "" {
			if _, v := mountOf(p, c, d+"/x"); v == nil {
				t.Errorf("%s (%s): directory %s is in no volume of the container", key, name, d)
			}
		}
	}
	for _, f := range inputs {
		if f == "" {
			continue
		}
		m, v := mountOf(p, c, f)
		if v == nil {
			t.Errorf("%s (%s): %s is in no volume of the container", key, name, f)
			continue
		}
		rel := strings.TrimPrefix(f, str(m, "mountPath")+"/")
		if have := volumeFiles(v, ms); have != nil && !slices.Contains(have, rel) {
			t.Errorf("%s (%s): %s: volume %s holds %v, not %s", key, name, f, str(v, "name"), have, rel)
		}
	}
	for _, f := range outputs {
		if f == "" || f == "/x" {
			continue
		}
		m, v := mountOf(p, c, f)
		if v == nil || get(m, "readOnly") == true || (get(v, "emptyDir") == nil && !slices.Contains(casOperatorVolumes, str(v, "name"))) {
			t.Errorf("%s (%s): output %s is not on a writable emptyDir of the container", key, name, strings.TrimSuffix(f, "/x"))
		}
	}
}

// volumeFiles lists the files a volume holds, when the manifests say (nil
// when they cannot: a CSI volume, a Secret made elsewhere).
func volumeFiles(v map[string]any, ms []manifest) []string {
	items := func(it []any) []string {
		var out []string
		for _, i := range it {
			out = append(out, str(i.(map[string]any), "path"))
		}
		return out
	}
	switch {
	case get(v, "configMap") != nil && get(v, "configMap", "items") != nil:
		return items(list(v, "configMap", "items"))
	case get(v, "secret") != nil:
		s := find(ms, "Secret", str(v, "secret", "secretName"))
		if s == nil {
			return nil
		}
		var out []string
		for _, f := range []string{"data", "stringData"} {
			for k := range mapAt(s.obj, f) {
				out = append(out, k)
			}
		}
		return out
	case get(v, "projected") != nil:
		var out []string
		for _, s := range list(v, "projected", "sources") {
			src := s.(map[string]any)
			for _, k := range []string{"podCertificate.credentialBundlePath", "podCertificate.keyPath",
				"podCertificate.certificateChainPath", "clusterTrustBundle.path"} {
				kind, field, _ := strings.Cut(k, ".")
				if p := str(src, kind, field); p != "" {
					out = append(out, p)
				}
			}
			for _, kind := range []string{"configMap", "secret"} {
				if x := mapAt(src, kind); x != nil {
					if get(x, "items") == nil {
						return nil
					}
					out = append(out, items(list(x, "items"))...)
				}
			}
		}
		return out
	}
	return nil
}

// jolokiaDiscoveryTimeout is the HTTP client timeout of the sidecar's
// Jolokia peer discovery (internal/agent/peerset.go).
const jolokiaDiscoveryTimeout = 10 * time.Second

// reloadBackoff is the pause before a reload action's first retry, doubled
// per retry and jittered to 0.5–1.5× (internal/reload/runner.go).
const reloadBackoff = 500 * time.Millisecond

// longestSync is the longest one sync of this configuration may take once
// a change is seen: the debounce, the rotation gates' peer discovery and
// probes, every reload action with all its retries and the pauses between
// them, then every verify endpoint one after the other, each to its
// deadline. Defaults come from config.Parse.
func longestSync(c *config.Config, peerCount int) time.Duration {
	d := c.Watch.Debounce.D()
	for _, s := range c.Stores {
		if s.Rotation == nil || !s.Rotation.GatesOn() {
			continue
		}
		if s.Rotation.Peers.Jolokia != "" {
			d += jolokiaDiscoveryTimeout
		}
		rounds := max(1, (peerCount+peers.DefaultParallel-1)/peers.DefaultParallel)
		d += time.Duration(rounds) * peers.DefaultProbeTimeout
	}
	for _, r := range c.Reload {
		retries := int(*r.Retries)
		d += time.Duration(retries+1) * r.Timeout.D()
		for i, b := 0, reloadBackoff; i < retries; i, b = i+1, b*2 {
			d += b * 3 / 2
		}
	}
	if c.Verify != nil {
		d += time.Duration(len(c.Verify.Endpoints)) * c.Verify.Deadline.D()
	}
	return d
}

// checkLiveness: the sidecar's liveness probe asks /healthz on its own port
// and leaves room for the longest sync its configuration allows.
func checkLiveness(t *testing.T, p podTemplate, c map[string]any, key string, cfg *config.Config) {
	probe := mapAt(c, "livenessProbe")
	if str(probe, "httpGet", "path") != "/healthz" {
		t.Errorf("%s: liveness probe %v, want httpGet /healthz", str(c, "name"), probe)
		return
	}
	port := str(probe, "httpGet", "port")
	found := false
	for _, pt := range list(c, "ports") {
		pm := pt.(map[string]any)
		found = found || str(pm, "name") == port && strings.HasSuffix(cfg.HTTP.Listen, fmt.Sprintf(":%v", get(pm, "containerPort")))
	}
	if !found {
		t.Errorf("%s: liveness port %s is not the container port the config listens on (%s)", str(c, "name"), port, cfg.HTTP.Listen)
	}
	period, _ := get(probe, "periodSeconds").(int)
	threshold, _ := get(probe, "failureThreshold").(int)
	if threshold == 0 {
		threshold = 3 // Kubernetes' default
	}
	budget := time.Duration(period*threshold) * time.Second
	need := longestSync(cfg, p.peers)
	t.Logf("%s: longest sync %s, liveness budget %d s × %d = %s", key, need, period, threshold, budget)
	if budget < need {
		t.Errorf("%s: liveness periodSeconds %d × failureThreshold %d = %s < the longest sync %s of %s",
			str(c, "name"), period, threshold, budget, need, key)
	}
}

var metricName = regexp.MustCompile(`cassandra_tls_agent_[a-z0-9_]+`)

// checkMonitoring: the PodMonitor selects both pods on their agent port;
// every metric the alerts and the dashboard use is one the agent exports.
func checkMonitoring(t *testing.T, ms []manifest, pods []podTemplate) {
	pm := find(ms, "PodMonitor", "cassandra-tls-agent")
	if pm == nil {
		t.Fatal("no PodMonitor cassandra-tls-agent")
	}
	sel := mapAt(pm.obj, "spec", "selector", "matchLabels")
	if len(sel) == 0 || get(pm.obj, "spec", "selector", "matchExpressions") != nil {
		t.Errorf("PodMonitor selector %v: want matchLabels only", get(pm.obj, "spec", "selector"))
	}
	port := str(list(pm.obj, "spec", "podMetricsEndpoints")[0].(map[string]any), "port")
	for _, p := range pods {
		for k, v := range sel {
			if p.labels[k] != v {
				t.Errorf("PodMonitor does not select %s (label %s=%v)", p.where, k, v)
			}
		}
		has := false
		for _, c := range p.containers() {
			for _, pt := range list(c, "ports") {
				has = has || isAgent(c) && str(pt.(map[string]any), "name") == port
			}
		}
		if !has {
			t.Errorf("%s: no agent container port %s to scrape", p.where, port)
		}
	}

	known := exportedMetrics(t)
	var exprs []string
	for _, m := range ms {
		if m.kind() != "PrometheusRule" {
			continue
		}
		for _, g := range list(m.obj, "spec", "groups") {
			for _, r := range list(g.(map[string]any), "rules") {
				exprs = append(exprs, str(r.(map[string]any), "expr"))
			}
		}
	}
	dash := find(ms, "ConfigMap", "cassandra-tls-agent-dashboard")
	if dash == nil {
		t.Fatal("no dashboard ConfigMap")
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(str(dash.obj, "data", "grafana-dashboard.json")), &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %d panels, %v", len(d.Panels), err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Errorf("%d expressions in the alerts and the dashboard", len(exprs))
	}
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%q names no agent metric", e)
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if known[strings.TrimSuffix(n, suffix)] == "histogram" {
					base = strings.TrimSuffix(n, suffix)
				}
			}
			if known[base] == "" {
				t.Errorf("%q: %s is not a metric of internal/metrics", e, n)
			}
		}
	}
}

// exportedMetrics lists internal/metrics' metric names (and which are
// histograms) from the registry itself, series or not.
func exportedMetrics(t *testing.T) map[string]string {
	out := map[string]string{}
	for name, kind := range metrics.New("test", "test").Registry.Kinds() {
		out[name] = map[bool]string{true: "histogram", false: "metric"}[kind == "histogram"]
	}
	if len(out) < 15 {
		t.Fatalf("found %d metrics in internal/metrics", len(out))
	}
	return out
}

// ---- reading kustomizations the way kustomize does (the parts deploy/ uses)

type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Patches    []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
	ConfigMapGenerator []struct {
		Name    string         `yaml:"name"`
		Files   []string       `yaml:"files"`
		Options map[string]any `yaml:"options"`
	} `yaml:"configMapGenerator"`
}

func (k kustomization) references() []string {
	out := append([]string{}, k.Resources...)
	for _, p := range k.Patches {
		out = append(out, p.Path)
	}
	for _, g := range k.ConfigMapGenerator {
		out = append(out, g.Files...)
	}
	return out
}

// readKustomization decodes dir/kustomization.yaml strictly: a field these
// tests do not understand is one they would silently not check.
func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	f := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var k kustomization
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q", f, k.APIVersion, k.Kind)
	}
	for _, r := range k.references() {
		if strings.Contains(r, "://") || strings.HasPrefix(r, "github.com/") {
			t.Errorf("%s: remote reference %s", f, r)
		}
	}
	return k
}

func readDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

type manifest struct {
	file string
	obj  map[string]any
}

func (m manifest) kind() string { return str(m.obj, "kind") }
func (m manifest) name() string { return str(m.obj, "metadata", "name") }

// build reads a kustomization: its resources (files and directories), its
// generated ConfigMaps, then its patches applied to what matches their
// kind and name.
func build(t *testing.T, dir string) []manifest {
	t.Helper()
	k := readKustomization(t, dir)
	var out []manifest
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: resource %s: %v", dir, r, err)
		}
		if st.IsDir() {
			out = append(out, build(t, p)...)
			continue
		}
		for _, d := range readDocs(t, p) {
			out = append(out, manifest{p, d})
		}
	}
	for _, g := range k.ConfigMapGenerator {
		data := map[string]any{}
		for _, f := range g.Files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatalf("%s: configMapGenerator %s: %v", dir, g.Name, err)
			}
			data[path.Base(f)] = string(b)
		}
		out = append(out, manifest{dir, map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": g.Name}, "data": data}})
	}
	for _, p := range k.Patches {
		file := filepath.Join(dir, p.Path)
		for _, patch := range readDocs(t, file) {
			kind, name := str(patch, "kind"), str(patch, "metadata", "name")
			n := 0
			for i := range out {
				if out[i].kind() == kind && out[i].name() == name {
					out[i].obj = mergePatch(out[i].obj, patch, isBuiltin(out[i].obj), "").(map[string]any)
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: patch of %s/%s matches %d objects", file, kind, name, n)
			}
		}
	}
	return out
}

// isBuiltin: kustomize merges patches of Kubernetes' own kinds
// strategically (lists by their merge keys) and of custom resources as JSON
// merge patches (lists replaced).
func isBuiltin(obj map[string]any) bool {
	av := str(obj, "apiVersion")
	return av == "v1" || av == "apps/v1"
}

// mergeKeys are the strategic-merge keys of the lists deploy/'s patches touch.
var mergeKeys = map[string]string{"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
	"volumeMounts": "mountPath", "ports": "containerPort"}

func mergePatch(dst, patch any, strategic bool, field string) any {
	if pl, ok := patch.([]any); ok {
		dl, ok := dst.([]any)
		key := mergeKeys[field]
		if !strategic || !ok || key == "" {
			return pl
		}
		out := append([]any{}, dl...)
		for _, p := range pl {
			pm, _ := p.(map[string]any)
			i := slices.IndexFunc(out, func(d any) bool { dm, _ := d.(map[string]any); return dm != nil && dm[key] == pm[key] })
			if i < 0 {
				out = append(out, p)
			} else {
				out[i] = mergePatch(out[i], p, strategic, "")
			}
		}
		return out
	}
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, _ := dst.(map[string]any)
	out := map[string]any{}
	for k, v := range dm {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v, strategic, k)
	}
	return out
}

func find(ms []manifest, kind, name string) *manifest {
	for i := range ms {
		if ms[i].kind() == kind && ms[i].name() == name {
			return &ms[i]
		}
	}
	return nil
}

// objs is the manifests' objects in a stable order.
func objs(ms []manifest) []map[string]any {
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = m.obj
	}
	sort.Slice(out, func(i, j int) bool {
		return str(out[i], "kind")+"/"+str(out[i], "metadata", "name") < str(out[j], "kind")+"/"+str(out[j], "metadata", "name")
	})
	return out
}

// get walks nested maps; nil when any step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	switch x := get(v, keys...).(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func mapAt(v any, keys ...string) map[string]any {
	m, _ := get(v, keys...).(map[string]any)
	return m
}
