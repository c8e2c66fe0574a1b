#!/usr/bin/env python3
"""Writes the kycd container image as an offline archive, without Docker or a registry.

    oci.py ROOTFS VERSION OUT.tar

The archive holds one layer (ROOTFS: the static binary, /var/lib/kycd owned by 10001, /tmp) and
the image configuration the Dockerfile beside this script describes, in the layout `docker save`
writes since Docker 25: an OCI image layout (oci-layout, index.json, blobs/sha256/…) plus the
legacy manifest.json that `docker load` and `podman load` read. Reproducible: fixed times and
owners, so the same binary gives the same digests.
"""

import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
UID = 10001


def layer_tar(rootfs: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int, uid: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, EPOCH
            tar.addfile(info)

        add_dir("tmp", 0o1777)
        add_dir("var", 0o755)
        add_dir("var/lib", 0o755)
        add_dir("var/lib/kycd", 0o700, UID)
        path = os.path.join(rootfs, "kycd")
        info = tarfile.TarInfo("kycd")
        info.size = os.path.getsize(path)
        info.mode, info.uid, info.gid, info.mtime = 0o755, 0, 0, EPOCH
        with open(path, "rb") as f:
            tar.addfile(info, f)
    return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main() -> None:
    rootfs, version, out = sys.argv[1:4]
    layer = layer_tar(rootfs)
    created = "1970-01-01T00:00:00Z" if EPOCH == 0 else None
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{UID}",
            "Env": [
                "KYCD_DATA_DIR=/var/lib/kycd",
                "KYCD_LISTEN=0.0.0.0:8080",
                "KYCD_LOG_FORMAT=json",
            ],
            "Entrypoint": ["/kycd"],
            "Cmd": ["serve"],
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/var/lib/kycd": {}},
            "StopSignal": "SIGTERM",
            "Healthcheck": {
                "Test": ["CMD", "/kycd", "health"],
                "Interval": 10_000_000_000,
                "Timeout": 5_000_000_000,
                "StartPeriod": 30_000_000_000,
                "Retries": 3,
            },
            "Labels": {
                "org.opencontainers.image.title": "kycd",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        "history": [{"created": created, "created_by": "packaging/container/oci.py"}],
    }
    if created is None:
        del config["created"]
        del config["history"][0]["created"]
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest(layer),
                "size": len(layer),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = f"kycd:{version}"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": f"docker.io/library/{tag}",
                    "org.opencontainers.image.ref.name": version,
                },
            }
        ],
    }
    blob = lambda d: "blobs/sha256/" + d.split(":", 1)[1]
    legacy = [
        {
            "Config": blob(digest(config_bytes)),
            "RepoTags": [tag],
            "Layers": [blob(digest(layer))],
        }
    ]
    files = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, sort_keys=True).encode()),
        ("manifest.json", json.dumps(legacy).encode()),
        (blob(digest(manifest_bytes)), manifest_bytes),
        (blob(digest(config_bytes)), config_bytes),
        (blob(digest(layer)), layer),
    ]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
    print(f"wrote {out}: {tag}, image {digest(manifest_bytes)}, layer {len(layer)} bytes")


if __name__ == "__main__":
    main()
