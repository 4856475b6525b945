"""Access keys (`reelay.keys`) and ``reelay keys``: made, shown once, stored encrypted
under the deployment's secret key, listed without secrets, revoked."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from reelay.cli import main
from reelay.errors import AccessKeyError, ConfigError
from reelay.keys import SECRET_KEY_FILE, AccessKeys, SecretKey
from reelay.state import open_state


def cli(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(autouse=True)
def _no_secret_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REELAY_SECRET_KEY", raising=False)


def test_the_home_secret_key_is_made_once_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = (
        "import sys; from pathlib import Path; from reelay.keys import SecretKey; "
        "print(SecretKey.load(Path(sys.argv[1])).token_keys('t')[0].hex())"
    )
    # Processes starting together agree on one key (the file is linked into place).
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    seen = {child.communicate(timeout=60)[0].strip() for child in children}
    assert len(seen) == 1 and all(child.returncode == 0 for child in children)
    path = home / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir()) == [SECRET_KEY_FILE]  # no temporary left
    path.chmod(0o644)
    assert SecretKey.load(home).token_keys("t")[0].hex() in seen
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # narrowed again


def test_the_secret_key_from_the_environment_and_its_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("REELAY_SECRET_KEY", old)
    under_old = SecretKey.load(tmp_path).encrypt("the secret")
    assert not (tmp_path / SECRET_KEY_FILE).exists()  # the environment's key: no file
    monkeypatch.setenv("REELAY_SECRET_KEY", f"{new}, {old}")  # rotated: new first
    rotated = SecretKey.load(tmp_path)
    assert rotated.decrypt(under_old) == "the secret"
    assert SecretKey([new.encode()], "new").decrypt(rotated.encrypt("x")) == "x"
    monkeypatch.setenv("REELAY_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(AccessKeyError, match="another secret key than REELAY_SECRET_KEY"):
        SecretKey.load(tmp_path).decrypt(under_old)
    monkeypatch.setenv("REELAY_SECRET_KEY", "hunter2")
    with pytest.raises(ConfigError, match="REELAY_SECRET_KEY: not a secret key") as bad:
        SecretKey.load(tmp_path)
    assert "hunter2" not in str(bad.value)


def test_keys_are_made_looked_up_and_revoked(tmp_path: Path) -> None:
    with open_state("", tmp_path) as state:
        keys = AccessKeys(state, SecretKey.load(tmp_path))
        key, secret = keys.create("ci")
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key.id)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
        stored = state.access_key(key.id)
        assert stored is not None and secret not in stored.secret
        assert keys.secret(key.id) == secret
        with pytest.raises(AccessKeyError, match="unknown access key AKIANOPE"):
            keys.secret("AKIANOPE")
        keys.used(key.id, now=100.0)
        keys.used(key.id, now=110.0)  # within the minute: not written again
        assert state.access_key(key.id).last_used == 100.0  # type: ignore[union-attr]
        assert keys.revoke(key.id).revoked is not None
        assert keys.revoke(key.id).revoked is not None  # again: nothing changes
        with pytest.raises(AccessKeyError, match=f"revoked access key {key.id}"):
            keys.secret(key.id)
        with pytest.raises(AccessKeyError, match="no access key 'AKIANOPE'"):
            keys.revoke("AKIANOPE")


def test_reelay_keys_create_list_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = cli("keys", "create", "--name", "laptop", "--home", home)
    assert made.exit_code == 0, made.output
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(AKIA\w{16})\n", made.output)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S{40})\n", made.output)
    assert key_id and secret and "shown only now" in made.output
    other = json.loads(cli("keys", "create", "--home", home, "--json").output)
    assert set(other) == {"AccessKeyId", "SecretAccessKey", "Name"}

    listed = cli("keys", "list", "--home", home)
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["ACCESS", "KEY", "ID", "NAME", "CREATED", "LAST", "USED", "STATUS"]
    assert key_id[1] in lines[1] and "laptop" in lines[1] and lines[1].endswith("active")
    listing = json.loads(cli("keys", "list", "--home", home, "--json").output)
    assert [k["id"] for k in listing] == [key_id[1], other["AccessKeyId"]]
    assert all("secret" not in k for k in listing)
    everything = listed.output + json.dumps(listing)
    assert secret[1] not in everything and other["SecretAccessKey"] not in everything

    revoked = cli("keys", "revoke", key_id[1], "--home", home)
    assert revoked.exit_code == 0 and revoked.output == f"revoked {key_id[1]} (laptop)\n"
    assert cli("keys", "list", "--home", home).output.splitlines()[1].split()[-3] == "revoked"
    unknown = cli("keys", "revoke", "AKIANOSUCHKEY0000000", "--home", home)
    assert unknown.exit_code == 1
    assert unknown.output == (
        "error: no access key 'AKIANOSUCHKEY0000000'; `reelay keys list` lists them\n"
    )


def test_reelay_keys_on_a_home_that_is_not_there(tmp_path: Path) -> None:
    for args in (("list",), ("revoke", "AKIA0000000000000000")):
        result = cli("keys", *args, "--home", tmp_path / "nowhere")
        assert result.exit_code == 1 and "no reelay home at" in result.output
    assert not (tmp_path / "nowhere").exists()
