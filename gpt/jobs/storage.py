"""Where runs live, and whether they survive a restart.

Every run is a folder under one root (`runs_root`):
1) `GPT_CHECKPOINT_DIR`, when set, wins;
2) else a storage volume: `GPT_STORAGE_DIR` names its mount path or, on a
   Hugging Face Space, `/data` when a volume is mounted there; runs then live
   in `<volume>/checkpoints`;
3) else `checkpoints/`, next to the app.

Why it matters: a Space's own disk "is ephemeral, meaning its content will be
lost if your Space restarts or is stopped"; Storage Buckets "are the
recommended way to persist data in your Space", mounted "at the path you
specify" (huggingface.co/docs/hub/spaces-storage). The path is the owner's
choice, hence `GPT_STORAGE_DIR`; `/data` is the usual one and the one Spaces'
former persistent storage used. A class that loses its runs on a restart
should at least be told so, and offered the downloads: `Storage.sentence()`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

SPACE_VOLUME = Path("/data")
SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints"  # the runs that come with the app


@dataclass(frozen=True)
class Storage:
    root: Path  # the runs folder
    volume: Path | None  # the mounted storage volume the root lies on, if any
    on_space: bool  # running as a Hugging Face Space (SPACE_ID is set)

    def sentence(self) -> str:
        """One line for the page: where runs are kept and whether a restart keeps them."""
        if self.volume is not None:
            return (f"Runs are kept on the storage volume mounted at `{self.volume}` (in `{self.root}`), "
                    "so they survive a restart.")
        if self.on_space:
            return ("Runs are kept on this Space's own disk, which is wiped when the Space restarts: **download "
                    "each run you want to keep** (Checkpoints tab, ⬇ Download). The Space's owner can attach a "
                    "storage bucket to keep them (README, \"Deploying to a Space\").")
        return f"Runs are kept in `{self.root}` on this machine."


def _mounted_volume(path: Path) -> bool:
    return path.is_dir() and os.path.ismount(path) and os.access(path, os.W_OK)


def _volume_of(root: Path, volumes: list[Path]) -> Path | None:
    root = root.resolve()
    return next((v for v in volumes if root == v.resolve() or v.resolve() in root.parents), None)


def detect(env: dict | None = None, space_volume: Path = SPACE_VOLUME) -> Storage:
    """Work out the runs folder from the environment (see the module docstring)."""
    env = os.environ if env is None else env
    on_space = bool(env.get("SPACE_ID"))
    volumes = []
    if env.get("GPT_STORAGE_DIR"):
        volume = Path(env["GPT_STORAGE_DIR"])
        if not volume.is_dir() or not os.access(volume, os.W_OK):
            raise ConfigError(f"GPT_STORAGE_DIR is {volume}, which is not a folder this app can write to; mount "
                              "the storage volume there or unset GPT_STORAGE_DIR.")
        volumes.append(volume)
    elif on_space and _mounted_volume(space_volume):
        volumes.append(space_volume)
    if env.get("GPT_CHECKPOINT_DIR"):
        root = Path(env["GPT_CHECKPOINT_DIR"])
    elif volumes:
        root = volumes[0] / "checkpoints"
    else:
        root = Path("checkpoints")
    return Storage(root=root, volume=_volume_of(root, volumes) if volumes else None, on_space=on_space)


def runs_root() -> Path:
    """Where the run service keeps its runs: GPT_CHECKPOINT_DIR, else a mounted volume's `checkpoints/`, else
    `checkpoints/` beside the app."""
    return detect().root


def seed_shipped_runs(storage: Storage, shipped: Path = SHIPPED) -> list[str]:
    """Copy the runs that ship with the app into a runs folder elsewhere (a volume) if it lacks them,
    so the Generate tab works at once there too. Returns the names copied."""
    root = storage.root
    if storage.volume is None or not shipped.is_dir() or root.resolve() == shipped.resolve():
        return []  # only a storage volume is seeded: a GPT_CHECKPOINT_DIR is exactly what its owner put there
    root.mkdir(parents=True, exist_ok=True)
    copied = []
    for run in sorted(p for p in shipped.iterdir() if p.is_dir() and (p / "model.safetensors").exists()):
        if not (root / run.name).exists():
            shutil.copytree(run, root / run.name)
            copied.append(run.name)
    return copied
