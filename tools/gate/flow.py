"""What a name can hold, inside one device file: the data flow the gate's checks read.

Flow-insensitive and simple on purpose: every binding of a name in a scope (assignment,
import, parameter default, argument of a call to a function of the same file) adds what its
value can be; `self.x = ...` in any method of a class adds to that class's `x`. The values
tracked are the ones the checks need:

    ("mod", m)          the module m (bound by `import m` / `import m as a`, also inside functions)
    ("cls", m, C)       class C of module m (`from machine import UART`, `machine.UART`)
    ("fn", m, a)        attribute a of module m (a function, or a name the table lacks)
    ("obj", m, C)       an instance of m.C (C is None for a module that is a type: osTimer())
    ("meth", m, C, a)   method a of such a class or instance
    ("type", t)         a bytes, bytearray or memoryview object
    ("def", f, bound)   a function of this file (bound: a method reached through self);
                        calling it gives what its `return` statements can give
    ("klass", C)        a class of this file (calling it passes the arguments to __init__)
"""
import ast

from tools import firmware

SCOPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
BUFFER_TYPES = ("bytes", "bytearray", "memoryview")
ROUNDS = 12


class Flow(object):
    def __init__(self, tree):
        self.tree = tree
        self.parent = {}        # node -> parent node
        self.scope = {}         # node -> its enclosing scope node
        self.env = {}           # scope node -> {name: set of values}
        self.attrs = {}         # ClassDef -> {attribute: set of values}
        self.owner = {}         # method FunctionDef -> its ClassDef
        self.results = {}       # FunctionDef -> the expressions it returns
        self._returning = set()
        self._index(tree, tree)
        self._solve()

    # ------------------------------------------------------------------ indexing
    def _index(self, node, scope):
        for child in ast.iter_child_nodes(node):
            self.parent[child] = node
            self.scope[child] = scope
            if isinstance(child, SCOPES):
                self.env.setdefault(child, {})
                if isinstance(child, ast.ClassDef):
                    self.attrs[child] = {}
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if isinstance(node, ast.ClassDef):
                        self.owner[child] = node
                    self._bind(scope, child.name, {("def", child, False)})
                if isinstance(child, ast.ClassDef):
                    self._bind(scope, child.name, {("klass", child)})
                self._index(child, child)
            else:
                if isinstance(child, ast.Return) and child.value is not None:
                    self.results.setdefault(scope, []).append(child.value)
                self._index(child, scope)
        if node is self.tree:
            self.env.setdefault(self.tree, {})

    def _bind(self, scope, name, values):
        names = self.env.setdefault(scope, {})
        before = names.get(name)
        if before is None:
            names[name] = set(values)
            return True
        if values - before:
            before |= values
            return True
        return False

    # ------------------------------------------------------------------ lookups
    def self_class(self, node, scope):
        """The ClassDef when `node` is the first parameter of the method `scope`."""
        while isinstance(scope, ast.Lambda):
            scope = self.scope.get(scope)
        cls = self.owner.get(scope)
        if cls is None or not isinstance(node, ast.Name):
            return None
        args = scope.args.posonlyargs + scope.args.args
        if args and args[0].arg == node.id and not _is_static(scope):
            return cls
        return None

    def lookup(self, name, scope):
        """What `name` can hold where `scope` reads it (local, then enclosing functions, then
        the module; class bodies are skipped as Python does)."""
        current = scope
        while current is not None:
            if not isinstance(current, ast.ClassDef) or current is scope:
                names = self.env.get(current, {})
                if name in names:
                    return names[name]
            current = self.scope.get(current)
        return None

    def values(self, expr, scope=None):
        """The set of values `expr` can have."""
        if scope is None:
            scope = self.scope.get(expr, self.tree)
        if isinstance(expr, ast.Name):
            found = self.lookup(expr.id, scope)
            if found is None and expr.id in BUFFER_TYPES:
                return {("builtin", expr.id)}
            return set(found or ())
        if isinstance(expr, ast.Constant):
            return {("type", "bytes")} if isinstance(expr.value, bytes) else set()
        if isinstance(expr, ast.Attribute):
            return self._attribute(expr, scope)
        if isinstance(expr, ast.Call):
            return self._call(expr, scope)
        if isinstance(expr, ast.Subscript):
            if isinstance(expr.slice, ast.Slice):
                return set(v for v in self.values(expr.value, scope) if v[0] == "type")
            return set()
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mult)):
            return set(v for v in self.values(expr.left, scope) if v[0] == "type")
        if isinstance(expr, ast.IfExp):
            return self.values(expr.body, scope) | self.values(expr.orelse, scope)
        if isinstance(expr, ast.BoolOp):
            found = set()
            for value in expr.values:
                found |= self.values(value, scope)
            return found
        if isinstance(expr, ast.NamedExpr):
            return self.values(expr.value, scope)
        return set()

    def _attribute(self, expr, scope):
        cls = self.self_class(expr.value, scope)
        if cls is not None:
            found = set(self.attrs[cls].get(expr.attr, ()))
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        item.name == expr.attr:
                    found.add(("def", item, not _is_static(item)))
            return found
        found = set()
        for value in self.values(expr.value, scope):
            if value[0] == "mod":
                spec = firmware.module(value[1]) or {}
                if expr.attr in spec.get("classes", {}):
                    found.add(("cls", value[1], expr.attr))
                else:
                    found.add(("fn", value[1], expr.attr))
            elif value[0] in ("obj", "cls"):
                found.add(("meth", value[1], value[2], expr.attr))
        return found

    def _call(self, expr, scope):
        found = set()
        for value in self.values(expr.func, scope):
            kind = value[0]
            if kind == "builtin":
                found.add(("type", value[1]))
            elif kind == "mod" and firmware.is_type(value[1]):
                found.add(("obj", value[1], None))
            elif kind == "cls":
                found.add(("obj", value[1], value[2]))
            elif kind == "fn":
                module, attr = value[1], value[2]
                made = firmware.returns(module, attr)
                if made:
                    found.add(("obj", module, made))
                elif attr == module and firmware.is_type(module):
                    found.add(("obj", module, None))     # stub style osTimer.osTimer()
            elif kind == "meth" and value[2]:
                made = firmware.returns(value[1], "%s.%s" % (value[2], value[3]))
                if made:
                    found.add(("obj", value[1], made))
            elif kind == "def" and value[1] not in self._returning:
                self._returning.add(value[1])           # recursion stops here
                try:
                    for result in self.results.get(value[1], ()):
                        found |= self.values(result, value[1])
                finally:
                    self._returning.discard(value[1])
        return found

    # ------------------------------------------------------------------ solving
    def _solve(self):
        for _ in range(ROUNDS):
            changed = False
            for node, scope in self.scope.items():
                changed |= self._step(node, scope)
            if not changed:
                return

    def _step(self, node, scope):
        if isinstance(node, ast.Import):
            changed = False
            for alias in node.names:
                if alias.asname:
                    changed |= self._bind(scope, alias.asname, {("mod", alias.name)})
                else:
                    top = alias.name.split(".")[0]
                    changed |= self._bind(scope, top, {("mod", top)} if top == alias.name
                                          else set())
            return changed
        if isinstance(node, ast.ImportFrom):
            changed = False
            spec = firmware.module(node.module or "") if node.level == 0 else None
            for alias in node.names:
                value = set()
                if spec is not None:
                    kind = "cls" if alias.name in spec.get("classes", {}) else "fn"
                    value = {(kind, node.module, alias.name)}
                changed |= self._bind(scope, alias.asname or alias.name, value)
            return changed
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = getattr(node, "value", None)
            if value is None:
                return False
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found = self.values(value, scope)
            if isinstance(node, ast.AugAssign):
                found = set(v for v in found if v[0] == "type") | set(
                    v for v in self.values(node.target, scope) if v[0] == "type")
            changed = False
            for target in targets:
                changed |= self._assign(target, value, found, scope)
            return changed
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            return self._assign(node.target, None, set(), scope)
        if isinstance(node, ast.withitem) and node.optional_vars is not None:
            return self._assign(node.optional_vars, node.context_expr,
                                self.values(node.context_expr, scope), scope)
        if isinstance(node, ast.arguments):
            return self._parameters(node, self.parent[node])
        if isinstance(node, ast.Call):
            return self._arguments(node, scope)
        return False

    def _assign(self, target, value, found, scope):
        if isinstance(target, ast.Name):
            return self._bind(scope, target.id, found)
        if isinstance(target, ast.Attribute):
            cls = self.self_class(target.value, scope)
            if cls is None:
                return False
            names = self.attrs[cls]
            before = names.setdefault(target.attr, set())
            if found - before:
                before |= found
                return True
            return False
        if isinstance(target, (ast.Tuple, ast.List)):
            changed = False
            pairs = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(
                target.elts)
            for index, element in enumerate(target.elts):
                element = element.value if isinstance(element, ast.Starred) else element
                part = value.elts[index] if pairs else None
                changed |= self._assign(element, part, self.values(part, scope) if pairs
                                        else set(), scope)
            return changed
        return False

    def _given(self, function, name, values):
        """Bind what a parameter is given, unless the function converts it to bytes first."""
        if name in _normalised(function):
            values = set(v for v in values if v[0] != "type")
        return self._bind(function, name, values)

    def _parameters(self, args, function):
        changed = False
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(positional, defaults):
            found = self.values(default, self.scope[function]) if default is not None else set()
            changed |= self._given(function, arg.arg, found)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            found = self.values(default, self.scope[function]) if default is not None else set()
            changed |= self._given(function, arg.arg, found)
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                changed |= self._bind(function, arg.arg, set())
        return changed

    def _arguments(self, call, scope):
        """A call of a function of this file: its parameters can hold what it is given."""
        changed = False
        for value in self.values(call.func, scope):
            if value[0] == "klass":
                inits = [f for f in value[1].body if isinstance(f, ast.FunctionDef)
                         and f.name == "__init__"]
                if not inits:
                    continue
                value = ("def", inits[0], True)
            if value[0] != "def":
                continue
            function, bound = value[1], value[2]
            params = function.args.posonlyargs + function.args.args
            if bound:
                params = params[1:]
            for param, arg in zip(params, call.args):
                if isinstance(arg, ast.Starred):
                    break
                changed |= self._given(function, param.arg, self.values(arg, scope))
            by_name = dict((p.arg, p) for p in params + function.args.kwonlyargs)
            for keyword in call.keywords:
                if keyword.arg in by_name:
                    changed |= self._given(function, keyword.arg,
                                           self.values(keyword.value, scope))
        return changed

    # ------------------------------------------------------------------ guards
    def ancestors(self, node):
        while node in self.parent:
            node = self.parent[node]
            yield node

    def guarded(self, node, exception, receiver=None, attr=None):
        """True when `node` runs only behind a real fallback: inside a `try:` whose handler
        catches `exception` by name (not Exception, not a bare except), or (for an attribute)
        behind `hasattr(receiver, "attr")`."""
        child = node
        for parent in self.ancestors(node):
            if isinstance(parent, ast.Try) and _within(child, parent.body) and any(
                    _catches(h, exception) for h in parent.handlers):
                return True
            if receiver is not None:
                if isinstance(parent, (ast.If, ast.IfExp)):
                    branch = parent.body if isinstance(parent, ast.If) else [parent.body]
                    other = parent.orelse if isinstance(parent, ast.If) else [parent.orelse]
                    test = _hasattr_test(parent.test, receiver, attr)
                    if (test is True and _within(child, branch)) or (
                            test is False and _within(child, other)):
                        return True
                if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.And):
                    for value in parent.values:
                        if value is child:
                            break
                        if _hasattr_test(value, receiver, attr) is True:
                            return True
                if _early_exit_before(parent, child, receiver, attr):
                    return True
            if isinstance(parent, SCOPES):
                break
            child = parent
        return False


