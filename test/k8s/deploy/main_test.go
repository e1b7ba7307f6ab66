// Package deploy_test proves deploy/ on a real control plane
// (../controlplane): every overlay passes the API server's validation and a
// typo in any object is refused; cert-manager issues the Certificates of the
// csi-driver overlay, the agent builds stores from its real output, a real
// Cassandra node starts with them and the sidecar rotates it in place on a
// renewal; and the JDK reads both the agent's stores and cert-manager's.
package deploy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/k8s/controlplane"
)

// One control plane and one agent binary for the package, made by TestMain.
// Tests only read these; each test works in namespaces of its own.
var (
	cp       *controlplane.ControlPlane
	agentBin string
)

// overlays are the kustomize directories a user applies, relative to this
// package: deploy/ itself and each overlay.
var overlays = []string{"../../../deploy", "../../../deploy/overlays/csi-driver", "../../../deploy/overlays/pod-certificates"}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "k8s-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	// The agent under test, built from the main module as a user builds it.
	agentBin = filepath.Join(dir, "cassandra-tls-agent")
	build := exec.Command("go", "build", "-o", agentBin, "./cmd/cassandra-tls-agent")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the agent: %v\n%s", err, out)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err = controlplane.New(ctx, controlplane.Options{Dir: filepath.Join(dir, "controlplane")})
	if err != nil {
		fmt.Fprintf(os.Stderr, "control plane: %v\n", err)
		return 1
	}
	fmt.Printf("control plane up: %v\n", cp.Timings)
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "control plane logs:\n%s\n", cp.LogTails(40))
	}
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
	}
	return code
}
