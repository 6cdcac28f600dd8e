#!/usr/bin/env bash
# atfleet end to end on a real Kubernetes (kind): build the three images, install the chart, run two
# Atsigns, onboard them with atctl, exchange data, retire one, tear down.
#
# Needs: docker, kind, kubectl, helm (v3.8+ or v4), cargo (for atctl). Linux: the kind node's
# address must be reachable from this machine (it is, on the docker bridge).
# Not run by `make test` (no container engine on the build machines); run with `make e2e-kind`.
#
# Environment: KEEP_CLUSTER=1 leaves the cluster up afterwards; CLUSTER names it (default atfleet).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cluster=${CLUSTER:-atfleet}
release=atfleet
system_ns=atfleet-system
fleet_ns=fleet
tag=e2e
registry=atfleet.local
work=$(mktemp -d)

log() { printf '\n==> %s\n' "$*" >&2; }
for tool in docker kind kubectl helm cargo; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: '$tool' is required" >&2; exit 2; }
done

cleanup() {
  status=$?
  if [[ $status -ne 0 ]]; then
    log "failed; state for diagnosis"
    kubectl get atsigns,pods,svc -A -o wide || true
    kubectl -n "$system_ns" logs deployment/$release-operator --tail=100 || true
    kubectl -n "$system_ns" logs deployment/$release-directory --tail=50 || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
    log "deleting kind cluster $cluster"
    kind delete cluster --name "$cluster" || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

log "creating kind cluster $cluster"
kind create cluster --name "$cluster" --config "$here/cluster.yaml" --wait 120s
kubectl config use-context "kind-$cluster"
node_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cluster-control-plane")
log "kind node address: $node_ip"

log "building images"
docker build -f "$root/atserver-image/Dockerfile" -t "$registry/atserver:$tag" "$root"
docker build -f "$root/directory-svc/Dockerfile" -t "$registry/atdirectory:$tag" "$root"
docker build -f "$root/operator/Dockerfile" -t "$registry/atfleet-operator:$tag" "$root"
for image in atserver atdirectory atfleet-operator; do
  kind load docker-image --name "$cluster" "$registry/$image:$tag"
done

log "installing the chart"
kubectl create namespace "$fleet_ns"
helm upgrade --install "$release" "$root/charts/atfleet" \
  --namespace "$system_ns" --create-namespace \
  -f "$here/values.yaml" \
  --set "directory.tls.selfSigned.extraIPs={$node_ip}" \
  --wait --timeout 5m
# A second upgrade must keep the generated token, passwords and certificates.
token_before=$(kubectl -n "$system_ns" get secret $release-directory-api-token -o jsonpath='{.data.token}')
helm upgrade "$release" "$root/charts/atfleet" --namespace "$system_ns" -f "$here/values.yaml" \
  --set "directory.tls.selfSigned.extraIPs={$node_ip}" --wait --timeout 5m
token_after=$(kubectl -n "$system_ns" get secret $release-directory-api-token -o jsonpath='{.data.token}')
[[ "$token_before" == "$token_after" ]] || { echo "helm upgrade replaced the API token" >&2; exit 1; }

log "creating the class and two Atsigns (published on $node_ip)"
for f in atserverclass-kind.yaml atsign-alice.yaml atsign-bob.yaml; do
  sed "s/host: 127.0.0.1/host: $node_ip/" "$root/deploy/examples/$f" | kubectl apply -f -
done
kubectl -n "$fleet_ns" wait --for=condition=Ready atsign/alice atsign/bob --timeout=5m
kubectl -n "$fleet_ns" get atsigns

log "onboarding with atctl"
cargo build --locked -q -p atctl --bin atctl
atctl="${CARGO_TARGET_DIR:-$root/target}/debug/atctl"
kubectl -n "$system_ns" get secret $release-directory-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca.pem"
kubectl -n "$system_ns" get secret atfleet-ca -o jsonpath='{.data.ca\.crt}' | base64 -d >>"$work/ca.pem"
# The directory's certificate is the chart's (its own generated CA), not the operator's: atServers
# reach it only through the fleet's trust bundle, which the operator writes into each TLS Secret.
if cmp -s <(kubectl -n "$system_ns" get secret $release-directory-tls -o jsonpath='{.data.ca\.crt}') \
          <(kubectl -n "$system_ns" get secret atfleet-ca -o jsonpath='{.data.ca\.crt}'); then
  echo "the directory's CA is the operator's: the run would not exercise the trust bundle" >&2; exit 1
fi
kubectl -n "$fleet_ns" get secret alice-tls -o jsonpath='{.data.trust-bundle\.crt}' | base64 -d \
  | grep -qF "$(sed -n 2p "$work/ca.pem")" || { echo "alice's trust bundle lacks the directory's CA" >&2; exit 1; }
export ATCTL_ROOT_SERVER="$node_ip:30064" ATCTL_CA_BUNDLE="$work/ca.pem"
"$atctl" lookup @alice
"$atctl" --keys-dir "$work/alice" onboard @alice --from-secret "$fleet_ns/alice-cram"
"$atctl" --keys-dir "$work/bob" onboard @bob --from-secret "$fleet_ns/bob-cram"

log "exchanging data"
"$atctl" --keys-dir "$work/alice" -a @alice put phone.e2e "+1 555 0100"
"$atctl" --keys-dir "$work/alice" -a @alice share phone.e2e --with @bob
got=$("$atctl" --keys-dir "$work/bob" -a @bob get @bob:phone.e2e@alice)
[[ "$got" == "+1 555 0100" ]] || { echo "bob read '$got' instead of alice's value" >&2; exit 1; }
"$atctl" --keys-dir "$work/alice" -a @alice notify --text @bob "hello from the kind e2e"

log "retiring bob"
kubectl -n "$fleet_ns" delete atsign bob --wait --timeout=3m
if "$atctl" lookup @bob 2>/dev/null; then
  echo "@bob is still in the directory after its Atsign was deleted" >&2
  exit 1
fi
kubectl -n "$fleet_ns" get atsign alice -o jsonpath='{.status.phase}' | grep -qx Ready

log "kind end-to-end run passed"
