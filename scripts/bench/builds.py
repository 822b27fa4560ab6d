"""Builds: the image (cold, and after a src/-only change), its sizes, and cargo builds."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

from common import ROOT, BenchError, note, run, step
from report import mb

MUSL = "x86_64-unknown-linux-musl"


def docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode == 0


def copy_context(dest: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored), as `docker build` sees them."""
    dest.mkdir(parents=True)
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, files.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def docker_build(context: Path, tag: str, build_args: list[str], no_cache: bool, log: Path) -> float:
    cmd = ["docker", "build", "--progress=plain", *build_args, "-t", tag, str(context)]
    if no_cache:
        cmd.insert(2, "--no-cache")
    started = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise BenchError(f"docker build failed; see {log}:\n{log.read_text(errors='replace')[-3000:]}")
    return time.perf_counter() - started


def compressed_layers_bytes(tag: str, work: Path) -> int:
    """The image's layers gzip-compressed one by one, as a registry stores them."""
    archive = work / "image.tar"
    with open(archive, "wb") as out:
        subprocess.run(["docker", "save", tag], stdout=out, check=True)
    total = 0
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            data = tar.extractfile(layer).read()
            total += len(gzip.compress(data, compresslevel=6))
    archive.unlink()
    return total


def image_figures(tag: str, work: Path) -> tuple[dict, Path]:
    """Sizes of the image and its binary, and the binary copied out for the host measurements."""
    size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).stdout)
    container = run(["docker", "create", tag]).stdout.strip()
    binary = work / "sigmasight"
    try:
        run(["docker", "cp", f"{container}:/usr/local/bin/sigmasight", str(binary)])
    finally:
        run(["docker", "rm", container])
    return {
        "uncompressed_bytes": size,
        "compressed_layers_bytes": compressed_layers_bytes(tag, work),
        "binary_bytes": binary.stat().st_size,
        "binary_file": run(["file", "-b", str(binary)]).stdout.strip(),
    }, binary


def cargo_build(profile: str, args: list[str]) -> Path:
    """Builds with cargo; the directory the artifacts land in."""
    cmd = ["cargo", "build", "--locked", *args]
    if profile == "release":
        cmd += ["--release", "--target", MUSL]
        out = ROOT / "target" / MUSL / "release"
    else:
        out = ROOT / "target" / "debug"
    started = time.perf_counter()
    run(cmd, cwd=ROOT)
    note(f"cargo build {' '.join(args)} ({profile}): {time.perf_counter() - started:.0f} s")
    return out


def docker_figures(figures: dict, work: Path, quick: bool) -> tuple[str, Path]:
    """Builds the image (cold, then again after a src/-only change; a quick run takes whatever
    the cache has and skips the rebuild) and measures its sizes."""
    step("image: cold build, sizes, rebuild after a src/-only change")
    build_args = ["--build-arg", f"GIT_COMMIT={run(['git', 'rev-parse', 'HEAD'], cwd=ROOT).stdout.strip()}"]
    # The Dockerfile's base images, when scripts/bench.sh names others (BASE_IMAGES=local).
    for arg in ("RUST_IMAGE", "RUNTIME_IMAGE"):
        if os.environ.get(arg):
            build_args += ["--build-arg", f"{arg}={os.environ[arg]}"]
    tag = f"sigmasight-backend:bench-{uuid.uuid4().hex[:8]}"
    context = work / "context"
    copy_context(context)
    figures["docker"] = {}
    cold = docker_build(context, tag, build_args, no_cache=not quick, log=work / "build.log")
    if not quick:
        figures["docker"]["cold_build_s"] = round(cold, 1)
    note(f"build: {cold:.0f} s{'' if quick else ' (no cache)'}")
    figures["image"], binary = image_figures(tag, work)
    note(f"image {mb(figures['image']['uncompressed_bytes'])}, layers {mb(figures['image']['compressed_layers_bytes'])} gzip, "
         f"binary {mb(figures['image']['binary_bytes'])}")
    if quick:
        return tag, binary
    with open(context / "src" / "lib.rs", "a", encoding="utf-8") as lib:
        lib.write(f"\n// benchmark rebuild probe {tag}\n")
    rebuild = docker_build(context, f"{tag}-rebuild", build_args, no_cache=False, log=work / "rebuild.log")
    subprocess.run(["docker", "image", "rm", f"{tag}-rebuild"], stdout=subprocess.DEVNULL, check=False)
    figures["docker"]["rebuild_s"] = round(rebuild, 1)
    note(f"rebuild after a src/-only change: {rebuild:.0f} s")
    return tag, binary
