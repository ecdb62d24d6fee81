"""Where the ledger lives in the pod (docs/pod-layout.md says why).

Everything sits under ``<storage>vrm/``. Each unit a person may share alone is its own resource
(one vendor, one relationship, one membership, one contact unit, one preference); transactions,
which come in bulk, are kept in one resource per vendor and year, so 100,000 purchases take a few
hundred writes and "my purchases with ACME" is one container to share.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "vrm/"


@dataclass(frozen=True)
class PodLayout:
    storage: str

    def __post_init__(self) -> None:
        if not self.storage.endswith("/"):
            object.__setattr__(self, "storage", self.storage + "/")

    @property
    def root(self) -> str:
        return self.storage + ROOT

    def container(self, kind: str) -> str:
        return f"{self.root}{kind}/"

    def resource(self, kind: str, record_id: str) -> str:
        return f"{self.container(kind)}{record_id}"

    def vendor(self, vendor_id: str) -> str:
        return self.resource("vendors", vendor_id)

    def vendor_iri(self, vendor_id: str) -> str:
        """The vendor itself (the resource describes it): ``.../vendors/acme#it``."""
        return self.vendor(vendor_id) + "#it"

    def vendor_id_of(self, vendor_iri: str) -> str:
        return vendor_iri.split("#", 1)[0].rsplit("/", 1)[-1]

    def transactions(self, vendor_id: str | None = None) -> str:
        base = self.container("transactions")
        return f"{base}{vendor_id}/" if vendor_id else base

    def transaction_chunk(self, vendor_id: str, year: int) -> str:
        return f"{self.transactions(vendor_id)}{year}"

    def imports(self, digest: str) -> str:
        return self.resource("imports", digest)

    @property
    def grant_index(self) -> str:
        return self.root + "grants"
