package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// FieldManager is the field manager of every write of these helpers.
const FieldManager = "cassandra-tls-agent-tests"

// DecodeYAML decodes a multi-document YAML (or JSON) stream into objects,
// skipping empty documents. A document without apiVersion or kind is an
// error naming its position.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m map[string]any
		if err := utilyaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", n, err)
		}
		if m == nil { // only comments
			continue
		}
		o := &unstructured.Unstructured{Object: m}
		if o.GetAPIVersion() == "" || o.GetKind() == "" {
			return nil, fmt.Errorf("YAML document %d: no apiVersion or kind", n)
		}
		objs = append(objs, o)
	}
}

// Kustomize builds a kustomization directory (kustomize's library, as
// `kubectl kustomize DIR` does) into objects.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	opts := krusty.MakeDefaultOptions()
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	data, err := res.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	objs, err := DecodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return objs, nil
}

// Describe names an object as "Kind namespace/name" for messages.
func Describe(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}

// Resource returns the dynamic client of o's resource, in o's namespace or
// else namespace when the kind is namespaced. Kinds the mapper does not know
// yet (a CRD just installed) trigger one rediscovery.
func (cp *ControlPlane) Resource(o *unstructured.Unstructured, namespace string) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	gvk := o.GroupVersionKind()
	m, err := cp.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		cp.Mapper.Reset()
		m, err = cp.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", Describe(o), err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return cp.Dynamic.Resource(m.Resource), m, nil
	}
	ns := o.GetNamespace()
	if ns == "" {
		ns = namespace
	}
	if ns == "" {
		return nil, nil, fmt.Errorf("%s: a namespaced kind with no namespace given", Describe(o))
	}
	return cp.Dynamic.Resource(m.Resource).Namespace(ns), m, nil
}

// ApplyDryRun server-side applies each object with dryRun=All, as
// `kubectl apply --server-side --dry-run=server` does, with strict field
// validation. Objects without a namespace go to namespace when namespaced.
// Every object is tried; the error joins one error per rejected object.
//
// Server-side apply drops the unknown fields of a CRD that preserves
// unknown fields without error: use CreateStrict to catch those typos.
func (cp *ControlPlane) ApplyDryRun(ctx context.Context, namespace string, objs ...*unstructured.Unstructured) error {
	force := true
	opts := metav1.PatchOptions{
		FieldManager: FieldManager, Force: &force,
		DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict,
	}
	return cp.each(namespace, objs, func(res dynamic.ResourceInterface, o *unstructured.Unstructured) error {
		data, err := o.MarshalJSON()
		if err != nil {
			return fmt.Errorf("%s: %w", Describe(o), err)
		}
		if _, err := res.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
			return fmt.Errorf("apply --dry-run=server %s: %w", Describe(o), err)
		}
		return nil
	})
}

