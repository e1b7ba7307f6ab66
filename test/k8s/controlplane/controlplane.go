// Package controlplane starts a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and cert-manager's controllers, as
// processes built by test/k8s/build.sh into .cache/k8s/bin, on 127.0.0.1 with
// ports from the kernel. The CRDs of cert-manager, trust-manager and
// prometheus-operator are installed from the Go module cache, and one of our
// own for cass-operator's CassandraDatacenter.
//
// There is no kubelet and no container runtime: pods are stored, never run.
// The tests stand in for the kubelet where they need it (ProjectSecret).
//
//	cp := controlplane.Start(t)           // stopped by t.Cleanup
//	objs, _ := controlplane.DecodeYAML(manifest)
//	err := cp.ApplyDryRun(ctx, "default", objs...)
package controlplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FeatureGates returns the API server's feature gates: Kubernetes 1.36
// serves the podCertificate and clusterTrustBundle projected volume sources
// only with these on (beta, off by default); with them off it silently drops
// those sources from a pod.
func FeatureGates() []string {
	return []string{"ClusterTrustBundle=true", "ClusterTrustBundleProjection=true", "PodCertificateRequest=true"}
}

// RuntimeConfig returns the beta APIs the API server enables for them.
func RuntimeConfig() []string {
	return []string{
		"certificates.k8s.io/v1beta1/clustertrustbundles=true",
		"certificates.k8s.io/v1beta1/podcertificaterequests=true",
	}
}

// Options shape New. The zero value is usable once Dir is set (Start sets it).
type Options struct {
	// Dir receives the PKI, the etcd data, the kubeconfigs and one log file
	// per component (etcd.log, kube-apiserver.log, …). Required.
	Dir string
	// BinDir holds the binaries of test/k8s/build.sh. Default: $K8S_TEST_BIN,
	// else .cache/k8s/bin at the root of the repository holding the
	// working directory.
	BinDir string
	// ReadyTimeout bounds each component's wait to be ready (default 2 min:
	// four test packages may share two cores).
	ReadyTimeout time.Duration
	// SkipCertManager starts no cert-manager controllers (CRDs are still
	// installed).
	SkipCertManager bool
	// SkipControllerManager starts no kube-controller-manager: no namespace
	// deletion, no default ServiceAccounts, no garbage collection.
	SkipControllerManager bool
	// APIServerArgs are appended to kube-apiserver's flags (a later
	// --feature-gates=X=false overrides FeatureGates).
	APIServerArgs []string
}

// Timings says how long each step of New took.
type Timings struct {
	PKI, Etcd, APIServer, CRDs, ControllerManager, CertManager, Total time.Duration
}

func (t Timings) String() string {
	return fmt.Sprintf("etcd %v, kube-apiserver %v, CRDs %v, kube-controller-manager %v, cert-manager %v (total %v)",
		t.Etcd.Round(time.Millisecond), t.APIServer.Round(time.Millisecond), t.CRDs.Round(time.Millisecond),
		t.ControllerManager.Round(time.Millisecond), t.CertManager.Round(time.Millisecond), t.Total.Round(time.Millisecond))
}

// ControlPlane is a running control plane. Its clients authenticate as an
// admin (O=system:masters).
type ControlPlane struct {
	// Config reaches the API server as the admin.
	Config *rest.Config
	// Kube, Dynamic and CertManager are clients built from Config.
	Kube        kubernetes.Interface
	Dynamic     dynamic.Interface
	CertManager cmclient.Interface
	// Mapper maps kinds to resources (CRDs included); see RESTMapping.
	Mapper *restmapper.DeferredDiscoveryRESTMapper
	// Kubeconfig is the path of the admin's kubeconfig.
	Kubeconfig string
	// Dir is Options.Dir: logs are Dir/<component>.log.
	Dir string
	// Timings of New.
	Timings Timings

	procs    []*process // in start order
	stopOnce sync.Once
	stopErr  error
}

// Start starts a control plane for t with default options and a temporary
// directory, stops it on cleanup, and prints the tail of every component's
// log if t failed. It fails t if the control plane does not come up.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options (Dir defaults to t.TempDir()).
func StartWith(t testing.TB, o Options) *ControlPlane {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := New(ctx, o)
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs (tails) in %s:\n%s", cp.Dir, cp.LogTails(40))
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	t.Logf("control plane up: %v", cp.Timings)
	return cp
}

