#!/usr/bin/env python3
"""Build ``docker/Dockerfile.KIND`` (cpu or cuda) with this machine's pip configuration; reuse a built image.

    python3 docker/build.py cpu              # prints the image, e.g. surf-dist:cpu-3f2a9c1e0b7d
    python3 docker/build.py cuda --dry-run   # prints the docker build command, builds nothing

What goes into ``docker build`` (BuildKit, ``--network host``), read from ``pip config list`` and the
``PIP_*`` variables, so that a build behind a TLS-intercepting proxy or with local wheel folders works as
pip does on this machine:

* ``index-url``, ``extra-index-url``, ``find-links``, ``constraint``: the ``PIP_*`` build arguments. Local
  folders and files (paths, ``file://`` URLs) are served over HTTP on 127.0.0.1 while the build runs.
* ``cert``, the CA bundle pip trusts: the BuildKit secret ``ca_certs``, mounted for the pip steps only.
* a CPU wheel of torch in those folders (``torch-VERSION+cpu-...whl``), for the cpu image:
  ``TORCH=torch==VERSION+cpu`` from the configured indexes, so that PyTorch's CPU index is not needed.

The image is tagged ``surf-dist:KIND-HASH``, HASH over the build's inputs: the Dockerfile, every file it
copies or mounts, the base image's id, the torch choice and pip's constraints (not the index URLs, whose
port changes). When that tag exists nothing is built. It is also tagged ``surf-dist:KIND`` (the image the
compose files run); older ``surf-dist:KIND-*`` tags are removed, and BuildKit's cache is pruned to
``SURF_DOCKER_KEEP_BUILD_CACHE`` (default 12GB). Standard library only (Python 3.10+).
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO = DOCKER_DIR.parent
NAME = "surf-dist"
PUBLIC_BASE = "python:3.11-slim"
LOCAL_BASE = "surf-dist-base:bookworm"  # docker/ci-daemon.sh makes it with debootstrap where no registry answers
INDEX_PORT = 38181  # a fixed port keeps BuildKit's layer cache valid between builds (the URLs are build args)
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}  # .dockerignore drops them
SKIPPED_SUFFIXES = (".pyc", ".egg-info")


class BuildError(RuntimeError):
    """The image could not be built (or no daemon / client to build it with)."""


class NoBaseImage(BuildError):
    """The base image is neither here nor pullable (docker/ci-daemon.sh makes a local one)."""


# --- the docker client and daemon ----------------------------------------------------------------------------


def docker_client() -> list[str]:
    """A docker command line that builds with BuildKit: a client with buildx, or Docker 20.10-22 (built in)."""
    candidates = [c for c in (os.environ.get("SURF_DOCKER"), shutil.which("docker"), "/usr/bin/docker") if c]
    seen: list[str] = []
    for client in candidates:
        if client in seen or not Path(client).exists() and not shutil.which(client):
            continue
        seen.append(client)
        if _ok([client, "buildx", "version"]):
            return [client]
        version = _out([client, "version", "--format", "{{.Client.Version}}"]).strip()
        major = re.match(r"(\d+)\.", version)
        if major and 17 < int(major.group(1)) < 23:
            return [client]
    raise BuildError(f"no docker client that builds with BuildKit (tried {seen or 'none'}: buildx or Docker 20.10-22)")


def daemon_problem(client: Sequence[str] | None = None) -> str | None:
    """None when the Docker daemon answers, else why not (one line)."""
    try:
        cmd = list(client or [shutil.which("docker") or "docker"])
        proc = subprocess.run(
            [*cmd, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info: {exc}"
    if proc.returncode != 0 or not proc.stdout.strip():
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return f"docker info: {lines[-1] if lines else f'exit {proc.returncode}'}"
    return None


def image_id(client: Sequence[str], ref: str) -> str | None:
    proc = subprocess.run([*client, "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def image_size(client: Sequence[str], ref: str) -> int:
    return int(_out([*client, "image", "inspect", "--format", "{{.Size}}", ref]).strip() or 0)


def default_base(client: Sequence[str]) -> str:
    """SURF_DOCKER_BASE, else the public python image when it is here, else the local Debian base when it is
    here, else the public image (docker pulls it)."""
    if os.environ.get("SURF_DOCKER_BASE"):
        return os.environ["SURF_DOCKER_BASE"]
    for ref in (PUBLIC_BASE, LOCAL_BASE):
        if image_id(client, ref):
            return ref
    return PUBLIC_BASE


# --- the machine's pip configuration -------------------------------------------------------------------------


def pip_config(python: str = sys.executable) -> dict[str, str]:
    """pip's effective settings (``pip config list``; ``PIP_*`` variables over files), by option name."""
    proc = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    found: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^([^.=]*)\.([\w-]+)=(.*)$", line.strip())
        if match:
            section, key, value = match.groups()
            found.setdefault(key, {})[section] = _unquote(value)
    order = (":env:", "install", "global")
    return {key: next(by[s] for s in order if s in by) for key, by in found.items() if any(s in by for s in order)}


