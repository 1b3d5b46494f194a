"""Fetch GPT-2's BPE ranks through pip, so tests run on the real vocabulary offline.

tiktoken downloads r50k_base.tiktoken (GPT-2's ranks) from a blob store that CI
may not reach. The source distribution of openai-whisper on PyPI carries the
same file as whisper/assets/gpt2.tiktoken (same sha256), and pip can reach PyPI.
We download that sdist (about 0.8 MB), pull out the one file and check it.

    python .ci/fetch_gpt2_ranks.py [DEST]   # default: .tiktoken_cache/gpt2.tiktoken

Then `export GPT_GPT2_RANKS=DEST`; the test fixtures do this for you.
"""

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DEST = os.path.join(ROOT, ".tiktoken_cache", "gpt2.tiktoken")
SDIST = "openai-whisper==20250625"
MEMBER = "whisper/assets/gpt2.tiktoken"
SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"  # r50k_base


def fetch(dest: str = DEFAULT_DEST) -> str:
    if os.path.exists(dest):
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--quiet", SDIST, "-d", tmp], check=True)
        (archive,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".tar.gz")]
        with tarfile.open(archive) as tar:
            (member,) = [m for m in tar.getmembers() if m.name.endswith("/" + MEMBER)]
            data = tar.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise SystemExit(f"{MEMBER} from {SDIST} is not GPT-2's r50k_base (sha256 mismatch)")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dest + ".tmp", dest)
    return dest


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DEST))
