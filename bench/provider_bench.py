"""Benchmark the provider as lego sees it: HTTP through gunicorn, basic auth, a git remote.

Prints, first, the latency of present and of cleanup after warm-up with a person-chosen password
(PBKDF2) and with a generated one (``--chosen-password-only`` stops there), and of acme-dns
``POST /update`` with an account's generated key (``--acmedns-only`` measures only that); then,
for local bare
remotes with 2,000 and 20,000 commits of history, the latency of present and of cleanup with one
client (median, p95), then the throughput of presents with 1, 8 and 32 concurrent clients,
checking that every record answered 200 is in the remote, and the resident memory of each
worker process; then the latency with a local remote that has a hook (pushed through git
receive-pack) and with an SSH remote on a local sshd, for both SSH transports.

    .venv/bin/python bench/provider_bench.py [--quick] [--chosen-password-only] [--acmedns-only]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "httprequest-lego-provider"))
sys.path.insert(0, str(ROOT / "httprequest-lego-provider" / "httprequest_lego_provider"))
sys.path.insert(0, str(ROOT / "scripts"))

from tests.dns_backends.contract import token  # noqa: E402
from tests.dns_backends.git_fixtures import remote_file  # noqa: E402
from tests.processes import running  # noqa: E402
from tests.provider_server import ProviderServer, postgresql_database  # noqa: E402
from tests.sshd import running_sshd  # noqa: E402
from webserver_args import gunicorn_args  # noqa: E402

WEBSERVER_JSON = ROOT / "httprequest-lego-provider" / "webserver.json"

ZONE_FILE = "example.com.domain"
# What a person would choose (it passes the password rule); stored with PBKDF2.
CHOSEN_PASSWORD = "bench-chosen-passphrase-7Qx"
WARMUP_ROUNDS = 3


def make_remote(path: Path, commits: int) -> Path:
    """A bare repository with ``commits`` commits of history (via git fast-import)."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    lines = []
    zone = b"; example.com fragment\n"
    for i in range(commits):
        history = f"commit {i}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer bench <b@127.0.0.1> {1_700_000_000 + i} +0000\n".encode())
        lines.append(b"data 7\nhistory\n")
        if i == 0:
            lines.append(f"M 100644 inline {ZONE_FILE}\ndata {len(zone)}\n".encode() + zone)
        lines.append(f"M 100644 inline history.txt\ndata {len(history)}\n".encode() + history)
        lines.append(b"\n")
    subprocess.run(
        ["git", "--git-dir", str(path), "fast-import", "--quiet"],
        input=b"".join(lines),
        check=True,
    )
    return path


