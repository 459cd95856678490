"""README.md is a front door that stays true: short, its layout naming only paths that exist,
its links into docs/ resolving, and every environment variable in its configuration section.

The layout section's format: one code block of `path  description` lines; a line that starts
with a space continues the description above it. File names a description gives (`worker.py`)
are in that path's folder, else at the top of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 300
# Beside the repository: /work/shared for a checkout, and a copy of shared/ beside CI's clone.
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"

# Every variable the contract names, and every one the configuration documents; the contract's
# own list is checked too wherever CONTRACT.md is beside the repository.
ENV_VARS = (
    # the contract's
    "INKWELL_HTTP_PORT",
    "INKWELL_WS_PORT",
    "INKWELL_AWS_PORT",
    "INKWELL_ADMIN_EMAIL",
    "INKWELL_ADMIN_PASSWORD",
    "ARTICLE_WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "INKWELL_LOG_FORMAT",
    "SENTRY_DSN",
    # the app's (chalicelib/config.py)
    "INKWELL_STAGE",
    "JWT_SECRET",
    "AUDIT_DIGEST_KEY",
    "INKWELL_SECRETS_PREFIX",
    "INKWELL_JWT_TTL_SECONDS",
    "INKWELL_REFRESH_TTL_SECONDS",
    "INKWELL_REFRESH_MAX_SECONDS",
    "INKWELL_WEBHOOK_TIMEOUT_SECONDS",
    "INKWELL_WS_MANAGEMENT_ENDPOINT",
    "INKWELL_WS_URL",
    "INKWELL_FANOUT_THRESHOLD",
    "INKWELL_FANOUT_GROUPS",
    "INKWELL_AWS_ENDPOINT",
    "AWS_DEFAULT_REGION",
    "INKWELL_SCRYPT_N",
    "INKWELL_NAME_<TABLE>",
    "INKWELL_LOG_LEVEL",
    # the local stack's and the benchmarks'
    "INKWELL_CONTROL_PORT",
    "INKWELL_READY_FILE",
    "INKWELL_WS_IDLE_TIMEOUT",
    "INKWELL_WS_MAX_AGE",
    "INKWELL_GENERATOR_DELAY",
    "INKWELL_SCHEDULER_START",
    "INKWELL_SCHEDULER_SPEED",
    "INKWELL_LOCAL_APP",
    "INKWELL_EXIT_WITH_PARENT",
    "INKWELL_BENCH_JOBS",
    "INKWELL_BENCH_GROWTH",
    "INKWELL_BENCH_GROWTH_PATHS",
)

FILE_NAME = re.compile(r"(?<![\w<>/.-])[\w-]+(?:\.[\w-]+)*\.(?:py|js|html|json|yaml|toml|txt|md)\b")
DOC_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")
ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def section(text: str, title: str) -> str:
    """The text under `## <title>`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def layout(text: str) -> list[tuple[str, str]]:
    """The layout section's (path, description) entries."""
    block = re.search(r"^```\n(.*?)^```", section(text, "Layout"), re.M | re.S)
    assert block, "the Layout section has no code block"
    entries: list[tuple[str, str]] = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            assert entries, f"a continuation line before any path: {line!r}"
            path, description = entries[-1]
            entries[-1] = (path, description + " " + line.strip())
        else:
            path, _, description = line.partition(" ")
            entries.append((path, description.strip()))
    return entries


def named_files(path: str, description: str) -> list[Path]:
    """The files a layout line names: its path, and each file name its description gives."""
    folder = ROOT / path if path.endswith("/") else (ROOT / path).parent
    files = [ROOT / path]
    for name in FILE_NAME.findall(description):
        files.append(folder / name if (folder / name).exists() else ROOT / name)
    return files


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_is_a_front_door_of_at_most_300_lines(readme: str) -> None:
    assert len(readme.splitlines()) <= MAX_LINES


def test_every_path_the_layout_names_exists(readme: str) -> None:
    entries = layout(readme)
    assert len(entries) >= 20, entries
    missing = [str(f.relative_to(ROOT)) for path, text in entries for f in named_files(path, text) if not f.exists()]
    assert not missing, f"the README's layout names paths that do not exist: {missing}"
    not_folders = [path for path, _ in entries if path.endswith("/") and not (ROOT / path).is_dir()]
    assert not not_folders


def test_the_layout_parser_sees_a_missing_path() -> None:
    text = "## Layout\n\n```\nchalicelib/jobs/  worker.py, nowhere.py\n  more.py\nnot_here/  x\n```\n"
    entries = layout(text)
    assert entries == [("chalicelib/jobs/", "worker.py, nowhere.py more.py"), ("not_here/", "x")]
    missing = [f.name for path, text in entries for f in named_files(path, text) if not f.exists()]
    assert missing == ["nowhere.py", "more.py", "not_here"]


def test_every_link_into_docs_resolves(readme: str) -> None:
    links = DOC_LINK.findall(readme)
    assert any(link.startswith("docs/") for link in links)
    assert not [link for link in links if not (ROOT / link).is_file()]


def test_every_docs_page_is_linked_from_the_readme_and_its_links_resolve(readme: str) -> None:
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages
    assert not [p.name for p in pages if f"](docs/{p.name})" not in readme]
    broken = [
        f"{page.name}: {link}"
        for page in pages
        for link in DOC_LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in link and not (page.parent / link).is_file()
    ]
    assert not broken


def test_every_environment_variable_is_in_the_configuration_section(readme: str) -> None:
    configuration = section(readme, "Configuration")
    assert not [name for name in ENV_VARS if f"`{name}`" not in configuration]


@pytest.mark.skipif(not CONTRACT.is_file(), reason=f"no contract beside the repository ({CONTRACT})")
def test_every_environment_variable_of_the_contract_is_in_the_configuration_section(readme: str) -> None:
    named = set(ENV_NAME.findall(CONTRACT.read_text(encoding="utf-8")))
    assert named
    configuration = section(readme, "Configuration")
    assert not sorted(name for name in named if f"`{name}`" not in configuration)
