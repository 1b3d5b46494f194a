"""Uploaded archives that attack the parser, not the disk: deep JSON and a flood of entries, each a sentence.

- A transformers .zip whose config.json (or tokenizer.json) nests 100,000
  levels deep made json.loads recurse until Python's stack ran out: the page
  said "Something went wrong on the server", as for a bug.
- A zip of 200,000 empty entries held the server 7 s while zipfile listed them
  all, only to refuse the archive afterwards. The entry count is in the
  archive's last bytes: read first, nothing else is.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from gpt.convert import pack
from gpt.errors import ConvertError
from gpt.jobs import JobManager
from gpt.limits import Limits
from gpt.ui.exchange import ExchangeHandlers, import_upload
from gpt.ui.messages import UNEXPECTED

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "runs", Limits(), device="cpu")
    yield m
    m.shutdown()


def _zip(path, files: dict) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return str(path)


def test_a_deeply_nested_config_json_in_an_import_is_a_sentence(manager, tmp_path):
    path = _zip(tmp_path / "deep.zip", {"m/config.json": DEEP, "m/model.safetensors": b"x"})
    with pytest.raises(ConvertError, match="config.json nests deeper than any model's config"):
        import_upload(manager, "alice", [path])
    shown = ExchangeHandlers(manager).upload("alice", [path])  # the page's words
    assert UNEXPECTED not in shown and "msg-error" in shown
    assert manager.runs.run_names() == []


def test_a_deep_tokenizer_json_is_a_sentence(tmp_path):
    from gpt.convert import hf

    (tmp_path / "tokenizer.json").write_text(DEEP)
    with pytest.raises(ConvertError, match="tokenizer.json nests deeper"):
        hf._tokenizer_of(tmp_path, {})


def test_an_archive_of_many_entries_is_refused_before_its_listing_is_read(tmp_path, monkeypatch):
    path = _zip(tmp_path / "many.zip", {f"e{i}": b"" for i in range(pack.MAX_ENTRIES + 1)})

    def never(*args, **kwargs):
        raise AssertionError("the archive's listing was parsed")

    monkeypatch.setattr(pack.zipfile, "ZipFile", never)
    with pytest.raises(ConvertError, match=f"lists {pack.MAX_ENTRIES + 1:,} entries"):
        pack.unzip_safely(path, tmp_path / "out", 10**9)
    assert not (tmp_path / "out").exists()


def test_a_small_model_zip_still_unzips_and_junk_is_not_a_zip(tmp_path):
    path = _zip(tmp_path / "ok.zip", {"model/config.json": "{}", "model/README.md": "hi"})
    assert (pack.unzip_safely(path, tmp_path / "out", 10**6) / "config.json").read_text() == "{}"
    (tmp_path / "junk.zip").write_bytes(b"PK" + bytes(100))
    with pytest.raises(ConvertError, match="not a .zip archive"):
        pack.unzip_safely(tmp_path / "junk.zip", tmp_path / "out2", 10**6)
    with pytest.raises(ConvertError, match="not a .zip archive"):
        pack.unzip_safely(tmp_path / "missing.zip", tmp_path / "out3", 10**6)
