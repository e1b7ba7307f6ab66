package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
)

// CertificateTimeout bounds the waits for a Certificate.
const CertificateTimeout = 2 * time.Minute

// WaitCertificateReady waits until Certificate namespace/name is Ready for
// its current generation, not issuing, at revision minRevision or later
// (1: issued at least once), and returns it. On timeout the error holds the
// Certificate's conditions and those of its CertificateRequests.
func (cp *ControlPlane) WaitCertificateReady(ctx context.Context, namespace, name string, minRevision int) (*cmapi.Certificate, error) {
	var crt *cmapi.Certificate
	err := waitFor(ctx, CertificateTimeout, fmt.Sprintf("Certificate %s/%s Ready at revision ≥ %d", namespace, name, minRevision), nil,
		func(ctx context.Context) error {
			var err error
			crt, err = cp.CertManager.CertmanagerV1().Certificates(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if c := certificateCondition(crt, cmapi.CertificateConditionIssuing); c != nil && c.Status == cmmeta.ConditionTrue {
				return fmt.Errorf("issuing: %s", c.Message)
			}
			c := certificateCondition(crt, cmapi.CertificateConditionReady)
			if c == nil || c.Status != cmmeta.ConditionTrue || c.ObservedGeneration != crt.Generation {
				return fmt.Errorf("not ready: %s", describeConditions(crt.Status.Conditions))
			}
			if crt.Status.Revision == nil || *crt.Status.Revision < minRevision {
				return fmt.Errorf("ready at revision %v", revision(crt))
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, cp.certificateRequestsReport(namespace, name))
	}
	return crt, nil
}

// RenewCertificate asks cert-manager to issue Certificate namespace/name
// again now, as `cmctl renew` does: it sets the Issuing condition. Wait for
// the new certificate with WaitCertificateReady(…, revision+1).
func (cp *ControlPlane) RenewCertificate(ctx context.Context, namespace, name string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crt, err := cp.CertManager.CertmanagerV1().Certificates(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cond := cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue,
			Reason: "ManuallyTriggered", Message: "renewal asked for by a test",
			LastTransitionTime: &metav1.Time{Time: time.Now()}, ObservedGeneration: crt.Generation,
		}
		replaced := false
		for i, c := range crt.Status.Conditions {
			if c.Type == cond.Type {
				crt.Status.Conditions[i], replaced = cond, true
			}
		}
		if !replaced {
			crt.Status.Conditions = append(crt.Status.Conditions, cond)
		}
		_, err = cp.CertManager.CertmanagerV1().Certificates(namespace).UpdateStatus(ctx, crt, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("renew Certificate %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Secret reads Secret namespace/name.
func (cp *ControlPlane) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s, err := cp.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read Secret %s/%s: %w", namespace, name, err)
	}
	return s, nil
}

// ProjectSecret publishes a Secret's data into dir exactly as the kubelet
// updates a Secret volume (the AtomicWriter sequence: a new timestamped
// directory, the ..data symlink swapped to it, one symlink per key): the
// first call creates the volume, each later call is one update.
func ProjectSecret(dir string, s *corev1.Secret) error {
	if err := kubeletfs.Write(dir, s.Data); err != nil {
		return fmt.Errorf("project Secret %s/%s into %s: %w", s.Namespace, s.Name, dir, err)
	}
	return nil
}

func certificateCondition(crt *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == t {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

func describeConditions(cs []cmapi.CertificateCondition) string {
	if len(cs) == 0 {
		return "no conditions"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}

func revision(crt *cmapi.Certificate) any {
	if crt.Status.Revision == nil {
		return "none"
	}
	return *crt.Status.Revision
}

// certificateRequestsReport lists the CertificateRequests of a Certificate
// with their conditions, for an error message.
func (cp *ControlPlane) certificateRequestsReport(namespace, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := cp.CertManager.CertmanagerV1().CertificateRequests(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("; CertificateRequests: %v", err)
	}
	var b strings.Builder
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] != name {
			continue
		}
		fmt.Fprintf(&b, "\n  CertificateRequest %s:", cr.Name)
		for _, c := range cr.Status.Conditions {
			fmt.Fprintf(&b, " %s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	if b.Len() == 0 {
		return "; no CertificateRequest for it"
	}
	if err := cp.Running(); err != nil {
		fmt.Fprintf(&b, "\n%v", errors.Unwrap(err))
	}
	return b.String()
}
