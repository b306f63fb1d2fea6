"""Command lines for `vecomp <command>` in the tests, written as keyword arguments.

``vecomp_args("train", task="gqa", store=["a=x", "b=y"], model={"width": 8})`` gives
``["train", "--task", "gqa", "--store", "a=x", "--store", "b=y", "--model", '{"width": 8}']``:
positional arguments come first, underscores become dashes, a list repeats its option, a dict
is passed as JSON, ``True`` is a bare flag and ``None`` or ``False`` leaves the option out.
"""

from __future__ import annotations

import json


def vecomp_args(command: str, *positional, **options) -> list[str]:
    args = [command, *map(str, positional)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        elif isinstance(value, dict):
            args += [flag, json.dumps(value)]
        else:
            args += [flag, str(value)]
    return args
