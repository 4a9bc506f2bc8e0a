"""The audit trail of a stack and of the fleet, from the state backend alone.

`commands/audit.py` and `commands/fleet.py` are the entry points. Reading is
in `cli/stack_history.py` (the Pulumi CLI and the backend's objects) and
`model/history.py` (plain data); here: the reports (`report`, `page`), the
diff of two updates (`diff`), the rollback (`restore`, `verify`) and the fleet.
"""
