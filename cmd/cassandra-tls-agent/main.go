// Command cassandra-tls-agent prepares and keeps current the TLS material of
// an Apache Cassandra pod. All logic lives in internal/; see internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