// New starts a control plane and waits until every component is ready and
// the CRDs are established. On error nothing is left running, and the error
// holds the tail of the failing component's log. Stop it with Stop.
func New(ctx context.Context, o Options) (cp *ControlPlane, err error) {
	began := time.Now()
	if o.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is required")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	bin, err := binDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{Dir: o.Dir}
	defer func() {
		if err != nil {
			_ = cp.Stop()
			cp = nil
		}
	}()

	step := time.Now()
	pki, err := newPKI(filepath.Join(o.Dir, "pki"))
	if err != nil {
		return cp, err
	}
	cp.Timings.PKI = time.Since(step)

	step = time.Now()
	etcdURL, err := cp.startEtcd(ctx, o, bin)
	if err != nil {
		return cp, err
	}
	cp.Timings.Etcd = time.Since(step)

	step = time.Now()
	server, err := cp.startAPIServer(ctx, o, bin, etcdURL, pki)
	if err != nil {
		return cp, err
	}
	cp.Timings.APIServer = time.Since(step)

	step = time.Now()
	if err := cp.InstallCRDs(ctx, o.ReadyTimeout); err != nil {
		return cp, err
	}
	cp.Timings.CRDs = time.Since(step)

	if !o.SkipControllerManager {
		step = time.Now()
		if err := cp.startControllerManager(ctx, o, bin, server, pki); err != nil {
			return cp, err
		}
		cp.Timings.ControllerManager = time.Since(step)
	}
	if !o.SkipCertManager {
		step = time.Now()
		if err := cp.startCertManager(ctx, o, bin, server, pki); err != nil {
			return cp, err
		}
		cp.Timings.CertManager = time.Since(step)
	}
	cp.Timings.Total = time.Since(began)
	return cp, nil
}

// Stop stops every component, last started first (SIGTERM to its process
// group, SIGKILL after 10 s). It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		for i := len(cp.procs) - 1; i >= 0; i-- {
			errs = append(errs, cp.procs[i].stop(10*time.Second))
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// LogTails returns the last n lines of each component's log.
func (cp *ControlPlane) LogTails(n int) string {
	var b strings.Builder
	for _, p := range cp.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s", p.name, p.logPath, tailFile(p.logPath, n))
	}
	return b.String()
}

// Running returns an error naming every component that has exited.
func (cp *ControlPlane) Running() error {
	var errs []error
	for _, p := range cp.procs {
		errs = append(errs, p.exitErr())
	}
	return errors.Join(errs...)
}

// controlPlanePKI holds the certificates the components authenticate with.
type controlPlanePKI struct {
	dir                      string
	ca                       *keyPair
	caPath                   string
	servingCert, servingKey  string
	saPublic, saPrivate      string
	admin, controllerManager *keyPair
	certManager              *keyPair
}

