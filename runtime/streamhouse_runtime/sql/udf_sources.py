"""Where the code of a `CREATE FUNCTION ... LANGUAGE PYTHON AS '...'` may come from.

A StreamQuery author is not a cluster administrator, so a UDF may only name code an
administrator put in place:

* an entry point of the `streamhouse.udfs` group of the installed image, named by the entry
  point's name (`AS 'score'`) or by its exact value (`AS 'acme_udfs.fraud:score'`); or
* a module of the UDF directory (`AS 'module:callable'`, the module being `module.py` or a
  package in that directory): the ConfigMap the operator mounts read-only at
  `STREAMHOUSE_UDF_PATH`. Without that setting there is no UDF directory.

Never the standard library or anything else installed (`os:system`, `subprocess:run`,
`builtins:eval`): a module name that resolves there is refused, since loading it would run
that code instead of the directory's.

`definition_problem` is the check of validation (admission, `validate`, the pod's start); it
reads package metadata and finds modules without importing anything. The pod loads the code
with `streamhouse_runtime.program.load_udfs`, which applies the same rule.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "streamhouse.udfs"

# UDF directories this process loaded modules from (and so appended to sys.path): a module
# found there is a directory module, not installed code.
_loaded_directories: set[Path] = set()


def register_directory(udf_directory: str) -> None:
    """Note that modules of `udf_directory` are now importable in this process."""
    _loaded_directories.add(Path(udf_directory).resolve())


@lru_cache(maxsize=1)
def installed_entry_points() -> dict[str, str]:
    """{name: 'module:attribute'} of the image's `streamhouse.udfs` entry points."""
    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}


def entry_point_value(definition: str) -> str | None:
    """The 'module:attribute' an entry point gives for `definition` (its name or value)."""
    installed = installed_entry_points()
    if definition in installed:
        return installed[definition]
    if definition in installed.values():
        return definition
    return None


def is_well_formed(definition: str) -> bool:
    """'module.path:callable' made of Python identifiers."""
    module, _, attribute = definition.partition(":")
    return bool(module and attribute) and all(
        part.isidentifier() for part in [*module.split("."), attribute]
    )


def _in_udf_directory(path: str | None, directory: str | None) -> bool:
    if not path:
        return False
    directories = set(_loaded_directories)
    if directory:
        directories.add(Path(directory).resolve())
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return any(resolved.is_relative_to(d) for d in directories)


def definition_problem(definition: str, udf_directory: str | None = None) -> str | None:
    """Why `definition` may not be used as UDF code, or None.

    `udf_directory`: the UDF directory, when this process has it (the pod): a module found
    there is the directory's own, even if the directory is on sys.path. Whether the module
    exists is the loader's question (admission cannot see the ConfigMap's files).
    """
    if entry_point_value(definition) is not None:
        return None
    if not is_well_formed(definition):
        return f"function body '{definition}' must be 'module:callable' or an entry point name"
    module = definition.partition(":")[0]
    top = module.split(".")[0]
    allowed = (
        f"a UDF may only name a '{ENTRY_POINT_GROUP}' entry point of the image or a module "
        "of the UDF directory (spec.udfs)"
    )
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"'{definition}' names the Python standard library ({top}); {allowed}"
    if top.startswith("_"):
        return f"'{definition}': a UDF module name may not start with '_'; {allowed}"
    installed = f"'{definition}' names installed code ({top}), not a UDF module; {allowed}"
    try:
        spec = importlib.util.find_spec(top)
    except ImportError:
        spec = None
    except ValueError:  # loaded already, without a spec (e.g. __main__): not ours either
        return installed
    if spec is not None and not _in_udf_directory(spec.origin, udf_directory):
        return installed
    return None


def module_file(udf_directory: str, module: str) -> Path | None:
    """The file of `module` inside the UDF directory, or None."""
    base = Path(udf_directory, *module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
