"""The documentation holds together: the README stays a short guide, every relative link in README.md and docs/*.md
reaches an existing file (and heading), and no tracked file points at a file outside the repository."""
import re
import subprocess

import pytest

from tests.conftest import REPO

README_MAX_LINES = 260
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
# references to files outside the repository (built from parts so this file does not name them itself)
OUTSIDE = ("shared" + "/simulator.md", "shared" + "/research-plan", ".." + "/shared")
# the plan and the simulator's description are docs/ pages; outside docs/ they are named with their folder
OWN_PAGES = re.compile(r"(?<![\w/.-])(research-plan\.md|simulator\.md)")


def markdown_files(repo=REPO):
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{2,}|`", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        s = slug(heading)
        n = seen.get(s, 0)
        found.add(s if n == 0 else f"{s}-{n}")
        seen[s] = n + 1
    return found | set(re.findall(r'<a (?:id|name)="([^"]+)"', text))


def broken_links(files, repo=REPO) -> list[str]:
    """``file: target (why)`` for every relative link that does not resolve."""
    broken = []
    for path in files:
        for target in LINK.findall(FENCE.sub("", path.read_text())):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(repo)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif not dest.is_relative_to(repo.resolve()):
                broken.append(f"{where} (outside the repository)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where} (no such heading)")
    return broken


def outside_references(repo=REPO) -> list[str]:
    """``path:line: text`` for every tracked line that names a file outside the repository."""
    listed = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    found = []
    for name in listed.stdout.splitlines():
        path = repo / name
        if not path.is_file() or path.suffix in {".png", ".h5", ".parquet", ".pt", ".db"}:
            continue
        try:
            lines = path.read_text().splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        in_docs = name.startswith("docs/")
        for i, line in enumerate(lines, 1):
            if any(s in line for s in OUTSIDE) or (not in_docs and OWN_PAGES.search(line)):
                found.append(f"{name}:{i}: {line.strip()[:120]}")
    return found


def test_readme_is_a_short_guide():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move detail into docs/ (limit {README_MAX_LINES})"


def test_readme_names_the_first_commands_and_the_test_command():
    text = (REPO / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1).split("\n")
    assert first[0].startswith("make demo") and first[1].startswith("make test")


def test_every_relative_link_resolves():
    assert broken_links(markdown_files()) == []


def test_a_broken_link_is_named(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Part two\n")
    (tmp_path / "README.md").write_text("[ok](docs/a.md#part-two) [gone](docs/b.md) [bad](docs/a.md#part-three)\n"
                                        "```\n[in code](nowhere.md)\n```\n[web](https://example.org)\n")
    assert broken_links(markdown_files(tmp_path), tmp_path) == [
        "README.md: docs/b.md (no such file)", "README.md: docs/a.md#part-three (no such heading)"]


def test_no_tracked_file_refers_outside_the_repository():
    assert outside_references() == []


def test_a_reference_outside_the_repository_is_named(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "docs").mkdir()
    plan, simulator = "research-plan" + ".md", "simulator" + ".md"  # bare page names, as a planted file holds them
    (tmp_path / "docs" / "index.md").write_text(f"[plan]({plan})\n")
    (tmp_path / "ok.py").write_text(f'"""As in docs/{simulator}."""\n')
    (tmp_path / "bad.py").write_text(f'"""As in {OUTSIDE[0]}."""\n# see {simulator}\n')
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    assert [f.split(": ")[0] for f in outside_references(tmp_path)] == ["bad.py:1", "bad.py:2"]
