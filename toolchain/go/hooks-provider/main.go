// Command pulumi-resource-astrago-hooks is the provider of this project's release hooks
// (components/hook.py): a pre-install check and a pre-delete delay, as resources of the
// same dependency graph as the Helm releases.
//
// The hooks were a Pulumi dynamic resource first. Its provider is a Python process
// (`python -m pulumi.dynamic`) that the engine starts, one at a time, while every
// registration waits: 0.16 s of each preview and update (bench/README.md). This binary
// starts in a few milliseconds. The pulumi-command provider would do the same job but
// cannot be built on this site (toolchain/README.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is stamped from toolchain/tools.toml ([module.hooks-provider] ldflags), the one
// place it is written; components/hook.py asks for the same version (a unit test checks).
var version = "0.0.0-dev"

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	// The engine may pass --tracing; -v and --logtostderr are glog's, registered by its import.
	flag.String("tracing", "", "ignored: this provider emits no traces")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}

	// Stop on Ctrl-C, and when the engine stops answering health checks, so no orphan outlives it.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if engine := flag.Arg(0); engine != "" {
		if err := rpcutil.Healthcheck(ctx, engine, 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(fmt.Errorf("starting the engine health check: %w", err))
		}
	}
	stop := make(chan bool)
	go func() { <-ctx.Done(); close(stop) }()

	provider := newHooks(kubectlNodes)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, provider)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("starting the hooks provider: %w", err))
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("hooks provider stopped: %w", err))
	}
}
