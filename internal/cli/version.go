package cli

import (
	"context"
	"fmt"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version"
)

func runVersion(ctx context.Context, args []string, env Env) int {
	f := newFlags("version", "", "Print the version, the commit and the Go version that built the binary.", env)
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	fmt.Fprintf(env.Stdout, "cassandra-tls-agent %s (commit %s, %s)\n", version.Version, version.Commit, version.GoVersion())
	return ExitOK
}
