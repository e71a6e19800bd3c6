#!/usr/bin/env bash
# Builds the real systems of the e2e tier from the Go module proxy, once per machine, into
# a cache outside the repository ($E2E_CACHE, default ~/.cache/istio-mesh-e2e):
#
#   bin/pulumi                        Pulumi CLI (engine, local backend, policy host)
#   bin/pulumi-language-python        our language host (e2e/language-host), see its README
#   bin/pulumi-language-python-exec   the Python SDK's program executor, from sdk/v3
#   bin/pulumi-language-yaml          the YAML language host (the component package's YAML consumer)
#   bin/pulumi-language-nodejs        our Node.js language host (e2e/language-host-nodejs)
#   npm/                              npm's cache for the TypeScript consumer (offline installs)
#   bin/pulumi-resource-kubernetes    the Kubernetes provider
#   bin/helm, bin/istioctl            Helm 3 and istioctl
#   bin/kube-apiserver, bin/etcd      the API server and its store (e2e/etcd)
#   bin/actionlint                    the workflow linter (tests/e2e/test_workflows_lint.py)
#   charts/<version>/*.tgz            Istio's charts, packaged with their release version
#   gateway-api/v<version>/standard-install.yaml
#                                     the Gateway API's standard CRDs of each release the
#                                     stacks' Istio versions are built against
#
# Versions: e2e/versions.env. A tool already built at its pinned version is kept; delete
# its file (or the cache) to rebuild it. `e2e/build-tools.sh NAME...` builds only those.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC1091
source "$here/versions.env"
cache="${E2E_CACHE:-$HOME/.cache/istio-mesh-e2e}"
bin="$cache/bin"
work="$cache/work"
mkdir -p "$bin" "$work" "$cache/charts" "$cache/stamps"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0
LDFLAGS="-s -w"

log() { printf '[e2e-tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# done NAME KEY: true when NAME was built with KEY (its pinned versions) already.
built() { [ -f "$cache/stamps/$1" ] && [ "$(cat "$cache/stamps/$1")" = "$2" ]; }
stamp() { echo "$2" >"$cache/stamps/$1"; }

# A fresh wrapper module in $work/NAME.
wrapper() {
    rm -rf "${work:?}/$1"
    mkdir -p "$work/$1"
    cd "$work/$1"
    go mod init "istio-mesh.e2e/$1" >/dev/null 2>&1
}

# Resolve the wrapper module's requirements, without the module download chatter.
tidy() { go mod tidy 2>&1 | grep -v '^go: \(downloading\|finding\|found\)' || true; }

# imports PKG...: make the wrapper module depend on these main packages, and resolve.
imports() {
    {
        printf '//go:build tools\n\npackage tools\n\nimport (\n'
        printf '\t_ "%s"\n' "$@"
        printf ')\n'
    } >tools.go
    tidy
}

# The directory of a module version in the module cache (downloading it first).
module_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }

build_helm() {
    local key="$HELM_VERSION"
    built helm "$key" && return
    log "helm $HELM_VERSION"
    wrapper helm
    go mod edit -require "helm.sh/helm/v3@$HELM_VERSION"
    imports helm.sh/helm/v3/cmd/helm
    go build -ldflags "$LDFLAGS -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
        -o "$bin/helm" helm.sh/helm/v3/cmd/helm
    stamp helm "$key"
}

build_istio() {
    local key="$ISTIOCTL_MODULE $ISTIO_1_30_MODULE $ISTIO_1_31_MODULE"
    built istio "$key" && return
    log "istioctl and Istio's charts"
    wrapper istio
    go mod edit -require "istio.io/istio@$ISTIOCTL_MODULE"
    imports istio.io/istio/istioctl/cmd/istioctl
    go build -ldflags "$LDFLAGS" -o "$bin/istioctl" istio.io/istio/istioctl/cmd/istioctl
    package_charts "$ISTIO_1_30_MODULE" "$ISTIO_1_30_CHART_VERSION"
    package_charts "$ISTIO_1_31_MODULE" "$ISTIO_1_31_CHART_VERSION"
    stamp istio "$key"
}

# Istio's charts as its release builder ships them: from the module's manifests/charts,
# packaged with the release version as chart and app version.
package_charts() {
    local module="$1" version="$2" src out
    src="$(module_dir "istio.io/istio@$module")"
    out="$cache/charts/$version"
    rm -rf "$out" "$work/charts-$version"
    mkdir -p "$out"
    cp -r "$src/manifests/charts" "$work/charts-$version"
    chmod -R u+w "$work/charts-$version"
    for chart in base istio-control/istio-discovery gateway istio-cni ztunnel; do
        "$bin/helm" package "$work/charts-$version/$chart" --version "$version" \
            --app-version "$version" --destination "$out" >/dev/null
    done
    log "charts $version: $(cd "$out" && ls | tr "\n" " ")"
}

