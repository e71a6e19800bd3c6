// pulumi-language-nodejs for the e2e tier.
//
// The Go module proxy does not serve the Node.js language host's module
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), so the e2e tier
// builds this one, for the component package's TypeScript consumer, on what the proxy does
// serve: pkg/v3's Node.js code generator and schema binder, and sdk/v3's package-manager
// helpers (the same ones the published host calls). It implements what `pulumi package
// add` and `pulumi preview` ask of a Node.js host, as the published host does:
//
//   - GeneratePackage: bind the schema (other packages' schemas through the CLI's loader)
//     and write pkg/v3's TypeScript SDK for it; a local SDK compiles itself on install;
//   - Link: `npm pkg set dependencies[NAME]=file:PATH` (sdk/v3's npm.Link, which also
//     allows the SDK's install script);
//   - InstallDependencies: `npm install` in the program's directory;
//   - GetRequiredPackages: every package under node_modules whose package.json has a
//     `pulumi` section marking a resource plugin;
//   - Run: `node node_modules/@pulumi/pulumi/cmd/run --monitor ... ENTRYPOINT` (the runner
//     shipped in the @pulumi/pulumi npm package), with the stack config in PULUMI_CONFIG
//     and its secret keys in PULUMI_CONFIG_SECRET_KEYS, TypeScript on unless the project
//     says `typescript: false`.
//
// npm reads its settings from the environment, so the tier runs it offline from a cache
// the tool build fills (npm_config_offline, npm_config_cache): no test reaches the
// registry. Policy packs, plugins, program generation and packing are not implemented:
// the tier does not use them from Node.js.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/nodejs/npm"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// The runner inside the @pulumi/pulumi npm package.
var runner = filepath.Join("node_modules", "@pulumi", "pulumi", "cmd", "run")

// host is built with e2e/language-host/serve.go (`base`, `serve`, `runProgram`), which
// build-tools.sh copies beside this file.
type host struct {
	base
}

func main() {
	if !parseFlags("root", "typescript", "nodeargs", "packagemanager") {
		return
	}
	h := &host{}
	serve(h, &h.base)
}

func (h *host) GeneratePackage(
	ctx context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	loader, err := schema.NewLoaderClient(req.LoaderTarget)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(req.Schema), &spec); err != nil {
		return nil, fmt.Errorf("reading the package's schema: %w", err)
	}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{AllowDanglingReferences: true})
	if err != nil {
		return nil, err
	}
	rpcDiags := plugin.HclDiagnosticsToRPCDiagnostics(diags)
	if diags.HasErrors() {
		return &pulumirpc.GeneratePackageResponse{Diagnostics: rpcDiags}, nil
	}
	files, err := nodejsgen.GeneratePackage(
		"pulumi-language-nodejs", pkg, req.ExtraFiles, req.LocalDependencies, req.Local, loader)
	if err != nil {
		return nil, err
	}
	for name, content := range files {
		path := filepath.Join(req.Directory, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.GeneratePackageResponse{Diagnostics: rpcDiags}, nil
}

// packageManager reads the project's `packagemanager` runtime option (auto by default).
func packageManager(info *pulumirpc.ProgramInfo) npm.PackageManagerType {
	if name, ok := info.GetOptions().AsMap()["packagemanager"].(string); ok && name != "" {
		return npm.PackageManagerType(name)
	}
	return npm.AutoPackageManager
}

func (h *host) Link(ctx context.Context, req *pulumirpc.LinkRequest) (*pulumirpc.LinkResponse, error) {
	root := req.Info.RootDirectory
	manager, err := npm.ResolvePackageManager(packageManager(req.Info), root)
	if err != nil {
		return nil, err
	}
	var instructions []string
	for _, dep := range req.Packages {
		// The npm name is the one the generator wrote into the SDK's package.json.
		var sdk manifest
		content, err := os.ReadFile(filepath.Join(root, dep.Path, "package.json"))
		if err != nil {
			return nil, fmt.Errorf("linking %s: %w", dep.Package.GetName(), err)
		}
		if err := json.Unmarshal(content, &sdk); err != nil || sdk.Name == "" {
			return nil, fmt.Errorf("linking %s: %s/package.json names no package", dep.Package.GetName(), dep.Path)
		}
		if err := manager.Link(ctx, root, sdk.Name, dep.Path); err != nil {
			return nil, err
		}
		instructions = append(instructions, fmt.Sprintf("import * as %s from %q;",
			camel(dep.Package.GetName()), sdk.Name))
	}
	return &pulumirpc.LinkResponse{
		ImportInstructions: "You can then import the SDK in your TypeScript code with:\n\n  " +
			strings.Join(instructions, "\n  "),
	}, nil
}

// camel turns a package name (istio-mesh) into an identifier (istioMesh).
func camel(name string) string {
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()
	if _, err := npm.Install(server.Context(), packageManager(req.Info), req.Info.ProgramDirectory,
		false, stdout, stderr); err != nil {
		return fmt.Errorf("installing the program's packages: %w", err)
	}
	return closer.Close()
}

// The part of a package.json this host reads.
type manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  *struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

// installedManifests reads the package.json of every package in node_modules (scoped ones
// included), in name order.
func installedManifests(dir string) ([]manifest, error) {
	modules := filepath.Join(dir, "node_modules")
	var paths []string
	for _, pattern := range []string{"*/package.json", "@*/*/package.json"} {
		found, err := filepath.Glob(filepath.Join(modules, pattern))
		if err != nil {
			return nil, err
		}
		paths = append(paths, found...)
	}
	sort.Strings(paths)
	var manifests []manifest
	for _, path := range paths {
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var m manifest
		if err := json.Unmarshal(content, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		manifests = append(manifests, m)
	}
	return manifests, nil
}

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	manifests, err := installedManifests(req.Info.ProgramDirectory)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, m := range manifests {
		if m.Pulumi == nil || !m.Pulumi.Resource {
			continue
		}
		name := m.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(m.Name, "@pulumi/")
		}
		ver := m.Pulumi.Version
		if ver == "" {
			ver = m.Version
		}
		if ver != "" && !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Name: name, Version: ver, Kind: "resource", Server: m.Pulumi.Server,
		})
	}
	return resp, nil
}

