"""Where the agent keeps its own settings: a JSON config file in the user's config folder
(platformdirs), and the secrets beside it in a file only the user may read (mode 0600).

The person's relationship data never lives here: it lives in their pod.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from vrm_agent.errors import ConfigError

if TYPE_CHECKING:
    from vrm_agent.pod.auth import ClientCredentials

APP_NAME = "vrm-agent"


def default_config_path() -> Path:
    env = os.environ.get("VRM_AGENT_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.json"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def write_private(path: Path, payload: dict[str, Any], *, mode: int = 0o600) -> None:
    """Write JSON atomically (temp file + rename) so a crash never leaves half a file, created
    with ``mode`` from the start so a secret is never readable by others, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(payload, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return payload


@dataclass
class Config:
    """The agent's settings. ``path`` is the config file; secrets sit in ``secrets_path``."""

    path: Path
    webid: str | None = None
    client_id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    _secret: str | None = field(default=None, repr=False)
    _signing_secret: str | None = field(default=None, repr=False)

    @property
    def secrets_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".secrets.json")

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        path = path or default_config_path()
        data = read_json(path)
        secrets = read_json(path.with_name(path.stem + ".secrets.json"))
        return cls(
            path=path,
            webid=data.get("webid"),
            client_id=data.get("client_id"),
            settings={k: v for k, v in data.items() if k not in {"webid", "client_id"}},
            _secret=secrets.get("client_secret"),
            _signing_secret=secrets.get("signing_key"),
        )

    def save(self) -> None:
        data: dict[str, Any] = dict(self.settings)
        if self.webid:
            data["webid"] = self.webid
        if self.client_id:
            data["client_id"] = self.client_id
        write_private(self.path, data, mode=0o644)
        secrets = {name: value for name, value in (("client_secret", self._secret),
                                                    ("signing_key", self._signing_secret)) if value}
        if secrets:
            write_private(self.secrets_path, secrets)

    def set_credentials(self, credentials: ClientCredentials) -> None:
        self.webid = credentials.webid
        self.client_id = credentials.client_id
        self._secret = credentials.client_secret

    def credentials(self) -> ClientCredentials:
        # Imported here, as SigningKey below: every command loads the config, `--help` too, and
        # neither the pod client's package nor the signing keys' is needed to read it.
        from vrm_agent.pod.auth import ClientCredentials

        if not (self.webid and self.client_id and self._secret):
            raise ConfigError(
                f"not logged in (no credentials in {self.path}): run 'vrm-agent login' "
                "or 'vrm-agent pod up'"
            )
        return ClientCredentials(self.webid, self.client_id, self._secret)

    def signing_secret(self) -> str:
        """The agent's Ed25519 signing key (Multikey form), made and saved on first use; it
        signs the agreements the agent reaches, so it stays the same across restarts."""
        if self._signing_secret is None:
            from vrm_agent.integrity.keys import SigningKey

            self._signing_secret = SigningKey().secret
            write_private(self.secrets_path, {
                **read_json(self.secrets_path), "signing_key": self._signing_secret})
        return self._signing_secret
