"""The gate's firmware check: device code uses only what the firmware table lists on every line.

    - `import m` / `from m import x`: m (and x) exist on every firmware line, or the import sits
      in a `try:` whose handler catches ImportError by name;
    - `m.x` for a module m bound by an import (aliases and imports inside functions too):
      x exists on every line, or is guarded (hasattr(m, "x"), try/except AttributeError);
      `getattr(m, "x", default)` is not an attribute read and passes;
    - `obj.y` on a firmware object (osTimer(), usocket.socket(), ussl.wrap_socket(...),
      machine.UART(...), ..., followed through local names and `self.` attributes):
      y is a method of its class on every line, or is guarded the same way;
    - calls the table knows the arguments of: no keyword the firmware rejects
      (ussl.wrap_socket(cert_reqs=...)), no more positional arguments than it takes.

A broad `except Exception` or a bare `except:` is never a fallback: it hides the error.
Imports of the app's own modules (`usr.*` or relative) pass; on the module `/usr` is not on
the import path, so a bare `import params` is reported like any module the firmware lacks.
"""
import ast

from tools import firmware

LOCAL_PACKAGE = "usr"


def _lines_text(lines):
    if not lines:
        return "not in the firmware"
    return "only on %s" % ", ".join(lines)


def _finding(path, node, name, problem, instead):
    return "%s:%d: %s: %s — use instead: %s" % (path, node.lineno, name, problem, instead)


def _fallback_hint(kind):
    if kind == "import":
        return "a fallback: try: import ... except ImportError"
    return "a fallback: hasattr(...) or try: ... except AttributeError"


class FirmwareCheck(object):
    def __init__(self, flow, path):
        self.flow = flow
        self.path = path
        self.findings = []

    def run(self):
        for node in ast.walk(self.flow.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._import(node, alias.name, None)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    self._import(node, node.module, alias.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                self._attribute(node)
            if isinstance(node, ast.Call):
                self._call(node)
        return self.findings

    def report(self, node, name, problem, instead):
        self.findings.append(_finding(self.path, node, name, problem, instead))

    # ------------------------------------------------------------------ imports
    def _import(self, node, module, name):
        top = module.split(".")[0]
        if top == LOCAL_PACKAGE:
            return
        if self.flow.guarded(node, "ImportError"):
            return
        lines = firmware.module_lines(top)
        if not lines:
            self.report(node, "import %s" % module, "not a module of the firmware",
                        firmware.instead(top, "import") or "nothing in the firmware table")
            return
        if set(lines) != set(firmware.LINES):
            self.report(node, "import %s" % module, _lines_text(lines),
                        firmware.instead(top, "import") or _fallback_hint("import"))
            return
        if name is not None and name != "*":
            lines = firmware.lines_with(module, name)
            if set(lines) != set(firmware.LINES):
                self.report(node, "from %s import %s" % (module, name), _lines_text(lines),
                            firmware.instead(module, name) or _fallback_hint("import"))

    # ------------------------------------------------------------------ attributes
    def _attribute(self, node):
        for value in sorted(self.flow.values(node.value), key=repr):
            kind = value[0]
            if kind == "mod" and firmware.module(value[1]) is not None:
                module = value[1]
                lines = firmware.lines_with(module, node.attr)
                if lines and lines == firmware.module_lines(module):
                    continue                # the import itself is checked
                name = "%s.%s" % (module, node.attr)
                instead = firmware.instead(module, node.attr)
            elif kind in ("obj", "cls"):
                module, cls = value[1], value[2]
                if cls is None:                     # an instance of a module that is a type
                    lines = firmware.lines_with(module, node.attr)
                    name = "%s().%s" % (module, node.attr)
                    instead = firmware.instead(module, node.attr)
                else:
                    lines = firmware.method_lines(module, cls, node.attr)
                    name = "%s.%s.%s" % (module, cls, node.attr)
                    instead = firmware.instead(module, "%s.%s" % (cls, node.attr))
            else:
                continue
            if set(lines) == set(firmware.LINES) or node.attr.startswith("__"):
                continue
            if self.flow.guarded(node, "AttributeError", node.value, node.attr):
                continue
            self.report(node, name, _lines_text(lines), instead or _fallback_hint("attr"))
            return

    # ------------------------------------------------------------------ call arguments
    def _call(self, node):
        for value in sorted(self.flow.values(node.func), key=repr):
            if value[0] == "fn":
                module, callee = value[1], value[2]
            elif value[0] == "cls":
                module, callee = value[1], value[2]
            elif value[0] == "meth":
                module = value[1]
                callee = value[3] if value[2] is None else "%s.%s" % (value[2], value[3])
            elif value[0] == "mod" and firmware.is_type(value[1]):
                module, callee = value[1], value[1]
            else:
                continue
            spec = firmware.call_spec(module, callee)
            if spec:
                self._arguments(node, module, callee, spec)
                return

    def _keywords(self, node):
        """The call's keywords, with the constant keys of a `**name` dict built in the same
        function (`name = {"k": ...}`, `name["k"] = ...`) as keywords of that line."""
        found = list(node.keywords)
        for keyword in node.keywords:
            if keyword.arg is None and isinstance(keyword.value, ast.Name):
                name = keyword.value.id
                scope = self.flow.scope.get(node)
                for other, where in self.flow.scope.items():
                    if where is scope:
                        found.extend(ast.keyword(arg=key, value=None)
                                     for key in _dict_keys(other, name))
        return found

    def _arguments(self, node, module, callee, spec):
        if self.flow.guarded(node, "TypeError"):
            return              # a signature that differs per line, with its fallback call
        name = "%s.%s" % (module, callee)
        keywords = spec.get("keywords")
        if keywords is not None:
            for keyword in self._keywords(node):
                if keyword.arg is None:
                    continue
                lines = firmware.lines_of(keywords[keyword.arg]) if keyword.arg in keywords \
                    else ()
                if set(lines) != set(firmware.LINES):
                    self.report(node, "%s(%s=...)" % (name, keyword.arg),
                                "keyword " + ("rejected by the firmware" if not lines
                                              else _lines_text(lines)),
                                firmware.instead(module, keyword.arg)
                                or "the keywords it takes: %s" % (
                                    ", ".join(sorted(keywords)) or "none"))
        most = spec.get("positional")
        starred = any(isinstance(a, ast.Starred) for a in node.args)
        if most is not None and not starred and len(node.args) > most:
            self.report(node, "%s(...)" % name,
                        "%d positional arguments, the firmware takes at most %d"
                        % (len(node.args), most),
                        "keywords: %s" % ", ".join(sorted(keywords or ())) if keywords
                        else "no arguments")


def _dict_keys(node, name):
    """Constant string keys `node` puts into the dict bound to `name`."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name and isinstance(
                    node.value, ast.Dict):
                return [k.value for k in node.value.keys
                        if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                    and target.value.id == name and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)):
                return [target.slice.value]
    return []


def check(flow, path):
    """Findings (`file:line: name: problem — use instead: ...`) for one parsed file."""
    return FirmwareCheck(flow, path).run()
