package controlplane

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// cassandraDatacenterCRD is our own CRD for cass-operator's
// CassandraDatacenter (cass-operator's module cannot be fetched here).
//
//go:embed crds/cassandradatacenter.yaml
var cassandraDatacenterCRD []byte

// CRDSource is a set of CRD files inside a Go module.
type CRDSource struct {
	// Module and Version name the module. An empty Version takes the one
	// this module's go.mod selects.
	Module, Version string
	// Files are globs relative to the module's directory.
	Files []string
}

// CRDSources returns the CRDs New installs besides our CassandraDatacenter,
// read from the Go module cache (fetched there on first use): nothing of
// them is copied into the repository.
func CRDSources() []CRDSource {
	return []CRDSource{
		{Module: "github.com/cert-manager/cert-manager", Files: []string{"deploy/crds/*.yaml"}},
		{Module: "github.com/cert-manager/trust-manager", Version: "v0.25.0", Files: []string{
			"deploy/crds/trust.cert-manager.io_bundles.yaml", "deploy/crds/trust-manager.io_clusterbundles.yaml"}},
		{Module: "github.com/prometheus-operator/prometheus-operator", Version: "v0.85.0", Files: []string{
			"example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
			"example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
			"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"}},
	}
}

// InstallCRDs creates every CRD of CRDSources() and ours (leaving any that
// exists) and waits until all are established.
func (cp *ControlPlane) InstallCRDs(ctx context.Context, timeout time.Duration) error {
	crds, err := LoadCRDs(ctx)
	if err != nil {
		return err
	}
	client, err := apiextensions.NewForConfig(cp.Config)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	for _, crd := range crds {
		if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		name := crd.Name
		err := waitFor(ctx, timeout, "CRD "+name+" established", nil, func(ctx context.Context) error {
			got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", got.Status.Conditions)
		})
		if err != nil {
			return err
		}
	}
	cp.Mapper.Reset()
	return nil
}

// LoadCRDs reads the CRDs of CRDSources() from the module cache, and ours.
func LoadCRDs(ctx context.Context) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crds, err := decodeCRDs(cassandraDatacenterCRD, "crds/cassandradatacenter.yaml (embedded)")
	if err != nil {
		return nil, err
	}
	for _, src := range CRDSources() {
		dir, err := ModuleDir(ctx, src.Module, src.Version)
		if err != nil {
			return nil, err
		}
		for _, glob := range src.Files {
			paths, err := filepath.Glob(filepath.Join(dir, glob))
			if err != nil || len(paths) == 0 {
				return nil, fmt.Errorf("CRDs %s in %s: no such file (%v)", glob, dir, err)
			}
			for _, path := range paths {
				data, err := os.ReadFile(path)
				if err != nil {
					return nil, fmt.Errorf("CRDs: %w", err)
				}
				data, err = stripTemplateLines(data, path)
				if err != nil {
					return nil, err
				}
				got, err := decodeCRDs(data, path)
				if err != nil {
					return nil, err
				}
				crds = append(crds, got...)
			}
		}
	}
	return crds, nil
}

// decodeCRDs decodes every CustomResourceDefinition of a multi-document
// YAML file, strictly: a field unknown to apiextensions.k8s.io/v1 is an
// error, not something dropped.
func decodeCRDs(data []byte, name string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	objs, err := DecodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("CRDs %s: %w", name, err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			return nil, fmt.Errorf("CRDs %s: a %s (%s), not a CustomResourceDefinition", name, o.GetKind(), o.GetName())
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, crd, true); err != nil {
			return nil, fmt.Errorf("CRDs %s: %s: %w", name, o.GetName(), err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// stripTemplateLines drops the Helm template lines that wrap a chart's CRD
// file ({{- if … }} … {{- end }}, each alone on its line); any other
// template expression is an error rather than a guess.
func stripTemplateLines(data []byte, name string) ([]byte, error) {
	var out bytes.Buffer
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if bytes.HasPrefix(t, []byte("{{")) && bytes.HasSuffix(t, []byte("}}")) && bytes.Count(t, []byte("{{")) == 1 {
			continue
		}
		if bytes.Contains(line, []byte("{{")) {
			return nil, fmt.Errorf("CRDs %s:%d: a Helm template expression inside a line: %q", name, i+1, t)
		}
		out.Write(line)
	}
	return out.Bytes(), nil
}

// ModuleDir returns the directory of a module in the module cache,
// downloading it if needed. With an empty version it takes the version this
// module's go.mod selects (the working directory must be inside it, as it is
// under go test).
func ModuleDir(ctx context.Context, module, version string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("module %s: the go command is needed to find it in the module cache: %w", module, err)
	}
	var cmd *exec.Cmd
	if version == "" {
		cmd = exec.CommandContext(ctx, gobin, "list", "-m", "-json", module)
	} else {
		cmd = exec.CommandContext(ctx, gobin, "mod", "download", "-json", module+"@"+version)
		cmd.Dir = os.TempDir() // outside any module: go.mod stays as it is
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err == nil && jerr != nil {
		err = jerr
	}
	if err == nil && info.Error != "" {
		err = errors.New(info.Error)
	}
	if err == nil && info.Dir == "" {
		err = errors.New("not in the module cache (go mod download it)")
	}
	if err != nil {
		return "", fmt.Errorf("module %s@%s: %s: %w %s", module, version, strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return info.Dir, nil
}