class Client:
    """One keep-alive HTTP connection, as a lego process reuses its client."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        credentials = b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
        }

    def call(self, path: str, name: str, value: str) -> tuple[int, float]:
        body = json.dumps({"fqdn": name + ".", "value": value})
        start = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency(url: str, auth: tuple[str, str], rounds: int, tag: str, warmup: int = 0) -> None:
    """Present and clean up ``rounds`` records on one connection, after ``warmup`` uncounted.

    The first call with a person-chosen password pays the slow hash; the next ones should not.
    """
    client = Client(url, *auth)
    present, cleanup = [], []
    for i in range(warmup + rounds):
        name, value = f"_acme-challenge.lat{i}.example.com", token(f"{tag}{i}")
        status, seconds = client.call("/present", name, value)
        assert status == 200, status
        if i == 0 and warmup:
            print(f"  first present (not counted): {seconds * 1000:6.1f} ms")
        if i >= warmup:
            present.append(seconds)
        status, seconds = client.call("/cleanup", name, value)
        assert status == 200, status
        if i >= warmup:
            cleanup.append(seconds)
    for label, samples in (("present", present), ("cleanup", cleanup)):
        print(
            f"  {label:8s} n={len(samples)} median={statistics.median(samples) * 1000:6.1f} ms"
            f"  p95={percentile(samples, 0.95) * 1000:6.1f} ms"
        )


def throughput(
    url: str, auth: tuple[str, str], clients: int, per_client: int, remote: Path
) -> None:
    answered: list[tuple[str, str]] = []
    failures: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def run(c: int) -> None:
        client = Client(url, *auth)
        barrier.wait()
        for i in range(per_client):
            name, value = f"_acme-challenge.c{clients}x{c}n{i}.example.com", token(f"t{c}.{i}")
            status, _ = client.call("/present", name, value)
            with lock:
                (answered.append((name, value)) if status == 200 else failures.append(status))

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    lines = set(remote_file(remote, ZONE_FILE).decode().splitlines())
    missing = [
        n for n, v in answered if f'{n.removesuffix(".example.com")} 600 IN TXT "{v}"' not in lines
    ]
    print(
        f"  {clients:2d} clients: {len(answered) / elapsed:7.1f} records/s "
        f"({len(answered)} answered 200 in {elapsed:.2f} s, {len(failures)} failed, "
        f"{len(missing)} missing from the remote)"
    )
    # Clean up so the next round starts from the same zone size.
    client = Client(url, *auth)
    for name, value in answered:
        client.call("/cleanup", name, value)


def acmedns_update_latency(server: ProviderServer, rounds: int, warmup: int) -> None:
    """``POST /update`` as acme-dns clients send it, on one connection, after warm-up.

    A direct account (its fulldomain is ``_acme-challenge.<name>`` in the managed zone), so each
    update is a commit and a push like a present; the account's key is generated (fast hasher).
    """
    server.create_user("acmedns-bench", subdomains="example.com")
    storage = json.loads(
        server.manage("create_acmedns_account", "acmedns-bench", "upd.example.com")
    )
    account = storage["upd.example.com"]
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {
        "X-Api-User": account["username"],
        "X-Api-Key": account["password"],
        "Content-Type": "application/json",
    }
    samples = []
    for i in range(warmup + rounds):
        body = json.dumps({"subdomain": account["subdomain"], "txt": token(f"upd{i}")})
        start = time.perf_counter()
        conn.request("POST", "/update", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        seconds = time.perf_counter() - start
        assert response.status == 200, response.status
        if i >= warmup:
            samples.append(seconds)
    print(
        f"  update   n={len(samples)} median={statistics.median(samples) * 1000:6.1f} ms"
        f"  p95={percentile(samples, 0.95) * 1000:6.1f} ms"
    )


def worker_rss_mb(master_pid_hint: str) -> list[float]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,rss,args"], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()[1:]]
    masters = {
        r[0] for r in rows if master_pid_hint in r[3] and r[1] != "1" and "gunicorn" in r[3]
    }
    return [int(r[2]) / 1024 for r in rows if r[1] in masters]


def run_server(
    host: Path,
    remote: Path,
    repo_url: str,
    database: str,
    rounds: int,
    extra_env: dict[str, str] | None = None,
    *,
    webserver: Path = WEBSERVER_JSON,
    full: bool = False,
    password: str | None = None,
    warmup: int = 0,
    acmedns_only: bool = False,
) -> None:
    """Serve the provider on ``remote``; measure latency (and, if ``full``, throughput/RSS).

    ``password``: a person-chosen password for the bench user (the slow hasher); without one
    the service generates one (the fast hasher), as for lego's machine accounts.
    """
    backend_env = {
        "DJANGO_DNS_BACKEND": "git",
        "DJANGO_GIT_REPO": repo_url,
        "DJANGO_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    server = ProviderServer(host, backend_env, database_url=database, webserver=webserver)
    with running(server):
        if acmedns_only:
            acmedns_update_latency(server, rounds, warmup)
            return
        auth = ("bench", server.create_user("bench", password, subdomains="example.com"))
        latency(server.url, auth, rounds, host.name, warmup)
        if full:
            print("throughput (presents, each answered only after its push):")
            for clients in (1, 8, 32):
                per_client = max(3, (rounds * 2) // clients)
                throughput(server.url, auth, clients, per_client, remote)
            rss = worker_rss_mb(server.url.rsplit(":", 1)[1])
            print("worker RSS: " + ", ".join(f"{mb:.0f} MB" for mb in rss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke test)")
    parser.add_argument(
        "--webserver",
        type=Path,
        default=WEBSERVER_JSON,
        help="the gunicorn server model to measure (default: the rock's webserver.json)",
    )
    parser.add_argument(
        "--chosen-password-only",
        action="store_true",
        help="run only the person-chosen password case",
    )
    parser.add_argument(
        "--acmedns-only",
        action="store_true",
        help="run only the acme-dns POST /update case",
    )
    args = parser.parse_args()
    rounds = 30 if args.quick else 200
    print("gunicorn " + " ".join(gunicorn_args(args.webserver)))
    with tempfile.TemporaryDirectory() as tmp, postgresql_database() as database:
        tmp_path = Path(tmp)
        remote = make_remote(tmp_path / "acmedns.git", 2_000)
        print("acme-dns POST /update, direct account, local bare remote with 2000 commits:")
        run_server(
            tmp_path / "acmedns",
            remote,
            f"file://{remote}@main",
            database,
            rounds,
            webserver=args.webserver,
            warmup=WARMUP_ROUNDS,
            acmedns_only=True,
        )
        if args.acmedns_only:
            return
        remote = make_remote(tmp_path / "chosen.git", 2_000)
        print(
            "person-chosen password (PBKDF2), local bare remote with 2000 commits, after warm-up:"
        )
        run_server(
            tmp_path / "chosen",
            remote,
            f"file://{remote}@main",
            database,
            rounds,
            webserver=args.webserver,
            password=CHOSEN_PASSWORD,
            warmup=WARMUP_ROUNDS,
        )
        print("the same with a generated password (the fast hasher), for comparison:")
        run_server(
            tmp_path / "generated",
            remote,
            f"file://{remote}@main",
            database,
            rounds,
            webserver=args.webserver,
            warmup=WARMUP_ROUNDS,
        )
        if args.chosen_password_only:
            return
        for commits in (2_000, 20_000):
            remote = make_remote(tmp_path / f"remote{commits}.git", commits)
            print(f"local bare remote with {commits} commits of history:")
            run_server(
                tmp_path / f"host{commits}",
                remote,
                f"file://{remote}@main",
                database,
                rounds,
                webserver=args.webserver,
                full=commits == 20_000,
            )

        remote = make_remote(tmp_path / "hooked.git", 2_000)
        hook = remote / "hooks" / "post-receive"
        hook.write_text("#!/bin/sh\ncat > /dev/null\n")
        hook.chmod(0o755)
        print("local bare remote with a post-receive hook (pushed with git receive-pack):")
        run_server(
            tmp_path / "hooked",
            remote,
            f"file://{remote}@main",
            database,
            rounds // 2,
            webserver=args.webserver,
        )

        (tmp_path / "sshd").mkdir()
        with running_sshd(tmp_path / "sshd") as sshd:
            remote = make_remote(tmp_path / "ssh.git", 2_000)
            for transport in ("openssh", "libgit2"):
                print(f"SSH remote on a local sshd, {transport} transport:")
                run_server(
                    tmp_path / f"ssh-{transport}",
                    remote,
                    sshd.url(remote),
                    database,
                    rounds // 4,
                    {
                        "DJANGO_GIT_SSH_KEY": sshd.client_key,
                        "DJANGO_GIT_KNOWN_HOSTS": sshd.known_hosts,
                        "DJANGO_GIT_SSH_TRANSPORT": transport,
                    },
                    webserver=args.webserver,
                )


if __name__ == "__main__":
    main()
