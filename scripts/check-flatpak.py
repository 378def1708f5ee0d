#!/usr/bin/env python3
"""Checks what can be checked of the flatpak without flatpak-builder and its runtimes:

- flatpak/org.framecast.Framecast.yml parses, builds the modules framecast needs (x264 and
  gst-plugins-ugly's x264enc before framecast), installs the wrapper it runs, uses the
  cargo sources offline, and asks for no more sandbox holes than it needs;
- flatpak/cargo-sources.json has exactly Cargo.lock's crates.io packages, each with
  Cargo.lock's checksum (else the offline build would fail, or build other code);
- with --vendor DIR (a `cargo vendor` output, see scripts/flatpak-offline-build.sh), the
  checksums of the crates cargo downloaded match cargo-sources.json too.

Exits 1 naming every problem.
"""

import json
import pathlib
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "flatpak" / "org.framecast.Framecast.yml"
SOURCES = ROOT / "flatpak" / "cargo-sources.json"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
# The sandbox holes framecast needs (see the manifest's comments): anything else added
# must be argued for here.
ALLOWED_FINISH_ARGS = {
    "--share=network",
    "--filesystem=xdg-videos:ro",
    "--env=GST_PLUGIN_PATH=/app/lib/gstreamer-1.0",
}

problems = []


def problem(text):
    problems.append(text)


def check_manifest():
    manifest = yaml.safe_load(MANIFEST.read_text())
    if manifest.get("id") != "org.framecast.Framecast":
        problem("manifest: id is not org.framecast.Framecast")
    if "org.freedesktop.Sdk.Extension.rust-stable" not in manifest.get("sdk-extensions", []):
        problem("manifest: no rust-stable SDK extension")
    version = str(manifest.get("runtime-version", ""))
    # rust-version 1.92 needs the rust-stable of a 24.08 or later runtime (23.08's ended
    # at 1.81, 24.08's began at 1.82 and follows stable releases).
    try:
        year = int(version.split(".")[0])
    except ValueError:
        year = 0
    if year < 24:
        problem(f"manifest: runtime-version {version!r} has no Rust 1.92")
    extra = set(manifest.get("finish-args", [])) - ALLOWED_FINISH_ARGS
    if extra:
        problem(f"manifest: finish-args beyond what framecast needs: {sorted(extra)}")
    modules = [m for m in manifest.get("modules", []) if isinstance(m, dict)]
    names = [m.get("name") for m in modules]
    for needed in ["x264", "gst-plugins-ugly", "framecast"]:
        if needed not in names:
            problem(f"manifest: no module {needed!r}")
    if names and names[-1] != "framecast":
        problem("manifest: framecast must be built last, after its codecs")
    ugly = next((m for m in modules if m.get("name") == "gst-plugins-ugly"), {})
    if "-Dx264=enabled" not in ugly.get("config-opts", []):
        problem("manifest: gst-plugins-ugly without -Dx264=enabled")
    for module in modules:
        for source in module.get("sources", []):
            if isinstance(source, dict) and source.get("type") == "archive":
                if len(source.get("sha256", "")) != 64:
                    problem(f"manifest: {module['name']}: archive without sha256")
            if isinstance(source, dict) and source.get("type") == "git":
                if len(source.get("commit", "")) != 40:
                    problem(f"manifest: {module['name']}: git source not pinned to a commit")
    framecast = next((m for m in modules if m.get("name") == "framecast"), {})
    commands = " ; ".join(framecast.get("build-commands", []))
    if "--frozen" not in commands and "--offline" not in commands:
        problem("manifest: cargo build is not offline (--frozen)")
    if "cargo-sources.json" not in framecast.get("sources", []):
        problem("manifest: framecast does not use cargo-sources.json")
    if manifest.get("command") == "framecast-flatpak":
        if "/app/bin/framecast-flatpak" not in commands:
            problem("manifest: the command framecast-flatpak is never installed")
        if not (ROOT / "flatpak" / "framecast-flatpak.sh").is_file():
            problem("manifest: flatpak/framecast-flatpak.sh is missing")
    for installed in ["libgstframecast.so", "pipelines/*.gst"]:
        if installed not in commands:
            problem(f"manifest: {installed} is not installed")


def lock_packages():
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    return {
        (p["name"], p["version"]): p["checksum"]
        for p in lock["package"]
        if p.get("source") == CRATES_IO
    }, [p for p in lock["package"] if p.get("source", CRATES_IO) not in (CRATES_IO,)]


def source_packages():
    sources = json.loads(SOURCES.read_text())
    archives = {}
    checksums = {}
    for source in sources:
        dest = source.get("dest", "")
        if source.get("type") == "archive":
            url = source["url"]
            name, version = url.rsplit("/", 2)[1], None
            crate_file = url.rsplit("/", 1)[1]
            prefix = f"{name}-"
            if not crate_file.startswith(prefix) or not crate_file.endswith(".crate"):
                problem(f"cargo-sources.json: unexpected crate URL {url}")
                continue
            version = crate_file[len(prefix) : -len(".crate")]
            if url != f"https://static.crates.io/crates/{name}/{name}-{version}.crate":
                problem(f"cargo-sources.json: {url} is not crates.io's URL for {name} {version}")
            if dest != f"cargo/vendor/{name}-{version}":
                problem(f"cargo-sources.json: {name} {version} unpacked to {dest}")
            archives[(name, version)] = source["sha256"]
        elif source.get("dest-filename") == ".cargo-checksum.json":
            checksums[dest] = json.loads(source["contents"])["package"]
        elif source.get("type") != "inline":
            problem(f"cargo-sources.json: unexpected source {source}")
    for (name, version), sha256 in archives.items():
        if checksums.get(f"cargo/vendor/{name}-{version}") != sha256:
            problem(f"cargo-sources.json: {name} {version}: .cargo-checksum.json disagrees")
    return archives


def check_sources():
    locked, others = lock_packages()
    for package in others:
        # Git dependencies would need git sources in cargo-sources.json too.
        if "source" in package:
            problem(f"Cargo.lock: {package['name']} comes from {package['source']}: not handled")
    listed = source_packages()
    for key in sorted(locked.keys() - listed.keys()):
        problem(f"cargo-sources.json lacks {key[0]} {key[1]}: run make flatpak-sources")
    for key in sorted(listed.keys() - locked.keys()):
        problem(f"cargo-sources.json has {key[0]} {key[1]}, which Cargo.lock has not: run make flatpak-sources")
    for key in sorted(locked.keys() & listed.keys()):
        if locked[key] != listed[key]:
            problem(f"cargo-sources.json: {key[0]} {key[1]}: sha256 differs from Cargo.lock")
    return listed


def check_vendor(vendor, listed):
    by_dir = {f"{n}-{v}": sha for (n, v), sha in listed.items()}
    for checksum_file in sorted(pathlib.Path(vendor).glob("*/.cargo-checksum.json")):
        directory = checksum_file.parent.name
        package = json.loads(checksum_file.read_text()).get("package")
        # cargo vendor names a crate's directory without the version when only one
        # version is used.
        candidates = [sha for d, sha in by_dir.items() if d == directory or d.startswith(directory + "-")]
        if package not in candidates:
            problem(f"vendor/{directory}: its checksum is not cargo-sources.json's")


def main():
    check_manifest()
    listed = check_sources()
    if len(sys.argv) == 3 and sys.argv[1] == "--vendor":
        check_vendor(sys.argv[2], listed)
    for text in problems:
        print(f"check-flatpak: {text}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-flatpak: manifest ok, {len(listed)} crates match Cargo.lock")


main()
