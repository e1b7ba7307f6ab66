package controlplane_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/k8s/controlplane"
)

const issuance = `
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root-ca}
spec:
  isCA: true
  commonName: smoke root CA
  secretName: root-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {group: cert-manager.io, kind: ClusterIssuer, name: selfsigned}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: ca}
spec: {ca: {secretName: root-ca}}
---
apiVersion: v1
kind: Secret
metadata: {name: keystore-password}
stringData: {password: changeit}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: node1}
spec:
  secretName: node1-tls
  commonName: node1
  dnsNames: [node1.cluster1.smoke.svc]
  duration: 24h
  usages: [server auth, client auth]
  privateKey: {algorithm: ECDSA, size: 256, encoding: PKCS8, rotationPolicy: Always}
  additionalOutputFormats: [{type: CombinedPEM}]
  keystores:
    jks:
      create: true
      passwordSecretRef: {name: keystore-password, key: password}
  issuerRef: {group: cert-manager.io, kind: Issuer, name: ca}
`

// TestControlPlane starts the whole control plane once and proves what the
// deploy/ tests rely on.
func TestControlPlane(t *testing.T) {
	cp := controlplane.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const ns = "smoke"
	if _, err := cp.CreateNamespace(ctx, ns, true); err != nil {
		t.Fatal(err)
	}

	t.Run("CRDs", func(t *testing.T) {
		for _, kind := range []struct{ group, kind string }{
			{"cert-manager.io", "Certificate"}, {"cert-manager.io", "ClusterIssuer"},
			{"trust.cert-manager.io", "Bundle"}, {"monitoring.coreos.com", "PodMonitor"},
			{"monitoring.coreos.com", "PrometheusRule"}, {"cassandra.datastax.com", "CassandraDatacenter"},
		} {
			o := &unstructured.Unstructured{}
			o.SetAPIVersion(kind.group + "/v1") // the version is not looked at below
			o.SetKind(kind.kind)
			if _, err := cp.Mapper.RESTMapping(o.GroupVersionKind().GroupKind()); err != nil {
				t.Errorf("%s.%s is not served: %v", kind.kind, kind.group, err)
			}
		}
	})

	t.Run("issue and renew", func(t *testing.T) {
		objs, err := controlplane.DecodeYAML([]byte(issuance))
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.ApplyDryRun(ctx, ns, objs...); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		began := time.Now()
		if _, err := cp.CreateStrict(ctx, ns, false, objs...); err != nil {
			t.Fatal(err)
		}
		crt, err := cp.WaitCertificateReady(ctx, ns, "node1", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURED root CA and leaf Certificates Ready in %v", time.Since(began).Round(time.Millisecond))
		first := checkLeafSecret(t, ctx, cp, ns)

		dir := filepath.Join(t.TempDir(), "node-certs")
		if err := controlplane.ProjectSecret(dir, first); err != nil {
			t.Fatal(err)
		}
		checkProjected(t, dir, first)

		began = time.Now()
		if err := cp.RenewCertificate(ctx, ns, "node1"); err != nil {
			t.Fatal(err)
		}
		if _, err := cp.WaitCertificateReady(ctx, ns, "node1", *crt.Status.Revision+1); err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURED renewal (Issuing set → Ready at the next revision) in %v", time.Since(began).Round(time.Millisecond))
		second := checkLeafSecret(t, ctx, cp, ns)
		if bytes.Equal(first.Data["tls.crt"], second.Data["tls.crt"]) || bytes.Equal(first.Data["tls.key"], second.Data["tls.key"]) {
			t.Error("the renewal left the certificate or the key (rotationPolicy Always) as it was")
		}
		if err := controlplane.ProjectSecret(dir, second); err != nil {
			t.Fatal(err)
		}
		checkProjected(t, dir, second)
	})

	t.Run("six Certificates at once", func(t *testing.T) {
		began := time.Now()
		var objs []*unstructured.Unstructured
		for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
			o := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
				"metadata": map[string]any{"name": "six-" + name},
				"spec": map[string]any{
					"secretName": "six-" + name + "-tls", "commonName": name,
					"privateKey": map[string]any{"algorithm": "ECDSA", "size": int64(256)},
					"issuerRef":  map[string]any{"kind": "Issuer", "name": "ca"},
				},
			}}
			objs = append(objs, o)
		}
		if _, err := cp.CreateStrict(ctx, ns, false, objs...); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if _, err := cp.WaitCertificateReady(ctx, ns, o.GetName(), 1); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("MEASURED six leaf Certificates Ready in %v", time.Since(began).Round(time.Millisecond))
	})

	t.Run("strict create rejects an unknown field", func(t *testing.T) {
		bad := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
			"metadata": map[string]any{"name": "typo"},
			"spec": map[string]any{
				"secretName": "typo-tls", "commonName": "typo", "dnsNamez": []any{"typo"},
				"issuerRef": map[string]any{"kind": "Issuer", "name": "ca"},
			},
		}}
		_, err := cp.CreateStrict(ctx, ns, true, bad)
		if !controlplane.IsInvalid(err) || !strings.Contains(err.Error(), "dnsNamez") {
			t.Errorf("strict create of a Certificate with spec.dnsNamez: got %v, want a BadRequest naming the field", err)
		}
		// A duration time.ParseDuration refuses: the CRD schema says
		// string, and no webhook runs here; only the typed check refuses it.
		badDuration := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
			"metadata": map[string]any{"name": "bad-duration"},
			"spec": map[string]any{
				"secretName": "bad-duration-tls", "commonName": "x", "duration": "ninety days",
				"issuerRef": map[string]any{"kind": "Issuer", "name": "ca"},
			},
		}}
		if _, err := cp.CreateStrict(ctx, ns, true, badDuration); err != nil {
			t.Logf("the API server now refuses a bad duration by itself: %v", err)
		}
		if err := controlplane.CheckCertManagerTypes(badDuration); err == nil || !strings.Contains(err.Error(), "ninety days") {
			t.Errorf("CheckCertManagerTypes of duration %q: got %v, want an error naming it", "ninety days", err)
		}
		good, err := controlplane.DecodeYAML([]byte(issuance))
		if err != nil {
			t.Fatal(err)
		}
		if err := controlplane.CheckCertManagerTypes(good...); err != nil {
			t.Errorf("CheckCertManagerTypes of valid objects: %v", err)
		}

		// A CassandraDatacenter: a typo in our closed schema is refused, one
		// inside podTemplateSpec (kept as is by the CRD) only by validating
		// the template as a PodTemplate.
		dc := cassandraDatacenter(t, "volumeMountz")
		if _, err := cp.CreateStrict(ctx, ns, true, dc); err != nil {
			t.Errorf("the CRD must keep unknown fields inside podTemplateSpec: %v", err)
		}
		if _, err := cp.ValidateCassandraDatacenterPodTemplate(ctx, ns, dc); !controlplane.IsInvalid(err) || !strings.Contains(err.Error(), "volumeMountz") {
			t.Errorf("podTemplateSpec with volumeMountz validated as a PodTemplate: got %v, want a BadRequest naming the field", err)
		}
		dc = cassandraDatacenter(t, "volumeMounts")
		unstructured.SetNestedField(dc.Object, int64(3), "spec", "sizee")
		if _, err := cp.CreateStrict(ctx, ns, true, dc); !controlplane.IsInvalid(err) || !strings.Contains(err.Error(), "sizee") {
			t.Errorf("strict create of a CassandraDatacenter with spec.sizee: got %v, want a BadRequest naming the field", err)
		}
	})

	t.Run("podCertificate volume kept", func(t *testing.T) {
		if srcs := createPodCertificatePod(t, ctx, cp, ns); len(srcs) != 2 || srcs[0].PodCertificate == nil ||
			srcs[0].PodCertificate.CredentialBundlePath != "credentialbundle.pem" || srcs[1].ClusterTrustBundle == nil {
			t.Errorf("the API server dropped projected sources (feature gates %v): stored %+v", controlplane.FeatureGates(), srcs)
		}
		// The same source through a CassandraDatacenter's additionalVolumes.
		dc := cassandraDatacenter(t, "volumeMounts")
		unstructured.SetNestedSlice(dc.Object, []any{map[string]any{
			"name": "identity", "mountPath": "/var/run/identity",
			"volumeSource": map[string]any{"projected": map[string]any{"sources": []any{
				map[string]any{"podCertificate": map[string]any{"signerName": "example.com/cassandra", "keyType": "ECDSAP256", "credentialBundlePath": "credentialbundle.pem"}},
			}}},
		}}, "spec", "storageConfig", "additionalVolumes")
		pt, err := cp.ValidateCassandraDatacenterPodTemplate(ctx, ns, dc)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, v := range pt.Template.Spec.Volumes {
			found = found || (v.Name == "identity" && v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].PodCertificate != nil)
		}
		if !found {
			t.Errorf("the additionalVolumes podCertificate source is not in the validated PodTemplate: %+v", pt.Template.Spec.Volumes)
		}
	})

	t.Run("stop leaves no process", func(t *testing.T) {
		pids := cp.PIDs()
		if err := cp.Stop(); err != nil {
			t.Fatal(err)
		}
		for name, pid := range pids {
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%s (process group %d) still there after Stop: %v", name, pid, err)
			}
		}
	})
}

