"""Helpers the Salesforce sandbox tests share: a trusted requests session and the login-URL rewrite."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

API = "v59.0"


def trusted_session(ca_file: object) -> requests.Session:
    """A session that trusts the sandbox CA and ignores REQUESTS_CA_BUNDLE (the reference's gotcha 1)."""
    session = requests.Session()
    session.verify = str(ca_file)
    session.trust_env = False
    return session


class RewriteToSandbox(HTTPAdapter):
    """Sends requests meant for a salesforce.com login host to the sandbox instead (the token URL is fixed in
    https://github.com/simple-salesforce/simple-salesforce/blob/master/simple_salesforce/login.py)."""

    def __init__(self, instance_url: str) -> None:
        super().__init__()
        self.instance_url = instance_url

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        parts = urlsplit(request.url)
        request.url = self.instance_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def login_session(ca_file: object, instance_url: str, login_host: str) -> requests.Session:
    session = trusted_session(ca_file)
    session.mount(f"https://{login_host}/", RewriteToSandbox(instance_url))
    return session
