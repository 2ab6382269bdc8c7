"""A Salesforce-compatible REST API server over HTTPS (``followup sandbox salesforce``).

Serves what simple-salesforce 1.12 calls (query/queryAll with paging, sObject CRUD, external-id upsert,
describe, sObject Collections, limits, OAuth JWT-bearer and client-credentials) with Salesforce's status
codes, error lists, ``Sforce-Limit-Info`` and daily budget, over an org rendered from ``crm_sandbox.dataset``.
Module map: fields/catalog/schema (sObject metadata), ids/values (formats), store (tables and indexes),
soql/ (lexer, parser, evaluator), dml (writes and derived fields), loader (dataset -> org), oauth/tls (auth
and certificates), metadata (minimal SOAP Metadata API), org (state), http/routes_* (HTTP), describe,
app (composition), running (context manager).
"""

from __future__ import annotations

from crm_sandbox.salesforce.app import build_app
from crm_sandbox.salesforce.org import SalesforceOrg
from crm_sandbox.salesforce.running import SalesforceSandbox, build_org, running_salesforce_sandbox

__all__ = ["SalesforceOrg", "SalesforceSandbox", "build_app", "build_org", "running_salesforce_sandbox"]
