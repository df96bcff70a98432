"""`make run` on the embedded defaults: it starts, serves the admin, runs the heartbeat, stops cleanly."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.smoke


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own http://127.0.0.1 URL
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def test_make_run_starts_web_worker_and_beat_and_ctrl_c_stops_them(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env |= {"VAR_DIR": str(tmp_path / "var"), "PORT": str(port), "HEARTBEAT_SECONDS": "2", "DEBUG": "true"}
    log = (tmp_path / "run.log").open("w+")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        login = health = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            status, page = _get(f"http://127.0.0.1:{port}/admin/login/")
            if status == 200:
                login = page
                _, body = _get(f"http://127.0.0.1:{port}/healthz")
                if body and json.loads(body)["heartbeat"]["alive"]:
                    health = json.loads(body)
                    break
            time.sleep(1)
        log.seek(0)
        output = log.read()
        assert login is not None and "Log in" in login, output[-3000:]
        assert health is not None, "no heartbeat from worker + beat:\n" + output[-3000:]
        assert health["heartbeat"]["worker"].startswith("worker@")
        assert "Created administrator login 'admin' with password: " in output
        assert f"http://127.0.0.1:{port}/admin/" in output
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    time.sleep(1)
    survivors = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert survivors == [], "processes left running after Ctrl-C"
    log.seek(0)
    assert "Stopped." in log.read()
    assert _get(f"http://127.0.0.1:{port}/admin/login/")[0] == 0
