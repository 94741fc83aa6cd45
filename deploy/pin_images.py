#!/usr/bin/env python3
"""Pin an overlay's images by digest: the tag you pushed becomes the digest it points to.

    python3 deploy/pin_images.py k8s/overlays/gpu                  # resolve with skopeo or crane
    python3 deploy/pin_images.py k8s/overlays/gpu --set lanesight=sha256:...  # digests you have
    python3 deploy/pin_images.py k8s/overlays/gpu --check          # exit 1 if any is not pinned

Edits the `images:` entries of the overlay's kustomization.yaml in place, adding
`digest:` beside `newTag:` (kustomize then renders name@digest; the tag stays for people
to read). Run it in the release pipeline after pushing, before `kubectl apply -k`; see
docs/deploy.md, section 1. Stdlib only; resolving needs skopeo or crane on PATH.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_entries(text: str) -> list[dict[str, str]]:
    """The `images:` entries (name, newName, newTag, digest) of a kustomization."""
    match = re.search(r"^images:\n((?:[ -].*\n?)*)", text, re.MULTILINE)
    if match is None:
        return []
    entries: list[dict[str, str]] = []
    for line in match.group(1).splitlines():
        item = re.match(r"^\s*(-\s+)?(name|newName|newTag|digest):\s*(\S+)", line)
        if item is None:
            continue
        if item.group(1):
            entries.append({})
        if entries:
            entries[-1][item.group(2)] = item.group(3).strip("\"'")
    return entries


def resolve(reference: str) -> str:
    """The digest a registry reports for name:tag, with skopeo or crane."""
    if shutil.which("skopeo"):
        command = ["skopeo", "inspect", "--format", "{{.Digest}}", f"docker://{reference}"]
    elif shutil.which("crane"):
        command = ["crane", "digest", reference]
    else:
        raise SystemExit("neither skopeo nor crane is installed: pass --set NAME=sha256:...")
    digest = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    if not _DIGEST.match(digest):
        raise SystemExit(f"{reference}: unexpected digest {digest!r}")
    return digest


def pin(text: str, digests: dict[str, str]) -> str:
    """The kustomization with `digest:` set on the entries named in digests."""
    for name, digest in digests.items():
        entry = re.compile(
            rf"^(?P<indent>[ ]*)-[ ]+name:[ ]*{re.escape(name)}\n"
            r"(?P<body>(?:(?P=indent)[ ][ ]\S.*\n)*)",
            re.MULTILINE,
        )
        found = entry.search(text)
        if found is None:
            raise SystemExit(f"no images entry named {name!r}")
        indent = found.group("indent") + "  "
        body = re.sub(r"^[ ]*digest:.*\n", "", found.group("body"), flags=re.MULTILINE)
        replaced = f"{found.group('indent')}- name: {name}\n{body}{indent}digest: {digest}\n"
        text = text[: found.start()] + replaced + text[found.end() :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", help="the overlay folder (with kustomization.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=sha256:...")
    parser.add_argument("--check", action="store_true", help="only check every image is pinned")
    args = parser.parse_args(argv)
    path = Path(args.overlay) / "kustomization.yaml"
    text = path.read_text(encoding="utf-8")
    entries = image_entries(text)
    if not entries:
        print(f"{path}: no images: entries", file=sys.stderr)
        return 2
    if args.check:
        unpinned = [e["name"] for e in entries if not _DIGEST.match(e.get("digest", ""))]
        for name in unpinned:
            print(f"{path}: image {name} is not pinned by digest", file=sys.stderr)
        return 1 if unpinned else 0
    given = dict(item.split("=", 1) for item in args.set)
    digests: dict[str, str] = {}
    for entry in entries:
        name = entry["name"]
        digest = given.get(name) or resolve(
            f"{entry.get('newName', name)}:{entry.get('newTag', 'latest')}"
        )
        if not _DIGEST.match(digest):
            raise SystemExit(f"{name}: {digest!r} is not sha256:<64 hex>")
        digests[name] = digest
    path.write_text(pin(text, digests), encoding="utf-8")
    for name, digest in digests.items():
        print(f"{name}\t{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
