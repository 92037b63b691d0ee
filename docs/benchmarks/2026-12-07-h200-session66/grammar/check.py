"""guided_grammar / structured_outputs.grammar (GBNF) on `serve --backend cuda` beside `--backend cpu` (session 66):
greedy and sampled answers must be sentences of the grammar when they stop and prefixes of one otherwise — decided by
lark's LALR parser of the same language (arithmetic; one character a terminal) or Python's `regex` partial full
match (the regular grammars) —, and greedy cuda = cpu.
Usage: check.py CUDA_URL CPU_URL   (lark importable: PYTHONPATH with the carried wheel's files)"""
import json
import sys
import urllib.request

import regex
from lark import Lark
from lark.exceptions import UnexpectedInput

cuda, cpu = sys.argv[1], sys.argv[2]


def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


ARITH = ('root ::= expr\nexpr ::= term (("+" | "-") term)*\nterm ::= factor (("*" | "/") factor)*\n'
         'factor ::= [0-9]+ | "(" expr ")"\n')
LK = Lark('start: expr\nexpr: term (ADDOP term)*\nterm: factor (MULOP factor)*\nfactor: DIGIT+ | "(" expr ")"\n'
          'ADDOP: "+" | "-"\nMULOP: "*" | "/"\nDIGIT: "0".."9"\n', parser="lalr", lexer="basic")


def arith_ok(text, whole):
    try:
        if whole:
            LK.parse(text)
        else:
            LK.parse_interactive(text).exhaust_lexer()
        return True
    except UnexpectedInput:
        return False


SQL = ('root ::= select_statement\nselect_statement ::= "SELECT " column " from " table " where " condition\n'
       'column ::= "col_1 " | "col_2 "\ntable ::= "table_1 " | "table_2 "\ncondition ::= column "= " number\n'
       'number ::= "1 " | "2 "\n')
WORDS = 'root ::= word (", " word){1,3} "."\nword ::= [a-z]{2,8}\n'
GRAMMARS = [
    ("arith", ARITH, arith_ok),
    ("sql", SQL, lambda t, w: bool(regex.fullmatch(r"SELECT col_[12]  from table_[12]  where col_[12] = [12] ", t,
                                                   partial=not w))),
    ("words", WORDS, lambda t, w: bool(regex.fullmatch(r"[a-z]{2,8}(, [a-z]{2,8}){1,3}\.", t, partial=not w))),
]
prompts = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "List three colors:"]
ok, total, same, n_greedy = 0, 0, 0, 0
for name, g, check in GRAMMARS:
    for i, p in enumerate(prompts):
        fmt = dict(guided_grammar=g) if i % 2 == 0 else dict(structured_outputs=dict(grammar=g))
        a = post(cuda, dict(prompt=p, max_tokens=40, temperature=0, **fmt))["choices"][0]
        b = post(cpu, dict(prompt=p, max_tokens=40, temperature=0, **fmt))["choices"][0]
        s = post(cuda, dict(prompt=p, max_tokens=40, temperature=1.0, seed=7, n=4, **fmt))["choices"]
        for c in [a] + s:
            total += 1
            ok += check(c["text"], c["finish_reason"] == "stop")
        n_greedy += 1
        same += a["text"] == b["text"]
        print(f"  {name} {p!r}: greedy cuda {a['text']!r} ({a['finish_reason']}) cpu {b['text']!r}; "
              f"sampled {[(c['text'], c['finish_reason']) for c in s]}")
print(f"guided_grammar: {ok} of {total} answers within the grammar (whole where stopped); greedy cuda = cpu {same} "
      f"of {n_greedy}")