func newPKI(dir string) (*controlPlanePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	p := &controlPlanePKI{dir: dir}
	var err error
	if p.ca, err = newCert(nil, certSpec{cn: "test control plane CA", isCA: true}); err != nil {
		return nil, err
	}
	if p.caPath, _, err = p.ca.write(dir, "ca"); err != nil {
		return nil, err
	}
	serving, err := newCert(p.ca, certSpec{cn: "kube-apiserver",
		dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		usage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	if p.servingCert, p.servingKey, err = serving.write(dir, "apiserver"); err != nil {
		return nil, err
	}
	// The service-account token signing key: any key pair will do.
	sa, err := newCert(nil, certSpec{cn: "service-accounts"})
	if err != nil {
		return nil, err
	}
	p.saPrivate = filepath.Join(dir, "sa.key")
	p.saPublic = filepath.Join(dir, "sa.crt") // the API server takes a certificate as the public key
	if _, _, err = sa.write(dir, "sa"); err != nil {
		return nil, err
	}
	client := func(cn string, orgs ...string) (*keyPair, error) {
		return newCert(p.ca, certSpec{cn: cn, orgs: orgs, usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	}
	if p.admin, err = client("admin", "system:masters"); err != nil {
		return nil, err
	}
	// The controller manager's own identity, bound by the API server's
	// bootstrap RBAC; it then acts through per-controller service accounts.
	if p.controllerManager, err = client("system:kube-controller-manager"); err != nil {
		return nil, err
	}
	// cert-manager's RBAC comes from its Helm chart, not served here:
	// it runs as a member of system:masters.
	if p.certManager, err = client("cert-manager", "system:masters"); err != nil {
		return nil, err
	}
	return p, nil
}

func (cp *ControlPlane) start(name, bin string, args []string) (*process, error) {
	p, err := startProcess(name, bin, filepath.Join(cp.Dir, name+".log"), args, nil)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// startEtcd starts etcd on two free loopback ports, retrying with other
// ports should another process take one first.
func (cp *ControlPlane) startEtcd(ctx context.Context, o Options, bin string) (string, error) {
	dataDir := filepath.Join(o.Dir, "etcd")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		if err := os.RemoveAll(dataDir); err != nil {
			return "", fmt.Errorf("etcd: %w", err)
		}
		p, err := cp.start("etcd", filepath.Join(bin, "etcd"), []string{
			"--name=test", "--data-dir=" + dataDir,
			"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=test=" + peer,
			// A test's data need not survive a crash: no fsync.
			"--unsafe-no-fsync", "--log-level=warn",
		})
		if err != nil {
			return "", err
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		err = waitFor(ctx, o.ReadyTimeout, "etcd "+client+" healthy", p, func(ctx context.Context) error {
			return httpOK(ctx, hc, client+"/health")
		})
		if err == nil {
			return client, nil
		}
		lastErr = err
		if !portTaken(p) {
			return "", err
		}
		cp.drop(p)
	}
	return "", lastErr
}

// startAPIServer starts kube-apiserver on a free loopback port (retrying like
// startEtcd) and waits for /readyz.
func (cp *ControlPlane) startAPIServer(ctx context.Context, o Options, bin, etcdURL string, pki *controlPlanePKI) (string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return "", err
		}
		server := "https://127.0.0.1:" + strconv.Itoa(ports[0])
		p, err := cp.start("kube-apiserver", filepath.Join(bin, "kube-apiserver"), append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + pki.dir,
			"--tls-cert-file=" + pki.servingCert, "--tls-private-key-file=" + pki.servingKey,
			"--client-ca-file=" + pki.caPath,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki.saPublic, "--service-account-signing-key-file=" + pki.saPrivate,
			"--service-cluster-ip-range=10.0.0.0/24",
			"--authorization-mode=RBAC",
			"--feature-gates=" + strings.Join(FeatureGates(), ","),
			"--runtime-config=" + strings.Join(RuntimeConfig(), ","),
			// Endpoints may not hold a loopback address: publish none for
			// the kubernetes Service rather than log a failure every 10 s.
			"--endpoint-reconciler-type=none",
			"--allow-privileged=true", "--profiling=false",
		}, o.APIServerArgs...))
		if err != nil {
			return "", err
		}
		cfg := &rest.Config{
			Host: server,
			TLSClientConfig: rest.TLSClientConfig{
				CAData: pki.ca.certPEM, CertData: pki.admin.certPEM, KeyData: pki.admin.keyPEM,
			},
			QPS: 100, Burst: 200,
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return "", fmt.Errorf("kube-apiserver client: %w", err)
		}
		err = waitFor(ctx, o.ReadyTimeout, "kube-apiserver "+server+"/readyz", p, func(ctx context.Context) error {
			body, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			if err != nil {
				return fmt.Errorf("%w: %s", err, body)
			}
			return nil
		})
		if err != nil {
			lastErr = err
			if !portTaken(p) {
				return "", err
			}
			cp.drop(p)
			continue
		}
		if err := cp.setClients(cfg, kube, filepath.Join(o.Dir, "admin.kubeconfig"), server, pki); err != nil {
			return "", err
		}
		return server, nil
	}
	return "", lastErr
}

func (cp *ControlPlane) setClients(cfg *rest.Config, kube *kubernetes.Clientset, kubeconfig, server string, pki *controlPlanePKI) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	cm, err := cmclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cert-manager client: %w", err)
	}
	if err := writeKubeconfig(kubeconfig, server, pki.ca, pki.admin); err != nil {
		return err
	}
	cp.Config, cp.Kube, cp.Dynamic, cp.CertManager, cp.Kubeconfig = cfg, kube, dyn, cm, kubeconfig
	cp.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	return nil
}

