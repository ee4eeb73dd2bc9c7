"""A seeded random user editing a project: the chaos test's workload.

Every choice comes from one ``random.Random(seed)``, made on the first root's
state and applied identically to every root (one per remote), so a seed replays
the same operations (the daemon's timing, and so the outcome, may still differ).
Besides the files, the workload keeps a ``Lineage`` (see ``lineage``).

Names come from a small vocabulary so that collisions happen: a rename lands on
an existing file, a file is replaced by a folder of the same name and back.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from .lineage import GITIGNORE, Lineage, files_of, git, no_trailing_cr

DIRS = ["src", "src/models", "src/utils", "data", "docs", "notes", "exp/run a", "exp/ünï"]
STEMS = ["train", "model", "utils", "config", "readme", "eval", "layer", "data", "log", "net"]
EXTS = [".py", ".txt", ".md", ".json", ".csv", ".bin"]
KEEP = ("README.md", ".gitignore")  # never deleted: the folder must never look empty

# (name, weight): how often each kind of operation is drawn.
OPS = [
    ("create", 18),
    ("modify", 16),
    ("append", 8),
    ("truncate", 3),
    ("touch", 3),
    ("rename_file", 9),
    ("rename_dir", 3),
    ("delete_file", 8),
    ("delete_dir", 2),
    ("file_to_dir", 2),
    ("dir_to_file", 2),
    ("swap", 4),
    ("editor_save", 5),
    ("burst", 2),
    ("ignored", 3),
    ("git_switch", 2),
]


class Workload:
    """Random operations on ``roots`` (identical project folders, one per remote)."""

    def __init__(
        self,
        seed: int,
        roots: list[Path],
        *,
        big_files: bool = True,
        only: tuple[str, ...] | None = None,
        trace: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.roots = roots
        self.big_files = big_files
        self.lineage = Lineage()
        self.counts: dict[str, int] = {}
        self.ops = 0
        self.base: set[str] = set()  # files at the last checkpoint
        self.trace: list[str] | None = [] if trace else None  # op → paths it changed (debug)
        mix = [(n, w) for n, w in OPS if only is None or n in only]
        self._names, self._weights = zip(*mix, strict=True)

    def checkpoint(self) -> None:
        """The target was just checked: deletions are counted from here."""
        self.base = set(self.files())
        self.lineage.ended.clear()

    def _budget_ok(self, removed: set[str]) -> bool:
        """Keep what vanishes between checkpoints well under the mass-deletion guard's
        threshold (>= 50 files and more than half), so the guard never pauses a chaos run
        that syncd mirrored right (25 %: room for moves not yet mirrored)."""
        gone = (self.base - set(self.files())) | (removed & self.base)
        return len(gone) < 45 or len(gone) <= 0.25 * len(self.base)

    # --- set-up --------------------------------------------------------------------------------

    def seed_files(self, n: int = 40) -> None:
        """README, .gitignore, n files in the vocabulary's folders, a git repo on `main`."""
        for root in self.roots:
            root.mkdir(parents=True, exist_ok=True)
        self._each(lambda r: (r / "README.md").write_text("# chaos project\n"))
        self._each(lambda r: (r / ".gitignore").write_text(GITIGNORE))
        for rel in KEEP:
            self.lineage.new(rel)
        for _ in range(n):
            self._create(self._new_path())
        for root in self.roots:
            git(root, "init", "-q", "-b", "main")
            git(root, "add", "-A")
            git(root, "commit", "-qm", "start")
        self.ops = 0
        self.counts.clear()
        self.checkpoint()

    # --- drawing -------------------------------------------------------------------------------

    def _each(self, fn: Callable[[Path], object]) -> None:
        for root in self.roots:
            fn(root)

    def files(self) -> list[str]:
        return sorted(files_of(self.roots[0]))

    def _dirs(self) -> list[str]:
        root = self.roots[0]
        out = []
        for dirpath, dirs, _ in os.walk(root):
            dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", "build")]
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                out.append(rel)
        return sorted(out)

    def _new_path(self, folder: str | None = None) -> str:
        folder = folder if folder is not None else self.rng.choice(["", *DIRS])
        name = f"{self.rng.choice(STEMS)}{self.rng.randrange(12)}{self.rng.choice(EXTS)}"
        return f"{folder}/{name}" if folder else name

    def _content(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.02 and self.big_files:
            size = self.rng.randrange(5 * 2**20, 7 * 2**20)  # a resumable upload on Drive
        elif roll < 0.12:
            size = self.rng.randrange(20_000, 400_000)
        elif roll < 0.16:
            size = 0
        else:
            size = self.rng.randrange(1, 4000)
        return no_trailing_cr(self.rng.randbytes(size))

    def _free(self, rel: str) -> bool:
        """Nothing at rel, and no parent of rel is a file."""
        root = self.roots[0]
        if os.path.lexists(root / rel):
            return False
        parts = rel.split("/")
        return not any((root.joinpath(*parts[:i])).is_file() for i in range(1, len(parts)))

    def _pick_file(self, removing: bool = False) -> str | None:
        choices = [p for p in self.files() if p not in KEEP]
        if not choices:
            return None
        rel = self.rng.choice(choices)
        return rel if not removing or self._budget_ok({rel}) else None

    def _under(self, folder: str) -> set[str]:
        return {p for p in self.files() if p.startswith(folder + "/")}

    # --- operations ----------------------------------------------------------------------------

    def step(self) -> str:
        """Apply one random operation to every root; return its name."""
        before = self._state() if self.trace is not None else {}
        for _ in range(20):
            op = self.rng.choices(self._names, self._weights)[0]
            if getattr(self, f"_op_{op}")():
                self.ops += 1
                self.counts[op] = self.counts.get(op, 0) + 1
                if self.trace is not None:
                    after = self._state()
                    changed = sorted(p for p in {*before, *after} if before.get(p) != after.get(p))
                    self.trace.append(f"{self.ops} {op}: {changed}")
                return op
        return "noop"

    def _state(self) -> dict[str, tuple[int, int, int]]:
        return {
            p: (st.st_size, st.st_mtime_ns, st.st_ino)
            for p, full in files_of(self.roots[0]).items()
            for st in [full.stat()]
        }

    def _create(self, rel: str) -> bool:
        if not self._free(rel):
            return False
        data = self._content()

        def write(root: Path) -> None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)

        self._each(write)
        self.lineage.new(rel)
        return True

    def _op_create(self) -> bool:
        return self._create(self._new_path())

    def _op_modify(self) -> bool:
        rel = self._pick_file()
        if rel is None:
            return False
        data = self._content()
        self._each(lambda r: (r / rel).write_bytes(data))
        self.lineage.touch(rel)
        return True

    def _op_append(self) -> bool:
        rel = self._pick_file()
        if rel is None:
            return False
        data = no_trailing_cr(self.rng.randbytes(self.rng.randrange(1, 2000)))

        def append(root: Path) -> None:
            with open(root / rel, "ab") as f:
                f.write(data)

        self._each(append)
        self.lineage.touch(rel)
        return True

    def _op_truncate(self) -> bool:
        rel = self._pick_file()
        if rel is None:
            return False
        content = (self.roots[0] / rel).read_bytes()
        keep = self.rng.randrange(0, len(content) + 1)
        while keep and content[keep - 1 : keep] == b"\r":
            keep -= 1
        self._each(lambda r: os.truncate(r / rel, keep))
        self.lineage.touch(rel)
        return True

    def _op_touch(self) -> bool:
        rel = self._pick_file()
        if rel is None:
            return False
        self._each(lambda r: os.utime(r / rel))
        return True

    def _op_rename_file(self) -> bool:
        src = self._pick_file(removing=True)
        if src is None:
            return False
        existing = [p for p in self.files() if p != src and p not in KEEP]
        if existing and self.rng.random() < 0.3:
            dst = self.rng.choice(existing)  # over an existing file
        else:
            dst = self._new_path()
            if not self._free(dst):
                return False

        def rename(root: Path) -> None:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            os.rename(root / src, root / dst)

        self._each(rename)
        self.lineage.move(src, dst)
        return True

    def _small_dirs(self, share: float = 0.35) -> list[str]:
        """Folders holding less than `share` of the files (the mass-deletion guard stays out)."""
        files = self.files()
        limit = share * len(files)
        return [d for d in self._dirs() if sum(p.startswith(d + "/") for p in files) < limit]

    def _op_rename_dir(self) -> bool:
        dirs = self._small_dirs()
        if not dirs:
            return False
        src = self.rng.choice(dirs)
        if not self._budget_ok(self._under(src)):
            return False
        dst = f"{self.rng.choice(['', *DIRS[:4]])}/{self.rng.choice(STEMS)}-dir".lstrip("/")
        if not self._free(dst) or dst.startswith(src + "/") or dst == src:
            return False

        def rename(root: Path) -> None:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            os.rename(root / src, root / dst)

        self._each(rename)
        self.lineage.move_tree(src, dst)
        return True

    def _op_delete_file(self) -> bool:
        rel = self._pick_file(removing=True)
        if rel is None:
            return False
        self._each(lambda r: (r / rel).unlink())
        self.lineage.end(rel)
        return True

    def _op_delete_dir(self) -> bool:
        dirs = self._small_dirs(0.2)
        if not dirs:
            return False
        rel = self.rng.choice(dirs)
        if not self._budget_ok(self._under(rel)):
            return False
        self._each(lambda r: shutil.rmtree(r / rel))
        self.lineage.end_tree(rel)
        return True

    def _op_file_to_dir(self) -> bool:
        rel = self._pick_file(removing=True)
        if rel is None:
            return False
        data = self._content()

        def replace(root: Path) -> None:
            (root / rel).unlink()
            (root / rel).mkdir()
            (root / rel / "inner.txt").write_bytes(data)

        self._each(replace)
        self.lineage.end(rel)
        self.lineage.new(rel + "/inner.txt")
        return True

    def _op_dir_to_file(self) -> bool:
        dirs = self._small_dirs(0.2)
        if not dirs:
            return False
        rel = self.rng.choice(dirs)
        if not self._budget_ok(self._under(rel)):
            return False
        data = self._content()

        def replace(root: Path) -> None:
            shutil.rmtree(root / rel)
            (root / rel).write_bytes(data)

        self._each(replace)
        self.lineage.end_tree(rel)
        self.lineage.new(rel)
        return True

    def _op_swap(self) -> bool:
        files = [p for p in self.files() if p not in KEEP]
        if len(files) < 2:
            return False
        a, b = self.rng.sample(files, 2)
        same_mtime = self.rng.random() < 0.5  # as after a checkout: only an inode tells them apart
        when = time.time() - self.rng.randrange(10, 1000)

        def swap(root: Path) -> None:
            if same_mtime:
                os.utime(root / a, (when, when))
                os.utime(root / b, (when, when))
            tmp = root / "swap.tmp"
            os.rename(root / a, tmp)
            os.rename(root / b, root / a)
            os.rename(tmp, root / b)

        self._each(swap)
        self.lineage.move(a, "swap.tmp")
        self.lineage.move(b, a)
        self.lineage.move("swap.tmp", b)
        return True

    def _op_editor_save(self) -> bool:
        """Write a temp file and rename it over the file, sometimes deleting it right after."""
        rel = self._pick_file()
        if rel is None:
            return False
        data = self._content()
        then_delete = self.rng.random() < 0.25 and self._budget_ok({rel})
        tmp = rel.rpartition("/")[0] + "/.save-tmp" if "/" in rel else ".save-tmp"

        def save(root: Path) -> None:
            (root / tmp).write_bytes(data)
            os.rename(root / tmp, root / rel)
            if then_delete:
                (root / rel).unlink()

        self._each(save)
        if then_delete:
            self.lineage.end(rel)
        else:
            self.lineage.touch(rel)
        return True

    def _op_burst(self) -> bool:
        folder = f"burst{self.rng.randrange(4)}"
        if not self._free(folder) and not (self.roots[0] / folder).is_dir():
            return False
        for _ in range(self.rng.randrange(10, 40)):
            self._create(self._new_path(folder))
        return True

    def _op_ignored(self) -> bool:
        rel = self.rng.choice(["run.log", "build/out.o", "src/__pycache__/m.cpython-311.pyc"])
        data = self._content()

        def write(root: Path) -> None:
            try:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                pass  # a file of that name is in the way: skip the ignored write

        self._each(write)
        return True

    def _op_git_switch(self) -> bool:
        """Commit, make the other branch a folder rename of this one, switch 3-7 times fast."""
        dirs = [d for d in self._small_dirs() if self._under(d)]  # git moves tracked files only
        if not dirs:
            return False
        folder = self.rng.choice(dirs)
        renamed = folder + "-renamed"
        if not self._free(renamed) or not self._budget_ok(self._under(folder)):
            return False
        switches = self.rng.randrange(3, 8)
        before = set(self.files())
        for root in self.roots:
            cur = "main" if (root / ".git/HEAD").read_text().strip().endswith("main") else "alt"
            other = "alt" if cur == "main" else "main"
            git(root, "add", "-A")
            git(root, "commit", "-qm", "wip", "--allow-empty")
            git(root, "branch", "-f", other)
            git(root, "checkout", "-q", other)
            git(root, "mv", folder, renamed)
            git(root, "commit", "-qm", "rename")
            for k in range(switches):
                git(root, "checkout", "-q", [cur, other][k % 2])
                time.sleep(0.1)
        after = set(self.files())
        ended_on_rename = switches % 2 == 0  # the last checkout was the renamed branch
        if ended_on_rename:
            self.lineage.move_tree(folder, renamed)
        for p in before - after:
            self.lineage.end(p)
        for p in after - set(self.lineage.at):
            self.lineage.new(p)
        return True
