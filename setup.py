"""Build hooks (all metadata is in pyproject.toml): install ``pyterrier_hybrid_irds.pth``.

The ``.pth`` file must land at the root of site-packages, which package data cannot do:
``build_py`` copies it to the root of the wheel, and ``editable_wheel`` into the editable
wheel (whose build directory setuptools otherwise ignores), so wheel, sdist and editable
installs (``pip install -e``) all get the ir_datasets start-up hook (``datasets_ext_startup``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "pyterrier_hybrid_irds.pth"
HERE = Path(__file__).resolve().parent


class BuildPy(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:
            self.copy_file(str(HERE / PTH), str(Path(self.build_lib, PTH)), preserve_mode=0)

    def get_outputs(self, *args, **kwargs):
        outputs = super().get_outputs(*args, **kwargs)
        return outputs if self.editable_mode else [*outputs, str(Path(self.build_lib, PTH))]


class EditableWheel(editable_wheel):
    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
        out = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        shutil.copyfile(HERE / PTH, Path(unpacked_wheel, PTH))
        return out


setup(cmdclass={"build_py": BuildPy, "editable_wheel": EditableWheel})
