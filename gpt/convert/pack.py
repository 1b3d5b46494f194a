"""A model folder as one .zip to download, and an uploaded .zip opened without trusting it.

`unzip_safely` first reads how many entries the archive lists (its end
record, the last 64 KB) and refuses thousands before parsing any. It never
writes a path the archive chooses: it keeps only the files an import reads
(`WANTED`), by their base name, into a fresh folder. So `../../etc/x`,
absolute names and links cannot leave it. Sizes are
counted while the bytes come out, not taken from the archive's header (a zip
bomb lies there), and reading stops at the limit.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import ConvertError

WANTED = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
          "ckpt.pt", "meta.pkl"}
CHUNK = 1 << 20
MAX_ENTRIES = 1_000  # a model folder is a handful of files; listing 200,000 empty entries took 7 s
MAX_DIRECTORY_BYTES = 1 << 20  # the listing zipfile parses: bounded whatever count the archive claims


def _directory_size(zip_path: Path, shown: str) -> tuple[int, int]:
    """(entries, bytes) of the archive's central directory, as its end record says: the last 64 KB read, no more.

    `zipfile._EndRecData` is the standard library's own reader of that record
    (zip64 included); `zipfile.ZipFile` would parse the whole directory first.
    """
    try:
        with open(zip_path, "rb") as f:
            end = zipfile._EndRecData(f)
    except OSError:
        end = None
    if end is None:
        raise ConvertError(f"{shown} is not a .zip archive (or it is damaged).")
    return end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]


def zip_folder(folder: str | Path, zip_path: str | Path) -> Path:
    """Every file of `folder` (not below it) into `zip_path`, under the folder's name."""
    folder, zip_path = Path(folder), Path(zip_path)
    fd, tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".tmp", dir=zip_path.parent)  # two at once: two names
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                z.write(path, f"{folder.name}/{path.name}")
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return zip_path


def unzip_safely(zip_path: str | Path, dest: str | Path, max_bytes: int, shown: str | None = None) -> Path:
    """Extract the wanted files of `zip_path` into the new folder `dest`, flat; returns dest."""
    shown = shown or Path(zip_path).name
    dest = Path(dest)
    entries, listing = _directory_size(Path(zip_path), shown)  # first: before anything else is read
    if entries > MAX_ENTRIES or listing > MAX_DIRECTORY_BYTES:
        raise ConvertError(f"{shown} lists {entries:,} entries in a {listing / 2**20:.1f} MB directory; a model "
                           f"folder is a few files (at most {MAX_ENTRIES:,} here): zip the model folder alone.")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError):
        raise ConvertError(f"{shown} is not a .zip archive (or it is damaged).") from None
    with archive:
        picked: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = PurePosixPath(info.filename.replace("\\", "/")).name
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if info.is_dir() or name not in WANTED or is_link:
                continue
            if name in picked:
                raise ConvertError(f"{shown} holds two files named {name}; zip one model folder only.")
            picked[name] = info
        if not picked:
            raise ConvertError(f"{shown} holds none of {', '.join(sorted(WANTED))}: zip a transformers folder "
                               "(config.json, model.safetensors, tokenizer.json) or nanoGPT's ckpt.pt (+ meta.pkl).")
        dest.mkdir(parents=True, exist_ok=False)
        total = 0
        for name, info in picked.items():
            with archive.open(info) as src, open(dest / name, "wb") as out:
                while chunk := src.read(CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ConvertError(f"{shown} unpacks to more than {max_bytes / 2**20:.0f} MB, this server's "
                                           "upload limit (GPT_MAX_UPLOAD_MB); use a smaller model.")
                    out.write(chunk)
    return dest
