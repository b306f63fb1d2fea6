"""The base of every error whose message alone tells a user what is wrong and how to fix it.

``vecomp <command>`` prints such errors as one clear message (no traceback) and exits 1;
anything else is a bug and keeps its traceback.
"""


class VecompError(Exception):
    pass
