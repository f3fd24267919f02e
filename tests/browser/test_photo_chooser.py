"""The customer's photo chooser in a real browser: one input, a preview of the chosen photo, a big
photo made smaller before it is sent, and a photo dropped on the form or pasted into the page.
Every page photographed is checked with axe-core (`browser_support.shot`)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from browser_support import VIEWPORT, shot
from catalogs import product_photo
from PIL import Image
from sqlalchemy import select

from workflow.models import CustomerRequest

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
REQUEST_PAGE = re.compile(r"/r/[A-Za-z0-9_-]{32,}$")


def _camera_photo(width: int = 4000, height: int = 3000) -> bytes:
    """A 12-megapixel photo with sensor-like noise: several MB as a JPEG, as phones send them."""
    noise = np.random.default_rng(7).integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    image = Image.fromarray(noise).resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def _chosen_file(page) -> dict:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "() => { const f = document.getElementById('photo').files[0];"
        " return f ? {name: f.name, size: f.size, type: f.type} : null; }"
    )


def test_a_big_photo_is_previewed_made_smaller_and_sent(site, chromium, tmp_path) -> None:
    big = _camera_photo()
    assert len(big) > 3_000_000
    path = tmp_path / "IMG_2041.jpg"
    path.write_bytes(big)
    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(site.url + "/")
    page.set_input_files("#photo", str(path))
    expect(page.get_by_test_id("photo-preview")).to_be_visible()
    expect(page.get_by_test_id("photo-status")).to_contain_text("Made smaller for sending")
    chosen = _chosen_file(page)
    assert chosen["type"] == "image/jpeg" and chosen["name"] == "IMG_2041.jpg" and chosen["size"] < len(big) / 2
    shot(page, "chooser 1 big photo previewed")
    page.fill("#email", "big@example.com")
    page.click("#submit-request")
    page.wait_for_url(REQUEST_PAGE)
    with site.sessions() as session:
        request = session.scalars(select(CustomerRequest).where(CustomerRequest.email == "big@example.com")).one()
        assert max(request.photo_width, request.photo_height) <= 2048  # what arrived was the smaller copy
    page.close()


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_photo_dropped_on_the_form_or_pasted_is_used(site, chromium, how) -> None:
    page = chromium.new_page(viewport=VIEWPORT)
    page.goto(site.url + "/")
    encoded = base64.b64encode(product_photo(11)).decode()
    transfer = page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "shot.png", {type: "image/png"}));
            return transfer;
        }""",
        encoded,
    )
    if how == "drop":
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    else:
        page.evaluate(
            "(t) => document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: t, bubbles: true}))", transfer
        )
    expect(page.get_by_test_id("photo-preview")).to_be_visible()
    assert _chosen_file(page)["name"] == "shot.png"  # small enough to send as it is
    page.fill("#email", f"{how}@example.com")
    page.click("#submit-request")
    page.wait_for_url(REQUEST_PAGE)
    shot(page, f"chooser {how} request page")
    page.close()