def _is_static(function):
    return any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod")
               for d in function.decorator_list)


def _normalised(function):
    """Parameters the function turns into bytes before anything else: `x = bytes(x)` as a
    statement of its body, or of an `if` at the top of it (`if type(x) is not bytes: ...`)."""
    if isinstance(function, ast.Lambda):
        return set()
    found = set()
    statements = list(function.body)
    for statement in function.body:
        if isinstance(statement, ast.If):
            statements.extend(statement.body)
    for statement in statements:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and isinstance(statement.value, ast.Call)
                and isinstance(statement.value.func, ast.Name)
                and statement.value.func.id == "bytes" and len(statement.value.args) == 1
                and isinstance(statement.value.args[0], ast.Name)
                and statement.value.args[0].id == statement.targets[0].id):
            found.add(statement.targets[0].id)
    return found


def _within(node, body):
    return any(node is item for item in body)


def _catches(handler, exception):
    kinds = handler.type
    if kinds is None:
        return False
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(isinstance(n, ast.Name) and n.id == exception for n in names)


def _hasattr_test(test, receiver, attr):
    """True when `test` is hasattr(receiver, "attr") (False when negated), else None."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        if any(_hasattr_test(value, receiver, attr) is True for value in test.values):
            return True
        return None
    negated = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        negated, test = True, test.operand
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Name)
            and test.func.id == "hasattr" and len(test.args) == 2
            and isinstance(test.args[1], ast.Constant) and test.args[1].value == attr
            and ast.dump(test.args[0]) == ast.dump(receiver)):
        return not negated
    return None


def _early_exit_before(parent, child, receiver, attr):
    """`if not hasattr(r, "a"): return` (or raise/continue/break) earlier in the same block."""
    for field in ("body", "orelse", "finalbody"):
        block = getattr(parent, field, None)
        if not isinstance(block, list) or not _within(child, block):
            continue
        for statement in block:
            if statement is child:
                break
            if (isinstance(statement, ast.If)
                    and _hasattr_test(statement.test, receiver, attr) is False
                    and statement.body and isinstance(statement.body[-1], (
                        ast.Return, ast.Raise, ast.Continue, ast.Break))):
                return True
    return False
