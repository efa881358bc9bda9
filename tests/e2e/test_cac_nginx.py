"""CAC sign-in through Debian's real nginx terminating mutual TLS, with a CA and smart-card
certificates made for the test. The shipped deploy/nginx configuration is the one under test."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import httpx
import pytest

from quartermaster.services.context import Context
from tests.conftest import TEST_SECRET
from tests.e2e.servers import free_port, nginx_server, qm_server
from tests.factories import PASSWORD, add_user
from tests.fakes.pki import Issued, ThrowawayAuthority

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "quartermaster-cac.conf"
CARD = "DOE.JANE.1234567890"


def site_config(tls_dir: Path, ca: Path, listen: int, upstream: int) -> str:
    text = SHIPPED.read_text()
    text = text.replace("/etc/quartermaster/tls/server.crt", str(tls_dir / "server.crt"))
    text = text.replace("/etc/quartermaster/tls/server.key", str(tls_dir / "server.key"))
    text = text.replace("/etc/quartermaster/tls/cac-ca.pem", str(ca))
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{listen} ssl")
    return text.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")


def browser(ca: Path, port: int, card: Issued | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    if card is not None:
        context.load_cert_chain(str(card.cert), str(card.key))
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_link_a_card_then_sign_in_with_it_through_nginx(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    await add_user(ctx, "jane@example.com")
    (tmp_path / "rogue").mkdir()
    authority = ThrowawayAuthority(tmp_path)
    rogue = ThrowawayAuthority(tmp_path / "rogue", "Rogue CA")
    authority.server()
    card, forged = authority.card(CARD), rogue.card(CARD)
    app_port, tls_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    env |= {
        "QM_DATABASE_URL": database_url,
        "QM_SECRET_KEY": TEST_SECRET,
        "QM_TRUSTED_PROXIES": '["127.0.0.1"]',
        "QM_DATA_DIR": str(tmp_path / "data"),
    }
    site = site_config(tmp_path, authority.pem, tls_port, app_port)
    with qm_server(env, tmp_path, app_port), nginx_server(site, tmp_path / "nginx", tls_port):
        with browser(authority.pem, tls_port, card) as jane:
            first = jane.post("/api/auth/cac")
            assert first.status_code == 401, first.text
            assert first.json()["error"]["code"] == "certificate_not_linked"
            signed_in = jane.post(
                "/api/auth/login", json={"email": "jane@example.com", "password": PASSWORD}
            )
            csrf = signed_in.json()["csrf_token"]
            assert jane.post("/api/me/cac", headers={"X-CSRF-Token": csrf}).status_code == 204
            assert CARD in jane.get("/api/me").json()["cac_subject_dn"]
        with browser(authority.pem, tls_port, card) as later:
            assert later.post("/api/auth/cac").status_code == 200
            me = later.get("/api/me").json()
            assert me["email"] == "jane@example.com"
            assert later.get("/api/me/logins").json()[0]["method"] == "cac"
        with browser(authority.pem, tls_port, None) as no_card:
            refused = no_card.post(
                "/api/auth/cac",
                headers={"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": f"CN={CARD}"},
            )
            assert refused.status_code == 401
        with browser(authority.pem, tls_port, forged) as impostor:
            assert impostor.post("/api/auth/cac").status_code != 200


async def test_certificate_headers_from_untrusted_addresses_are_ignored(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "hdr@example.com")
    forged = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": "CN=ANY.ONE"}
    response = await client.post("/api/auth/cac", headers=forged)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_certificate"
