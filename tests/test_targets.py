"""What a vendor may be granted, without sockets: targets are normalised as the pod server reads
them, and only what then lies inside the person's storage, outside the agent's own records, the
storage root and auxiliary resources, is ever shareable."""

from __future__ import annotations

import pytest

from vrm_agent.negotiation.targets import (
    ShareableArea,
    TargetRefused,
    normalise_url,
    shareable_target,
)

POD = "http://localhost:3000/carol/"
AREA = ShareableArea(POD, POD + "vrm/")


@pytest.mark.parametrize(("given", "expected"), [
    ("HTTP://LocalHost:3000/carol/notes/a", "http://localhost:3000/carol/notes/a"),
    ("http://localhost:80/carol/a", "http://localhost/carol/a"),
    ("https://pod.example:443/carol/a", "https://pod.example/carol/a"),
    ("http://localhost:3000/carol/./notes/../a", "http://localhost:3000/carol/a"),
    ("http://localhost:3000/carol/%2e%2e/bolt/", "http://localhost:3000/bolt/"),
    ("http://localhost:3000/carol/%2E%2E/bolt/", "http://localhost:3000/bolt/"),
    ("http://localhost:3000/carol/.%2e/bolt/", "http://localhost:3000/bolt/"),
    ("http://localhost:3000/%63arol/a", "http://localhost:3000/carol/a"),
    ("http://localhost:3000/carol/a%7e%41", "http://localhost:3000/carol/a~A"),
    ("http://localhost:3000/carol/a%c3%a4", "http://localhost:3000/carol/a%C3%A4"),
    ("http://localhost.:3000/carol/a", "http://localhost:3000/carol/a"),
    ("http://localhost:3000", "http://localhost:3000/"),
    ("http://localhost:3000/carol/../../../", "http://localhost:3000/"),
])
def test_urls_are_read_as_the_server_reads_them(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize("target", [
    POD + "notes/recipe", POD + "public/", POD + "profile/card", POD + "vrmx/a",
    POD + "x",
])
def test_resources_in_the_storage_are_shareable(target: str) -> None:
    assert shareable_target(target, AREA) == normalise_url(target)


@pytest.mark.parametrize(("target", "why"), [
    (POD, "storage root"),
    (POD.rstrip("/"), "outside"),
    ("http://LOCALHOST:3000/carol/", "storage root"),
    (POD + "notes/..", "storage root"),
    (POD + "vrm/", "records"),
    (POD + "vrm/negotiations/", "records"),
    (POD + "vrm/terms/sd-base", "records"),
    (POD + "vrm/transactions/other-shop/", "records"),
    (POD + "vrm/contact/email-home", "category"),
    (POD + "notes/../vrm/audit/", "records"),
    (POD + "%76rm/terms/", "records"),
    (POD + "../bolt/", "outside"),
    (POD + "%2e%2e/bolt/", "outside"),
    ("http://localhost:3001/carol/a", "outside"),
    ("http://localhost:3000/carolyn/a", "outside"),
    ("https://localhost:3000/carol/a", "outside"),
    ("file:///etc/passwd", "http(s)"),
    ("urn:uuid:1234", "http(s)"),
    ("carol/notes", "http(s)"),
    ("", "reasonable"),
    (POD + "notes/a?x=1", "query"),
    (POD + "notes/a#it", "fragment"),
    ("http://user:pw@localhost:3000/carol/a", "user information"),
    (POD + "notes/a.acl", "access-control"),
    (POD + "notes/.acr", "access-control"),
    (POD + "notes/a.META", "access-control"),
    (POD + "notes/a b", "spaces"),
    (POD + "/vrm/negotiations/", "empty path segments"),
    (POD + "notes//a", "empty path segments"),
    (POD + "a%2fb", "escaped slashes"),
    (POD + "%2e%2e%2Fbolt/", "escaped slashes"),
    (POD + "vrm%2Fnegotiations/", "escaped slashes"),
    (POD + "a%5Cb", "escaped slashes"),
    (POD + "notes\\..\\..\\bolt", "control characters"),
    ("http://localhost:99999/carol/a", "valid port"),
    (POD + "x" * 3000, "reasonable"),
])
def test_what_is_never_shared(target: str, why: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        shareable_target(target, AREA)
    assert why in str(refused.value)