build_etcd() {
    local key="$ETCD_VERSION"
    built etcd "$key" && return
    log "etcd $ETCD_VERSION (embedded server, e2e/etcd)"
    wrapper etcd
    cp "$here/etcd/main.go" .
    go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    tidy
    go build -ldflags "$LDFLAGS" -o "$bin/etcd" .
    stamp etcd "$key"
}

build_kube_apiserver() {
    local key="$KUBERNETES_VERSION"
    built kube-apiserver "$key" && return
    log "kube-apiserver $KUBERNETES_VERSION"
    wrapper kubernetes
    local staging="v0.${KUBERNETES_VERSION#v1.}" src
    go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
    src="$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")"
    # k8s.io/kubernetes replaces each staging module with ./staging/src/k8s.io/NAME: map
    # each to its published k8s.io/NAME v0.<minor>.<patch>.
    for mod in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$src/go.mod"); do
        go mod edit -replace "$mod=$mod@$staging"
    done
    imports k8s.io/kubernetes/cmd/kube-apiserver
    go build -ldflags "$LDFLAGS" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    stamp kube-apiserver "$key"
}

# Make the wrapper module build against pkg/v3 and sdk/v3 at $PULUMI_VERSION.
requires_pulumi_pkg() {
    go mod edit -require "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
        -require "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    # pkg/v3's go.mod replaces sdk/v3 with ../sdk and pins a clipboard fork: repeat both.
    local pkg
    pkg="$(module_dir "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION")"
    go mod edit -replace "github.com/pulumi/pulumi/sdk/v3=github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    sed -n 's#^replace \(github.com/[^ ]*\) => \(github.com/[^ ]*\) \(v[^ ]*\)$#\1=\2@\3#p' \
        "$pkg/go.mod" | while read -r r; do go mod edit -replace "$r"; done
}

build_pulumi() {
    local key="$PULUMI_VERSION"
    built pulumi "$key" && return
    log "pulumi $PULUMI_VERSION"
    wrapper pulumi
    requires_pulumi_pkg
    imports github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    go build -ldflags "$LDFLAGS -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    stamp pulumi "$key"
}

build_language_yaml() {
    local key="$PULUMI_YAML_VERSION"
    built language-yaml "$key" && return
    log "pulumi-language-yaml $PULUMI_YAML_VERSION"
    # Built as pulumi-yaml's own go.mod says (it has no replace lines; pkg/v3 at the
    # version it was written against: the newer pkg/v3 of our CLI changed APIs it calls).
    # A language host talks to the CLI over gRPC only, so the two versions may differ.
    GOBIN="$bin" go install -ldflags "$LDFLAGS" \
        "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v$PULUMI_YAML_VERSION"
    stamp language-yaml "$key"
}

build_language_host() {
    local key="$PULUMI_VERSION $(cat "$here/language-host/"*.go "$here/language-host/go.mod" | sha256sum | cut -c1-16)"
    built language-host "$key" && return
    log "pulumi-language-python (e2e/language-host) on sdk/v3 $PULUMI_VERSION"
    rm -rf "$work/language-host"
    cp -r "$here/language-host" "$work/language-host"
    cd "$work/language-host"
    go build -ldflags "$LDFLAGS" -o "$bin/pulumi-language-python" .
    # The executor the real language host runs programs with ships in sdk/v3.
    local sdk
    sdk="$(module_dir "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION")"
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
    stamp language-host "$key"
}

# Our Node.js language host (e2e/language-host-nodejs) on pkg/v3's code generator.
build_language_nodejs() {
    local key="$PULUMI_VERSION $(cat "$here/language-host-nodejs/main.go" "$here/language-host/serve.go" | sha256sum | cut -c1-16)"
    built language-nodejs "$key" && return
    log "pulumi-language-nodejs (e2e/language-host-nodejs) on pkg/v3 $PULUMI_VERSION"
    wrapper language-nodejs
    requires_pulumi_pkg
    # The serving and program-running code both hosts share.
    cp "$here/language-host-nodejs/main.go" "$here/language-host/serve.go" .
    tidy
    go build -ldflags "$LDFLAGS -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        -o "$bin/pulumi-language-nodejs" .
    stamp language-nodejs "$key"
}

