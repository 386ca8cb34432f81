"""The gate's MicroPython 1.13 check: methods and built-ins that 1.13, as QuecPython builds it,
lacks (tools/firmware/mp113.json).

    - `x.m(...)` where x can be a bytearray or memoryview (a name or `self.` attribute assigned
      bytearray(...)/memoryview(...) or a slice of one, a parameter whose default or whose
      argument at a call in the same file is one): m must be a 1.13 method of that type.
      `bytearray.find`, `startswith`, `split`, `index`, `count`, ... are str/bytes methods only;
    - `x.m` where no 1.13 built-in type has m (`hex`, `fromhex`, `rjust`, `zfill`, `partition`,
      `dict.fromkeys`, ...), whatever x is, unless the gated code defines a method named m;
    - the built-ins the firmware is built without (`reversed`, `frozenset`).

Guards accepted as for the firmware check: hasattr(x, "m") and try/except AttributeError
(NameError for a missing built-in).
"""
import ast

from tools import firmware


def _facts():
    facts = firmware.mp113()
    has = set()
    missing = {}
    for spec in facts["types"].values():
        has.update(spec["has"])
        for name, instead in spec["missing"].items():
            missing.setdefault(name, instead)
    nowhere = dict((name, instead) for name, instead in missing.items() if name not in has)
    return facts, nowhere


def defined_methods(trees):
    """Names of the functions and methods the gated files define (their calls are theirs)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
    return names


class BuiltinsCheck(object):
    def __init__(self, flow, path, own_methods=()):
        self.flow = flow
        self.path = path
        self.own = set(own_methods)
        self.facts, self.nowhere = _facts()
        self.findings = []

    def report(self, node, name, problem, instead):
        self.findings.append("%s:%d: %s: %s — use instead: %s" % (
            self.path, node.lineno, name, problem, instead))

    def run(self):
        for node in ast.walk(self.flow.tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                self._method(node)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._builtin(node)
        return self.findings

    def _method(self, node):
        types = self.facts["types"]
        for value in sorted(self.flow.values(node.value), key=repr):
            if value[0] == "type" and value[1] in types:
                spec = types[value[1]]
                if node.attr in spec["missing"] and not self._guarded(node):
                    self.report(node, "%s.%s" % (value[1], node.attr),
                                "not a method of %s on MicroPython 1.13" % value[1],
                                spec["missing"][node.attr])
                    return
        if node.attr in self.nowhere and node.attr not in self.own and not self._guarded(node):
            self.report(node, ".%s" % node.attr,
                        "no built-in type has it on MicroPython 1.13",
                        self.nowhere[node.attr])

    def _builtin(self, node):
        builtins = self.facts["builtins"]
        if node.id in builtins and self.flow.lookup(node.id, self.flow.scope[node]) is None \
                and not self.flow.guarded(node, "NameError"):
            self.report(node, node.id, "not built into the firmware's MicroPython 1.13",
                        builtins[node.id])

    def _guarded(self, node):
        return self.flow.guarded(node, "AttributeError", node.value, node.attr)


def check(flow, path, own_methods=()):
    """Findings for one parsed file."""
    return BuiltinsCheck(flow, path, own_methods).run()
