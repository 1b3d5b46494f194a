"""The signing key never leaves the server, and a Hugging Face sign-in is an owner no client can claim.

GPT_APP_SECRET used to be both the HMAC key of the owner tokens and the
encryption key of the page's gr.BrowserState, which Gradio sends to every
browser in /config: anyone could read it and sign a token for anyone. These
tests start the app with it set, read every page and every answer a stranger
can get, and forge tokens with what they read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import gradio as gr
import pytest

from gpt.jobs import JobManager
from gpt.jobs.signing import KEY_FILE, Signer, account_owner
from gpt.limits import Limits
from gpt.ui.identity import Identity, SignIn, browser_secret, hf_sign_in_enabled
from helpers_app import addition, launch_app, tiny_request
from helpers_http import call_api, call_event, fn_index, get

SECRET = "the-app-secret-a-space-owner-set-0123"
TEACHER = "the-teachers-token-4567"


def forged(owner: str, key: bytes) -> str:
    """A token for `owner` signed with `key` the way the server signs: what a thief would make."""
    return f"{owner}.{hmac.new(key, owner.encode(), hashlib.sha256).hexdigest()[:32]}"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_APP_SECRET", SECRET)
    monkeypatch.setenv("GPT_TEACHER_TOKEN", TEACHER)
    demo, url = launch_app(tmp_path / "runs", GPT_MAX_ITERS=1000)
    yield demo, url
    demo.close()
    demo.manager.shutdown()


def _load_fn(demo) -> int:
    """The page's load event (it signs the browser in)."""
    return next(i for i, fn in enumerate(demo.fns.values()) if getattr(fn.fn, "__name__", "") == "load"
                and isinstance(getattr(fn.fn, "__self__", None), SignIn))


def test_no_page_and_no_answer_carries_the_signing_key_or_the_app_secret(app, tmp_path):
    demo, url = app
    key = bytes.fromhex((tmp_path / "runs" / KEY_FILE).read_text())
    secrets_ = [SECRET, key.hex(), base64.b64encode(key).decode(), "Signer", "identity_key"]
    seen = [get(url), get(f"{url}config"), get(f"{url}teacher"), get(f"{url}gradio_api/info")]
    kind, (token,) = call_api(url, "new_token", [])
    seen.append(token)
    kind, status = call_api(url, "start_run", ["addition", "char", "tiny", 5, 0, "", 0, "gpt", "", "", 1, 2, 16, 16,
                                               8, 0.003, token])
    assert kind == "complete", status
    run = status[0]["name"]
    demo.manager.wait(run, 60)
    for api, data in (("run_status", [run, token]), ("list_runs", [token]), ("generate", [run, "1", 3, 0.8, 0, 1.0,
                      1, token]), ("stop_run", [run, token]), ("resume_run", [run, 2, token]), ("list_runs", [""]),
                      ("run_status", [run, "not-a-token"])):
        seen.append(json.dumps(call_api(url, api, data)))
    demo.manager.wait(run, 60)
    seen.append(json.dumps(call_api(url, "delete_run", [run, token])))
    seen.append(json.dumps(call_event(url, _load_fn(demo), [None])))  # the page's sign-in, as a new browser
    seen.append(json.dumps(call_event(url, _load_fn(demo), [token])))
    unlock = next(i for i, fn in enumerate(demo.fns.values()) if getattr(fn.fn, "__name__", "") == "unlock")
    seen.append(json.dumps(call_event(url, unlock, [TEACHER])))
    text = "\n".join(seen)
    assert len(text) > 10_000 and run in text  # the pages and the answers were really read
    for secret in secrets_:
        assert secret not in text, f"{secret[:12]}... was sent to a client"


