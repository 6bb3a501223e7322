"""Build step that setup.cfg cannot say: the pages' files go into the package.

``templates/`` and ``static/`` stay at the top of the repository (the project's layout), and a
wheel has no repository around it, so the build copies them into ``sendauth_dashboard/``,
where ``create_app`` looks when the top-level folders are not there.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PAGE_FOLDERS = ("templates", "static")


class BuildWithPages(build_py):
    def run(self):
        super().run()
        for name in PAGE_FOLDERS:
            self.copy_tree(name, str(Path(self.build_lib) / "sendauth_dashboard" / name))


setup(cmdclass={"build_py": BuildWithPages})
