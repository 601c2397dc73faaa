"""Builds libpi0.so for `pip install ./python` (see pyproject.toml): CMake configures the
repository around this folder (Release) in setuptools' temporary build directory, builds the
shared library only, and the package gets it as pi0/libpi0.so.0 (pi0/__init__.py looks beside
itself first). PI0_LIBRARY=/path/to/libpi0.so copies that file instead of building."""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "pi0", "libpi0.so.0")
        given = os.environ.get("PI0_LIBRARY")
        if given:
            print(f"pi0: using PI0_LIBRARY={given}", file=sys.stderr)
            shutil.copyfile(given, dest)
            return
        if not os.path.exists(os.path.join(REPO, "CMakeLists.txt")):
            sys.exit(f"pi0: no CMakeLists.txt in {REPO}: build from a pi0.c clone, or set PI0_LIBRARY")
        build = os.path.join(os.path.abspath(self.get_finalized_command("build").build_base), "cmake")
        print(f"pi0: building libpi0.so with CMake in {build} (Release; ~1-3 min on 2 cores)", file=sys.stderr)
        try:
            subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DPI0_SERVE=OFF"],
                           check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["cmake", "--build", build, "--target", "pi0_shared", "-j", str(os.cpu_count() or 1)],
                           check=True, stdout=subprocess.DEVNULL)
        except FileNotFoundError:
            sys.exit("pi0: cmake is not installed (bash scripts/deps.sh installs the build dependencies)")
        except subprocess.CalledProcessError as e:
            sys.exit(f"pi0: building libpi0.so failed ({' '.join(e.cmd[:3])} ...): see CMake's message above; "
                     "bash scripts/deps.sh installs the build dependencies")
        libs = sorted(glob.glob(os.path.join(build, "libpi0.so.*.*.*")))
        if not libs:
            sys.exit(f"pi0: the build left no libpi0.so.X.Y.Z in {build}")
        shutil.copyfile(libs[-1], dest)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: it carries libpi0.so
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
