// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 (the
// etcd binary's own module is not needed for a test control plane).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
