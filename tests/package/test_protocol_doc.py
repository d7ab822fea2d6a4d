#!/usr/bin/env python3
"""Keeps docs/PROTOCOL.md in step with proto/relais/v1/*.proto.

Section 11 of the page lists every message and enumeration under a heading
"#### `Name`" (nested ones as `Parent.Name`) with one table row per field
("| `name` | number | type | meaning |") or value ("| `NAME` | number | meaning |").
This test reads the .proto files and fails, naming what differs, when a message, an
enumeration, a field or a value of the schema is missing from the page, has another number
or type there, or when the page documents one the schema no longer has.

Usage: test_protocol_doc.py SOURCE_DIR            checks the tree
       test_protocol_doc.py --self-test SOURCE_DIR checks that a field added to a copy of
                                                   the schema makes the check fail
"""
import os
import re
import shutil
import sys
import tempfile


def parse_proto(path):
    """{qualified name: (kind, {member: (number, type)})} of the messages and enums of path.
    type is None for enum values; "repeated X" for repeated fields."""
    out = {}
    stack = []  # (kind, name); kind "oneof" does not qualify names
    with open(path, encoding="utf-8") as f:
        for raw in f:
            code = raw.split("//", 1)[0].strip()
            if not code:
                continue
            m = re.match(r"(message|enum)\s+(\w+)\s*\{$", code)
            if m:
                name = ".".join([n for k, n in stack if k != "oneof"] + [m.group(2)])
                stack.append((m.group(1), m.group(2)))
                out[name] = (m.group(1), {})
                continue
            m = re.match(r"oneof\s+(\w+)\s*\{$", code)
            if m:
                stack.append(("oneof", m.group(1)))
                continue
            if code == "}":
                stack.pop()
                continue
            owners = [(k, n) for k, n in stack if k != "oneof"]
            if not owners:
                continue
            name = ".".join(n for _, n in owners)
            kind, members = out[name]
            if kind == "message":
                m = re.match(r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;$", code)
                if m:
                    typ = ("repeated " if m.group(1) else "") + m.group(2)
                    members[m.group(3)] = (int(m.group(4)), typ)
                    continue
            else:
                m = re.match(r"(\w+)\s*=\s*(\d+)\s*;$", code)
                if m:
                    members[m.group(1)] = (int(m.group(2)), None)
                    continue
            if re.match(r"(syntax|package|import|option|reserved)\b", code) is None:
                raise SystemExit("%s: cannot read line: %s" % (path, raw.rstrip()))
    return out


def parse_doc(path):
    """{heading name: {member: (number, type or None)}} from section 11 of the page."""
    out = {}
    current = None
    in_reference = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                in_reference = line.startswith("## 11.")
                current = None
                continue
            if not in_reference:
                continue
            m = re.match(r"#### `([\w.]+)`\s*$", line)
            if m:
                current = out.setdefault(m.group(1), {})
                continue
            m = re.match(r"\| `(\w+)` \| (\d+) \|(?: ([^|]+) \|)?", line)
            if m and current is not None:
                typ = m.group(3)
                if typ is not None:
                    typ = re.sub(r"\s*\(oneof `\w+`\)", "", typ.replace("&nbsp;", " ")).strip()
                current[m.group(1)] = (int(m.group(2)), typ)
    return out


def check(source_dir):
    proto_dir = os.path.join(source_dir, "proto", "relais", "v1")
    schema = {}
    for name in sorted(os.listdir(proto_dir)):
        if name.endswith(".proto"):
            schema.update(parse_proto(os.path.join(proto_dir, name)))
    doc = parse_doc(os.path.join(source_dir, "docs", "PROTOCOL.md"))
    problems = []
    if not schema:
        problems.append("no message found in %s" % proto_dir)
    for name, (kind, members) in schema.items():
        if name not in doc:
            problems.append("%s %s is not documented (#### `%s` in section 11)" % (kind, name, name))
            continue
        for member, (number, typ) in members.items():
            what = "field" if kind == "message" else "value"
            if member not in doc[name]:
                problems.append("%s %s.%s = %d is not documented" % (what, name, member, number))
                continue
            dnum, dtyp = doc[name][member]
            if dnum != number:
                problems.append("%s.%s is number %d, the page says %d" % (name, member, number, dnum))
            if kind == "message" and dtyp != typ:
                problems.append("%s.%s has type '%s', the page says '%s'" % (name, member, typ, dtyp))
        for member in doc[name]:
            if member not in members:
                problems.append("the page documents %s.%s, which the schema does not have" % (name, member))
    for name in doc:
        if name not in schema:
            problems.append("the page documents %s, which the schema does not have" % name)
    n_members = sum(len(m) for _, m in schema.values())
    return problems, len(schema), n_members


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        tmp = tempfile.mkdtemp(prefix="relais-protodoc-")
        try:
            shutil.copytree(os.path.join(argv[2], "proto"), os.path.join(tmp, "proto"))
            shutil.copytree(os.path.join(argv[2], "docs"), os.path.join(tmp, "docs"))
            care = os.path.join(tmp, "proto", "relais", "v1", "care.proto")
            with open(care, encoding="utf-8") as f:
                text = f.read()
            text = text.replace("message Note {\n", "message Note {\n  string undocumented_field = 99;\n", 1)
            with open(care, "w", encoding="utf-8") as f:
                f.write(text)
            problems, _, _ = check(tmp)
        finally:
            shutil.rmtree(tmp)
        if not any("Note.undocumented_field" in p for p in problems):
            print("FAIL: a field added to the schema went unnoticed: %s" % problems)
            return 1
        print("protocol doc self-test: an undocumented field is caught")
        return 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    problems, n_types, n_members = check(argv[1])
    for p in problems:
        print("FAIL: docs/PROTOCOL.md: " + p)
    if problems:
        return 1
    print("docs/PROTOCOL.md documents all %d messages and enumerations and their %d fields "
          "and values" % (n_types, n_members))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
