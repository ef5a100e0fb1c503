#!/usr/bin/env bash
# The container tier (issue 15): ward run by the unprivileged user `worker` inside Docker and
# Podman containers started without --privileged and without added capabilities, from a
# locally debootstrapped image (image.sh; no registry). Run as root.
#   1. the engine's defaults: `ward check` names each blocker and its fix and exits 1; a run
#      fails with the fix;
#   2. deploy/seccomp/ward.json and the documented /proc option: inside.sh's checks (built-in
#      profiles, isolate's CMS-style sequence, the runtime's filter still in force) and the
#      integration tests that apply in a container;
#   3. a container stopped mid-run (SIGTERM, then SIGKILL of PID 1) leaves nothing: no process
#      on the host, and after `ward cleanup` at its next start no box.
# Usage: tests/container/run.sh PATH/TO/ward PATH/TO/integration-test-binary
# Engines are private to this run: dockerd with its own data root, Podman with its own
# storage, both under one temporary directory removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ward=$(realpath "${1:?usage: run.sh PATH/TO/ward PATH/TO/integration-test-binary}")
tests=$(realpath "${2:?usage: run.sh PATH/TO/ward PATH/TO/integration-test-binary}")
[ "$(id -u)" = 0 ] || { echo "tests/container/run.sh: run as root (it starts the engines)" >&2; exit 1; }
missing=()
for p in docker.io docker-compose podman runc debootstrap python3-yaml; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/container/run.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
image_tar=$(bash "$here/image.sh")
profile="$repo/deploy/seccomp/ward.json"

work=$(mktemp -d /var/tmp/ward-ctr.XXXXXX)
chmod 0711 "$work"
dockerd_pid=
cleanup() {
    set +e
    if [ -n "$dockerd_pid" ]; then
        docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$dockerd_pid" 2>/dev/null
    fi
    pod rm -af >/dev/null 2>&1
    pod system reset -f >/dev/null 2>&1
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() { case "$3" in *"$2"*) ok "$1" ;; *) bad "$1: wanted '$2' in: $3" ;; esac; }

# --- Docker: a daemon of our own
export DOCKER_HOST="unix://$work/docker.sock"
dockerd --data-root "$work/docker" --exec-root "$work/dx" -H "$DOCKER_HOST" --pidfile "$work/dockerd.pid" \
    --iptables=false --ip6tables=false --bridge=none >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker version >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; echo "tests/container/run.sh: dockerd did not start" >&2; exit 1; }
docker import "$image_tar" ward-ctr:test >/dev/null
# every container: no network, the caller's uid, ward and the tests read-only, no privileges
common=(--network none -u 1000:1000 -v "$ward:/usr/local/bin/ward:ro" -v "$here/inside.sh:/inside.sh:ro")
echo "== Docker $(docker version -f '{{.Server.Version}}'), its defaults"
out=$(docker run --rm "${common[@]}" ward-ctr:test ward check 2>&1) && bad "ward check exits 0 under Docker's defaults" || ok "ward check exits 1 under Docker's defaults"
expect "check names the seccomp blocker" "FAIL  user namespaces (required): clone(CLONE_NEWUSER) => EPERM: this is a Docker container" "$out"
expect "check names its fix" "--security-opt seccomp=ward.json" "$out"
expect "check names the masked /proc" "FAIL  container: a Docker container that masks /proc/" "$out"
expect "check names its fix" "--security-opt systempaths=unconfined" "$out"
out=$(docker run --rm "${common[@]}" ward-ctr:test ward run -- /bin/true 2>&1; echo "exit $?")
expect "a run fails with the fix" "cannot create the sandbox's namespaces" "$out"
expect "a run fails with the fix" "seccomp=ward.json" "$out"
expect "a run exits 125" "exit 125" "$out"
echo "== Docker, with deploy/seccomp/ward.json only (/proc still masked)"
out=$(docker run --rm --security-opt "seccomp=$profile" "${common[@]}" ward-ctr:test ward run -- /bin/true 2>&1; echo "exit $?")
expect "the masked /proc is named at step mount" "step 'mount': mount(proc -> /proc) => EPERM" "$out"
expect "with its fix" "--security-opt systempaths=unconfined" "$out"
echo "== Docker, with ward.json, /proc masked and the degraded mode asked for"
docker run --rm --security-opt "seccomp=$profile" --cap-drop ALL --security-opt no-new-privileges "${common[@]}" ward-ctr:test /inside.sh noproc || fails=$((fails + 1))
echo "== Docker, with the documented options (those of deploy/: no capability, no-new-privileges)"
opts=(--security-opt "seccomp=$profile" --security-opt systempaths=unconfined --cap-drop ALL --security-opt no-new-privileges)
docker run --rm "${opts[@]}" --device /dev/net/tun "${common[@]}" ward-ctr:test /inside.sh works || fails=$((fails + 1))
# The integration tests, as in the host tier, left out where the container differs by design:
skip=(
    check::             # `ward check` of the host: this container is another host
    net::               # --network none: no route for pasta to copy; ward's networking is tested on the host
    profiles::          # toolchains (g++, java, git) not in the image; inside.sh runs each built-in profile
    bad_input::user_namespaces_disabled_by_the_host  # uses unshare(1), which ward.json keeps denied
    isolation::map_ranges_gives_a_working_range      # newuidmap's write is refused here: single-id maps in containers
    isolation::no_capabilities_and_no_new_privs      # the same, for its --map-ranges half
    # the runtime's filter answers these calls first (EPERM), so ward neither sees nor reports them
    seccomp::every_denial_has_its_errno seccomp::log_denied_prints_to_stderr
    seccomp::a_notification_flood_does_not_starve_the_limits seccomp::the_session_keyring_is_fresh
    seccomp::the_filter_cache_cannot_be_read_or_poisoned_from_inside
    seccomp::a_full_keyring_makes_room_for_the_filter  # add_key is refused by the runtime's filter
    warm::a_configuration_that_cannot_be_warm_runs_fresh_and_says_why  # uses --net
)
skipargs=()
for s in "${skip[@]}"; do skipargs+=(--skip "$s"); done
echo "integration tests in the container, skipped by design: ${skip[*]}"
if docker run --rm "${opts[@]}" --network none -u 1000:1000 -v "$repo:$repo:ro" -w /tmp ward-ctr:test \
    env -i PATH=/usr/bin:/bin HOME=/tmp "$tests" --test-threads=4 "${skipargs[@]}" >"$work/tests.log" 2>&1; then
    ok "integration tests inside Docker: $(grep -o '[0-9]* passed' "$work/tests.log" | tail -1)"