def _unquote(value: str) -> str:
    try:
        parts = shlex.split(value)
    except ValueError:
        return value
    return " ".join(parts) if len(parts) != 1 else parts[0]


def _local_path(location: str) -> Path | None:
    """The folder or file of a local pip location (a path or a file:// URL), else None."""
    if location.startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(location).path))
    if "://" in location:
        return None
    return Path(location).expanduser()


class LocalIndex:
    """Serves local folders and files over HTTP on 127.0.0.1, each under /N/ (folders: listings and files)."""

    def __init__(self, port: int = INDEX_PORT) -> None:
        self.roots: list[Path] = []
        # the fixed port when it is free (else any: BuildKit's cache of the pip layers is then lost)
        self.port = port if _port_free(port) else free_port()
        self._server: http.server.ThreadingHTTPServer | None = None

    def url(self, path: Path) -> str:
        """The URL of a local folder (with a trailing slash) or file, served once this index runs."""
        path = path.resolve()
        if path not in self.roots:
            self.roots.append(path)
        i = self.roots.index(path)
        suffix = "/" if path.is_dir() else "/" + urllib.parse.quote(path.name)
        return f"http://127.0.0.1:{self.port}/{i}{suffix}"

    @contextmanager
    def serving(self) -> Iterator[LocalIndex]:
        roots = self.roots

        class Handler(http.server.SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                parts = urllib.parse.unquote(urllib.parse.urlsplit(path).path).lstrip("/").split("/", 1)
                if not parts[0].isdigit() or int(parts[0]) >= len(roots):
                    return "/nonexistent"
                root = roots[int(parts[0])]
                if root.is_file():
                    return str(root) if len(parts) > 1 and parts[1] == root.name else "/nonexistent"
                rest = Path(parts[1] if len(parts) > 1 else "")
                if ".." in rest.parts:
                    return "/nonexistent"
                return str(root / rest)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class PipSources:
    """What a build gets of this machine's pip configuration."""

    args: dict[str, str] = field(default_factory=dict)  # PIP_* build arguments
    ca_certs: Path | None = None
    constraints: str = ""  # the constraint files' text (part of the image's inputs)
    wheel_dirs: list[Path] = field(default_factory=list)  # local folders with wheels (find-links, index files)


def pip_sources(index: LocalIndex, config: dict[str, str] | None = None) -> PipSources:
    """The machine's pip configuration as build arguments, with local folders and files on ``index``."""
    config = pip_config() if config is None else config
    out = PipSources()

    def convert(location: str) -> str:
        local = _local_path(location)
        if local is None:
            return location
        if local.is_dir():
            out.wheel_dirs.append(local)
            if (local.parent / "files").is_dir():  # a simple index's /simple beside its /files
                out.wheel_dirs.append(local.parent / "files")
                return index.url(local.parent) + "simple/"
        return index.url(local) if local.exists() else location

    for key, arg in (
        ("index-url", "PIP_INDEX_URL"),
        ("extra-index-url", "PIP_EXTRA_INDEX_URL"),
        ("find-links", "PIP_FIND_LINKS"),
        ("constraint", "PIP_CONSTRAINT"),
    ):
        if config.get(key):
            locations = config[key].split()
            out.args[arg] = " ".join(convert(loc) for loc in locations)
            if key == "constraint":
                out.constraints = "\n".join(_read(_local_path(loc)) for loc in locations)
    if any("127.0.0.1" in value for value in out.args.values()):
        out.args["PIP_TRUSTED_HOST"] = " ".join([*config.get("trusted-host", "").split(), "127.0.0.1"])
    elif config.get("trusted-host"):
        out.args["PIP_TRUSTED_HOST"] = config["trusted-host"]
    cert = os.environ.get("SURF_DOCKER_CA_CERTS") or config.get("cert")
    if cert and Path(cert).is_file():
        out.ca_certs = Path(cert)
    return out


def _read(path: Path | None) -> str:
    try:
        return path.read_text() if path is not None else ""
    except OSError:
        return ""


def local_cpu_torch(dirs: Sequence[Path], python_tag: str = "cp311") -> str | None:
    """``torch==VERSION+cpu`` of the newest CPU wheel of torch in ``dirs`` for ``python_tag``, else None."""
    versions = []
    for folder in dirs:
        for wheel in folder.glob(f"torch-*+cpu-{python_tag}-*.whl") if folder.is_dir() else []:
            version = wheel.name.split("-")[1]
            versions.append((tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])), version))
    return f"torch=={max(versions)[1]}" if versions else None


