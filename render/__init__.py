"""The one render of the project: every enabled release through the pinned Helm (and its post-render), cached by its inputs.

`releases` holds it: the program runs it before the first resource registers,
`make diff` to print what differs. It calls Helm through cli/helm.py and
compares with model/structdiff.py; model/ stays plain functions.
"""
