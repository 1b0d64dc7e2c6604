"""Classic program: a pure-Python tokenizer and recursive-descent parser.

Owns: a small expression language (integers, names, + - * / %, comparisons,
parentheses, function calls, ``let NAME = EXPR in EXPR``, ``if C then A else
B``), its hand-written tokenizer (no regex), a recursive-descent parser that
builds AST node objects, and a tree-walking evaluator.  Allocation profile:
token strings and tuples, one object per AST node, recursion.
Single-threaded; deterministic.
"""


class Node:
    __slots__ = ("kind", "value", "kids")

    def __init__(self, kind, value, kids=()):
        self.kind = kind
        self.value = value
        self.kids = kids


KEYWORDS = {"let", "in", "if", "then", "else"}
OPERATORS = {"+", "-", "*", "/", "%", "<", ">", "=", "(", ")", ","}


def tokenize(text):
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            tokens.append(("num", int(text[i:j])))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            tokens.append(("kw" if word in KEYWORDS else "name", word))
            i = j
        elif ch in OPERATORS:
            tokens.append(("op", ch))
            i += 1
        else:
            raise SyntaxError(f"bad character {ch!r} at {i}")
    tokens.append(("end", None))
    return tokens


class Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos]

    def take(self, kind=None, value=None):
        tok = self.tokens[self.pos]
        if (kind is not None and tok[0] != kind) or (
                value is not None and tok[1] != value):
            raise SyntaxError(f"expected {kind} {value}, got {tok}")
        self.pos += 1
        return tok

    def expr(self):
        tok = self.peek()
        if tok == ("kw", "let"):
            self.take()
            name = self.take("name")[1]
            self.take("op", "=")
            bound = self.expr()
            self.take("kw", "in")
            return Node("let", name, (bound, self.expr()))
        if tok == ("kw", "if"):
            self.take()
            cond = self.expr()
            self.take("kw", "then")
            yes = self.expr()
            self.take("kw", "else")
            return Node("if", None, (cond, yes, self.expr()))
        return self.comparison()

    def comparison(self):
        left = self.additive()
        while self.peek()[0] == "op" and self.peek()[1] in "<>":
            op = self.take()[1]
            left = Node("bin", op, (left, self.additive()))
        return left

    def additive(self):
        left = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            left = Node("bin", op, (left, self.term()))
        return left

    def term(self):
        left = self.atom()
        while self.peek()[0] == "op" and self.peek()[1] in "*/%":
            op = self.take()[1]
            left = Node("bin", op, (left, self.atom()))
        return left

    def atom(self):
        kind, value = self.take()
        if kind == "num":
            return Node("num", value)
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take()
                args = [self.expr()]
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.expr())
                self.take("op", ")")
                return Node("call", value, tuple(args))
            return Node("var", value)
        if (kind, value) == ("op", "("):
            inner = self.expr()
            self.take("op", ")")
            return inner
        if (kind, value) == ("op", "-"):
            return Node("bin", "-", (Node("num", 0), self.atom()))
        raise SyntaxError(f"unexpected {kind} {value}")


FUNCS = {"max": max, "min": min, "abs": abs}


def evaluate(node, env):
    kind = node.kind
    if kind == "num":
        return node.value
    if kind == "var":
        return env[node.value]
    if kind == "bin":
        a = evaluate(node.kids[0], env)
        b = evaluate(node.kids[1], env)
        op = node.value
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a // b if b else 0
        if op == "%":
            return a % b if b else 0
        if op == "<":
            return int(a < b)
        return int(a > b)
    if kind == "let":
        inner = dict(env)
        inner[node.value] = evaluate(node.kids[0], env)
        return evaluate(node.kids[1], inner)
    if kind == "if":
        branch = 1 if evaluate(node.kids[0], env) else 2
        return evaluate(node.kids[branch], env)
    if kind == "call":
        return FUNCS[node.value](*(evaluate(k, env) for k in node.kids))
    raise ValueError(kind)


def program(n):
    return (f"let a = {n} * 3 + (7 - {n % 5}) in "
            f"let b = max(a, {n % 11} * 4, abs(-{n})) in "
            f"if a < b then (a + b) * (b - a) % 97 else "
            f"let c = min(a / 2, b * 3) in c * c - a + {n} % 13")


def run(scale):
    total = 0
    for n in range(int(1500 * scale) + 1):
        tree = Parser(tokenize(program(n))).expr()
        total += evaluate(tree, {})
    return total
