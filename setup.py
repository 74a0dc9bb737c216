"""The build step pyproject.toml cannot say: the wheel carries the repository's top-level firmware/ (the C
runtime, the training and self-test apps, the board files) as package data under tinytrain/firmware, where
`tinytrain.FIRMWARE_DIR` finds it when tinytrain is installed. A checkout (or an editable install) reads
firmware/ in place."""

from pathlib import Path
from shutil import copytree, ignore_patterns

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithFirmware(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable: the package reads firmware/ beside it
        dest = Path(self.build_lib) / "tinytrain" / "firmware"
        copytree(ROOT / "firmware", dest, dirs_exist_ok=True, ignore=ignore_patterns("*.o", "*.elf", "*.so"))


setup(cmdclass={"build_py": BuildPyWithFirmware})