// TestPodCertificateGateOff is the negative control of "podCertificate
// volume kept": with the gate off, the same pod loses that source silently.
func TestPodCertificateGateOff(t *testing.T) {
	cp := controlplane.StartWith(t, controlplane.Options{
		SkipControllerManager: true, SkipCertManager: true,
		APIServerArgs: []string{"--feature-gates=PodCertificateRequest=false"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "gate-off"
	if _, err := cp.CreateNamespace(ctx, ns, false); err != nil {
		t.Fatal(err)
	}
	// No controller manager: the default ServiceAccount is ours to create.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	if _, err := cp.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server empties the source (an entry with nothing in it) and
	// only warns that the volume "has no sources provided".
	srcs := createPodCertificatePod(t, ctx, cp, ns)
	if len(srcs) != 2 || srcs[0].PodCertificate != nil || srcs[1].ClusterTrustBundle == nil {
		t.Errorf("with PodCertificateRequest off: stored %+v, want the podCertificate source emptied and the clusterTrustBundle one kept", srcs)
	}
}

// createPodCertificatePod creates a pod whose projected volume has a
// podCertificate and a clusterTrustBundle source and returns the sources
// the API server stored.
func createPodCertificatePod(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string) []corev1.VolumeProjection {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-certificate", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none:0",
				VolumeMounts: []corev1.VolumeMount{{Name: "identity", MountPath: "/var/run/identity"}}}},
			Volumes: []corev1.Volume{{Name: "identity", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/cassandra",
						KeyType: "ECDSAP256", CredentialBundlePath: "credentialbundle.pem"}},
					{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{SignerName: ptr("example.com/cassandra"),
						LabelSelector: &metav1.LabelSelector{}, Path: "ca.pem"}},
				}}}}},
		},
	}
	if _, err := cp.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
		t.Fatal(err)
	}
	got, err := cp.Kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Spec.Volumes[0].Projected.Sources
}