def test_a_token_forged_with_the_app_secret_or_the_browser_secret_is_refused(app, tmp_path):
    demo, url = app
    victim = demo.manager.identity.owner(demo.manager.identity.issue())
    job = demo.manager.start(victim, addition(), tiny_request(5))
    demo.manager.wait(job.name, 60)
    published = json.loads(get(f"{url}config"))
    browser_key = next(c["props"]["secret"] for c in published["components"] if c.get("type") == "browserstate")
    for key in (SECRET.encode(), browser_key.encode()):
        token = forged(victim, key)
        kind, answer = call_api(url, "list_runs", [token])
        assert kind == "error" and "not one this server issued" in json.dumps(answer)
        kind, answer = call_api(url, "delete_run", [job.name, token])
        assert kind == "error" and job.name in demo.manager.runs.run_names()
        page = call_event(url, fn_index(demo, "runs_table"), [token, None])  # the page's own event, by hand
        assert page["success"] and job.name not in json.dumps(page["output"])
    real = demo.manager.identity.issue(victim)  # the victim's own token still works
    assert call_api(url, "list_runs", [real])[0] == "complete"


def test_the_signer_ignores_the_app_secret_hides_its_key_and_rotates(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_APP_SECRET", SECRET)
    signer = Signer(tmp_path)
    token = signer.issue()
    owner = signer.owner(token)
    assert signer.owner(forged(owner, SECRET.encode())) == ""
    assert repr(signer) == "Signer(<key hidden>)"
    assert oct((tmp_path / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    assert Signer(tmp_path).owner(token) == owner  # kept across a restart
    (tmp_path / KEY_FILE).unlink()  # rotation, as the README says
    rotated = Signer(tmp_path)
    assert rotated.owner(token) == "" and rotated.owner(rotated.issue()) != ""
    alice = account_owner("huggingface", "123")
    assert rotated.owner(rotated.issue(alice)) == alice == account_owner("huggingface", "123")  # accounts keep theirs


def test_an_empty_key_file_never_signs(tmp_path):
    (tmp_path / KEY_FILE).write_text("")
    signer = Signer(tmp_path)
    assert signer.owner(forged("a" * 32, b"")) == ""


def test_the_browser_secret_is_its_own_and_ignores_the_app_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_APP_SECRET", SECRET)
    first = browser_secret(tmp_path)
    assert len(first) == 32 and browser_secret(tmp_path) == first and first != SECRET


# --- Sign in with Hugging Face -----------------------------------------------------------------------------


def profile(sub: str, username: str) -> gr.OAuthProfile:
    """What Gradio injects from a verified session: the userinfo of Hugging Face's OpenID answer."""
    return gr.OAuthProfile({"sub": sub, "name": username.title(), "preferred_username": username,
                            "profile": f"https://huggingface.co/{username}", "picture": ""})


@pytest.fixture
def manager(tmp_path):
    return JobManager(tmp_path / "runs", Limits(max_iters=1000), device="cpu")


def test_a_signed_in_account_is_the_owner_on_every_device_and_signing_out_gives_the_browser_back(manager):
    who, sign_in = Identity(manager.identity, "public"), SignIn(manager, accounts=True)
    laptop = sign_in.load(None)  # a new browser, not signed in
    me = who.preprocess(laptop)
    laptop_in = sign_in.load(laptop, profile("101", "alice"))
    alice = who.preprocess(laptop_in)
    assert alice == account_owner("huggingface", "101") and alice != me
    phone_in = sign_in.load(None, profile("101", "alice"))  # another device, the same account
    assert who.preprocess(phone_in) == alice
    assert who.preprocess(sign_in.load(laptop_in, profile("202", "bob"))) not in (alice, me)  # two accounts, two owners
    assert who.preprocess(sign_in.load(laptop_in, None)) == me  # signed out: the browser's own person again
    assert manager.labels.display(alice) == "alice"  # the teacher's page shows the account's name
    manager.labels.set(alice, "Alice L.")
    sign_in.load(None, profile("101", "alice"))
    assert manager.labels.get(alice) == "Alice L."  # a name the student chose is kept


def test_without_sign_in_a_profile_counts_for_nothing(manager):
    who, sign_in = Identity(manager.identity, "public"), SignIn(manager, accounts=False)
    token = sign_in.load(None, profile("101", "alice"))
    assert " " not in token and who.preprocess(token) != account_owner("huggingface", "101")
    assert not hf_sign_in_enabled({}) and not hf_sign_in_enabled({"SPACE_ID": "u/s", "OAUTH_CLIENT_ID": "x"})
    assert hf_sign_in_enabled({"SYSTEM": "spaces", "SPACE_ID": "u/s", "OAUTH_CLIENT_ID": "x",
                               "OAUTH_CLIENT_SECRET": "y"})


def test_locally_there_is_no_button_and_no_login_route(tmp_path):
    demo, url = launch_app(tmp_path / "runs")
    try:
        assert not demo.expects_oauth
        assert "Sign in with Hugging Face" not in get(f"{url}config")
        assert get(f"{url}login/huggingface").startswith("{\"detail\":\"Not Found\"")
    finally:
        demo.close()
        demo.manager.shutdown()


def _session_cookie(session: dict, client_secret: str) -> str:
    """The cookie Gradio's OAuth callback writes (Starlette's SessionMiddleware under Gradio's secret)."""
    import itsdangerous

    secret = hashlib.sha256((client_secret + "-v4").encode()).hexdigest()
    data = base64.b64encode(json.dumps(session).encode())
    return "session=" + itsdangerous.TimestampSigner(secret).sign(data).decode()


def test_on_a_space_the_owner_comes_from_the_verified_session_only(tmp_path, monkeypatch):
    """Gradio's real OAuth routes and session; the login at Hugging Face itself is what is mocked (a signed cookie)."""
    pytest.importorskip("authlib")
    import gradio.oauth as oauth

    import gpt.ui.identity as identity

    client_secret = "the-oauth-client-secret"
    for name, value in (("OAUTH_CLIENT_ID", "client"), ("OAUTH_CLIENT_SECRET", client_secret),
                        ("OAUTH_SCOPES", "openid profile"), ("OPENID_PROVIDER_URL", "https://huggingface.co")):
        monkeypatch.setattr(oauth, name, value)
    monkeypatch.setattr(oauth, "get_space", lambda: "teacher/build-a-gpt")
    monkeypatch.setattr(identity, "hf_sign_in_enabled", lambda env=None: True)
    demo, url = launch_app(tmp_path / "runs")
    try:
        assert demo.expects_oauth  # a gr.LoginButton is on the page
        load = _load_fn(demo)
        info = {"userinfo": {"sub": "4242", "name": "Ada", "preferred_username": "ada", "profile": "", "picture": ""},
                "access_token": "x", "expires_at": 2**40}
        signed_in = call_event(url, load, [None], headers={"Cookie": _session_cookie({"oauth_info": info},
                                                                                      client_secret)})
        tokens = signed_in["output"]["data"][0].split()
        assert demo.manager.identity.owner(tokens[0]) == account_owner("huggingface", "4242")
        for cookie in (_session_cookie({"oauth_info": info}, "a-guessed-secret"), "session=forged", ""):
            anonymous = call_event(url, load, [None], headers={"Cookie": cookie} if cookie else None)
            assert " " not in anonymous["output"]["data"][0], cookie  # nobody's account without a verified session
        assert demo.manager.labels.get(account_owner("huggingface", "4242")) == "ada"
    finally:
        demo.close()
        demo.manager.shutdown()


def test_the_signing_module_has_one_name():
    """'identity.py' was two modules (gpt/jobs and gpt/ui); the run service's is gpt/jobs/signing.py now."""
    from pathlib import Path

    import gpt.jobs.manager as manager

    assert "from .identity import" not in Path(manager.__file__).read_text(encoding="utf-8")
    assert not (Path(manager.__file__).parent / "identity.py").exists()
