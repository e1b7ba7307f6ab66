package deploy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/k8s/controlplane"
)

const (
	// clusterResourceNamespace is cert-manager's: a ClusterIssuer's Secret
	// lives there (deploy/base/cluster/cluster-issuer.yaml).
	clusterResourceNamespace = "cert-manager"
	// podName is what cass-operator calls the first pod of dc1's default
	// rack (<cluster>-<dc>-<rack>-sts-<ordinal>).
	podName = "cluster1-dc1-default-sts-0"
	// csiDriver is cert-manager's csi-driver.
	csiDriver = "csi.cert-manager.io"
)

// TestCSIDriverScenario walks the seed's story on the csi-driver overlay
// with a real API server, cert-manager, agent and Cassandra node; only the
// kubelet, the container runtime, cass-operator, trust-manager and
// csi-driver are emulated — each from what the overlay itself says.
func TestCSIDriverScenario(t *testing.T) {
	began := time.Now()
	if err := cassnode.Available(); err != nil {
		t.Fatalf("a real Cassandra is required (make deps): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	objs, err := controlplane.Kustomize("../../../deploy/overlays/csi-driver")
	if err != nil {
		t.Fatal(err)
	}
	dc := only(t, objs, "CassandraDatacenter")
	ns := dc.GetNamespace()
	ensureNamespace(t, ctx, ns)
	ensureNamespace(t, ctx, clusterResourceNamespace)

	// 1. The bring-your-own root CA, as the README says to create it.
	root, err := pkitest.CA("cassandra root CA (bring your own)")
	if err != nil {
		t.Fatal(err)
	}
	issuer := only(t, objs, "ClusterIssuer")
	rootSecret, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
	if _, err := cp.Kube.CoreV1().Secrets(clusterResourceNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: rootSecret}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": pkitest.CertPEM(root.Cert), "tls.key": pkitest.KeyPEM(root.Key)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// 2. The overlay, for real; cert-manager issues its Certificates.
	step := time.Now()
	if _, err := cp.CreateStrict(ctx, ns, false, objs...); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "Certificate" {
			if _, err := cp.WaitCertificateReady(ctx, ns, o.GetName(), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("MEASURED the overlay's Certificates Ready in %v", time.Since(step).Round(time.Millisecond))

	// 3. trust-manager, emulated: the Bundle's sources into its ConfigMap.
	emulateTrustManager(t, ctx, only(t, objs, "Bundle"), ns)

	// 4. The pod: the operator's pod template, the agent's two containers,
	// each volume they mount realised as the kubelet would.
	pt, err := cp.ValidateCassandraDatacenterPodTemplate(ctx, ns, dc)
	if err != nil {
		t.Fatal(err)
	}
	initC := container(t, pt.Template.Spec.InitContainers, "cassandra-tls-agent-init")
	sidecarC := container(t, pt.Template.Spec.Containers, "cassandra-tls-agent")
	p := &pod{t: t, ctx: ctx, ns: ns, name: podName, root: t.TempDir(), spec: &pt.Template.Spec, dirs: map[string]string{}}
	env := []string{"POD_NAME=" + p.name, "POD_NAMESPACE=" + p.ns}
	for _, c := range []*corev1.Container{initC, sidecarC} {
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil ||
				!slices.Contains([]string{"metadata.name", "metadata.namespace"}, e.ValueFrom.FieldRef.FieldPath) {
				t.Fatalf("container %s: env %s is not emulated here", c.Name, e.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			p.mount(m)
		}
	}

	// cass-operator's server-config-init leaves cassandra.yaml in
	// /config with the store passwords as ${…} placeholders; stand in
	// with the test node's template, every other variable filled.
	nodeDir, cryptoDir := p.mountDir(initC, "/config"), p.mountDir(initC, "/crypto")
	tmpl, err := cassnode.TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	rendered := strings.NewReplacer("${NODE_DIR}", nodeDir, "${CRYPTO_DIR}", cryptoDir,
		"${NATIVE_PORT}", strconv.Itoa(cassnode.DefaultNativePort), "${STORAGE_PORT}", strconv.Itoa(cassnode.DefaultStoragePort)).Replace(string(data))
	writeFile(t, filepath.Join(nodeDir, "cassandra.yaml"), []byte(rendered))

	// 5. The init container: the overlay's own config, paths moved.
	step = time.Now()
	initArgs := p.args(initC)
	cmd := exec.CommandContext(ctx, agentBin, initArgs...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent %s: %v\n%s", strings.Join(initArgs, " "), err, out)
	}
	t.Logf("MEASURED agent init (stores from cert-manager's output, cassandra.yaml rendered) in %v", time.Since(step).Round(time.Millisecond))

	// 6. A real Cassandra node with those stores.
	step = time.Now()
	node, err := cassnode.Start(ctx, nodeDir, cassnode.Options{Wait: true, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("Cassandra did not start with the stores the agent built from cert-manager's output: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := node.Stop(ctx); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
	})
	t.Logf("MEASURED Cassandra start with the agent's stores: %v", time.Since(step).Round(time.Millisecond))
	pid, err := node.PID()
	if err != nil {
		t.Fatal(err)
	}
	client := p.reaperClient()
	first := p.csiLeaf()
	if served := servedLeaf(t, node.NativeAddr(), client); !served.Equal(first) {
		t.Fatalf("the node serves %s, want the csi-driver leaf %s", served.SerialNumber, first.SerialNumber)
	}

	// 7. The sidecar, with the overlay's sidecar config.
	sidecarArgs := p.args(sidecarC)
	if len(sidecarArgs) != 3 || sidecarArgs[0] != "sidecar" || sidecarArgs[1] != "--config" {
		t.Fatalf("sidecar args %q: want sidecar --config FILE", sidecarArgs)
	}
	cfg, err := os.ReadFile(sidecarArgs[2])
	if err != nil {
		t.Fatal(err)
	}
	listen := httpListen(t, string(cfg))
	sc := agentproc.Start(t, agentBin, "cassandra", listen, string(cfg), env...)
	sc.WaitReady(t, true, 2*time.Minute)

	// 8. The renewal: cert-manager re-issues, csi-driver rewrites the
	// volume (the ..data swap), the sidecar reloads the running node.
	step = time.Now()
	crt, err := cp.WaitCertificateReady(ctx, ns, p.csiCert, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.RenewCertificate(ctx, ns, p.csiCert); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.WaitCertificateReady(ctx, ns, p.csiCert, *crt.Status.Revision+1); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED cert-manager renewal (renew → Ready) in %v", time.Since(step).Round(time.Millisecond))
	p.projectCSI()
	projected := time.Now()
	second := p.csiLeaf()
	if second.Equal(first) {
		t.Fatal("the renewal left the leaf as it was")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		served := servedLeaf(t, node.NativeAddr(), client)
		if served.Equal(second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 min after the projection the node still serves serial %s, not the renewed %s\nsidecar log:\n%s", served.SerialNumber, second.SerialNumber, sc.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("MEASURED renewal projected → renewed leaf served on the native port: %v", time.Since(projected).Round(time.Millisecond))
	if after, err := node.PID(); err != nil || after != pid {
		t.Errorf("the node's JVM pid was %d, now %d (%v): it restarted", pid, after, err)
	}
	if v := sc.Metric("cassandra_tls_agent_served_certificate_match", ""); v != 1 {
		t.Logf("served_certificate_match = %v (verify may still be running)", v)
	}

	// 9. The stores, next to cert-manager's own JKS of the same Certificate.
	t.Run("stores vs cert-manager's JKS", func(t *testing.T) {
		compareStores(t, p, cryptoDir)
	})

	// 10. Hostile material: a key that is not the leaf's. The sidecar
	// refuses it (source_errors_total) and the node keeps the renewed leaf.
	reaperKey, err := cp.Secret(ctx, ns, "reaper-tls")
	if err != nil {
		t.Fatal(err)
	}
	s := p.secret()
	if err := controlplane.ProjectSecret(p.csiDir, &corev1.Secret{ObjectMeta: s.ObjectMeta, Data: map[string][]byte{
		"tls.crt": s.Data["tls.crt"], "tls.key": reaperKey.Data["tls.key"], "ca.crt": s.Data["ca.crt"]}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); sc.Sum("cassandra_tls_agent_source_errors_total", `store="node"`) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after a mismatched key was projected, no source error is counted\nsidecar log:\n%s", sc.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if served := servedLeaf(t, node.NativeAddr(), client); !served.Equal(second) {
		t.Errorf("after a refused update the node serves serial %s, not the renewed %s", served.SerialNumber, second.SerialNumber)
	}

	// 11. Every metric deploy/'s alerts and dashboard name is in this live
	// scrape (test/promql parses them with Prometheus' own parser).
	code, body := sc.Get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	scrape := filepath.Join(t.TempDir(), "metrics.txt")
	writeFile(t, scrape, []byte(body))
	promql := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "TestMetricsExported", ".")
	promql.Dir = "../../promql"
	promql.Env = append(os.Environ(), "PROMQL_SCRAPE="+scrape)
	out, err := promql.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestMetricsExported") {
		t.Errorf("test/promql's TestMetricsExported on the live scrape: %v\n%s", err, out)
	} else {
		t.Logf("test/promql on the live scrape:\n%s", out)
	}
	t.Logf("MEASURED TestCSIDriverScenario: %v", time.Since(began).Round(time.Millisecond))
}

// pod is the emulated Cassandra pod: one directory per volume.
type pod struct {
	t        *testing.T
	ctx      context.Context
	ns, name string
	root     string
	spec     *corev1.PodSpec
	dirs     map[string]string // volume name → directory
	csiCert  string            // the Certificate standing in for csi-driver's request
	csiDir   string
	// mountPaths maps each container's mount path to its directory.
	mountPaths map[string]map[string]string
}

// mount realises the volume of m (once per volume) and records where it
// is for the container.
func (p *pod) mount(m corev1.VolumeMount) {
	t := p.t
	t.Helper()
	if _, done := p.dirs[m.Name]; !done {
		var vol *corev1.Volume
		for i := range p.spec.Volumes {
			if p.spec.Volumes[i].Name == m.Name {
				vol = &p.spec.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("mount %s: no volume", m.Name)
		}
		dir := filepath.Join(p.root, m.Name)
		p.dirs[m.Name] = dir
		switch {
		case vol.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		case vol.Secret != nil:
			s, err := cp.Secret(p.ctx, p.ns, vol.Secret.SecretName)
			if err != nil {
				t.Fatal(err)
			}
			if err := controlplane.ProjectSecret(dir, &corev1.Secret{ObjectMeta: s.ObjectMeta, Data: items(t, s.Data, vol.Secret.Items)}); err != nil {
				t.Fatal(err)
			}
		case vol.ConfigMap != nil:
			cm, err := cp.Kube.CoreV1().ConfigMaps(p.ns).Get(p.ctx, vol.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data := map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			if err := controlplane.ProjectSecret(dir, &corev1.Secret{ObjectMeta: cm.ObjectMeta, Data: items(t, data, vol.ConfigMap.Items)}); err != nil {
				t.Fatal(err)
			}
		case vol.CSI != nil && vol.CSI.Driver == csiDriver:
			p.csiDir = dir
			p.csiCert = p.requestCSI(vol.CSI.VolumeAttributes)
			p.projectCSI()
		default:
			t.Fatalf("volume %s: its source is not emulated here", m.Name)
		}
	}
	if p.mountPaths == nil {
		p.mountPaths = map[string]map[string]string{}
	}
	for _, c := range slices.Concat(p.spec.InitContainers, p.spec.Containers) {
		for _, cm := range c.VolumeMounts {
			if cm.Name == m.Name && cm.MountPath == m.MountPath {
				if p.mountPaths[c.Name] == nil {
					p.mountPaths[c.Name] = map[string]string{}
				}
				p.mountPaths[c.Name][cm.MountPath] = p.dirs[m.Name]
			}
		}
	}
}

// mountDir is the directory of the container's mount at path.
func (p *pod) mountDir(c *corev1.Container, path string) string {
	p.t.Helper()
	d, ok := p.mountPaths[c.Name][path]
	if !ok {
		p.t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	}
	return d
}

// args are the container's args with each file they name (under a mount)
// copied with every mount path in it moved to its directory: the agent
// config is the overlay's, with nothing but paths changed.
func (p *pod) args(c *corev1.Container) []string {
	t := p.t
	t.Helper()
	if len(c.Command) != 0 {
		t.Fatalf("container %s: command %q is not emulated", c.Name, c.Command)
	}
	var paths []string
	for mp := range p.mountPaths[c.Name] {
		paths = append(paths, mp)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) }) // longest first
	var pairs []string
	for _, mp := range paths {
		pairs = append(pairs, mp, p.mountPaths[c.Name][mp])
	}
	move := strings.NewReplacer(pairs...)
	var out []string
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "/") {
			out = append(out, a)
			continue
		}
		data, err := os.ReadFile(move.Replace(a))
		if err != nil {
			t.Fatalf("container %s: arg %s: %v", c.Name, a, err)
		}
		f := filepath.Join(p.root, c.Name+"-"+filepath.Base(a))
		writeFile(t, f, []byte(move.Replace(string(data))))
		out = append(out, f)
	}
	return out
}

// csiAttributes maps csi-driver's volume attributes (its documented
// csi.cert-manager.io/… keys) onto a cert-manager Certificate spec: what
// csi-driver puts in the CertificateRequest it makes for the pod.
var csiAttributes = map[string]func(spec map[string]any, v string) error{
	"issuer-name":  func(s map[string]any, v string) error { return set(s, v, "issuerRef", "name") },
	"issuer-kind":  func(s map[string]any, v string) error { return set(s, v, "issuerRef", "kind") },
	"issuer-group": func(s map[string]any, v string) error { return set(s, v, "issuerRef", "group") },
	"common-name":  func(s map[string]any, v string) error { return set(s, v, "commonName") },
	"dns-names":    func(s map[string]any, v string) error { return set(s, list(v), "dnsNames") },
	"key-algorithm": func(s map[string]any, v string) error {
		return set(s, v, "privateKey", "algorithm")
	},
	"key-size": func(s map[string]any, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		return set(s, n, "privateKey", "size")
	},
	"key-encoding": func(s map[string]any, v string) error { return set(s, v, "privateKey", "encoding") },
	"key-usages":   func(s map[string]any, v string) error { return set(s, list(v), "usages") },
	"duration":     func(s map[string]any, v string) error { return set(s, v, "duration") },
	"renew-before": func(s map[string]any, v string) error { return set(s, v, "renewBefore") },
	// File ownership is the kubelet's and csi-driver's; not emulated.
	"fs-group": func(map[string]any, string) error { return nil },
}

func set(m map[string]any, v any, path ...string) error {
	return unstructured.SetNestedField(m, v, path...)
}

func list(v string) []any {
	var out []any
	for _, s := range strings.Split(v, ",") {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// requestCSI creates the Certificate that stands in for csi-driver's
// request for this pod, from the volume's attributes with csi-driver's
// ${POD_NAME} and ${POD_NAMESPACE} expanded, and waits until it is issued.
// csi-driver makes a new key for each request (rotationPolicy Always). It
// also asks cert-manager for its own JKS of the same Certificate
// (keystores.jks), which csi-driver never writes, for compareStores.
func (p *pod) requestCSI(attrs map[string]string) string {
	t := p.t
	t.Helper()
	spec := map[string]any{"privateKey": map[string]any{"rotationPolicy": "Always"}}
	for k, v := range attrs {
		key, ok := strings.CutPrefix(k, csiDriver+"/")
		fn := csiAttributes[key]
		if !ok || fn == nil {
			t.Fatalf("csi volume attribute %s: not emulated here", k)
		}
		var bad []string
		v = os.Expand(v, func(name string) string {
			switch name {
			case "POD_NAME":
				return p.name
			case "POD_NAMESPACE":
				return p.ns
			}
			bad = append(bad, name)
			return ""
		})
		if len(bad) > 0 {
			t.Fatalf("csi volume attribute %s: variables %q are not csi-driver's", k, bad)
		}
		if err := fn(spec, v); err != nil {
			t.Fatalf("csi volume attribute %s=%q: %v", k, v, err)
		}
	}
	name := "csi-" + p.name
	spec["secretName"] = name
	password := map[string]any{"name": "cassandra-store-passwords", "key": "keystore-password"}
	spec["keystores"] = map[string]any{
		"jks":    map[string]any{"create": true, "passwordSecretRef": password},
		"pkcs12": map[string]any{"create": true, "passwordSecretRef": password}, // cert-manager's default profile
	}
	crt := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": name, "namespace": p.ns}, "spec": spec,
	}}
	if err := controlplane.CheckCertManagerTypes(crt); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.CreateStrict(p.ctx, p.ns, false, crt); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.WaitCertificateReady(p.ctx, p.ns, name, 1); err != nil {
		t.Fatal(err)
	}
	return name
}

// projectCSI writes the files csi-driver writes (tls.crt, tls.key,
// ca.crt: its defaults, which the overlay keeps) from the issued Secret,
// with the kubelet's AtomicWriter sequence csi-driver also uses.
func (p *pod) projectCSI() {
	p.t.Helper()
	s := p.secret()
	files := map[string][]byte{}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		files[k] = s.Data[k]
	}
	if err := controlplane.ProjectSecret(p.csiDir, &corev1.Secret{ObjectMeta: s.ObjectMeta, Data: files}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pod) secret() *corev1.Secret {
	p.t.Helper()
	s, err := cp.Secret(p.ctx, p.ns, p.csiCert)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// csiLeaf is the leaf in the csi volume now.
func (p *pod) csiLeaf() *x509.Certificate {
	p.t.Helper()
	data, err := os.ReadFile(filepath.Join(p.csiDir, "tls.crt"))
	if err != nil {
		p.t.Fatal(err)
	}
	return firstCert(p.t, data)
}

// reaperClient is Reaper's client certificate, issued by cert-manager from
// the overlay's reaper Certificate: the node requires client certificates.
func (p *pod) reaperClient() tls.Certificate {
	p.t.Helper()
	s, err := cp.Secret(p.ctx, p.ns, "reaper-tls")
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// emulateTrustManager does what trust-manager does for the Bundle: its
// Secret sources (in trust-manager's trust namespace, cert-manager's) into
// a ConfigMap named after the Bundle under target.configMap.key.
func emulateTrustManager(t *testing.T, ctx context.Context, b *unstructured.Unstructured, ns string) {
	t.Helper()
	sources, _, err := unstructured.NestedSlice(b.Object, "spec", "sources")
	if err != nil {
		t.Fatal(err)
	}
	var bundle []byte
	for _, src := range sources {
		name, _, _ := unstructured.NestedString(src.(map[string]any), "secret", "name")
		key, _, _ := unstructured.NestedString(src.(map[string]any), "secret", "key")
		if name == "" || key == "" {
			t.Fatalf("Bundle %s: source %v is not emulated here", b.GetName(), src)
		}
		s, err := cp.Secret(ctx, clusterResourceNamespace, name)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, s.Data[key]...)
	}
	key, _, _ := unstructured.NestedString(b.Object, "spec", "target", "configMap", "key")
	if _, err := cp.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: b.GetName()}, Data: map[string]string{key: string(bundle)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func items(t *testing.T, data map[string][]byte, its []corev1.KeyToPath) map[string][]byte {
	t.Helper()
	if len(its) == 0 {
		return data
	}
	out := map[string][]byte{}
	for _, it := range its {
		v, ok := data[it.Key]
		if !ok {
			t.Fatalf("projection item %s: no such key", it.Key)
		}
		out[it.Path] = v
	}
	return out
}

func only(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			if found != nil {
				t.Fatalf("more than one %s", kind)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s", kind)
	}
	return found
}

func container(t *testing.T, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// httpListen is the sidecar config's http.listen as a dialable address.
func httpListen(t *testing.T, cfg string) string {
	t.Helper()
	for _, line := range strings.Split(cfg, "\n") {
		if _, rest, ok := strings.Cut(line, `http: {listen: "`); ok {
			addr, _, _ := strings.Cut(rest, `"`)
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatal(err)
			}
			if host == "" {
				host = "127.0.0.1"
			}
			return net.JoinHostPort(host, port)
		}
	}
	t.Fatal("the sidecar config has no http listen address")
	return ""
}

// servedLeaf is the leaf the node presents on addr.
func servedLeaf(t *testing.T, addr string, client tls.Certificate) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func firstCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
