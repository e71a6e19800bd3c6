// pulumi-language-python for the e2e tier.
//
// The Go module proxy does not serve the Python language host's module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), so the e2e tier
// builds this one on the pieces that sdk/v3 does publish: the Python toolchain package
// (virtualenv resolution, `python` commands), the policy-pack proxy, the RPC helpers. It
// implements what the CLI asks of a language host to preview, update and run a Python
// policy pack, in the way the published host documents it:
//
//   - Run: `python -u pulumi-language-python-exec --monitor ... ENTRYPOINT` (the executor
//     shipped in sdk/v3), with the stack config in PULUMI_CONFIG and its secret keys in
//     PULUMI_CONFIG_SECRET_KEYS, from the project's virtualenv;
//   - GetRequiredPackages: every installed distribution with a pulumi-plugin.json (or a
//     `pulumi-` name) as a resource plugin at its version;
//   - RunPlugin for a policy pack: `python -u -m pulumi.policy ENGINE PACK_DIR` with the pack
//     directory as working directory, and PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN,
//     PULUMI_CONFIG from the engine's stack configuration, through sdk/v3's PolicyProxy;
//   - RunPlugin for a resource plugin (a source-based component package, such as this
//     repository): `python PLUGIN_DIR ARGS...`, which runs its `__main__.py`, as the
//     published host does for a directory holding one;
//   - InstallDependencies through the toolchain (pip into the declared virtualenv).
//
// Program generation, packing, linking and debugging are not implemented: the tier does
// not use them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

type host struct {
	base
	executor string
}

func main() {
	// Hosts built on an older pkg/v3 (the YAML language host loading a Python component
	// package's schema) start a language runtime with its project's runtime options and
	// root as flags, as the published host accepts them.
	if !parseFlags("root", "toolchain", "virtualenv", "typechecker") {
		return
	}
	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(err)
	}
	executor := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s: %w", executor, err))
	}
	h := &host{executor: executor}
	serve(h, &h.base)
}

// pythonOptions reads the project's runtime options (`virtualenv`, `toolchain`).
func pythonOptions(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{Root: info.RootDirectory, ProgramDir: info.ProgramDirectory}
	options := info.GetOptions().AsMap()
	if v, ok := options["virtualenv"].(string); ok {
		opts.Virtualenv = v
	}
	switch options["toolchain"] {
	case nil, "pip":
		opts.Toolchain = toolchain.Pip
	default:
		return opts, fmt.Errorf("toolchain %v: this host supports pip only", options["toolchain"])
	}
	if isPlugin && opts.Virtualenv == "" {
		opts.Virtualenv = "venv"
	}
	return opts, nil
}

func (h *host) resolve(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.Toolchain, error) {
	opts, err := pythonOptions(info, isPlugin)
	if err != nil {
		return nil, err
	}
	return toolchain.ResolveToolchain(opts)
}

// listPackages prints, for every installed distribution, its name, version and the
// contents of its pulumi-plugin.json (if it has one).
const listPackages = `
import importlib.metadata as md, json
out = []
for dist in md.distributions():
    plugin = None
    for f in dist.files or []:
        if f.name == "pulumi-plugin.json":
            plugin = json.loads(f.read_text())
            break
    out.append({"name": dist.metadata["Name"], "version": dist.version, "plugin": plugin})
print(json.dumps(out))
`

