"""Reads the one table of limits, common/cs_limits.h, for the schema generators: every
`#define CS_LIMIT_NAME value` becomes LIMITS["NAME"] (an int), so the schemas state the bounds the
C validator, codec and runner use, and cannot drift from them."""
import os
import re

_HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common", "cs_limits.h")


def read_limits(path=_HEADER):
    out = {}
    for name, expr in re.findall(r"^#define CS_LIMIT_([A-Z0-9_]+)\s+(.+?)\s*(?:/\*.*)?$",
                                 open(path).read(), re.M):
        if "(X)" in name or expr.endswith("\\"):
            continue
        expr = re.sub(r"INT64_C\((\d+)\)", r"\1", expr)
        expr = expr.replace("(size_t)", "")
        expr = re.sub(r"CS_LIMIT_([A-Z0-9_]+)", lambda m: str(out[m.group(1)]), expr)
        if not re.fullmatch(r"[0-9+\-*<>() ]+", expr):
            raise ValueError("cs_limits.h: cannot read CS_LIMIT_%s = %s" % (name, expr))
        out[name] = int(eval(expr))  # digits and operators only (checked above)
    return out


LIMITS = read_limits()
