"""What can be checked of the Dockerfile without building it (no container runtime here): two
stages, the files it copies exist, the commands it runs come from the base image or earlier
steps, the final stage holds no build tools, runs as a non-root user, and its entry point is
the `streamhouse` console script the package installs."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# What python:3.11-slim (Debian) provides on PATH.
BASE_IMAGE_COMMANDS = {"python", "python3", "pip", "useradd", "groupadd", "rm", "mkdir", "chown"}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|git|curl|wget|apt-get)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def stages(text: str) -> list[Stage]:
    logical = re.sub(r"\\\n", " ", text)
    found: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            found.append(Stage(parts[0], name))
        else:
            found[-1].instructions.append((keyword, rest.strip()))
    return found


def commands(run: str) -> list[str]:
    """Each command of a RUN line (split on && ; |), in order."""
    return [part.strip() for part in re.split(r"&&|;|\|\|?", run) if part.strip()]


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return stages((ROOT / "Dockerfile").read_text())


def test_it_has_a_build_stage_and_a_final_stage(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) >= 2
    assert dockerfile[0].name == "build"
    assert dockerfile[-1].base == dockerfile[0].base  # same Python for the venv it copies


def test_every_copied_file_exists(dockerfile: list[Stage]) -> None:
    copied = 0
    for stage in dockerfile:
        for keyword, argument in stage.instructions:
            if keyword == "COPY" and not argument.startswith("--from"):
                *sources, _ = argument.split()
                for source in sources:
                    assert (ROOT / source).exists(), source
                    copied += 1
    assert copied >= 3


def test_every_command_comes_from_the_base_image_or_an_earlier_step(
    dockerfile: list[Stage],
) -> None:
    for stage in dockerfile:
        created: set[str] = set()
        for keyword, argument in stage.instructions:
            if keyword != "RUN":
                continue
            for command in commands(argument):
                executable = shlex.split(command)[0]
                if executable.startswith("/"):
                    assert any(executable.startswith(p + "/") for p in created), executable
                else:
                    assert executable in BASE_IMAGE_COMMANDS, executable
                created.update(re.findall(r"-m venv (\S+)", command))


def test_the_final_stage_has_no_build_tools_and_runs_as_non_root(
    dockerfile: list[Stage],
) -> None:
    final = dockerfile[-1]
    text = "\n".join(argument for _, argument in final.instructions)
    assert not BUILD_TOOLS.search(text)
    assert "pip install" not in text  # the final stage only copies the built environment
    assert "pip uninstall" in text  # and drops the installer the base image ships
    copies = [a for k, a in final.instructions if k == "COPY"]
    assert copies and all(a.startswith("--from=build") for a in copies)
    users = [a for k, a in final.instructions if k == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0  # numeric: runAsNonRoot can verify it


def test_the_entry_point_is_the_streamhouse_console_script(dockerfile: list[Stage]) -> None:
    final = dockerfile[-1]
    entrypoint = json.loads(next(a for k, a in final.instructions if k == "ENTRYPOINT"))
    assert entrypoint == ["streamhouse"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["streamhouse"] == "streamhouse_runtime.cli:main"
    venv = re.findall(r"-m venv (\S+)", " ".join(a for _, a in dockerfile[0].instructions))[0]
    paths = [a for k, a in final.instructions if k == "ENV" and "PATH=" in a]
    assert paths and f"PATH={venv}/bin:" in paths[0]  # where pip puts the console script


def test_the_chart_and_the_operator_default_to_the_image_the_readme_builds() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker build -t streamhouse:0.1.0 ." in readme
    values = (ROOT / "helm" / "streamhouse" / "values.yaml").read_text()
    assert 'repository: streamhouse\n  tag: "0.1.0"' in values
