"""Build an OTA update package from the working tree (docs/OTA.md).

    python -m tools.ota.package --out build/ota/1.1.0 [--version 1.1.0] [--config dev.json]
                                [--key-id fleet] [--previous build/ota/1.0.0/manifest.ota]
                                [--delete /usr/old.py] [--devices IMEI,...] [--with-config]

Writes OUT/manifest.ota (header line with the HMAC-SHA256, then the JSON manifest) and every
file at its device path below OUT (OUT/usr/app_main.py, OUT/usr/qframe/...; never /usr/main.py,
qframe's launcher, which the module refuses to take over the air): serve OUT over HTTP and
send the device `{"cmd": "ota", "args": {"url": "http://.../manifest.ota"}}`.
The version defaults to code/version.py's VERSION; the HMAC key comes from the config's OTA.keys
(the same JSON the device reads) under --key-id; with --ed25519-seed-file the manifest is
signed with that Ed25519 key instead (the device holds only the public key, OTA.public_keys). --previous adds the files that package held
and this one does not to `delete`. dev.json is left out unless --with-config (it holds the
device's own settings and keys).
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import sys

from tools.device.deploy import REPO, device_files


def _load_ed25519():
    """qframe/codecs/ed25519.py by path: plain Python, while `import qframe` needs the shim."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "qframe_ed25519", os.path.join(REPO, "qframe", "codecs", "ed25519.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ed25519 = _load_ed25519()

MAGIC = "qframe-ota/1"
LAUNCHER = "/usr/main.py"                           # as qframe/codecs/ota_manifest.py
ENTRY = ("/usr/app_main.py", "/usr/app_main.mpy")


class PackageError(ValueError):
    pass


def _assigned(path, name):
    with open(path) as f:
        found = re.search(r'^%s\s*=\s*"([0-9.]+)"' % name, f.read(), re.M)
    if not found:
        raise PackageError('%s has no %s = "x.y.z"' % (path, name))
    return found.group(1)


def read_version(source=REPO):
    """VERSION from code/version.py."""
    return _assigned(os.path.join(source, "code", "version.py"), "VERSION")


def framework_version(source=REPO):
    """__version__ from qframe/__init__.py."""
    return _assigned(os.path.join(source, "qframe", "__init__.py"), "__version__")


def seal(body, key_id, key):
    """manifest.ota bytes: the header line (HMAC-SHA256 of body under key) and body."""
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    return ("%s hmac-sha256 %s %d %s\n" % (MAGIC, key_id, len(body), mac)).encode() + body


def _ed25519_secret(seed):
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def ed25519_public_key(seed):
    """The 32-byte public key of a 32-byte Ed25519 seed (the private key)."""
    return ed25519.encode_point(ed25519.scalar_mult(_ed25519_secret(seed)[0]))


def ed25519_sign(seed, message):
    """The RFC 8032 Ed25519 signature of message under seed (64 bytes)."""
    scalar, prefix = _ed25519_secret(seed)
    public = ed25519.encode_point(ed25519.scalar_mult(scalar))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % ed25519.L
    point_r = ed25519.encode_point(ed25519.scalar_mult(r))
    k = int.from_bytes(hashlib.sha512(point_r + public + message).digest(), "little") % ed25519.L
    return point_r + ((r + k * scalar) % ed25519.L).to_bytes(32, "little")


def seal_ed25519(body, key_id, seed):
    """manifest.ota bytes signed with Ed25519 over SHA-256(body)."""
    signature = ed25519_sign(seed, hashlib.sha256(body).digest()).hex()
    return ("%s ed25519 %s %d %s\n" % (MAGIC, key_id, len(body), signature)).encode() + body


def previous_paths(manifest_path):
    """The device paths a previous package's manifest.ota listed."""
    with open(manifest_path, "rb") as f:
        blob = f.read()
    body = json.loads(blob[blob.index(b"\n") + 1:])
    return [item["path"] for item in body["files"]]


