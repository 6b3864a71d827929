"""MkDocs hook: a page line ``<!-- readme: Title -->`` becomes the body of the README's ``## Title`` section.

The README stays the one source of the quick start and of the sections the site shows as they are. Links
into docs/ are made relative to the site (``docs/maths.md`` -> ``maths.md``); any other relative link is
left for ``mkdocs build --strict`` to refuse. A title the README lacks fails the build.
"""

import re
from pathlib import Path

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- readme: (.+?) -->$", re.MULTILINE)


def readme_sections(text):
    """{title: body} of every ``## title`` section of the README text (body without its heading)."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2])}


def on_page_markdown(markdown, page, config, files):
    readme = Path(config["config_file_path"]).parent / "README.md"
    sections = readme_sections(readme.read_text(encoding="utf-8"))

    def body(match):
        title = match.group(1)
        if title not in sections:
            raise PluginError(f"{page.file.src_path}: README.md has no section '## {title}'")
        return sections[title].replace("](docs/", "](")

    return MARKER.sub(body, markdown)