// CreateStrict creates each object with strict field validation (any field
// unknown to the schema is an error, also where the CRD preserves unknown
// fields), for real or, with dryRun, only through validation and admission.
// It returns what the API server stored (or would store) of the objects it
// took, in order; every object is tried and the error joins one error per
// rejected object.
func (cp *ControlPlane) CreateStrict(ctx context.Context, namespace string, dryRun bool, objs ...*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	opts := metav1.CreateOptions{FieldManager: FieldManager, FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var out []*unstructured.Unstructured
	err := cp.each(namespace, objs, func(res dynamic.ResourceInterface, o *unstructured.Unstructured) error {
		got, err := res.Create(ctx, o, opts)
		if err != nil {
			return fmt.Errorf("create (strict) %s: %w", Describe(o), err)
		}
		out = append(out, got)
		return nil
	})
	return out, err
}

// each calls fn with every object and its resource client, and joins the
// errors.
func (cp *ControlPlane) each(namespace string, objs []*unstructured.Unstructured, fn func(dynamic.ResourceInterface, *unstructured.Unstructured) error) error {
	var errs []error
	for _, o := range objs {
		res, _, err := cp.Resource(o, namespace)
		if err == nil {
			err = fn(res, o)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CreateNamespace creates a namespace; with waitServiceAccount it then waits
// (up to a minute) for the controller manager to create its default
// ServiceAccount, which the API server's admission requires of every pod.
func (cp *ControlPlane) CreateNamespace(ctx context.Context, name string, waitServiceAccount bool) (*corev1.Namespace, error) {
	ns, err := cp.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	if waitServiceAccount {
		err := waitFor(ctx, time.Minute, "ServiceAccount "+name+"/default", nil, func(ctx context.Context) error {
			_, err := cp.Kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// ValidatePodTemplate has the API server validate spec (a PodTemplateSpec
// as a map) as a core PodTemplate named name: a strict dry-run create, so an
// unknown field, a bad value or a dangling volume mount is an error. It
// returns what the server would store, with its defaults: compare it with
// the input to see that nothing was dropped.
func (cp *ControlPlane) ValidatePodTemplate(ctx context.Context, namespace, name string, spec map[string]any) (*corev1.PodTemplate, error) {
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "PodTemplate",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"template": spec,
	}}
	got, err := cp.CreateStrict(ctx, namespace, true, o)
	if err != nil {
		return nil, err
	}
	pt := &corev1.PodTemplate{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got[0].Object, pt); err != nil {
		return nil, fmt.Errorf("PodTemplate %s/%s: %w", namespace, name, err)
	}
	return pt, nil
}

// OperatorVolumes are the volumes cass-operator adds to every Cassandra pod
// (server-data is a claim of the StatefulSet); a podTemplateSpec may mount
// them without defining them.
func OperatorVolumes() []string {
	return []string{"server-data", "server-config", "server-config-base", "server-logs", "vector-lib"}
}

// OperatorContainers are the containers and init containers cass-operator
// adds to every Cassandra pod, with their images; a podTemplateSpec may list
// them without an image to add settings to them.
func OperatorContainers() []string {
	return []string{"cassandra", "server-system-logger", "server-config-init", "server-config-init-base"}
}

// OperatorImage stands in for the image cass-operator gives its containers.
const OperatorImage = "cass-operator.invalid/stand-in:0"

// CassandraDatacenterPodTemplate returns a CassandraDatacenter's pod
// template as cass-operator would hand it to its StatefulSet, as far as the
// API server's validation can tell: spec.podTemplateSpec, plus a volume for
// each storageConfig.additionalVolumes entry (its volumeSource, or an
// emptyDir standing in for a pvcSpec claim) and an emptyDir standing in for
// each OperatorVolumes() entry the template does not define, and OperatorImage
// for each OperatorContainers() entry listed without an image (any other
// container without one stays invalid).
func CassandraDatacenterPodTemplate(dc *unstructured.Unstructured) (map[string]any, error) {
	tmpl, found, err := unstructured.NestedMap(dc.Object, "spec", "podTemplateSpec")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.podTemplateSpec: %w", Describe(dc), err)
	}
	if !found {
		tmpl = map[string]any{}
	}
	volumes, _, err := unstructured.NestedSlice(tmpl, "spec", "volumes")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.podTemplateSpec.spec.volumes: %w", Describe(dc), err)
	}
	defined := map[string]bool{}
	for _, v := range volumes {
		if m, ok := v.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				defined[n] = true
			}
		}
	}
	extra, _, err := unstructured.NestedSlice(dc.Object, "spec", "storageConfig", "additionalVolumes")
	if err != nil {
		return nil, fmt.Errorf("%s: spec.storageConfig.additionalVolumes: %w", Describe(dc), err)
	}
	for i, v := range extra {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: spec.storageConfig.additionalVolumes[%d]: not an object", Describe(dc), i)
		}
		name, _ := m["name"].(string)
		vol := map[string]any{"name": name}
		if src, ok := m["volumeSource"].(map[string]any); ok {
			for k, val := range src {
				vol[k] = val
			}
		} else {
			vol["emptyDir"] = map[string]any{}
		}
		volumes = append(volumes, vol)
		defined[name] = true
	}
	for _, name := range OperatorVolumes() {
		if !defined[name] {
			volumes = append(volumes, map[string]any{"name": name, "emptyDir": map[string]any{}})
		}
	}
	if err := unstructured.SetNestedSlice(tmpl, volumes, "spec", "volumes"); err != nil {
		return nil, fmt.Errorf("%s: %w", Describe(dc), err)
	}
	for _, field := range []string{"containers", "initContainers"} {
		containers, _, err := unstructured.NestedSlice(tmpl, "spec", field)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.podTemplateSpec.spec.%s: %w", Describe(dc), field, err)
		}
		for _, c := range containers {
			m, ok := c.(map[string]any)
			if !ok {
				continue // the API server says what is wrong with it
			}
			name, _ := m["name"].(string)
			if _, has := m["image"]; !has && slices.Contains(OperatorContainers(), name) {
				m["image"] = OperatorImage
			}
		}
		if containers != nil {
			if err := unstructured.SetNestedSlice(tmpl, containers, "spec", field); err != nil {
				return nil, fmt.Errorf("%s: %w", Describe(dc), err)
			}
		}
	}
	return tmpl, nil
}

// ValidateCassandraDatacenterPodTemplate validates a CassandraDatacenter's
// pod template (CassandraDatacenterPodTemplate) as a core PodTemplate.
func (cp *ControlPlane) ValidateCassandraDatacenterPodTemplate(ctx context.Context, namespace string, dc *unstructured.Unstructured) (*corev1.PodTemplate, error) {
	tmpl, err := CassandraDatacenterPodTemplate(dc)
	if err != nil {
		return nil, err
	}
	ns := dc.GetNamespace()
	if ns == "" {
		ns = namespace
	}
	pt, err := cp.ValidatePodTemplate(ctx, ns, dc.GetName()+"-pod-template", tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.podTemplateSpec as a PodTemplate: %w", Describe(dc), err)
	}
	return pt, nil
}

// IsInvalid reports whether err (or one it joins) is the API server's
// refusal of an object (422 Invalid, or 400 BadRequest as strict field
// validation answers).
func IsInvalid(err error) bool {
	if err == nil {
		return false
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if IsInvalid(e) {
				return true
			}
		}
		return false
	}
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}

// CheckCertManagerTypes decodes each cert-manager object (cert-manager.io,
// acme.cert-manager.io) into cert-manager's Go type, as its controllers do,
// refusing unknown fields. The API server here runs without cert-manager's
// webhook (it is assembled in cert-manager's internal packages), so a value
// the CRD schema takes as a plain string but the webhook and the controllers
// refuse — a duration that time.ParseDuration rejects — is caught only here.
// Objects of other groups are left alone. Do not create such an object for
// real: cert-manager's informers would fail to decode it.
func CheckCertManagerTypes(objs ...*unstructured.Unstructured) error {
	var errs []error
	for _, o := range objs {
		typed, err := cmscheme.Scheme.New(o.GroupVersionKind())
		if runtime.IsNotRegisteredError(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", Describe(o), err))
			continue
		}
		data, err := o.MarshalJSON()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", Describe(o), err))
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(typed); err != nil {
			errs = append(errs, fmt.Errorf("%s as cert-manager's %T: %w", Describe(o), typed, err))
		}
	}
	return errors.Join(errs...)
}
