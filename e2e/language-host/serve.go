// What the e2e tier's language hosts (this Python one, and e2e/language-host-nodejs, whose
// build copies this file beside its own main.go) do the same way: start as the CLI starts
// a plugin, tell it their port, answer the handshake, and run a program with the stack's
// config in the environment, mapping its exit to the answer the engine expects.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The exit code with which a language SDK's runner says it already showed the user an
// error (the Python executor's and the Node.js runner's alike).
const exitAfterUserMessage = 32

// base answers what every host answers alike; a host embeds it.
type base struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func (b *base) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	b.engineAddress = req.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (b *base) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (b *base) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// parseFlags reads the flags the CLI starts a language host with: `legacy` are runtime
// options older CLIs pass as flags (every request carries them too, which is where the
// hosts read them). It returns false when the host was only asked for its version.
func parseFlags(legacy ...string) bool {
	flag.String("tracing", "", "ignored: tracing is not supported by this host")
	for _, name := range legacy {
		flag.String(name, "", "ignored: read from each request's program info")
	}
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return false
	}
	return true
}

// serve registers `server` on a loopback port, prints the port for the CLI and serves
// until interrupted. The engine's address is the first argument, if any.
func serve(server pulumirpc.LanguageRuntimeServer, b *base) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if args := flag.Args(); len(args) > 0 {
		b.engineAddress = args[0]
		if err := rpcutil.Healthcheck(ctx, b.engineAddress, 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(err)
		}
	}
	stop := make(chan bool)
	go func() { <-ctx.Done(); close(stop) }()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, server)
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(err)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(err)
	}
}

// configEnv is the stack's config as a program reads it: PULUMI_CONFIG, and the keys
// that are secret in PULUMI_CONFIG_SECRET_KEYS.
func configEnv(req *pulumirpc.RunRequest) ([]string, error) {
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	return []string{"PULUMI_CONFIG=" + string(config), "PULUMI_CONFIG_SECRET_KEYS=" + string(secrets)}, nil
}

// runProgram runs `cmd` to its end and says how it ended as the engine expects it: a
// bail when the program already reported its error, the exit code otherwise.
func runProgram(cmd *exec.Cmd, what string) *pulumirpc.RunResponse {
	err := cmd.Run()
	if err == nil {
		return &pulumirpc.RunResponse{}
	}
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.ExitStatus() == exitAfterUserMessage {
			return &pulumirpc.RunResponse{Bail: true}
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("program exited with non-zero exit code: %d", exit.ExitCode()),
		}
	}
	return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run %s: %v", what, err)}
}
