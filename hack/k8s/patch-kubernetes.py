#!/usr/bin/env python3
"""Makes a patched copy of the k8s.io/kubernetes module for the test cluster's servers.

Usage: patch-kubernetes.py KUBERNETES_MODULE_DIR DEST_DIR

Why: kwok gives pods loopback IPs (127.0.1.x) so tests can bind real processes to
them, but the API server rejects loopback addresses in Endpoints and EndpointSlices
(ValidateEndpointIP), so Services would never get endpoints. The patch drops only that
loopback check; every other check stays.

How: the module cache is read-only and `go build -overlay` refuses files in it, so
hack/build-binaries.sh builds the servers in a go.work (outside the repo) that replaces
k8s.io/kubernetes with DEST_DIR: a hard-linked copy of the module (no extra space where
the file system allows it) in which only the patched files are new.
"""

import os
import pathlib
import shutil
import sys

PATCHES = [
    (
        "pkg/apis/core/validation/validation.go",
        """	if ip.IsLoopback() {
		allErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
""",
        """	// modelops test cluster (hack/k8s/patch-kubernetes.py): loopback endpoints are
	// allowed, because the pods of its fake kwok nodes get loopback IPs.
""",
    ),
]


def copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: a real copy
        shutil.copy2(src, dst)


def main() -> None:
    module_dir, dest = map(pathlib.Path, sys.argv[1:3])
    done = dest / ".modelops-patched"
    if done.exists():
        return
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(module_dir, tmp, copy_function=copy)
    for root, dirs, _ in os.walk(tmp):  # the module cache's directories are read-only
        os.chmod(root, 0o755)
    for rel, old, new in PATCHES:
        path = tmp / rel
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"patch-kubernetes.py: the patch for {rel} no longer applies (upstream changed)")
        path.unlink()  # a hard link to the module cache: never write through it
        path.write_text(text.replace(old, new))
    (tmp / done.name).write_text("")
    tmp.rename(dest)


if __name__ == "__main__":
    main()
