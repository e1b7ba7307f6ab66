package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/k8s/controlplane"
)

// checkNamespace is where the overlays' namespaced objects are validated
// (kustomize puts them in "cassandra", which TestCSIDriverScenario uses for
// real); cluster-scoped objects get checkSuffix on their names, so that a
// strict create never meets the scenario's objects.
const (
	checkNamespace = "deploy-check"
	checkSuffix    = "-check"
)

// relocate returns deep copies of objs moved out of the scenario's way.
func relocate(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		c := o.DeepCopy()
		_, m, err := cp.Resource(c, checkNamespace)
		if err != nil {
			t.Fatal(err)
		}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			c.SetNamespace(checkNamespace)
		} else {
			c.SetName(c.GetName() + checkSuffix)
		}
		out = append(out, c)
	}
	return out
}

func ensureNamespace(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if _, err := cp.CreateNamespace(ctx, name, true); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// validate runs every check deploy/ must pass on one object: server-side
// apply (dry run), strict create (dry run), cert-manager's typed decoding,
// and for a CassandraDatacenter its pod template as a core PodTemplate.
func validate(ctx context.Context, o *unstructured.Unstructured) error {
	if err := cp.ApplyDryRun(ctx, checkNamespace, o); err != nil {
		return err
	}
	if _, err := cp.CreateStrict(ctx, checkNamespace, true, o); err != nil {
		return err
	}
	if err := controlplane.CheckCertManagerTypes(o); err != nil {
		return err
	}
	if o.GetKind() == "CassandraDatacenter" {
		if _, err := cp.ValidateCassandraDatacenterPodTemplate(ctx, checkNamespace, o); err != nil {
			return err
		}
	}
	return nil
}

// TestOverlaysValidate: every overlay (and deploy/ itself) passes the real
// API server's validation (server-side apply and strict create, dry run),
// cert-manager's types, and the CassandraDatacenter's pod template passes
// as a core PodTemplate.
func TestOverlaysValidate(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ensureNamespace(t, ctx, checkNamespace)
	for _, dir := range overlays {
		t.Run(strings.TrimPrefix(dir, "../../../"), func(t *testing.T) {
			objs, err := controlplane.Kustomize(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) == 0 {
				t.Fatalf("%s renders no objects", dir)
			}
			for _, o := range relocate(t, objs) {
				if err := validate(ctx, o); err != nil {
					t.Errorf("%s: %v", dir, err)
				}
			}
		})
	}
	t.Logf("MEASURED TestOverlaysValidate: %v", time.Since(began).Round(time.Millisecond))
}

// mutation is one typo in an object of a kind deploy/ uses.
type mutation struct {
	kind, name string // which object (name "" = the first of the kind)
	what       string
	edit       func(o map[string]any) error
	want       string // the refusal must name this
}

func setField(value any, path ...string) func(map[string]any) error {
	return func(o map[string]any) error { return unstructured.SetNestedField(o, value, path...) }
}

// inFirst edits the first element of the list at path.
func inFirst(edit func(map[string]any) error, path ...string) func(map[string]any) error {
	return func(o map[string]any) error {
		list, found, err := unstructured.NestedSlice(o, path...)
		if err != nil || !found || len(list) == 0 {
			return fmt.Errorf("%s: no list (%v)", strings.Join(path, "."), err)
		}
		first, ok := list[0].(map[string]any)
		if !ok {
			return fmt.Errorf("%s[0]: not an object", strings.Join(path, "."))
		}
		if err := edit(first); err != nil {
			return err
		}
		return unstructured.SetNestedSlice(o, list, path...)
	}
}

func appendTo(value any, path ...string) func(map[string]any) error {
	return func(o map[string]any) error {
		list, _, err := unstructured.NestedSlice(o, path...)
		if err != nil {
			return err
		}
		return unstructured.SetNestedSlice(o, append(list, value), path...)
	}
}

// TestOverlayTyposRejected: for each kind of object in the overlays, a copy
// with an unknown field, a bad duration or a bad enum value is refused —
// by the API server (strict create, the CRD schemas, core validation) or,
// where only cert-manager's webhook would look, by CheckCertManagerTypes —
// with a message that names the mistake.
func TestOverlayTyposRejected(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ensureNamespace(t, ctx, checkNamespace)
	var objs []*unstructured.Unstructured
	for _, dir := range overlays[1:] { // deploy/ is the csi-driver overlay
		got, err := controlplane.Kustomize(dir)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	objs = relocate(t, objs)

	tests := []mutation{
		// An unknown field in every kind.
		{kind: "ClusterIssuer", what: "unknown field", edit: setField("x", "spec", "ca", "secretNmae"), want: "secretNmae"},
		{kind: "Bundle", what: "unknown field", edit: setField(map[string]any{}, "spec", "target", "configmap"), want: "configmap"},
		{kind: "Certificate", what: "unknown field", edit: setField([]any{"x"}, "spec", "dnsName"), want: "dnsName"},
		{kind: "Issuer", what: "unknown field", edit: setField("x", "spec", "ca", "secretNmae"), want: "secretNmae"},
		{kind: "ConfigMap", what: "unknown field", edit: setField(map[string]any{}, "datas"), want: "datas"},
		{kind: "Secret", what: "unknown field", edit: setField(map[string]any{}, "stringdata"), want: "stringdata"},
		{kind: "CassandraDatacenter", what: "unknown field", edit: setField("x", "spec", "clustername"), want: "clustername"},
		{kind: "CassandraDatacenter", what: "unknown field in the pod template",
			edit: inFirst(setField(true, "securityContext", "runAsNonRot"), "spec", "podTemplateSpec", "spec", "containers"), want: "runAsNonRot"},
		{kind: "Deployment", what: "unknown field",
			edit: inFirst(setField(true, "securityContext", "readOnlyRootFileSystem"), "spec", "template", "spec", "containers"), want: "readOnlyRootFileSystem"},
		{kind: "PodMonitor", what: "unknown field", edit: inFirst(setField("x", "pathh"), "spec", "podMetricsEndpoints"), want: "pathh"},
		{kind: "PrometheusRule", what: "unknown field", edit: inFirst(setField("x", "expresion"), "spec", "groups"), want: "expresion"},
		// Bad durations.
		{kind: "Certificate", what: "bad duration", edit: setField("90 days", "spec", "duration"), want: "90 days"},
		{kind: "Certificate", what: "bad renewBefore", edit: setField("15d", "spec", "renewBefore"), want: "15d"},
		{kind: "PodMonitor", what: "bad interval", edit: inFirst(setField("30 seconds", "interval"), "spec", "podMetricsEndpoints"), want: "30 seconds"},
		{kind: "PrometheusRule", what: "bad for",
			edit: inFirst(inFirst(setField("15 minutes", "for"), "rules"), "spec", "groups"), want: "15 minutes"},
		// Bad enum values.
		{kind: "Certificate", what: "bad key algorithm", edit: setField("ECDSAA", "spec", "privateKey", "algorithm"), want: "ECDSAA"},
		{kind: "Certificate", what: "bad usage", edit: appendTo("server-auth", "spec", "usages"), want: "server-auth"},
		{kind: "Certificate", what: "bad key encoding", edit: setField("PKCS12", "spec", "privateKey", "encoding"), want: "PKCS12"},
		{kind: "CassandraDatacenter", what: "bad serverType", edit: setField("casandra", "spec", "serverType"), want: "casandra"},
		{kind: "Deployment", what: "bad strategy type", edit: setField("Rolling", "spec", "strategy", "type"), want: "Rolling"},
		{kind: "Deployment", what: "bad imagePullPolicy",
			edit: inFirst(setField("Sometimes", "imagePullPolicy"), "spec", "template", "spec", "containers"), want: "Sometimes"},
		{kind: "PodMonitor", what: "bad scheme", edit: inFirst(setField("htps", "scheme"), "spec", "podMetricsEndpoints"), want: "htps"},
		{kind: "Secret", what: "bad type", edit: setField("kubernetes.io/tls", "type"), want: "tls.crt"},
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.kind] = true
		t.Run(tc.kind+"/"+tc.what, func(t *testing.T) {
			var orig *unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() == tc.kind && (tc.name == "" || o.GetName() == tc.name) {
					orig = o
					break
				}
			}
			if orig == nil {
				t.Fatalf("no %s in the overlays", tc.kind)
			}
			if err := validate(ctx, orig); err != nil {
				t.Fatalf("the unmutated %s is refused: %v", controlplane.Describe(orig), err)
			}
			bad := orig.DeepCopy()
			if err := tc.edit(bad.Object); err != nil {
				t.Fatal(err)
			}
			err := validate(ctx, bad)
			if err == nil {
				t.Fatalf("%s with a %s is accepted", controlplane.Describe(bad), tc.what)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s with a %s: refused with %q, which does not name %q", controlplane.Describe(bad), tc.what, err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
	for k := range kinds {
		if !covered[k] {
			t.Errorf("the overlays hold a %s, for which no typo is tried", k)
		}
	}
	t.Logf("MEASURED TestOverlayTyposRejected: %v", time.Since(began).Round(time.Millisecond))
}
