"""A MkDocs hook that renders the docs' formulas as MathML when the site is built.

`pymdownx.arithmatex` (``generic: true``) wraps each formula in ``<span class="arithmatex">\\(...\\)</span>`` or
``<div class="arithmatex">\\[...\\]</div>``; this hook replaces the LaTeX inside with the MathML that
`latex2mathml` makes of it. Browsers render MathML natively, so the pages need no script, no font from a CDN
and no network. A formula that does not convert stops the build with the page and the formula.
"""

from __future__ import annotations

import html
import re
from typing import Any

from latex2mathml.converter import convert

_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])\s*</(?P=tag)>',
    re.S,
)
_MTEXT = re.compile(r"(<mtext[^>]*>)(.*?)(</mtext>)", re.S)
_TEXT_ESCAPE = re.compile(r"\\([_%&#$])")


def _unescape_text(match: re.Match[str]) -> str:
    # \texttt{max\_lr}: in LaTeX the backslash only escapes the underscore; latex2mathml keeps it
    return match.group(1) + _TEXT_ESCAPE.sub(r"\1", match.group(2)) + match.group(3)


def to_mathml(latex: str, *, display: str) -> str:
    """The MathML of one formula (``display`` is ``"inline"`` or ``"block"``)."""
    return _MTEXT.sub(_unescape_text, convert(latex.strip(), display=display))


def on_page_content(html_text: str, page: Any, **kwargs: Any) -> str:
    def render(match: re.Match[str]) -> str:
        inline = match.group("inline")
        latex = html.unescape(inline if inline is not None else match.group("block"))
        display = "inline" if inline is not None else "block"
        try:
            mathml = to_mathml(latex, display=display)
        except Exception as error:  # any failure stops the build and names the page and the formula
            raise ValueError(f"{page.file.src_path}: cannot render {latex!r} as MathML: {error}") from error
        tag = match.group("tag")
        return f'<{tag} class="arithmatex">{mathml}</{tag}>'

    return _MATH.sub(render, html_text)
