"""GPT-2 124M from the Hugging Face hub, or a sentence saying why not, quickly.

`huggingface_hub` retries and waits on an unreachable network, and a DNS
lookup offline can block for a minute, so we first ask whether the hub
answers at all, in a thread we stop waiting for after a few seconds.
HF_HUB_OFFLINE=1 answers at once. Only safetensors and JSON are fetched.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Callable

from ..errors import ConvertError

REPO = "openai-community/gpt2"
FILES = ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json"]
GPT2_PARAMS = 124_439_808  # with the position table, as parameter_breakdown counts
REACH_TIMEOUT_S = 5.0

OFFLINE = ("GPT-2's weights could not be downloaded: this machine cannot reach huggingface.co ({why}). "
           "Connect to the internet, or download openai-community/gpt2 elsewhere, save it with "
           "save_pretrained, and import the folder (python -m gpt.convert --from hf FOLDER).")


def _reachable(host: str = "huggingface.co", timeout: float = REACH_TIMEOUT_S) -> str | None:
    """None when `host` answers on 443 within `timeout`, else why not."""
    box: dict = {}

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            box["ok"] = True
        except OSError as err:
            box["why"] = err.strerror or type(err).__name__

    t = threading.Thread(target=probe, daemon=True, name="hub-probe")
    t.start()
    t.join(timeout)
    return None if box.get("ok") else box.get("why", f"no answer within {timeout:g} s")


def download_gpt2(progress: Callable[[float, str], None] | None = None, cache_dir: str | Path | None = None) -> Path:
    """Download GPT-2 124M (safetensors) and return its local folder; ConvertError with a sentence offline."""
    report = progress or (lambda f, m: None)
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ConvertError(OFFLINE.format(why="HF_HUB_OFFLINE is set"))
    why = _reachable()
    if why:
        raise ConvertError(OFFLINE.format(why=why))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from tqdm.auto import tqdm

    folder = None
    for k, name in enumerate(FILES):
        class Bar(tqdm):  # huggingface_hub's byte counter, turned into our progress callback
            def update(self, n=1):
                out = super().update(n)
                if self.total:
                    report((k + min(1.0, self.n / self.total)) / len(FILES),
                           f"Downloading GPT-2's {name}: {self.n / 2**20:,.0f} of {self.total / 2**20:,.0f} MB")
                return out

        report(k / len(FILES), f"Downloading GPT-2's {name} ({k + 1}/{len(FILES)})")
        try:
            folder = Path(hf_hub_download(REPO, name, cache_dir=cache_dir, tqdm_class=Bar)).parent
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
            raise ConvertError(OFFLINE.format(why=type(err).__name__)) from None
    report(1.0, "Downloaded GPT-2")
    return folder