// cassandraDatacenter is a small CassandraDatacenter whose sidecar mounts
// the volume crypto with the given field name (volumeMounts, or a typo).
func cassandraDatacenter(t *testing.T, mountsField string) *unstructured.Unstructured {
	t.Helper()
	objs, err := controlplane.DecodeYAML([]byte(`
apiVersion: cassandra.datastax.com/v1beta1
kind: CassandraDatacenter
metadata: {name: dc1}
spec:
  clusterName: cluster1
  serverType: cassandra
  serverVersion: "5.0.2"
  size: 3
  users: [{secretName: reaper-cql, superuser: true}]
  storageConfig:
    cassandraDataVolumeClaimSpec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 10Gi}}
  config:
    cassandra-yaml: {authenticator: PasswordAuthenticator}
  podTemplateSpec:
    spec:
      initContainers:
        - name: server-config-init
      containers:
        - name: cassandra
          volumeMounts: [{name: crypto, mountPath: /crypto, readOnly: true}]
        - name: cassandra-tls-agent
          image: ghcr.io/cassandra-tls-agent/cassandra-tls-agent:latest
          securityContext: {runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          ` + mountsField + `: [{name: crypto, mountPath: /crypto}, {name: server-config, mountPath: /config}]
      volumes:
        - {name: crypto, emptyDir: {medium: Memory}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return objs[0]
}

// checkLeafSecret checks the leaf's Secret as cert-manager wrote it: PEM
// files, the CombinedPEM output and the JKS stores, and returns it.
func checkLeafSecret(t *testing.T, ctx context.Context, cp *controlplane.ControlPlane, ns string) *corev1.Secret {
	t.Helper()
	s, err := cp.Secret(ctx, ns, "node1-tls")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"tls.crt", "tls.key", "ca.crt", "tls-combined.pem", "keystore.jks", "truststore.jks"} {
		if len(s.Data[key]) == 0 {
			t.Fatalf("Secret %s/%s has no %s (keys: %v)", ns, s.Name, key, keys(s.Data))
		}
	}
	leaf := parseCert(t, s.Data["tls.crt"])
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, s.Data["ca.crt"]))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "node1.cluster1.smoke.svc", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("tls.crt does not verify against ca.crt: %v", err)
	}
	if b, _ := pem.Decode(s.Data["tls.key"]); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("tls.key is not a PKCS#8 PEM key (encoding: PKCS8)")
	}
	if c := s.Data["tls-combined.pem"]; !bytes.Contains(c, s.Data["tls.key"]) || !bytes.Contains(c, bytes.TrimSpace(s.Data["tls.crt"])) {
		t.Errorf("tls-combined.pem does not hold tls.key and tls.crt")
	}
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(s.Data["keystore.jks"]), []byte("changeit")); err != nil {
		t.Fatalf("keystore.jks: %v", err)
	}
	private := 0
	for _, a := range ks.Aliases() {
		if ks.IsPrivateKeyEntry(a) {
			private++
		}
	}
	if private != 1 {
		t.Errorf("keystore.jks holds %d private key entries (aliases %v), want 1", private, ks.Aliases())
	}
	return s
}

func checkProjected(t *testing.T, dir string, s *corev1.Secret) {
	t.Helper()
	if target, err := os.Readlink(filepath.Join(dir, "..data")); err != nil || !strings.HasPrefix(target, "..") {
		t.Errorf("%s/..data: %q, %v; want a symlink to a timestamped directory", dir, target, err)
	}
	for key, want := range s.Data {
		if target, err := os.Readlink(filepath.Join(dir, key)); err != nil || target != filepath.Join("..data", key) {
			t.Errorf("%s/%s: %q, %v; want a symlink to ..data/%s", dir, key, target, err, key)
		}
		got, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s: read %d bytes (%v), want the Secret's %d", dir, key, len(got), err, len(want))
		}
	}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