def build(out, key_id, key, source=REPO, version=None, app="meter-module", delete=(),
          previous=None, devices=None, with_config=False, min_framework=None, ed25519_seed=None):
    """Write the package into out; return the manifest dict. With ed25519_seed the manifest is
    signed with that Ed25519 key instead of the HMAC key."""
    version = version or read_version(source)
    files = [(dev, local) for dev, local in device_files(source)
             if with_config or dev != "/usr/dev.json"]
    main = dict(files).get(LAUNCHER)
    if main is None:
        raise PackageError("no %s in %s" % (LAUNCHER, source))
    with open(main) as f:
        if "launch(" not in f.read():
            raise PackageError("%s is not qframe's launcher (code/main.py): the module could "
                               "not roll this version back" % LAUNCHER)
    if not any(dev in ENTRY for dev, _ in files):
        raise PackageError("no %s in %s: the launcher would have no app to start"
                           % (ENTRY[0], source))
    files = [(dev, local) for dev, local in files if dev != LAUNCHER]   # never sent: the
    # module keeps the launcher it was deployed with
    if os.path.exists(out):
        shutil.rmtree(out)
    entries = []
    for dev, local in files:
        with open(local, "rb") as f:
            data = f.read()
        target = os.path.join(out, dev.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        entries.append({"path": dev, "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    paths = set(item["path"] for item in entries)
    drop = list(delete)
    if previous:
        drop += [p for p in previous_paths(previous) if p not in paths]
    manifest = {"app": app, "version": version,
                "min_framework": min_framework or framework_version(source),
                "files": entries, "delete": sorted(set(p for p in drop if p not in paths))}
    if devices:
        manifest["devices"] = list(devices)
    body = json.dumps(manifest, indent=0, sort_keys=True).encode()
    with open(os.path.join(out, "manifest.ota"), "wb") as f:
        f.write(seal_ed25519(body, key_id, ed25519_seed) if ed25519_seed
                else seal(body, key_id, key))
    return manifest


def key_from_config(path, key_id):
    with open(path) as f:
        keys = (json.load(f).get("OTA") or {}).get("keys") or {}
    if key_id not in keys:
        raise PackageError("%s has no OTA.keys[%r]" % (path, key_id))
    return bytes.fromhex(keys[key_id])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--source", default=REPO)
    parser.add_argument("--version")
    parser.add_argument("--app", default="meter-module")
    parser.add_argument("--config", default=os.path.join(REPO, "dev.json"),
                        help="JSON with OTA.keys {key id: hex}")
    parser.add_argument("--key-id", default="fleet")
    parser.add_argument("--previous", help="the previous package's manifest.ota")
    parser.add_argument("--delete", action="append", default=[])
    parser.add_argument("--devices", help="comma-separated device ids (default: the fleet)")
    parser.add_argument("--with-config", action="store_true")
    parser.add_argument("--ed25519-seed-file",
                        help="sign with Ed25519: a file holding the 32-byte seed as hex (the "
                             "device holds the public key in OTA.public_keys[KEY_ID])")
    parser.add_argument("--public-key", action="store_true",
                        help="print the public key of --ed25519-seed-file and stop")
    args = parser.parse_args(argv)
    seed = None
    if args.ed25519_seed_file:
        with open(args.ed25519_seed_file) as f:
            seed = bytes.fromhex(f.read().strip())
        if args.public_key:
            print(ed25519_public_key(seed).hex())
            return 0
    try:
        key = None if seed else key_from_config(args.config, args.key_id)
        manifest = build(args.out, args.key_id, key, args.source, args.version, args.app,
                         args.delete, args.previous,
                         args.devices.split(",") if args.devices else None, args.with_config,
                         ed25519_seed=seed)
    except (PackageError, OSError) as exc:
        print("package: %s" % exc, file=sys.stderr)
        return 2
    size = sum(item["size"] for item in manifest["files"])
    print("%s: %s %s, %d files, %d bytes, %d deleted" % (
        os.path.join(args.out, "manifest.ota"), manifest["app"], manifest["version"],
        len(manifest["files"]), size, len(manifest["delete"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