# --- the image's inputs --------------------------------------------------------------------------------------


def dockerfile(kind: str) -> Path:
    path = DOCKER_DIR / f"Dockerfile.{kind}"
    if not path.is_file():
        raise BuildError(f"{path}: no such Dockerfile (kinds: cpu, cuda)")
    return path


def context_sources(path: Path) -> list[str]:
    """The build-context paths a Dockerfile copies (COPY without --from) or bind-mounts (RUN --mount ... source=)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
        if words[0].upper() == "RUN":
            sources += re.findall(r"--mount=type=bind,(?:[^ ]*,)?source=([^, ]+)", line)
    return sorted(set(sources))


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name in SKIPPED_NAMES or child.name.endswith(SKIPPED_SUFFIXES):
            continue
        yield from _files(child)


def input_hash(kind: str, base_id: str, settings: dict[str, str], constraints: str = "") -> str:
    """A digest of everything that decides the image (not the URLs it was fetched from)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    path = dockerfile(kind)
    add("dockerfile", path.read_bytes())
    for source in context_sources(path):
        for file in _files(REPO / source):
            add(str(file.relative_to(REPO)), file.read_bytes())
    add("base", base_id.encode())
    add("settings", json.dumps(settings, sort_keys=True).encode())
    add("constraints", constraints.encode())
    return digest.hexdigest()[:12]


# --- the build -------------------------------------------------------------------------------------------------


@dataclass
class Image:
    tag: str
    built: bool  # False: an image of the same inputs was reused
    seconds: float  # the build's wall time (0 when reused)
    size: int  # bytes, as `docker image inspect` reports
    command: list[str] = field(default_factory=list)


def build_command(
    client: Sequence[str], kind: str, tag: str, base: str, build_args: dict[str, str], ca_certs: Path | None
) -> list[str]:
    cmd = [*client, "build", "--network", "host", "--progress", "plain", "-f", str(dockerfile(kind)), "-t", tag]
    for key, value in {"BASE": base, **build_args}.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if ca_certs is not None:
        cmd += ["--secret", f"id=ca_certs,src={ca_certs}"]
    return [*cmd, str(REPO)]


