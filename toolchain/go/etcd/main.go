// Command etcd starts an etcd server. etcd's own main package lives in a
// module that replaces its siblings with local paths, so this module calls
// the same entry point that main package calls.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
