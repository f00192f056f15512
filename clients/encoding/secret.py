"""The shared linkage secret and the keys derived from it.

The secret is 256 random bits, stored as 64 hex characters in a file of mode 0600, or given in the
``LINKAGE_SECRET`` environment variable. It is never taken from the command line (argv is visible
to every user of the machine), never logged, and never kept in a process-wide cache: a
:class:`Secret` lives only as long as the encoder that uses it, and its ``repr`` is redacted.

Keys are derived with BLAKE3's key-derivation mode. Each context string names the scheme version
and its purpose, so a key for one slot or purpose reveals nothing about another.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import blake3

from .errors import SecretError

__all__ = ["ENV_VAR", "Secret", "generate_secret_file", "key_check", "read_secret", "slot_key"]

ENV_VAR = "LINKAGE_SECRET"
SECRET_BYTES = 32
SCHEME = "mash-linkage bloom-v1"
_SLOT_CONTEXT = SCHEME + " field-key slot={slot}"
_KEY_CHECK_CONTEXT = SCHEME + " key-check"
KEY_CHECK_HEX_CHARS = 16


class Secret:
    """The shared secret's bytes, kept out of reprs, logs and tracebacks' locals display."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if len(value) != SECRET_BYTES:
            raise SecretError(f"the secret must be {SECRET_BYTES * 8} bits; got {len(value) * 8}")
        self._value = value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled: it must not leave this process")

    __str__ = __repr__

    def derive(self, context: str) -> bytes:
        hasher = blake3.blake3(derive_key_context=context)
        hasher.update(self._value)
        return hasher.digest()


def slot_key(secret: Secret, slot: str) -> bytes:
    """The 256-bit hashing key for one field slot."""
    return secret.derive(_SLOT_CONTEXT.format(slot=slot))


def key_check(secret: Secret) -> str:
    """A one-way check value that travels with encodings, so a wrong secret is caught at once."""
    return secret.derive(_KEY_CHECK_CONTEXT).hex()[:KEY_CHECK_HEX_CHARS]


def generate_secret_file(path: str | Path) -> None:
    """Write a new random secret; refuses to overwrite, and creates the file as mode 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise SecretError(f"{path} already exists; refusing to overwrite a secret") from e
    except OSError as e:
        raise SecretError(f"cannot create {path}: {e.strerror or e}") from e
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(SECRET_BYTES) + "\n")


def read_secret(secret_file: str | Path | None, environ: Mapping[str, str]) -> tuple[Secret, str]:
    """Return the secret and a warning ('' if none). The file wins over the environment."""
    if secret_file is not None:
        path = Path(secret_file)
        try:
            text = path.read_text(encoding="ascii")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or "not a text file"
            raise SecretError(f"cannot read secret file {path}: {reason}") from e
        warning = ""
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warning = (
                f"secret file {path} is open to other users (group or other permission bits "
                f"set); run: chmod 600 {path}"
            )
        return _parse(text, f"secret file {path}"), warning
    if ENV_VAR in environ:
        return _parse(environ[ENV_VAR], f"environment variable {ENV_VAR}"), ""
    raise SecretError(f"no secret given: use --secret-file FILE or set {ENV_VAR}")


def _parse(text: str, where: str) -> Secret:
    value = text.strip()
    if len(value) != SECRET_BYTES * 2:
        raise SecretError(
            f"{where} must hold {SECRET_BYTES * 2} hex characters ({SECRET_BYTES * 8} bits); "
            f"found {len(value)} characters"
        )
    try:
        return Secret(bytes.fromhex(value))
    except ValueError as e:
        raise SecretError(f"{where} is not hexadecimal") from e
