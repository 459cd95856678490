"""`runtime.lazy`: app.py's handler-only modules load on first use, not at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib import runtime

ROOT = Path(__file__).resolve().parents[2]


def test_a_lazy_module_loads_on_first_attribute_read(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colorsys = runtime.lazy("colorsys")
    assert "colorsys" not in sys.modules
    assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_an_already_imported_module_is_returned_itself():
    assert runtime.lazy("json") is sys.modules["json"]


def test_reads_follow_the_real_module_so_patches_apply(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colorsys = runtime.lazy("colorsys")
    colorsys.ONE_THIRD  # noqa: B018  (loads it)
    monkeypatch.setattr(sys.modules["colorsys"], "ONE_THIRD", 0.5)
    assert colorsys.ONE_THIRD == 0.5


def test_importing_the_app_leaves_handler_only_modules_unloaded():
    handler_only = [
        "chalicelib.content.articles",
        "chalicelib.content.settings",
        "chalicelib.dashboard",
        "chalicelib.audit.api",
    ]
    code = f"import sys, app; print([m for m in {handler_only!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
