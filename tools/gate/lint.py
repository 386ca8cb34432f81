"""Portability lint: language features QuecPython's MicroPython 1.13 compiles but refuses or
gets wrong at run time (call shapes, class machinery, annotations, displays).

    python -m tools.gate.lint [PATH ...]     (default: qframe/ code/)

Prints `file:line: message` for each finding and exits 1 if there is any. Which modules,
names and methods exist is not this file's job: tools/gate/firmware_check.py checks them
against the firmware table and tools/gate/builtins_check.py against the 1.13 facts
(tools/firmware/); the compiler check is tools/gate/gate.py's.
"""
import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVICE_DIRS = ("qframe", "code")

FORBIDDEN_DUNDERS = {
    "__setattr__": "class __setattr__ overrides are not called on 1.13",
    "__delattr__": "class __delattr__ overrides are not called on 1.13",
    "__get__": "descriptors (__get__) do not work on 1.13",
    "__set__": "descriptors (__set__) do not work on 1.13",
    "__init_subclass__": "__init_subclass__ is not called on 1.13",
    "__class_getitem__": "__class_getitem__ does not exist on 1.13",
}
REFLECTED = ("__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rfloordiv__", "__rmod__",
             "__rpow__", "__rand__", "__ror__", "__rxor__", "__rlshift__", "__rrshift__",
             "__rmatmul__", "__rdivmod__")


class _Checker(ast.NodeVisitor):
    def __init__(self, path):
        self.path = path
        self.findings = []

    def report(self, node, message):
        self.findings.append("%s:%d: %s" % (self.path, node.lineno, message))

    # syntax the 1.13 compiler or runtime rejects
    def visit_JoinedStr(self, node):
        self.report(node, "f-strings do not compile on 1.13; use '...'.format() or %")

    def visit_Dict(self, node):
        if any(key is None for key in node.keys):
            self.report(node, "{**a} unpacking in a dict display is not supported on 1.13")
        self.generic_visit(node)

    def _check_display(self, node):
        if any(isinstance(e, ast.Starred) for e in node.elts) and not isinstance(
                getattr(node, "ctx", None), ast.Store):
            self.report(node, "[*a] unpacking in a display is not supported on 1.13")
        self.generic_visit(node)

    visit_List = visit_Tuple = visit_Set = _check_display

    def visit_Call(self, node):
        func = node.func
        starred = sum(1 for a in node.args if isinstance(a, ast.Starred))
        double = sum(1 for k in node.keywords if k.arg is None)
        if starred > 1 or double > 1:
            self.report(node, "several * or ** unpackings in one call are not supported on 1.13")
        if isinstance(func, ast.Name):
            if func.id == "next" and len(node.args) > 1:
                self.report(node, "next(it, default) takes one argument on 1.13")
            if func.id == "print" and any(k.arg == "flush" for k in node.keywords):
                self.report(node, "print(flush=...) is not supported on 1.13")
        if isinstance(func, ast.Attribute):
            if func.attr in ("startswith", "endswith") and node.args and isinstance(
                    node.args[0], ast.Tuple):
                self.report(node, "str.%s(tuple) is not supported on 1.13" % func.attr)
            if func.attr == "dumps" and any(k.arg == "separators" for k in node.keywords):
                self.report(node, "ujson.dumps(separators=...) is not supported on 1.13")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr == "__name__" and not _names_a_class_or_module(node.value):
            self.report(node, "func.__name__ raises AttributeError on 1.13 "
                              "(only type(x).__name__ / cls.__name__ are safe)")
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for keyword in node.keywords:
            self.report(node, "class keyword %r (metaclass) is not supported on 1.13"
                        % keyword.arg)
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                if item.name in FORBIDDEN_DUNDERS:
                    self.report(item, FORBIDDEN_DUNDERS[item.name])
                elif item.name in REFLECTED:
                    self.report(item, "reflected operator %s is not called on 1.13" % item.name)
        self.generic_visit(node)

    def _check_function(self, node):
        args = node.args
        if getattr(args, "posonlyargs", None):
            self.report(node, "positional-only parameters (/) do not compile on 1.13")
        every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (
            args.vararg, args.kwarg) if a]
        if node.returns is not None or any(a.annotation is not None for a in every):
            self.report(node, "annotations cost RAM on the module; leave them out")
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _check_function

    def visit_AnnAssign(self, node):
        self.report(node, "annotations cost RAM on the module; leave them out")
        self.generic_visit(node)

    def visit_Match(self, node):
        self.report(node, "match statements do not compile on 1.13")
        self.generic_visit(node)


def _names_a_class_or_module(value):
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id == "type"
    if isinstance(value, ast.Attribute):
        return value.attr == "__class__"
    if isinstance(value, ast.Name):
        return value.id in ("cls", "klass") or value.id[:1].isupper()
    return False


def lint_tree(tree, path):
    """Return the findings for one parsed file."""
    checker = _Checker(path)
    checker.visit(tree)
    return checker.findings


def by_line(findings):
    """Findings without duplicates, in line order."""
    return sorted(set(findings), key=lambda f: (int(f.split(":")[1]), f))


def lint_source(source, path="<source>"):
    """Return the findings for one file's source text."""
    try:
        tree = ast.parse(source, path)
    except SyntaxError as exc:
        return ["%s:%s: syntax error: %s" % (path, exc.lineno, exc.msg)]
    return by_line(lint_tree(tree, path))


def device_files(paths):
    """Every .py file under the given files or folders (skipping __pycache__)."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found.extend(os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))
    return found


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or [
        os.path.join(REPO, d) for d in DEVICE_DIRS]
    findings = []
    for path in device_files(paths):
        with open(path) as f:
            findings.extend(lint_source(f.read(), os.path.relpath(path)))
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
