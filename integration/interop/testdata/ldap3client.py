#!/usr/bin/python3
"""An LDAP client written with Python's ldap3, run by the interop tests.

Reads a JSON request on stdin, {"url", "user", "password", "ops": [...]},
binds once and runs every op on that one connection, then prints
{"results": [...]} as JSON: one result per op, each with the LDAP result
code ("result") and what the op read. Ops:

  {"op": "bind", "user", "password"}      rebind on the same connection
  {"op": "search", "base", "filter", "attrs", "page_size"}
      a subtree search (paged when page_size > 0); returns "dns" (lower
      case, sorted) and "entries" ({dn: {attribute: [values]}})
  {"op": "range", "base", "attr", "first"}
      reads a multi-valued attribute of one entry in ranges as AD clients
      do: asks for attr;range=first, then attr;range=(hi+1)-* until the
      answer's range ends with * (or after one request with "once");
      returns "names" (the attribute descriptions the server answered
      with) and "values" (sorted)

An op that loses the connection answers result -1 with the error.
"""
import json
import sys

from ldap3 import BASE, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException

PAGED_RESULTS = "1.2.840.113556.1.4.319"


def status(conn):
    return {"result": conn.result["result"], "message": conn.result.get("message", "")}


def entries(conn):
    out = {}
    for r in conn.response or []:
        if r.get("type") != "searchResEntry":
            continue
        out[r["dn"]] = {
            name: sorted(v.decode("utf-8", "replace") for v in vals)
            for name, vals in r["raw_attributes"].items()
        }
    return out


def search(conn, op):
    found, cookie, pages = {}, None, 0
    while True:
        conn.search(op["base"], op["filter"], search_scope=SUBTREE, attributes=op.get("attrs") or ["1.1"],
                    paged_size=op.get("page_size") or None, paged_cookie=cookie)
        pages += 1
        found.update(entries(conn))
        ctrl = (conn.result.get("controls") or {}).get(PAGED_RESULTS)
        cookie = ctrl["value"]["cookie"] if ctrl else None
        if conn.result["result"] != 0 or not op.get("page_size") or not cookie:
            break
    out = status(conn)
    out.update(dns=sorted(dn.lower() for dn in found), entries=found, pages=pages)
    return out


def walk_range(conn, op):
    attr, want, names, values = op["attr"], op["first"], [], []
    for _ in range(1000):
        conn.search(op["base"], "(objectClass=*)", search_scope=BASE, attributes=[f"{attr};range={want}"])
        got = entries(conn)
        if conn.result["result"] != 0 or not got:
            break
        ((_, attrs),) = got.items()
        ranged = [n for n in attrs if n.lower().startswith(attr.lower() + ";range=")]
        if not ranged:
            break
        names.append(ranged[0])
        values += attrs[ranged[0]]
        hi = ranged[0].rsplit("-", 1)[1]
        if hi == "*" or op.get("once"):
            break
        want = f"{int(hi) + 1}-*"
    out = status(conn)
    out.update(names=names, values=sorted(values))
    return out


def main():
    req = json.load(sys.stdin)
    server = Server(req["url"], get_info=NONE, connect_timeout=10)
    conn = Connection(server, user=req["user"], password=req["password"], raise_exceptions=False,
                      auto_range=False, return_empty_attributes=False, check_names=False,
                      receive_timeout=30)
    conn.open()
    conn.bind()
    results = [status(conn)]
    for op in req["ops"]:
        try:
            if op["op"] == "bind":
                conn.rebind(user=op["user"], password=op["password"])
                results.append(status(conn))
            elif op["op"] == "search":
                results.append(search(conn, op))
            elif op["op"] == "range":
                results.append(walk_range(conn, op))
            else:
                raise SystemExit(f"unknown op {op['op']!r}")
        except LDAPException as e:
            # A dropped connection is an answer too: this op and the ones
            # after it report it.
            results.append({"result": -1, "message": f"{type(e).__name__}: {e}"})
    if not conn.closed:
        conn.unbind()
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
