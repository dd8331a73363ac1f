"""A zone repository as a DNS team keeps one, and the post-receive hook deploying it to BIND.

The repository holds one fragment per zone, ``<zone>.domain`` at its root, with the records
only (``_acme-challenge.www 600 IN TXT "..."``). On every push to ``main`` the hook renders each
fragment into a full zone file (SOA/NS header with a new serial, then the fragment), asks named
to reload the zone with rndc and waits until named serves the new serial. The hook runs before
the push returns, so a record is live once the provider has answered.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from tests.dnsinfra import NamedServer, zone_header
from tests.processes import LOOPBACK, require_tool, run

SERIAL_PLACEHOLDER = "@SERIAL@"

HOOK = """#!/bin/sh
# Deploy the zone fragments on main to the DNS server: render, reload, wait until served.
set -eu
# Output goes to a log, never to the pusher: a client that hangs up must not kill the deploy.
exec >>{zone_dir}/deploy.log 2>&1
deploy=no
while read -r old new ref; do
  if [ "$ref" = refs/heads/main ]; then deploy=yes; fi
done
[ "$deploy" = yes ] || exit 0
# One deploy at a time, each from the branch tip at that moment: a late hook of an older push
# still publishes the newest content.
exec 9>{zone_dir}/deploy.lock
{flock} 9
serial=$(( $(cat {zone_dir}/serial) + 1 ))
echo "$serial" > {zone_dir}/serial
tip=$(git rev-parse refs/heads/main)
for file in $(git ls-tree --name-only "$tip"); do
  case "$file" in *.domain) ;; *) continue ;; esac
  zone=${{file%.domain}}
  header={zone_dir}/"$zone".header
  [ -f "$header" ] || continue  # not a zone this server is primary for
  sed "s/{placeholder}/$serial/" "$header" > {zone_dir}/"$zone".zone.new
  git show "$tip:$file" >> {zone_dir}/"$zone".zone.new
  mv {zone_dir}/"$zone".zone.new {zone_dir}/"$zone".zone
  {rndc} -s {loopback} -p {rndc_port} -k {rndc_key} reload "$zone"
  tries=0
  until [ "$({dig} +short +norecurse -p {port} @{loopback} SOA "$zone." | cut -d' ' -f3)" \\
          = "$serial" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then echo "zone $zone: serial $serial not served" >&2; exit 1; fi
    sleep 0.05
  done
  echo "deployed $zone serial $serial from $tip"
done
"""


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run the git command line (as the DNS team would); return its output."""
    identity = ["-c", "user.name=DNS team", "-c", "user.email=dns@example.com"]
    return run([require_tool("git"), *identity, *args], cwd=cwd)


def make_zone_repository(path: Path, fragments: dict[str, str]) -> Path:
    """Create a bare repository whose ``main`` holds ``<zone>.domain`` fragments."""
    git("init", "-q", "--bare", "-b", "main", path)
    seed = path.with_name(f"{path.name}-seed")
    git("init", "-q", "-b", "main", seed)
    for zone, records in fragments.items():
        (seed / f"{zone}.domain").write_text(records)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "DNS team: initial zones", cwd=seed)
    git("push", "-q", path, "main", cwd=seed)
    return path


def install_deploy_hook(repository: Path, named: NamedServer, zones: Sequence[str]) -> Path:
    """Install the post-receive hook that deploys ``zones`` from ``repository`` to ``named``.

    Returns:
        The hook's log file (what it printed for each deploy).
    """
    zone_dir = named.directory
    (zone_dir / "serial").write_text("1\n")  # the serial named.start() wrote
    for zone in zones:
        (zone_dir / f"{zone}.header").write_text(zone_header(zone, SERIAL_PLACEHOLDER))
    hook = repository / "hooks" / "post-receive"
    hook.write_text(
        HOOK.format(
            zone_dir=shlex.quote(str(zone_dir)),
            flock=require_tool("flock"),
            rndc=require_tool("rndc"),
            dig=require_tool("dig"),
            rndc_port=named.rndc_port,
            rndc_key=shlex.quote(str(named.rndc_key_file)),
            port=named.port,
            loopback=LOOPBACK,
            placeholder=SERIAL_PLACEHOLDER,
        )
    )
    hook.chmod(0o755)
    return zone_dir / "deploy.log"