else
    grep -E "FAILED|panicked|test result" "$work/tests.log" | head -40
    bad "integration tests inside Docker"
fi
echo "== Docker, a container stopped mid-run"
marks_before=$(grep -c ward /proc/self/mountinfo || true)
cid=$(docker run -d "${opts[@]}" "${common[@]}" ward-ctr:test /inside.sh stop)
for _ in $(seq 100); do docker exec "$cid" test -e /tmp/running 2>/dev/null && break; sleep 0.2; done
sleep 0.5
pgrep -f "^/bin/sleep 1000" >/dev/null && ok "the run is in progress" || bad "no run in progress: $(docker logs "$cid" 2>&1)"
pgrep -x ward-keeper >/dev/null && ok "the box's keeper is running" || bad "no keeper"
docker stop -t 2 "$cid" >/dev/null
sleep 0.5
left=$(pgrep -af "^/bin/sleep 1000|ward-keeper|isolate --box-id" || true)
[ -z "$left" ] && ok "nothing of the container is left on the host" || bad "left on the host: $left"
[ "$(grep -c ward /proc/self/mountinfo || true)" = "$marks_before" ] && ok "no mount left on the host" || bad "mounts left on the host"
out=$(docker start -a "$cid" 2>&1) && ok "the next start passes" || bad "the next start"
echo "$out" | sed 's/^/    /'
docker rm -f "$cid" >/dev/null

echo "== deploy/Dockerfile and deploy/compose.yaml, on the imported image"
ctx="$work/deploy"
cp -r "$repo/deploy" "$ctx"
install -m 0755 "$ward" "$ctx/ward"
export WARD_BASE=ward-ctr:test COMPOSE_PROJECT_NAME=wardtier
compose() { (cd "$ctx" && docker-compose "$@"); }
docker build -q --network none --build-arg BASE=ward-ctr:test -t ward-worker:test "$ctx" >/dev/null
if compose up -d --build >"$work/compose.log" 2>&1; then
    ok "docker-compose up builds and starts the worker"
    sleep 1
    cms='d=$(isolate --box-id=2 --init) && echo "print(6 * 7)" > $d/box/a.py && isolate --box-id=2 -M /tmp/m --run -- /usr/bin/python3 a.py && grep -q exitcode:0 /tmp/m && isolate --box-id=2 -v --run -- /bin/true 2>&1 | grep -o "\"proc\":\"[a-z]*\""'
    out=$(compose exec -T worker sh -c "$cms" 2>&1 || true)
    expect "the compose worker runs a CMS-style box" "42" "$out"
    expect "Compose cannot unmask /proc: the box runs in the degraded mode, and says so" '"proc":"none"' "$out"
    expect "its PID 1 ran ward cleanup" "removed 0 isolate boxes" "$(compose logs 2>&1)"
else
    cat "$work/compose.log"
    bad "docker-compose up"
fi
compose down -t 1 >/dev/null 2>&1 || true