// startControllerManager starts kube-controller-manager with the controllers
// an API-only cluster needs, and waits for the default ServiceAccount.
func (cp *ControlPlane) startControllerManager(ctx context.Context, o Options, bin, server string, pki *controlPlanePKI) error {
	kubeconfig := filepath.Join(o.Dir, "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, pki.ca, pki.controllerManager); err != nil {
		return err
	}
	p, err := cp.start("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), []string{
		"--kubeconfig=" + kubeconfig,
		// No serving: nothing scrapes it, and no port to collide on.
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=namespace-controller,serviceaccount-controller,serviceaccount-token-controller," +
			"garbage-collector-controller,root-ca-certificate-publisher-controller",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + pki.saPrivate,
		"--root-ca-file=" + pki.caPath,
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, o.ReadyTimeout, "kube-controller-manager (the default ServiceAccount of namespace default)", p, func(ctx context.Context) error {
		_, err := cp.Kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// startCertManager starts cert-manager's controllers and waits until they
// run (their informers then sync within a second).
func (cp *ControlPlane) startCertManager(ctx context.Context, o Options, bin, server string, pki *controlPlanePKI) error {
	kubeconfig := filepath.Join(o.Dir, "cert-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, pki.ca, pki.certManager); err != nil {
		return err
	}
	// ClusterIssuers keep their Secrets in this namespace.
	if _, err := cp.CreateNamespace(ctx, "cert-manager", false); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	p, err := cp.start("cert-manager", filepath.Join(bin, "cert-manager"), []string{
		"-kubeconfig=" + kubeconfig, "-cluster-resource-namespace=cert-manager",
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, o.ReadyTimeout, "cert-manager controllers running", p, func(context.Context) error {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "controllers running") {
			return errors.New(`no "controllers running" in its log yet`)
		}
		return nil
	})
}

// drop forgets a component that failed to start (after stopping it).
func (cp *ControlPlane) drop(p *process) {
	_ = p.stop(5 * time.Second)
	for i, q := range cp.procs {
		if q == p {
			cp.procs = append(cp.procs[:i], cp.procs[i+1:]...)
			break
		}
	}
}

// waitFor polls check every 100 ms until it returns nil, p exits, ctx ends
// or timeout passes; the error names what was awaited and the last cause.
func waitFor(ctx context.Context, timeout time.Duration, what string, p *process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p != nil {
			if err := p.exitErr(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		last = check(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("waiting for %s: not ready after %v: %w (last: %v)", what, timeout, ctx.Err(), last)
			if p != nil {
				err = fmt.Errorf("%w; last lines of %s:\n%s", err, p.logPath, tailFile(p.logPath, 30))
			}
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// freePorts asks the kernel for n free loopback ports. They are free when
// this returns; the components retry should another process take one first.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portTaken reports whether p failed because its port was taken.
func portTaken(p *process) bool {
	data, _ := os.ReadFile(p.logPath)
	return strings.Contains(string(data), "address already in use")
}

// binDir finds the binaries of test/k8s/build.sh.
func binDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("K8S_TEST_BIN")
	}
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("controlplane: %w", err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "test", "k8s", "build.sh")); err == nil {
				dir = filepath.Join(d, ".cache", "k8s", "bin")
				break
			}
			if filepath.Dir(d) == d {
				return "", fmt.Errorf("controlplane: no test/k8s/build.sh above %s: set K8S_TEST_BIN", wd)
			}
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "cert-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("controlplane: %s missing (%v): run ./test/k8s/build.sh first", b, err)
		}
	}
	return dir, nil
}

// PIDs returns the process id of each running or stopped component.
func (cp *ControlPlane) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range cp.procs {
		out[p.name] = p.cmd.Process.Pid
	}
	return out
}
