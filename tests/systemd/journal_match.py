#!/usr/bin/python3
"""
Filters `journalctl -o json` output (stdin) for run.sh.

  journal_match.py [--show | --count] FIELD=VALUE... FIELD~SUBSTRING... FIELD<N...

FIELD=VALUE matches exactly, FIELD~SUBSTRING when the value contains SUBSTRING (FIELD~ only
asks for the field to be present; "~" rather than "=~", which the shell would tilde-expand),
FIELD<N when the value is an integer below N. Exit 0 when some record matches every condition, else 1;
--show prints the first such record as JSON; --count prints how many match (and exits 0).
"""
import json
import sys


def value(v):
    if isinstance(v, list):  # a field given more than once, or binary data as byte values
        if v and all(isinstance(x, int) for x in v):
            return bytes(v).decode("utf-8", "replace")
        return value(v[0]) if v else ""
    return "" if v is None else str(v)


def main(argv):
    show = "--show" in argv
    count = "--count" in argv
    conds, n = [], 0
    for a in argv:
        if a in ("--show", "--count"):
            continue
        i = min((a.find(c) for c in "=~<" if c in a), default=-1)
        if i <= 0:
            sys.exit("bad condition %r (want FIELD=VALUE, FIELD~SUBSTRING or FIELD<N)" % a)
        conds.append((a[:i], a[i + 1:], a[i]))
    # Read everything first: stopping early would SIGPIPE journalctl and fail the pipeline.
    for line in sys.stdin.read().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        ok = True
        for k, want, op in conds:
            if k not in rec:
                ok = False
                break
            have = value(rec[k])
            if op == "=":
                ok = have == want
            elif op == "~":
                ok = want in have
            else:
                ok = have.lstrip("-").isdigit() and int(have) < int(want)
            if not ok:
                break
        if ok and count:
            n += 1
        elif ok:
            if show:
                print(json.dumps(rec, indent=1, sort_keys=True))
            return 0
    if count:
        print(n)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
