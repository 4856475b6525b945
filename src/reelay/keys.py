"""Access keys that reelay issues for the AWS-style APIs it serves (the Kinesis API).

An access key is an id (``AKIA`` and 16 more letters and digits, 20 in all, as AWS's
are) and a 40-character secret, made by ``reelay keys create``, which shows the secret
once. Clients sign requests with it (AWS Signature Version 4, `reelay.sigv4`); the
server recomputes each signature, so it needs the secret itself: secrets are stored
encrypted, not hashed, in the State (one table, shared by every machine of a
deployment), with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``).

The encryption key is the deployment's *secret key*: ``REELAY_SECRET_KEY`` (a Fernet
key, or several separated by commas: the first encrypts, any decrypts, which is how
one is rotated) or, by default, ``<home>/secret.key``, made owner-only on first use.
Machines that share a state share its keys, so they must share the secret key too:
set ``REELAY_SECRET_KEY`` to the same value on each. The secret key also signs what
the APIs hand out and take back (Kinesis shard iterators: `token_keys`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from reelay.errors import AccessKeyError, ConfigError
from reelay.state import AccessKey, State

__all__ = [
    "KEY_ID_PREFIX",
    "SECRET_KEY_ENV",
    "SECRET_KEY_FILE",
    "AccessKeys",
    "SecretKey",
    "new_key_id",
    "new_secret",
]

SECRET_KEY_ENV = "REELAY_SECRET_KEY"
SECRET_KEY_FILE = "secret.key"
KEY_ID_PREFIX = "AKIA"
_KEY_ID_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32, as AWS's key ids use
USED_EVERY_S = 60.0  # how often a key's last use is written (not once per request)
_DECRYPTED_MAX = 1024  # decrypted secrets kept (`AccessKeys.secret`)


def new_key_id() -> str:
    """A fresh access key id: ``AKIA`` and 16 base-32 characters (80 random bits)."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_LETTERS) for _ in range(16))


def new_secret() -> str:
    """A fresh secret access key: 40 base-64 characters (240 random bits), as AWS's."""
    return base64.b64encode(secrets.token_bytes(30)).decode()


class SecretKey:
    """The deployment's secret key: encrypts access keys' secrets, signs tokens.

    `load` reads it from ``REELAY_SECRET_KEY`` or the home's ``secret.key``, making
    that file (owner-only, atomically: two processes starting together agree on one
    key) when there is none.
    """

    def __init__(self, keys: list[bytes], source: str) -> None:
        if not keys:
            raise ConfigError(f"{source}: no secret key in it")
        self.source = source
        self._raw = keys
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def load(cls, home: Path) -> SecretKey:
        value = os.environ.get(SECRET_KEY_ENV, "").strip()
        if value:
            return cls(_parse(value, SECRET_KEY_ENV), SECRET_KEY_ENV)
        path = home / SECRET_KEY_FILE
        return cls(_parse(_ensure_file(path), str(path)), str(path))

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The secret ``token`` holds; `AccessKeyError` if this secret key cannot read it
        (it was made under another one)."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise AccessKeyError(
                f"a secret made under another secret key than {self.source}'s; give every "
                f"machine of a deployment the same {SECRET_KEY_ENV}"
            ) from None

    def token_keys(self, purpose: str) -> list[bytes]:
        """HMAC keys for signing tokens of one ``purpose``, derived from the secret key
        (the first signs, every one verifies)."""
        return [
            hmac.new(k, f"reelay {purpose}".encode(), hashlib.sha256).digest() for k in self._raw
        ]


def _parse(value: str, source: str) -> list[bytes]:
    keys = []
    for part in value.split(","):
        part = part.strip()
        try:
            Fernet(part)
        except (ValueError, binascii.Error):
            raise ConfigError(
                f"{source}: not a secret key (a Fernet key: 32 bytes in URL-safe base64, such "
                'as python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())" prints)'
            ) from None
        keys.append(part.encode())
    return keys


def _ensure_file(path: Path) -> str:
    """The secret key file's content, the file made first if there is none.

    The key is written to a private temporary file that is then linked into place: a
    link never replaces a file, so whichever of two processes links first wins and the
    other reads the winner's key, never a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = path.read_text()
    except FileNotFoundError:
        pass
    else:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)  # a key left readable by others is narrowed again
        return text
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text()


class AccessKeys:
    """Issue, list, revoke and look up the access keys kept in a State. Thread-safe."""

    def __init__(self, state: State, secret_key: SecretKey) -> None:
        self.state = state
        self.secret_key = secret_key
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()
        # Decrypted secrets by what they were encrypted as: the State is still asked on
        # every lookup (a key revoked anywhere is refused from the next request on),
        # only the decryption of the same stored secret is not done again.
        self._decrypted: dict[str, str] = {}

    def create(self, name: str = "") -> tuple[AccessKey, str]:
        """A new key and its secret (the only time the secret is returned in clear)."""
        secret = new_secret()
        key = AccessKey(new_key_id(), name, self.secret_key.encrypt(secret), time.time())
        self.state.add_access_key(key)
        return key, secret

    def list(self) -> list[AccessKey]:
        return self.state.access_keys()

    def revoke(self, key_id: str) -> AccessKey:
        """Revoke a key (its secret is forgotten); `AccessKeyError` if there is none of
        that id. Revoking a revoked key changes nothing."""
        self.state.revoke_access_key(key_id, time.time())
        key = self.state.access_key(key_id)  # revoked keys stay on record
        if key is None:
            raise AccessKeyError(f"no access key {key_id!r}; `reelay keys list` lists them")
        return key

    def secret(self, key_id: str) -> str:
        """The secret of a key in use; `AccessKeyError` (its message says why, naming the
        key, never a secret) for one unknown, revoked or unreadable here."""
        key = self.state.access_key(key_id)
        if key is None:
            raise AccessKeyError(f"unknown access key {key_id}")
        if key.revoked is not None:
            raise AccessKeyError(f"revoked access key {key_id}")
        secret = self._decrypted.get(key.secret)
        if secret is None:
            try:
                secret = self.secret_key.decrypt(key.secret)
            except AccessKeyError as exc:
                raise AccessKeyError(f"access key {key_id}: {exc}") from None
            with self._lock:
                if len(self._decrypted) >= _DECRYPTED_MAX:
                    self._decrypted.clear()
                self._decrypted[key.secret] = secret
        return secret

    def used(self, key_id: str, now: float | None = None) -> None:
        """Note a request signed with the key: written at most once a minute per key."""
        now = time.time() if now is None else now
        with self._lock:
            if now - self._used.get(key_id, 0.0) < USED_EVERY_S:
                return
            self._used[key_id] = now
        self.state.access_key_used(key_id, now)
