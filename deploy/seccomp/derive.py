#!/usr/bin/env python3
"""Derive ward's container seccomp profile from a container runtime's default profile.

    python3 deploy/seccomp/derive.py BASE.json > deploy/seccomp/ward.json

BASE.json is the runtime's default in the Docker/OCI JSON format: Docker's and containerd's
(moby/profiles seccomp/default.json) or Podman's (/usr/share/containers/seccomp.json). The
result is that profile with exactly one change: the calls ward's launcher makes to build a
sandbox, which those defaults allow only to a process holding CAP_SYS_ADMIN (or, for
pivot_root, never), are allowed without it. Every other rule, the default action and the
architectures are the base's, unchanged, so what the container's processes may do outside
ward stays what the runtime allows them. The calls and why ward needs each are in WARD below;
SECURITY.md says what allowing them costs.
"""
import json
import sys

# name -> why the launcher needs it (all of them before the sandbox's own, stricter filter)
WARD = {
    "clone": "create the sandbox's user, mount, pid, ipc, uts, cgroup and net namespaces",
    "clone3": "the same, and start a run directly in its cgroup leaf (CLONE_INTO_CGROUP)",
    "setns": "a warm run joins its keeper's namespaces",
    "mount": "build the sandbox's root: tmpfs, read-only binds, /proc, /dev",
    "umount2": "detach the old root after pivot_root",
    "pivot_root": "make the sandbox's tree its root",
    "open_tree": "clone a bind source before the tree is built",
    "move_mount": "attach that clone in the tree",
    "mount_setattr": "make the whole tree read-only in one call",
    "sethostname": "the sandbox's own host name in its uts namespace",
    "landlock_create_ruleset": "Landlock (older runtime defaults lack it)",
    "landlock_add_rule": "Landlock",
    "landlock_restrict_self": "Landlock",
}


def conditional(rule):
    """A rule that applies only sometimes: by capability, argument, kernel or architecture."""
    return bool(rule.get("args") or rule.get("includes") or rule.get("excludes"))


def derive(base):
    out = dict(base)
    rules = []
    for rule in base["syscalls"]:
        names = rule["names"]
        if rule["action"] != "SCMP_ACT_ALLOW" or conditional(rule):
            # a denial or a conditional allowance of a call ward needs would conflict with
            # (or narrow) the plain allowance added below
            names = [n for n in names if n not in WARD]
        if names:
            rules.append(dict(rule, names=names))
    plain = {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and not conditional(r) for n in r["names"]}
    added = sorted(set(WARD) - plain)
    if added:
        rules.append({
            "names": added,
            "action": "SCMP_ACT_ALLOW",
            "comment": "ward: " + "; ".join(f"{n}: {WARD[n]}" for n in added),
        })
    out["syscalls"] = rules
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: derive.py BASE.json > ward.json  (BASE.json: the runtime's default seccomp profile)")
    try:
        with open(sys.argv[1]) as f:
            base = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"derive.py: cannot read {sys.argv[1]} as a seccomp profile: {e}")
    if not isinstance(base, dict) or "syscalls" not in base or "defaultAction" not in base:
        sys.exit(f"derive.py: {sys.argv[1]} has no defaultAction and syscalls: not a Docker/OCI seccomp profile")
    json.dump(derive(base), sys.stdout, indent="\t")
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