type pluginJSON struct {
	Resource bool   `json:"resource"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Server   string `json:"server"`
}

type distribution struct {
	Name    string      `json:"name"`
	Version string      `json:"version"`
	Plugin  *pluginJSON `json:"plugin"`
}

// A PEP 440 release (1.2.3, 1.2) that maps onto a plugin version without guessing.
var releaseVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	tc, err := h.resolve(req.Info, false)
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listPackages)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the program's Python packages: %w", err)
	}
	var dists []distribution
	if err := json.Unmarshal(out, &dists); err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, d := range dists {
		name, ver := strings.TrimPrefix(strings.ToLower(d.Name), "pulumi-"), d.Version
		switch {
		case d.Plugin != nil:
			if !d.Plugin.Resource {
				continue
			}
			if d.Plugin.Name != "" {
				name = d.Plugin.Name
			}
			if d.Plugin.Version != "" {
				ver = d.Plugin.Version
			}
		case !strings.HasPrefix(strings.ToLower(d.Name), "pulumi-") || d.Name == "pulumi-policy":
			continue
		}
		if !releaseVersion.MatchString(ver) && !strings.HasPrefix(ver, "v") {
			continue
		}
		for strings.Count(ver, ".") < 2 {
			ver += ".0"
		}
		if !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		server := ""
		if d.Plugin != nil {
			server = d.Plugin.Server
		}
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Name: name, Version: ver, Kind: "resource", Server: server,
		})
	}
	return resp, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := h.resolve(req.Info, false)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	args := []string{h.executor}
	flagArg := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	flagArg("monitor", req.GetMonitorAddress())
	flagArg("engine", h.engineAddress)
	flagArg("project", req.GetProject())
	flagArg("root_directory", req.GetInfo().RootDirectory)
	flagArg("stack", req.GetStack())
	flagArg("pwd", req.GetPwd())
	flagArg("dry_run", strconv.FormatBool(req.GetDryRun()))
	flagArg("parallel", strconv.Itoa(int(req.GetParallel())))
	flagArg("organization", req.GetOrganization())
	args = append(args, req.Info.EntryPoint)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	config, err := configEnv(req)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(env, config...)
	return runProgram(cmd, "the Python executor"), nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	tc, err := h.resolve(req.Info, req.IsPlugin)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := tc.InstallDependencies(server.Context(), req.Info.ProgramDirectory,
		req.UseLanguageVersionTools, true, stdout, stderr); err != nil {
		return err
	}
	return closer.Close()
}

func (h *host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	ctx := server.Context()
	analyzer := req.Kind == string(apitype.AnalyzerPlugin)
	tc, err := h.resolve(req.Info, !analyzer)
	if err != nil {
		return err
	}
	var args []string
	if analyzer {
		args = append([]string{"-u", "-m", "pulumi.policy"}, req.Args...)
		args = append(args, req.Info.ProgramDirectory)
	} else {
		args = append([]string{req.Info.ProgramDirectory}, req.Args...)
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	var proxy *sdk.PolicyProxy
	if analyzer {
		// A policy pack runs in its own directory and learns the stack it judges from the
		// environment, which the engine sends as the pack's stack configuration.
		cmd.Dir = req.Info.ProgramDirectory
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return err
		}
		config, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return err
		}
		if config != nil {
			if cmd.Env == nil {
				cmd.Env = os.Environ()
			}
			setEnv := func(k, v string) {
				if v != "" {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
			setEnv("PULUMI_ORGANIZATION", config.Organization)
			setEnv("PULUMI_PROJECT", config.Project)
			setEnv("PULUMI_STACK", config.Stack)
			setEnv("PULUMI_DRY_RUN", strconv.FormatBool(config.DryRun))
			if config.Config != nil {
				configJSON, err := json.Marshal(config.Config)
				if err != nil {
					return err
				}
				setEnv("PULUMI_CONFIG", string(configJSON))
			}
		}
	} else {
		cmd.Dir = req.Pwd
	}
	cmd.Env = append(cmd.Env, req.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		return err
	}
	if proxy != nil {
		if err := proxy.Attach(ctx, cmd); err != nil {
			return err
		}
		return closer.Close()
	}
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return server.Send(&pulumirpc.RunPluginResponse{
				Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exit.ExitCode())},
			})
		}
		return err
	}
	return closer.Close()
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := h.resolve(req.Info, false)
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: info.PythonExecutable, Version: info.PythonVersion.String()}, nil
}

func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := h.resolve(req.Info, false)
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.TransitiveDependencies)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}
