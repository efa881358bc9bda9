"""Text from pictures of text, by Tesseract (Debian's `tesseract-ocr` with its English data,
installed by `make ocr-deps`), run as a program on one page at a time, offline.

Errors: ServiceUnavailable (ocr_unavailable) when the program is missing or fails; a page
that takes longer than `PAGE_TIMEOUT_S` fails the same way.
"""

from __future__ import annotations

import io
import shutil
import subprocess

from PIL import Image

from quartermaster.domain.errors import ServiceUnavailable

PAGE_TIMEOUT_S = 120
LANGUAGE = "eng"


def _unavailable(reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"text in images cannot be read here ({reason}); nothing was stored or charged — an "
        "operator installs tesseract-ocr with `make ocr-deps`",
        param="files",
        code="ocr_unavailable",
    )


def read_text(page: Image.Image) -> str:
    """The text Tesseract finds on one page (greyscale PNG through a pipe, no temporary file)."""
    program = shutil.which("tesseract")
    if program is None:
        raise _unavailable("the tesseract program is not installed")
    png = io.BytesIO()
    page.convert("L").save(png, format="PNG")
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program and arguments, no shell
            [program, "stdin", "stdout", "-l", LANGUAGE],
            input=png.getvalue(),
            capture_output=True,
            timeout=PAGE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _unavailable(f"a page took longer than {PAGE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise _unavailable(done.stderr.decode(errors="replace").strip()[-300:] or "it failed")
    return done.stdout.decode(errors="replace")
