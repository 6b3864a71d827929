"""Docstring citations of docs/maths.md point at sections that exist.

Code cites the mathematics as "docs/maths.md section N", "maths.md sections N and M" or
"maths.md sections N, M" (a citation may wrap across lines). Every cited N must be a
"## N." heading of docs/maths.md, and the old upper-case name must be gone from jaxmix/.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxmix"
DOC = ROOT / "docs" / "maths.md"

# "maths.md section 4", "maths.md sections 4 and 5", "maths.md sections 1, 2 and 3"; words may be
# separated by a line break and a comment's "#".
CITATION = re.compile(r"maths\.md[\s#]+sections?[\s#]+(\d+(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+)\d+)*)")
HEADING = re.compile(r"^## (\d+)\.", re.MULTILINE)


def package_files():
    return [p for p in sorted(PACKAGE.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]


def citations():
    """(file:line, section number) for every citation in the package's .py files."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for number in re.findall(r"\d+", match.group(1)):
                found.append((f"{path.relative_to(ROOT)}:{line}", int(number)))
    return found


def test_cited_sections_exist():
    sections = {int(n) for n in HEADING.findall(DOC.read_text(encoding="utf-8"))}
    found = citations()
    assert found, "no 'maths.md section N' citation found under jaxmix/"
    missing = [f"{where}: section {n}" for where, n in found if n not in sections]
    assert not missing, f"cited sections missing from docs/maths.md (headings {sorted(sections)}): {missing}"


def test_no_upper_case_math_md():
    stale = []
    for path in package_files():
        text = path.read_text(encoding="utf-8", errors="ignore")
        stale += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if "MATH.md" in line]
    assert not stale, f"rewrite these citations to 'docs/maths.md section N': {stale}"