def ensure_image(
    kind: str,
    *,
    base: str | None = None,
    torch: str | None = None,
    torch_index_url: str | None = None,
    force: bool = False,
    log: Path | None = None,
    use_pip_config: bool = True,
    dry_run: bool = False,
    timeout_s: float = 1800,
) -> Image:
    """The image of ``docker/Dockerfile.KIND`` for the current inputs: reused when built before, else built.

    ``torch`` and ``torch_index_url`` are the TORCH and TORCH_INDEX_URL build arguments (default: the
    Dockerfile's, or for cpu a local CPU wheel of torch when the pip configuration has one).
    """
    client = docker_client()
    problem = daemon_problem(client)
    if problem:
        raise BuildError(f"no Docker daemon ({problem})")
    base = base or default_base(client)
    base_id = image_id(client, base)
    if base_id is None and not dry_run:
        pull = subprocess.run([*client, "pull", "-q", base], capture_output=True, text=True, timeout=600)
        base_id = image_id(client, base)
        if base_id is None:
            raise NoBaseImage(f"base image {base}: not here and not pulled ({pull.stderr.strip()[-300:]})")
    index = LocalIndex()
    sources = pip_sources(index, pip_config() if use_pip_config else {})
    settings: dict[str, str] = {}
    if torch is None and torch_index_url is None and kind == "cpu":
        found = local_cpu_torch(sources.wheel_dirs)
        if found:
            torch, torch_index_url = found, ""
    if torch is not None:
        settings["TORCH"] = torch
    if torch_index_url is not None:
        settings["TORCH_INDEX_URL"] = torch_index_url
    digest = input_hash(kind, base_id or base, settings, sources.constraints)
    tag = f"{NAME}:{kind}-{digest}"
    if not force and not dry_run and image_id(client, tag):
        _tag_latest(client, kind, tag)
        return Image(tag, built=False, seconds=0.0, size=image_size(client, tag))
    with index.serving():
        cmd = build_command(client, kind, tag, base, {**sources.args, **settings}, sources.ca_certs)
        if dry_run:
            return Image(tag, built=False, seconds=0.0, size=0, command=cmd)
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        start = time.monotonic()
        with _log_file(log) as out:
            out.write(shlex.join(cmd) + "\n")
            out.flush()
            try:
                proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise BuildError(f"docker build of {tag} ran past {timeout_s:.0f} s") from exc
        seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
        raise BuildError(f"docker build of {tag} failed (exit {proc.returncode}); log {log}:\n{tail}")
    _tag_latest(client, kind, tag)
    _remove_older(client, kind, tag)
    keep = os.environ.get("SURF_DOCKER_KEEP_BUILD_CACHE", "12GB")  # the newest layers of both images stay
    subprocess.run([*client, "builder", "prune", "-f", "--keep-storage", keep], capture_output=True, check=False)
    return Image(tag, built=True, seconds=seconds, size=image_size(client, tag), command=cmd)


@contextmanager
def _log_file(log: Path | None) -> Iterator:
    if log is None:
        yield sys.stderr
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        yield out


def _tag_latest(client: Sequence[str], kind: str, tag: str) -> None:
    subprocess.run([*client, "tag", tag, f"{NAME}:{kind}"], capture_output=True, check=False)


def _remove_older(client: Sequence[str], kind: str, keep: str) -> None:
    """Removes the tags of older builds of this kind (their layers go with them unless shared)."""
    tags = _out([*client, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", NAME]).split()
    old = [t for t in tags if t.startswith(f"{NAME}:{kind}-") and t != keep]
    if old:
        subprocess.run([*client, "image", "rm", *old], capture_output=True, check=False)


def _ok(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _out(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it (TIME_WAIT is no use)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("kind", choices=["cpu", "cuda"])
    parser.add_argument("--base", help=f"base image (default: $SURF_DOCKER_BASE, {PUBLIC_BASE} or {LOCAL_BASE})")
    parser.add_argument("--torch", help="the TORCH build argument, e.g. 'torch==2.13.0+cpu'")
    parser.add_argument("--torch-index-url", help="the TORCH_INDEX_URL build argument ('' = the pip indexes)")
    parser.add_argument("--no-pip-config", action="store_true", help="ignore this machine's pip configuration")
    parser.add_argument("--force", action="store_true", help="build even when an image of these inputs exists")
    parser.add_argument("--log", type=Path, help="write the build's output here (default: stderr)")
    parser.add_argument("--dry-run", action="store_true", help="print the docker build command only")
    args = parser.parse_args(argv)
    try:
        image = ensure_image(
            args.kind,
            base=args.base,
            torch=args.torch,
            torch_index_url=args.torch_index_url,
            force=args.force,
            log=args.log,
            use_pip_config=not args.no_pip_config,
            dry_run=args.dry_run,
        )
    except BuildError as exc:
        print(f"docker/build.py: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(shlex.join(image.command))
        return 0
    how = f"built in {image.seconds:.0f} s" if image.built else "reused (same inputs)"
    print(f"{image.tag}  {how}, {image.size / 1e9:.2f} GB", file=sys.stderr)
    print(image.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