echo "== deploy/kubernetes/: the manifests' securityContext, run as its Docker equivalent"
# Kubernetes cannot run here. The manifests must carry the options tested above; the Job's
# container is then run with the Docker equivalent of each: seccompProfile Localhost ->
# seccomp=, procMount Unmasked -> systempaths=unconfined, drop ALL -> --cap-drop ALL,
# allowPrivilegeEscalation false -> no-new-privileges, runAsUser -> -u, readOnlyRootFilesystem
# -> --read-only, emptyDir -> tmpfs. hostUsers: false has no equivalent here (documentation only).
out=$(/usr/bin/python3 - "$repo/deploy/kubernetes/job.yaml" "$repo/deploy/kubernetes/deployment.yaml" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    pod = doc["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    want = {"seccompProfile": {"type": "Localhost", "localhostProfile": "ward.json"}, "procMount": "Unmasked",
            "runAsNonRoot": True, "allowPrivilegeEscalation": False, "privileged": False,
            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    wrong = {k: sc.get(k) for k, v in want.items() if sc.get(k) != v}
    extra = [k for k in ("add",) if k in sc.get("capabilities", {})]
    print(path.rsplit("/", 1)[1], "hostUsers", pod.get("hostUsers"), "wrong", wrong, "added caps", extra)
PY
)
expect "job.yaml carries the tested options" "job.yaml hostUsers False wrong {} added caps []" "$out"
expect "deployment.yaml carries the tested options" "deployment.yaml hostUsers False wrong {} added caps []" "$out"
mkdir -p "$work/batch"
printf '%s\n' '{"argv": ["/bin/echo", "hi"], "stdout": "/scratch/out1"}' '{"argv": ["/bin/sh", "-c", "exit 3"]}' \
    '{"argv": ["/usr/bin/python3", "-c", "print(6 * 7)"], "stdout": "/scratch/out3"}' >"$work/batch/batch.jsonl"
k8s=(--network none --read-only --tmpfs /tmp --tmpfs /scratch:mode=1777 -e WARD_ISOLATE_ROOT=/scratch/boxes
    --security-opt "seccomp=$profile" --security-opt systempaths=unconfined --cap-drop ALL --security-opt no-new-privileges -u 2000:2000)
out=$(docker run --rm "${k8s[@]}" -v "$work/batch:/work:ro" ward-worker:test \
    /bin/sh -c 'ward cleanup >/dev/null && ward run --batch /work/batch.jsonl && cat /scratch/out1 /scratch/out3' 2>&1 || true)
expect "the Job's command: one verdict per request" '"status":"RE","exit_code":3' "$out"
expect "the Job's command: the programs' output" "hi
42" "$out"
[ "$(echo "$out" | grep -c '"status":"OK"')" = 2 ] && ok "the Job's command: two runs OK" || bad "the Job's command: $out"
out=$(docker run --rm "${k8s[@]}" ward-worker:test /bin/sh -c 'ward check --json >/dev/null && echo ready; d=$(isolate -b 4 --init) && echo "print(7 * 6)" >$d/box/a.py && isolate -b 4 --run -- /usr/bin/python3 a.py' 2>&1 || true)
expect "the Deployment's readiness probe (ward check --json) passes" "ready" "$out"
expect "the Deployment's worker runs a box on a read-only root" "42" "$out"

# --- Podman (rootful, its own storage): its default profile allows namespaces but refuses
# sethostname; it masks /proc like Docker.
pod() { podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver vfs "$@"; }
# This host's cgroups are hybrid, which crun refuses, and this machine's own container lacks
# CAP_SYS_RESOURCE, so Podman's default rlimits (above the hard ones here) cannot be set:
# runc, and rlimits below this host's hard ones.
pod_opts=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=16384:16384)
pod import "$image_tar" ward-ctr:test >/dev/null 2>&1
echo "== Podman $(pod version -f '{{.Client.Version}}'), its defaults"
out=$(pod run --rm "${pod_opts[@]}" "${common[@]}" ward-ctr:test ward check 2>&1) && bad "ward check exits 0 under Podman's defaults" || ok "ward check exits 1 under Podman's defaults"
expect "check names the masked /proc" "FAIL  container: a Podman container that masks /proc/" "$out"
expect "check names its fix" "--security-opt unmask=ALL" "$out"
out=$(pod run --rm "${pod_opts[@]}" --security-opt unmask=ALL "${common[@]}" ward-ctr:test ward run -- /bin/true 2>&1; echo "exit $?")
expect "with /proc unmasked, the refused sethostname is named" "step 'hostname': sethostname(ward) => EPERM" "$out"
expect "with its fix" "this Podman container's seccomp profile refuses it to an unprivileged process: run the container with --security-opt seccomp=ward.json" "$out"
echo "== Podman, with the documented options"
pod run --rm "${pod_opts[@]}" --security-opt "seccomp=$profile" --security-opt unmask=ALL --device /dev/net/tun "${common[@]}" ward-ctr:test /inside.sh works || fails=$((fails + 1))

[ "$fails" = 0 ] || { echo "tests/container/run.sh: $fails failed"; exit 1; }
echo "tests/container/run.sh: all passed"
