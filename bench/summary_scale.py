"""The trial summary, the AE list and the AE changelist at scale, against gunicorn (issue 13).

    .venv/bin/python bench/summary_scale.py --big postgres://…/cohort_manager_scale_bench \\
        --small postgres://…/cohort_manager_scale_small [--rounds 3] [--requests 20]

Both databases come from ``bench/generate_data.py`` (the big one: 200 trials, 200,000 AEs, GEN00000 with
100,000 and GEN00001 with 1,000; the small one: 2 trials, 2,000 AEs). One gunicorn per database (2 sync
workers, DEBUG off, ``bench.settings``), warmed up; then ``--rounds`` rounds, each requesting every
target ``--requests`` times in turn (interleaved), one client, a superuser's session for the admin and
a sponsor's token for the API. Prints JSON: per target the median latency and req/s per round, the
ratios per round with their range, and the workers' resident memory after the runs.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"),
        "SIGNATURE_KEYS": os.environ.get("SIGNATURE_KEYS", "bench:0123456789abcdef0123456789abcdef"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }


def credentials(env: dict) -> dict:
    """A sponsor token and a superuser session cookie in that database (created once)."""
    script = (
        "import django, json; django.setup()\n"
        "from django.contrib.auth import get_user_model; from django.contrib.auth.models import Group\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from core.tokens import token_issue\n"
        "from trial.access import trial_assignment_save\n"
        "from trial.models import Trial\n"
        "User = get_user_model()\n"
        "admin, _ = User.objects.get_or_create(username='bench-admin',\n"
        "    defaults={'is_staff': True, 'is_superuser': True})\n"
        "sponsor, _ = User.objects.get_or_create(username='bench-sponsor')\n"
        "sponsor.groups.add(Group.objects.get(name='Sponsor'))\n"
        "for trial in Trial.objects.all():  # a sponsor's token reads only the trials it is assigned to\n"
        "    trial_assignment_save(user=sponsor, trial=trial, by=admin, reason='benchmark')\n"
        "session = SessionStore(); session['_auth_user_id'] = str(admin.pk)\n"
        "session['_auth_user_backend'] = 'core.auth_backends.OneQueryModelBackend'\n"
        "session['_auth_user_hash'] = admin.get_session_auth_hash()\n"
        "from django_otp.plugins.otp_totp.models import TOTPDevice  # the admin needs a verified second factor\n"
        "device, _ = TOTPDevice.objects.get_or_create(user=admin, name='bench', defaults={'confirmed': True})\n"
        "session['otp_device_id'] = device.persistent_id; session.create()\n"
        "key = token_issue(user=sponsor, by=admin, reason='benchmark')[1]\n"
        "print(json.dumps({'token': key, 'session': session.session_key}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(env: dict, port: int, log: Path) -> subprocess.Popen:
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", "2", "--timeout", "120"]  # fmt: skip
    server = subprocess.Popen(gunicorn, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("gunicorn did not start")


def get(port: int, path: str, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return time.perf_counter() - started, response.status


def worker_rss_kib(server: subprocess.Popen) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", required=True)
    parser.add_argument("--small", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    servers, targets = {}, {}
    try:
        for name, url in (("big", args.big), ("small", args.small)):
            env = environment(url)
            secret = credentials(env)
            port = free_port()
            servers[name] = (start(env, port, Path(f"/tmp/bench-summary-{name}.log")), port, secret)
        big, small = servers["big"], servers["small"]
        token = lambda s: {"Authorization": f"Token {s[2]['token']}"}  # noqa: E731
        cookie = lambda s: {"Cookie": f"sessionid={s[2]['session']}"}  # noqa: E731
        targets = {
            "bare_json_50_rows": (big, "/bench/bare/", token(big)),
            "summary_1000_aes": (big, "/api/v1/trials/GEN00001/summary/", token(big)),
            "summary_100000_aes": (big, "/api/v1/trials/GEN00000/summary/", token(big)),
            "ae_list_200000_rows": (big, "/api/v1/adverse-events/", token(big)),
            "ae_list_2000_rows": (small, "/api/v1/adverse-events/", token(small)),
            "ae_changelist_200000_rows": (big, "/admin/safety/adverseevent/", cookie(big)),
            "ae_changelist_2000_rows": (small, "/admin/safety/adverseevent/", cookie(small)),
        }
        for (_, port, _), path, headers in targets.values():  # warm-up, and every answer must be a 200
            for _ in range(3):
                status = get(port, path, headers)[1]
                assert status == 200, (path, status)
        rounds = []
        for _ in range(args.rounds):
            times = {name: [] for name in targets}
            for _ in range(args.requests):
                for name, ((_, port, _), path, headers) in targets.items():
                    elapsed, status = get(port, path, headers)
                    assert status == 200, (name, status)
                    times[name].append(elapsed)
            rounds.append({name: statistics.median(values) for name, values in times.items()})
        ratios = {
            "summary_1000_req_per_s_over_bare": [r["bare_json_50_rows"] / r["summary_1000_aes"] for r in rounds],
            "summary_100000_over_1000_time": [r["summary_100000_aes"] / r["summary_1000_aes"] for r in rounds],
            "ae_list_200000_over_2000_time": [r["ae_list_200000_rows"] / r["ae_list_2000_rows"] for r in rounds],
            "changelist_200000_over_2000_time": [
                r["ae_changelist_200000_rows"] / r["ae_changelist_2000_rows"] for r in rounds
            ],
        }
        report = {
            "median_ms_per_round": {n: [round(r[n] * 1000, 1) for r in rounds] for n in targets},
            "ratios": {
                n: {"rounds": [round(v, 2) for v in vs], "min": round(min(vs), 2), "max": round(max(vs), 2)}
                for n, vs in ratios.items()
            },
            "worker_rss_mib": {n: [round(k / 1024, 1) for k in worker_rss_kib(s[0])] for n, s in servers.items()},
            "load_average": os.getloadavg(),
        }
        print(json.dumps(report, indent=2))
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