// findRunner looks for the @pulumi/pulumi runner from the program's directory up to the
// project's root, as Node.js resolves a package.
func findRunner(info *pulumirpc.ProgramInfo) (string, error) {
	for dir := info.ProgramDirectory; ; dir = filepath.Dir(dir) {
		candidate := filepath.Join(dir, runner)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		if dir == info.RootDirectory || dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no %s above %s: run `npm install` first", runner, info.ProgramDirectory)
		}
	}
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	run, err := findRunner(req.Info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	options := req.Info.GetOptions().AsMap()
	var args []string
	if nodeargs, ok := options["nodeargs"].(string); ok {
		args = append(args, strings.Fields(nodeargs)...)
	}
	args = append(args, run)
	flagArg := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k+"="+v)
		}
	}
	flagArg("monitor", req.GetMonitorAddress())
	flagArg("engine", h.engineAddress)
	flagArg("organization", req.GetOrganization())
	flagArg("project", req.GetProject())
	flagArg("root-directory", req.GetInfo().RootDirectory)
	flagArg("stack", req.GetStack())
	flagArg("pwd", req.GetPwd())
	flagArg("parallel", strconv.Itoa(int(req.GetParallel())))
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	args = append(args, req.Info.EntryPoint)
	args = append(args, req.GetArgs()...)

	config, err := configEnv(req)
	if err != nil {
		return nil, err
	}
	typescript := true
	if value, ok := options["typescript"].(bool); ok {
		typescript = value
	}
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = req.GetPwd()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), config...),
		"PULUMI_NODEJS_TYPESCRIPT="+strconv.FormatBool(typescript))
	if tsconfig, ok := options["tsconfig"].(string); ok && tsconfig != "" {
		cmd.Env = append(cmd.Env, "PULUMI_NODEJS_TSCONFIG_PATH="+tsconfig)
	}
	return runProgram(cmd, "node"), nil
}

func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	manifests, err := installedManifests(req.Info.ProgramDirectory)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, m := range manifests {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: m.Name, Version: m.Version})
	}
	return resp, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: node, Version: strings.TrimSpace(string(out))}, nil
}
