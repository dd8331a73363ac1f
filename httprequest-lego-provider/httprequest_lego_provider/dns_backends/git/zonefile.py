"""The zone file fragment format: challenge TXT lines added to and removed from bind files.

Pure functions over bytes, so that every line the DNS team wrote stays byte for byte as it was:
only lines this module appends are ever removed, and nothing unvalidated reaches a file.
"""

from __future__ import annotations

import re

from dns_backends.zones import relative_name

TTL = 600
ZONE_FILE_SUFFIX = ".domain"

# A challenge value is unpadded base64url of a SHA-256 digest: exactly 43 characters.
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_NAME_LENGTH = 253
_MIN_LABELS = 2  # a name inside a zone has at least two labels

# ``<owner> [ttl] [IN] TXT "<value>" [; comment]`` with ttl and class in either order.
_TXT_LINE = re.compile(
    rb'(?P<owner>[^\s;"]+)[ \t]+(?:(?:\d+|IN)[ \t]+){0,2}TXT[ \t]+"(?P<value>[^"\\]*)"'
    rb"[ \t]*(?:;.*)?",
    re.IGNORECASE,
)
_ORIGIN_LINE = re.compile(rb"\$ORIGIN[ \t]+(?P<origin>[^\s;]+)", re.IGNORECASE)


def zone_file_name(zone: str) -> str:
    """Return the path of ``zone``'s file in the repository (``example.com.domain``)."""
    return f"{zone}{ZONE_FILE_SUFFIX}"


def normalise(fqdn: str, value: str) -> tuple[str, str]:
    """Return ``(fqdn, value)`` ready to be written, or refuse them.

    The caller validates already; this second check is the last line of defence against
    zone-file injection (quotes, newlines, oversized strings), which the reference allowed.

    Raises:
        ValueError: the name or the value is not something this backend will ever write.
    """
    name = fqdn.lower().removesuffix(".")
    labels = name.split(".")
    if (
        len(name) > _MAX_NAME_LENGTH
        or len(labels) < _MIN_LABELS
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise ValueError(
            f"refusing to write a record at a name that is not {_MAX_NAME_LENGTH} characters or "
            "fewer of letters, digits, hyphens and underscores in two labels or more"
        )
    if not _VALUE.fullmatch(value):
        raise ValueError("refusing to write a TXT value that is not 43 characters of base64url")
    return name, value


def values_at(content: bytes, zone: str, fqdn: str) -> set[str]:
    """Return every TXT value the file publishes at ``fqdn`` (any writer's, not only ours)."""
    return {value.decode("ascii", "replace") for _, value in _txt_records(content, zone, fqdn)}


def add_value(content: bytes, zone: str, fqdn: str, value: str) -> bytes:
    """Return ``content`` with the record appended, or unchanged when the value is there."""
    if value in values_at(content, zone, fqdn):
        return content
    owner = relative_name(fqdn, zone) if _origin_at_end(content, zone) == zone else f"{fqdn}."
    line = f'{owner} {TTL} IN TXT "{value}"\n'.encode("ascii")
    if content and not content.endswith(b"\n"):
        content += b"\n"
    return content + line


def remove_value(content: bytes, zone: str, fqdn: str, value: str) -> bytes:
    """Return ``content`` without the lines publishing ``value`` at ``fqdn``; others untouched."""
    doomed = {
        index for index, found in _txt_records(content, zone, fqdn) if found == value.encode()
    }
    if not doomed:
        return content
    lines = content.split(b"\n")
    return b"\n".join(line for index, line in enumerate(lines) if index not in doomed)


def _txt_records(content: bytes, zone: str, fqdn: str) -> list[tuple[int, bytes]]:
    """Return ``(line index, value)`` of the TXT lines whose owner is ``fqdn``.

    Owners are resolved the way bind reads them (``@``, relative to the current ``$ORIGIN``, or
    absolute), so a record written in any of those spellings is found.
    """
    origin = zone
    found = []
    for index, raw in enumerate(content.split(b"\n")):
        line = raw.rstrip(b"\r")
        directive = _ORIGIN_LINE.fullmatch(line.rstrip())
        if directive:
            origin = _absolute(directive["origin"], origin)
            continue
        record = _TXT_LINE.fullmatch(line)
        if record and _absolute(record["owner"], origin) == fqdn:
            found.append((index, record["value"]))
    return found


def _origin_at_end(content: bytes, zone: str) -> str:
    """Return the ``$ORIGIN`` in force after the last line (where a new record is appended)."""
    origin = zone
    for raw in content.split(b"\n"):
        directive = _ORIGIN_LINE.fullmatch(raw.rstrip())
        if directive:
            origin = _absolute(directive["origin"], origin)
    return origin


def _absolute(owner: bytes, origin: str) -> str:
    """Resolve a zone-file owner name against ``origin`` (lower case, no trailing dot)."""
    name = owner.decode("ascii", "replace").lower()
    if name == "@":
        return origin
    if name.endswith("."):
        return name[:-1]
    return f"{name}.{origin}"
