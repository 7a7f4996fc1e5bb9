"""A real many-publisher RTMP server for tests: Debian's nginx with libnginx-mod-rtmp.

Unlike `ffmpeg -listen 1` (one publisher, then it exits) it takes any number of streams and
publishers coming back, and records each stream to `<record_dir>/<key>.flv`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .media import SECRETS, _listening, free_port

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

_CONFIG = """\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            record {record};
            record_path {dir}/records;
            record_unique off;
        }}
    }}
}}
"""


@dataclass
class NginxRtmp:
    """A running nginx RTMP server on 127.0.0.1."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, key: str) -> str:
        """The publish address of stream `key` (registered for the stream-key leak check)."""
        SECRETS.add(key)
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def recording(self, key: str) -> Path:
        """Where nginx records stream `key` (complete once its publisher left)."""
        return self.directory / "records" / f"{key}.flv"

    def stop(self) -> None:
        """Stop nginx (SIGQUIT lets it close its recordings) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(3)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def require_nginx_rtmp() -> str:
    """nginx with the RTMP module; under CI=true their absence fails instead of skipping."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None or not RTMP_MODULE.exists():
        message = "nginx with the RTMP module is not installed " \
                  "(apt-get install nginx libnginx-mod-rtmp)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return nginx


def start_nginx_rtmp(nginx: str, directory: Path, *, record: bool = True) -> NginxRtmp:
    """Write a config into `directory`, start nginx in the foreground, wait for its port.

    With `record=False` nothing is written to disk (scripts/bench_relay.py: many publishers,
    only the relay's cost matters).
    """
    (directory / "records").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(
        _CONFIG.format(
            module=RTMP_MODULE, dir=directory, port=port, record="all" if record else "off"
        )
    )
    log = (directory / "stderr.log").open("wb")
    with log:  # the child keeps its copy
        proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(directory), "-e", str(directory / "error.log")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    server = NginxRtmp(port, directory, proc)
    deadline = time.monotonic() + 10
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            errors = (directory / "error.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"nginx did not start on port {port}: {errors}")
        time.sleep(0.05)
    return server


@pytest.fixture(scope="session")
def nginx_rtmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxRtmp]:
    """One nginx RTMP server for the whole run (per xdist worker); stopped at the end."""
    server = start_nginx_rtmp(require_nginx_rtmp(), tmp_path_factory.mktemp("nginx-rtmp"))
    yield server
    server.stop()
