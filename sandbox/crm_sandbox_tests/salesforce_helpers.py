"""Helpers the Salesforce sandbox tests share: a trusted requests session, the login-URL rewrite, and typed
views of two simple-salesforce answers whose annotations do not say what they hold (an sObject attribute and
an error's body)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError

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

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url is None:  # a prepared request always has one; PreparedRequest types it optional
            raise ValueError("a request to rewrite has no URL")
        parts = urlsplit(request.url)
        request.url = self.instance_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


def login_session(ca_file: object, instance_url: str, login_host: str) -> requests.Session:
    """A trusted session whose requests to ``login_host`` go to the sandbox at ``instance_url``."""
    session = trusted_session(ca_file)
    session.mount(f"https://{login_host}/", RewriteToSandbox(instance_url))
    return session


def sobject(sf: Salesforce, name: str) -> SFType:
    """The ``SFType`` for sObject ``name`` (``sobject(sf, "Task")`` is ``sf.Task``).

    simple-salesforce annotates ``Salesforce.__getattr__`` as the bulk handlers or an ``SFType`` for every
    name, although only ``bulk`` and ``bulk2`` give a handler; this narrows the answer (and checks it at run
    time), so the ``.create``/``.update``/``.delete`` calls of a test are checked."""
    found = getattr(sf, name)
    assert isinstance(found, SFType), f"{name} is not an sObject type: {type(found).__name__}"
    return found


def response_body(error: SalesforceError) -> object:
    """The body of the response a simple-salesforce exception stands for, as JSON.

    ``SalesforceError.content`` is annotated ``bytes``, but ``util.exception_handler`` stores
    ``response.json()`` (the response text if that fails): an error list, or the record URLs of a 300."""
    return error.content


def error_objects(error: SalesforceError) -> list[dict[str, Any]]:
    """The error objects (``errorCode``, ``message``, ``fields``) of a Salesforce error response; fails the
    test if the body is anything else."""
    body = response_body(error)
    assert isinstance(body, list), f"not an error list: {body!r}"
    assert all(isinstance(item, dict) for item in body), f"not an error list: {body!r}"
    return body