# npm's cache, holding everything the TypeScript consumer (tests/e2e/typescript_consumer)
# installs: its own packages, and those pkg/v3's generator writes into a local SDK (the
# ranges below, read from its source), which `pulumi package add` installs with it. The
# test runs npm offline from this cache.
build_npm_cache() {
    local consumer="$here/../tests/e2e/typescript_consumer/package.json"
    local key="$PULUMI_VERSION $(sha256sum "$consumer" | cut -c1-16)"
    built npm-cache "$key" && return
    log "npm cache for the TypeScript consumer"
    local gen ranges
    gen="$(module_dir "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION")/codegen/nodejs/gen.go"
    ranges="$(python3 - "$gen" <<'PY'
import json, re, sys
source = open(sys.argv[1]).read()
def minimum(name):
    return re.search(rf'{name}\s+string = "([^"]+)"', source).group(1)
print(json.dumps({"name": "local-sdk-dependencies", "private": True, "dependencies": {
    "@pulumi/pulumi": minimum("MinimumValidSDKVersion"),
    "typescript": minimum("MinimumTypescriptVersion"),
    "@types/node": minimum("MinimumNodeTypesVersion"),
}}))
PY
)"
    rm -rf "$work/npm" "$cache/npm"
    mkdir -p "$work/npm/consumer" "$work/npm/sdk"
    cp "$consumer" "$work/npm/consumer/package.json"
    echo "$ranges" >"$work/npm/sdk/package.json"
    local project
    for project in consumer sdk; do
        (cd "$work/npm/$project" && npm install --cache "$cache/npm" --ignore-scripts \
            --no-audit --no-fund --loglevel=error)
    done
    stamp npm-cache "$key"
}

build_kubernetes_provider() {
    local key="$PULUMI_KUBERNETES_MODULE $PULUMI_KUBERNETES_GO_SDK"
    built kubernetes-provider "$key" && return
    log "pulumi-resource-kubernetes $PULUMI_KUBERNETES_VERSION"
    wrapper kubernetes-provider
    local mod="github.com/pulumi/pulumi-kubernetes/provider/v4" src
    go mod edit -require "$mod@$PULUMI_KUBERNETES_MODULE"
    go mod edit -replace "github.com/pulumi/pulumi-kubernetes/sdk/v4=github.com/pulumi/pulumi-kubernetes/sdk/v4@$PULUMI_KUBERNETES_GO_SDK"
    src="$(module_dir "$mod@$PULUMI_KUBERNETES_MODULE")"
    # Keep the Pulumi SDK at the version the provider is written against: the sdk/v4
    # stand-in would otherwise raise it past what its pkg/v3 compiles with.
    local pulumi_sdk
    pulumi_sdk="$(sed -n 's#^\s*github.com/pulumi/pulumi/sdk/v3 \(v[^ ]*\)$#\1#p' "$src/go.mod")"
    go mod edit -replace "github.com/pulumi/pulumi/sdk/v3=github.com/pulumi/pulumi/sdk/v3@$pulumi_sdk"
    # The provider's main embeds its schema with the release version written in (its
    # `generate.go` step); the same three lines here, from the module's own files.
    python3 - "$src/cmd/pulumi-resource-kubernetes" "$PULUMI_KUBERNETES_VERSION" <<'PY'
import json, sys
src, version = sys.argv[1], sys.argv[2]
schema = json.load(open(f"{src}/schema.json"))
schema["version"] = version
json.dump(schema, open("schema-embed.json", "w"))
json.dump(json.load(open(f"{src}/terraform-mapping.json")), open("terraform-mapping-embed.json", "w"))
PY
    cp "$here/kubernetes-provider/main.go" .
    tidy
    go build -ldflags "$LDFLAGS -X $mod/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
        -o "$bin/pulumi-resource-kubernetes" .
    stamp kubernetes-provider "$key"
}

build_actionlint() {
    local key="$ACTIONLINT_VERSION"
    built actionlint "$key" && return
    log "actionlint $ACTIONLINT_VERSION"
    wrapper actionlint
    go mod edit -require "github.com/rhysd/actionlint@$ACTIONLINT_VERSION"
    imports github.com/rhysd/actionlint/cmd/actionlint
    go build -ldflags "$LDFLAGS" -o "$bin/actionlint" github.com/rhysd/actionlint/cmd/actionlint
    stamp actionlint "$key"
}

# Each release's `config/crd/standard/*.yaml` from its module, concatenated as the
# release's `standard-install.yaml` is (the CRDs a stack downloads during the canary,
# when the default revision's Istio moves to another Gateway API release).
build_gateway_api() {
    local key="$GATEWAY_API_VERSIONS documents"
    built gateway-api "$key" && return
    log "gateway-api CRDs $GATEWAY_API_VERSIONS"
    wrapper gateway-api
    local version dir out crd
    for version in ${GATEWAY_API_VERSIONS//,/ }; do
        dir="$(module_dir "sigs.k8s.io/gateway-api@v$version")"
        out="$cache/gateway-api/v$version"
        mkdir -p "$out"
        for crd in "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
            printf -- '---\n'
            cat "$crd"
        done >"$out/standard-install.yaml"
    done
    stamp gateway-api "$key"
}

all=(helm istio etcd kube_apiserver pulumi language_host language_yaml language_nodejs npm_cache kubernetes_provider actionlint gateway_api)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
started=$(date +%s)
for t in "${targets[@]}"; do
    (build_"${t//-/_}")
done
log "done in $(($(date +%s) - started))s; tools in $bin"
