"""The worker's state: mirror of open deals, cursors, the action ledger and the audit trail."""
